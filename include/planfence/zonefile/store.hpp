// planfence/zonefile/store.hpp: a record store kept in RFC 1035 zone files.
//
// What it is: the store for DNS servers that load zone files from a directory (Knot, BIND, NSD,
// PowerDNS's bind backend), and for recovery: `planfence-ctl` names it `zonefile:///absolute/dir`.
// One master file per zone, `<dir>/<zone without the final dot>.zone` (e.g. `example.test.zone`).
// Every endpoint inside one of the zones is an endpoint of the store. Its records in the zone are
// those of dns/zone_layout.hpp, which the RFC 2136 store shares (docs/zone-layout.md), so a zone
// written here can be loaded into a server and managed by RFC 2136, and back: the stamp
// `_planfence.<endpoint> 0 IN TXT "gen=G fence=F"`; the zone's fence floor
// `_fence._planfence.<zone> 0 IN TXT "floor=N"` (the legacy owner `_planfence-floor.<zone>` is read
// too, the larger counts, and is removed when the floor is next written); weights beside the
// records, `_weight._planfence.<endpoint> TXT "A 192.0.2.10 10"`: DNS has no weights, servers
// answer every record of the set. The store's floor is also kept in `<dir>/planfence.floor` so
// that zones created (or copied in) later inherit it.
//
//     auto store = planfence::zonefile_store::open_uri("zonefile:///var/lib/planfence/zones").value();
//     store.create_zone("example.test.").value();                 // SOA + NS, once
//     auto www = store.resolve("www.example.test.").value();
//     auto seen = store.read_stamp(www).value();
//     auto applied = store.commit(www, seen, {plan_gen, my_fence}, records);   // or stale/fenced/conflict
//
// The commit protocol (per zone, docs/zonefile.md): take an exclusive flock on
// `<dir>/<zone>.zone.lock`; RE-READ the zone file and the directory floor and decide from what is
// on disk (the bytes are always read; only their parse is reused when they are exactly the bytes
// this object last read or wrote: "Costs" below); write the whole new zone to `<dir>/<zone>.zone.tmp`, fsync it,
// rename it over the zone file, fsync the directory; release the lock. The lock makes the check
// and the write one atomic step for every process and thread that uses this store on the
// directory; the rename makes readers (DNS servers reloading, read_stamp, served) see the old
// file or the new one, never a mix; the fsyncs make a commit that returned success survive a crash
// (a lost rename would roll an endpoint back: S1 across power loss). The SOA serial advances by one
// (RFC 1982 addition) on every file written. A commit that fails writes nothing: the temp file is
// removed on every error path before the rename. Before writing, the whole new zone is checked
// against the rules that make DNS servers refuse a zone (check_zone_loadable in zonefile/zone.hpp: a
// CNAME beside other data, at the apex or at an in-zone name server, several CNAMEs, data below a
// DNAME): such a commit is refused with errc::invalid_plan, nothing written.
//
// Batches (batched_store, docs/zonefile.md): commit_batch groups its items by zone and, per zone,
// takes the lock once, reads and parses the zone and planfence.floor once, decides every item from
// what is on disk by exactly the single commit's rules (an item's outcome never depends on the
// other items), applies every item that passed to the zone in memory, checks the result once
// (check_zone_loadable, records_max; on a zone known to be loadable, from what the items change
// alone: quick_loadable, exact, else the whole zone) and writes the zone ONCE (temp, fsync, rename, directory
// fsync): the items of one zone are all in the new file or none. `commit` is a batch of one.
// When one item fails rather than being refused:
//  - it would make the zone unloadable: an endpoint's records touch only its own owners (its name,
//    its stamp's and its weights'), so on a loadable zone each item breaks a rule or not on its
//    own; the offenders are found by checking halves of the items (k offenders among n: O(k log n)
//    more checks, in memory) and left `pending`, the rest of the zone is written, and the error
//    (invalid_plan) names each offender and its rule. On a zone that already breaks a rule, no
//    item of the zone is written (unless the batch as a whole repairs it);
//  - it would exceed records_max: items are admitted in batch order while the zone stays within
//    the bound, as single commits in that order would be; the others are left `pending`
//    (capacity_exceeded, naming them). So is an item whose desired stamp is out of range;
//  - a zone that cannot be locked, read or written: all its undecided items stay `pending`
//    (store_unavailable), also when only the final directory fsync failed (the new file is in
//    place; reading again finds the stamps, and a retry reports stale). Other zones go on and
//    their outcomes stand. With several failures the code is store_unavailable if any zone was
//    unavailable, else the first failure's, and the detail lists them.
// read_stamps reads and parses each zone once for all its handles (no lock, as read_stamp).
//
// Files are kept as the DNS server and the operator see them (replace_file below): a zone file or
// planfence.floor that is a symbolic link is followed (its target is replaced, the link stays); a
// file with several hard links is refused; owner, group and mode are kept (a process that cannot
// chown the new file back, not root, refuses with nothing written). Every file is opened only
// when it is a regular file, with O_NONBLOCK, and read with a size bound (zone_bytes_max; 64 bytes
// for planfence.floor): a FIFO, device or directory in place of a zone file, planfence.floor, a
// lock file or the temp file is refused by name and never waited on; a stale temp file is removed,
// never opened, and the new one is created with O_EXCL | O_NOFOLLOW. Stamps and floors read back
// are range-checked (generation 1..2^40-1, fence and floor 0..2^24-1) and refused with the file,
// line, owner and value otherwise.
//
// Meaning (docs/concepts.md): every outcome of `record_store` and `inspectable_store`:
//  - stale: the endpoint serves desired.gen or newer (S1);
//  - fenced: desired.fence is below the endpoint's fence or the floor (S2);
//  - conflict: the stamp moved otherwise since `expected` was read;
//  - store_unavailable: a file could not be read, parsed, locked (within lock_timeout_ms) or
//    written; nothing was written, except when only the final directory fsync failed (then the
//    new file is in place but may not survive a crash: retrying is idempotent, it reads the new
//    stamp and reports stale). The error names the file, and for a file that does not parse the
//    line and column and what was expected;
//  - capacity_exceeded: the zone would exceed `zonefile_options::records_max` records;
//  - invalid_plan: the new zone would be one a DNS server refuses to load (above); retrying cannot
//    help, the plan or the zone's other data must change, so it is not store_unavailable.
// A stamp's fence, as read_stamp reports it and commit compares it, is the larger of the fence
// written in the stamp and the floor: `raise_fence` then needs to rewrite no stamp.
//
// raise_fence(token), under the directory lock `<dir>/planfence.lock`: writes planfence.floor
// first and reads it back (from then on every commit, which reads it under its zone lock, refuses
// smaller tokens), then takes each zone's lock in turn (waiting out commits in flight) and writes
// the zone's floor record. A failure says "raise_fence to N: FAILED", the cause (file and errno),
// and what was raised: nothing, or planfence.floor and which zones. After it returns no commit
// with a smaller token can land in any zone, including zones created later (create_zone inherits
// the floor under the same lock).
//
// Apply marks (change_following_store, docs/zone-layout.md): the store's begun and applied
// generations are one record, `_apply._planfence.<home zone> 0 IN TXT "begun=B applied=A"`, in the
// *home zone*: of the directory's zones, the smallest name (dns::home_zone, the RFC 2136 store's
// rule too). read_marks reads it (none: both generation_none); begin_apply and finish_apply take
// the home zone's lock, re-read planfence.floor and the zone, refuse a token below the floor
// exactly as a commit does (fenced), begin_apply refuses marks that are not `expected` (conflict),
// and write the new marks with one rewrite of the home zone (temp, fsync, rename, directory fsync,
// serial advanced); finish_apply writes nothing when the marks already say so. A token refused
// after raise_fence returned is refused here too: raise_fence writes planfence.floor first and
// waits for the home zone's lock. live_generations reads the home zone (so the marks) first and
// reports effective generations. The marks record is not an endpoint (decode_zone takes it as it
// takes the floor). Every operation on the marks looks for new zone files first, so the home zone
// follows the directory; a change of the zone set that moves the home zone makes the marks read
// as never written (the next apply writes every endpoint). The first write of marks into a home
// zone without them first removes the marks record of every other zone (each under its lock),
// so a former home zone's marks, older than what applies stamp since, are never read again
// should the home zone move back. (That write holds the home zone's lock while it takes the
// others'; only two processes disagreeing on the home zone could then wait on each other, each
// until lock_timeout_ms.)
//
// Costs: a commit re-reads, parses and rewrites its zone: O(zone size), plus two fsyncs, which
// dominate on a real disk for small zones (docs/zonefile.md gives measured latencies). A batch
// costs, per zone it touches, the same once: O(zone size + items log items) (a parse decodes into
// a sorted map; a rewrite checks only what it changes when the zone is known to be loadable
// (once per zone read otherwise), builds the decoded form of only the endpoints it writes, sorts
// only the records it adds, merges them in and formats the zone), one rewrite, two fsyncs. read_stamp and served read and parse the zone
// file: O(zone size), no lock; read_stamps once per zone. resolve is O(1) expected after the first
// call for a name. read_marks reads and parses the home zone; begin_apply and finish_apply the
// same under its lock, plus one rewrite (none for a finish that changes nothing); the first marks
// written into a home zone without them also read every other zone once (and rewrite those that
// hold old marks). live_generations reads every zone. So the store suits zones of up to tens of
// thousands of records; an enactor applying a plan to a whole zone pays one rewrite of the zone
// per batch, so large batches matter (docs/zonefile.md: a 10,000-endpoint plan in batches of 64
// costs ~150 rewrites); preferred_batch_max() asks an enactor left at its default for the whole
// plan in one batch.
// The parse cache: per zone, the store object keeps the exact bytes of the zone file as it last
// read or wrote them and what parsing and decoding them gave (shared_ptr<const>, under a mutex of
// its own, never held during I/O or a parse). Every read above still reads the whole file with
// every check (stat, regular file, O_NONBLOCK, size bound; under the lock where it says so); when
// the bytes are identical (size, then memcmp) the parse is reused, otherwise parsed again. After a
// rewrite the bytes written are cached with the records written (no parse: format_records writes
// what parse_zone reads back to the same records; their line numbers are not kept; a zone written
// past records_max is not cached) and their decoded contents, which are NOT decoded from all the
// records again: they are the old contents with the change applied (updated_contents): the
// endpoints the rewrite wrote decoded from their new records alone (decode_endpoints), the marks,
// floor and SOA written, every line 0: exactly what decode_zone gives for the records written
// (tests/zonefile/cache_test.cpp compares them over random batches, through cached()). A rewrite
// whose loaded snapshot nobody else holds (its cache entry dropped, use_count 1) moves the
// records and contents out of it instead of copying the zone; otherwise it copies them. The
// records kept from a zone this object wrote are in order, so the sort only orders what the
// rewrite adds (by keys built once) and merges it in. So a zone this object wrote last costs a
// read of its bytes, not a parse, and an enactor's plan parses each zone at most once
// (docs/zonefile.md: a parse of a 20,000-record zone is ~16 ms, reading its bytes well under 1
// ms). Memory: one copy of the bytes plus the records and the decoded zone per zone (about three
// times the file), until replaced. parses() counts the parses, for tests and benchmarks.
// It is not a hot-path store (use memory_store) and not for zones of millions of records.
//
// When not to use it: when the DNS server is fed another way (RFC 2136 UPDATE, a database), or when
// tools other than planfence edit the zone files while planfence runs: they do not take the lock,
// and the store rewrites files whole in its canonical layout (comments and formatting are not
// kept; records of other types are kept, see zonefile/syntax.hpp). The directory must be on a local
// file system that honours flock and rename (not NFS).
//
// Progress: every operation is blocking (file I/O; commit and raise_fence also wait for locks, at
// most lock_timeout_ms each). All allocate. Thread safety: every member but the move operations may
// be called concurrently, from any number of threads and processes.
//
// Limits: when a zone cannot be read (after three tries), live_generations() reports
// store_unavailable rather than a live set that might miss a live plan; the registry then
// collects nothing (collection_report::live_unavailable, S3).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../detail/uri.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"
#include "../dns/zone_layout.hpp"
#include "syntax.hpp"
#include "zone.hpp"

namespace planfence {
inline namespace v1 {

/// How a zonefile_store reads and writes its directory.
struct zonefile_options {
  /// Bound on records per zone: a commit that would exceed it is refused (capacity_exceeded), and
  /// a zone file holding more does not open.
  std::size_t records_max = zone_records_max;
  /// Bound on a zone file's size in bytes.
  std::size_t zone_bytes_max = std::size_t{256} << 20;
  /// How long commit and raise_fence wait for a lock before reporting store_unavailable.
  std::uint32_t lock_timeout_ms = 10000;
  /// Create the directory if it does not exist (open only).
  bool create_directory = false;
};

/// The zone-file store. See the header comment.
class zonefile_store {
 public:
  /// File names inside the directory.
  static constexpr std::string_view zone_suffix = ".zone";
  static constexpr std::string_view lock_suffix = ".lock";
  static constexpr std::string_view temp_suffix = ".tmp";
  static constexpr std::string_view directory_lock_name = "planfence.lock";
  static constexpr std::string_view floor_file_name = "planfence.floor";
  /// Bound on endpoints resolved by one store object (handles are 32-bit).
  static constexpr std::size_t endpoints_max = std::size_t{1} << 26;
  /// Bound on zones in one directory.
  static constexpr std::size_t zones_max = 65536;

  /// Opens the store over `directory`, reading and checking every `*.zone` file in it (each must
  /// parse and decode: its SOA owned by the zone the file is named after). Errors: io_error (no
  /// such directory, unreadable file, a `*.zone` that is not a regular file or a link to one),
  /// parse_error (a zone file that does not parse, with line,
  /// column and the file's name in the detail), invalid_name (a file name that is not a zone),
  /// capacity_exceeded.
  [[nodiscard]] static result<zonefile_store> open(std::filesystem::path directory, zonefile_options options = {});

  /// Opens `zonefile:///absolute/dir` (percent-escapes decoded; no host, query or fragment).
  /// Errors: parse_error at line 1 and the column of the problem, or what open() reports.
  [[nodiscard]] static result<zonefile_store> open_uri(std::string_view uri, zonefile_options options = {});

  /// Creates `<directory>/<zone>.zone` holding only the SOA (serial 1), the NS (and glue) records
  /// and the fence floor, under the directory lock; the floor is the directory's (planfence.floor).
  /// Errors: invalid_name, io_error (the file exists, or cannot be written), store_unavailable,
  /// invalid_plan (an in-zone name server without glue: the zone would not load).
  [[nodiscard]] static result<void> create_zone(const std::filesystem::path& directory, std::string_view zone,
                                                const zone_soa_options& soa = {}, zonefile_options options = {});
  /// As above, in this store's directory; the store serves the new zone at once.
  [[nodiscard]] result<void> create_zone(std::string_view zone, const zone_soa_options& soa = {});

  zonefile_store(zonefile_store&&) noexcept = default;
  zonefile_store& operator=(zonefile_store&&) noexcept = default;

  /// The handle of any name inside one of the zones (the most specific zone when they nest); any
  /// case, with or without the final dot. A name the store does not know yet makes it look for
  /// new zone files once. Errors: invalid_name (malformed, or a `_planfence` label: reserved),
  /// unknown_endpoint (inside no zone), capacity_exceeded. Blocking only when it rescans.
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const;

  /// The endpoint's stamp as the zone file says now: generation_none if it has none; the fence
  /// is max(stamp, floor); version 0. Reads and parses the zone. Errors: store_unavailable.
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const;

  /// The conditional commit (header comment). `records` must be the endpoint's record set of plan
  /// `desired.gen`. Blocking; O(zone size) plus two fsyncs. Errors besides the outcomes:
  /// store_unavailable (a file unreadable, out of range, not regular, locked, or not writable),
  /// capacity_exceeded (the record bound, or `desired` above generation_max or fence_max),
  /// invalid_plan (the zone would not load in a DNS server).
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records);

  /// The stamps of `handles` into `out` (same size), each as read_stamp gives it; one read and
  /// parse per zone for all its handles, and one read of planfence.floor. No lock. All or
  /// nothing: an error (store_unavailable) leaves `out` unspecified.
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const;

  /// The enactor's batch when its batch_max is 0 (planfence::preferred_batch_max): the largest,
  /// 65,536. Each batch rewrites every zone it touches whole, so a plan in one batch costs one
  /// rewrite per zone, and one in 64-endpoint batches (the default for other stores) a rewrite of
  /// its growing zone per 64 endpoints. The enactor's arrays grow only to the plan's size.
  [[nodiscard]] static constexpr std::uint32_t preferred_batch_max() noexcept { return batch_max_limit; }

  /// The batched commit (header comment, "Batches"): per zone, one lock, one read and parse, each
  /// item decided by its own condition exactly as `commit` decides it, and one rewrite holding
  /// every item written. Errors: store_unavailable (a zone's items stay pending; other zones'
  /// outcomes stand), invalid_plan and capacity_exceeded naming the endpoints refused (those stay
  /// pending, the rest of their zone is written). When several zones fail, the code is
  /// store_unavailable if any was unavailable, else the first error's, and the detail lists them.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items);
  /// commit_batch with the apply marks (marks_batch_store, header comment "Apply marks"): a
  /// requested begin is written in the home zone's rewrite when the batch writes the home zone
  /// (its zone is then committed first), else by its own rewrite before any other; a requested
  /// finish in the home zone's rewrite when the home zone is the last of the batch and every item
  /// came out written or stale (else declined: the caller finishes). A 1% plan of one zone in one
  /// batch is one rewrite. Errors as commit_batch and begin_apply; a refused begin writes nothing.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items, batch_marks& marks);

  /// After it returns, every commit with a token below `token` is refused in every zone of the
  /// directory, including zones created later. Never lowers a floor. Errors: the cause's code,
  /// with its line and column if any (store_unavailable for a file that cannot be read, locked or
  /// written; what open() reports for a new zone file found by the rescan; capacity_exceeded,
  /// also for a token above fence_max). Then the floor may be raised in some zones only;
  /// planfence.floor, written first, already refuses smaller tokens if it was written: the detail
  /// begins "raise_fence to N: FAILED: " and says which.
  [[nodiscard]] result<void> raise_fence(fence_token token);

  /// Distinct effective generations the endpoints serve now, ascending, read from the files at
  /// the call: for every stamp effective_generation(stamp, marks), plus the marks' applied and
  /// begun generations (when written). The home zone, and with it the marks, is read first.
  /// Errors: errc::store_unavailable when a zone cannot be read after three tries (header
  /// comment, S3).
  [[nodiscard]] result<std::vector<generation>> live_generations() const;

  /// The apply marks (change_following_store, header comment "Apply marks"): the record
  /// `_apply._planfence.<home zone>` of the home zone's file as it is now, version 0;
  /// {generation_none, generation_none, 0} when never written (or when the directory holds no
  /// zone). No lock. Errors: parse_error (the home zone does not parse or decode: a malformed or
  /// out-of-range marks record, two of them; the detail names the file and the owner, `line` the
  /// line), store_unavailable (the file or the directory cannot be read).
  [[nodiscard]] result<apply_marks> read_marks() const;
  /// Precondition: target > expected.begun. Under the home zone's lock, as a commit: refused with
  /// errc::fenced when `token` is below the zone's fence floor (the larger of its floor record and
  /// planfence.floor), errc::conflict when the marks in the file are not `expected` (begun and
  /// applied compared; version ignored); else writes begun := target in one rewrite of the home
  /// zone (serial advanced) and returns the marks stored. Errors as read_marks, and
  /// capacity_exceeded (target above generation_max), store_unavailable (lock, write; no zone).
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token);
  /// Under the home zone's lock: errc::fenced below the floor; else applied := max(applied,
  /// target), begun := max(begun, target), in one rewrite of the home zone, none when nothing
  /// changes. Returns the marks stored. Errors as begin_apply.
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token);
  /// The zone holding the apply marks: dns::home_zone of zones(), after looking for new zone
  /// files. Errors: store_unavailable (no zone, or the directory cannot be listed).
  [[nodiscard]] result<std::string> home_zone() const;

  /// The A, AAAA, CNAME and TXT records at the endpoint's name, weights restored: what a server
  /// loading the file answers (plus the weights). Empty for an endpoint never written.
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const;
  /// The stamps and records of several endpoints: each zone read and parsed once, with the
  /// directory floor once (no lock, as read_stamp and served). Errors as read_stamps.
  [[nodiscard]] result<void> inspect(std::span<const endpoint_handle> handles, std::span<endpoint_state> out) const;
  /// Every name in the zones with such records or a stamp, canonical, sorted (zone by zone),
  /// except the glue of the zones' own name servers (their addresses, unless planfence wrote them).
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const;

  /// For tests and benchmarks: how many times this store object parsed a zone file's text
  /// (parse_zone and decode_zone). A read whose bytes equal those this object last read or wrote
  /// for the zone reuses that parse and is not counted (header comment, "Costs").
  [[nodiscard]] std::uint64_t parses() const noexcept { return state_->parses.load(std::memory_order_relaxed); }
  /// For tests: what this object's parse cache holds for a zone (header comment, "Costs").
  struct cache_entry {
    std::string bytes;       ///< the file's bytes as this object last read or wrote them
    zone_contents contents;  ///< what a read of identical bytes uses
    bool written = false;    ///< cached by this object's rewrite (contents built from the one before)
  };
  /// For tests: the parse cache's entry for `zone` (canonical); nothing when it holds none. After
  /// a rewrite the contents are the previous ones with the change applied, not a decode of the
  /// whole zone: tests compare them with a fresh parse of the file.
  [[nodiscard]] std::optional<cache_entry> cached(std::string_view zone) const {
    std::lock_guard guard(state_->cache_mutex);
    auto it = state_->cache.find(std::string(zone));
    if (it == state_->cache.end()) return std::nullopt;
    return cache_entry{it->second->bytes, it->second->contents, it->second->sorted};
  }

  /// The directory's floor (planfence.floor) and every zone's, the largest.
  [[nodiscard]] result<fence_token> fence_floor() const;
  /// The zones served, canonical names, sorted.
  [[nodiscard]] std::vector<std::string> zones() const;
  /// The endpoint name behind a handle.
  [[nodiscard]] std::string name(endpoint_handle h) const;
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return state_->directory; }
  /// `<dir>/<zone without the final dot>.zone`.
  [[nodiscard]] std::filesystem::path zone_file(std::string_view zone) const { return zone_path(state_->directory, zone); }
  [[nodiscard]] static std::filesystem::path zone_path(const std::filesystem::path& directory, std::string_view zone) {
    std::string stem(zone);
    if (!stem.empty() && stem.back() == '.') stem.pop_back();
    return directory / (stem + std::string(zone_suffix));
  }

 private:
  struct zone_slot {
    std::string name;  // canonical
    std::filesystem::path file;
  };
  struct endpoint_slot {
    std::string name;
    std::size_t zone = 0;
  };
  /// A zone file's exact bytes and what parsing and decoding them gives. Immutable once made:
  /// shared (shared_ptr<const>) between the cache and the readers holding it. Made non-const
  /// (make_shared<zone_snapshot>): a commit that holds the only reference, the cache's dropped,
  /// moves its records and contents into the rewrite (owned_snapshot) instead of copying them.
  struct zone_snapshot {
    std::string bytes;
    std::vector<zone_record> records;
    zone_contents contents;
    bool sorted = false;  ///< records in the order sort_records gives (written by this object)
    /// What a rewrite checked of the records (a rewrite's quick check, zone_to_write); empty: not
    /// known (a zone read, or written without a check), worked out by the next commit.
    std::optional<planfence::detail::zone::loadability> checked{};
  };
  using snapshot_ptr = std::shared_ptr<const zone_snapshot>;
  struct state {
    std::filesystem::path directory;
    zonefile_options options;
    mutable std::mutex mutex;  // guards the tables below, never held during I/O of a commit
    std::vector<zone_slot> zones;
    /// Every endpoint resolved, by handle. A deque: a slot never moves once made, so its name
    /// can be viewed (the index's keys, a batch's names) without holding the mutex.
    std::deque<endpoint_slot> endpoints;
    /// Canonical name -> handle; the keys view endpoints[handle].name.
    std::unordered_map<std::string_view, std::uint32_t> index;
    /// Per zone (canonical name), the file as this object last read or wrote it. Never decides
    /// anything by itself: every read reads the file and uses the entry only when the bytes are
    /// identical. Guarded by cache_mutex (taken after `mutex`, never before; never held during I/O
    /// or a parse).
    mutable std::mutex cache_mutex;
    mutable std::unordered_map<std::string, snapshot_ptr> cache;
    mutable std::atomic<std::uint64_t> parses{0};
  };

  explicit zonefile_store(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}

  /// The zones a batch touches, in order of first appearance, and which positions of the batch
  /// are in each.
  struct batch_zone {
    zone_slot zone;
    std::vector<std::size_t> members;
  };

  [[nodiscard]] static result<void> scan(state& s);  // s.mutex held (or s not shared yet)
  /// Reads the zone file with every check of read_file, then parses and decodes it, unless its
  /// bytes are those of the zone's cached snapshot (then that snapshot). `code`: the error code
  /// for a file that does not parse.
  [[nodiscard]] static result<snapshot_ptr> load(const state& s, const zone_slot& zone, errc code);
  /// What a rewrite knows of the records it writes, so that write() need not work it out again.
  struct rewrite_hints {
    /// The first records are in sort_records' order (a zone this object wrote, minus records).
    std::size_t sorted_prefix = 0;
    /// What decode_zone gives for the records (lines cleared): updated_contents. Empty: decoded.
    std::optional<zone_contents> contents{};
    /// What the rewrite knows of the records' loadability (zone_snapshot::checked).
    std::optional<planfence::detail::zone::loadability> checked{};
  };
  /// write_zone (sort, format, replace_file), then caches the bytes written with the records
  /// written and their decoded contents (hints.contents, else decode_zone; never a parse). The
  /// cache entry is dropped when the write fails.
  [[nodiscard]] static result<void> write(const state& s, const zone_slot& zone, std::vector<zone_record> records,
                                          rewrite_hints hints);
  /// The loaded snapshot, writable, when nobody else holds it: its cache entry is dropped (under
  /// cache_mutex) and, if `loaded` is then the only reference, the caller may move out of it.
  /// nullptr otherwise (the caller copies). Call only when about to write (the next read of the
  /// zone otherwise parses it again).
  [[nodiscard]] static std::shared_ptr<zone_snapshot> owned_snapshot(const state& s, const zone_slot& zone, snapshot_ptr& loaded);
  /// The records and contents of `loaded` for a rewrite: moved out when owned_snapshot allows it,
  /// else copied. `sorted_prefix` is set to the records' count when they are in write order.
  static void take_or_copy(const state& s, const zone_slot& zone, snapshot_ptr& loaded, std::vector<zone_record>& records,
                           zone_contents& contents, std::size_t& sorted_prefix);
  [[nodiscard]] result<endpoint_slot> slot(endpoint_handle h, zone_slot& zone) const;
  /// Reads each zone of `handles` once (and the directory floor once), no lock, and calls
  /// visit(i, the endpoint as decoded or nullptr, its effective stamp): read_stamps and inspect.
  template <class Visit>
  [[nodiscard]] result<void> read_endpoints(std::span<const endpoint_handle> handles, Visit visit) const;
  /// Groups `count` handles (handle_at(i)) by zone under one hold of the mutex; names[i] points
  /// at the endpoint's name (its slot's, which never moves: no copy). O(count) expected.
  template <class HandleAt>
  [[nodiscard]] std::vector<batch_zone> group_by_zone(std::size_t count, HandleAt handle_at,
                                                      std::vector<const std::string*>& names) const;
  /// The apply marks one zone's rewrite carries (the home zone's, in commit_batch with marks).
  struct zone_marks {
    batch_marks* request = nullptr;
    bool begin = false;      ///< check and write request->begin here
    bool finish = false;     ///< write the finish here if every item of the batch is decided
    bool others_ok = false;  ///< every item of the zones committed before came out written or stale
    const std::vector<zone_slot>* zones = nullptr;  ///< the directory's zones (first marks: drop_stale_marks)
    std::size_t home = 0;
  };
  /// One zone's part of commit_batch: lock, read, decide, apply, check, write once (with the
  /// marks of `marks`, when given).
  [[nodiscard]] result<void> commit_zone(const zone_slot& zone, std::span<commit_item> items,
                                         const std::vector<std::size_t>& members, const std::vector<const std::string*>& names,
                                         std::vector<error>& item_errors, const zone_marks* marks = nullptr);
  /// Checks the items of a batch and sets each pending.
  static void prepare_items(std::span<commit_item> items);
  [[nodiscard]] result<std::vector<generation>> live_once() const;
  /// The zones after a rescan (the directory as it is now), and the position of the home zone
  /// among them (none when there is no zone).
  [[nodiscard]] result<std::vector<zone_slot>> current_zones(std::optional<std::size_t>& home) const;
  /// begin_apply (expected set) and finish_apply (expected null): lock, read, decide, write once.
  [[nodiscard]] result<apply_marks> write_marks(const apply_marks* expected, generation target, fence_token token);
  /// Removes the marks record from every zone but zones[home], each under its own lock; a zone is
  /// rewritten only when it holds one.
  [[nodiscard]] result<void> drop_stale_marks(const std::vector<zone_slot>& zones, std::size_t home) const;

  std::unique_ptr<state> state_;
};

// ---------------------------------------------------------------------------------------------
// Implementation: POSIX file primitives, then the store.

namespace detail::zonefile {

[[nodiscard]] inline std::string errno_text(int error_number) { return std::generic_category().message(error_number); }

[[nodiscard]] inline unexpected_error unavailable(const std::filesystem::path& path, std::string what, int error_number = 0) {
  std::string detail = path.string() + ": " + std::move(what);
  if (error_number != 0) detail += ": " + errno_text(error_number);
  return fail(errc::store_unavailable, std::move(detail));
}

/// What a non-regular file is, for error messages ("a FIFO").
[[nodiscard]] inline std::string file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

/// A file descriptor closed on destruction.
class file_descriptor {
 public:
  file_descriptor() noexcept = default;
  explicit file_descriptor(int fd) noexcept : fd_(fd) {}
  file_descriptor(file_descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  file_descriptor& operator=(file_descriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  ~file_descriptor() { reset(); }
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);  // the lock, if any, goes with the last descriptor
    fd_ = -1;
  }
  /// Closes and reports the result (a write error may surface only at close).
  [[nodiscard]] int close() noexcept {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_ = -1;
};

/// An exclusive flock on a lock file, released on destruction. flock locks belong to the open
/// file description, so two threads of one process that each open the file exclude each other
/// just as two processes do.
[[nodiscard]] inline result<file_descriptor> lock_exclusive(const std::filesystem::path& path, std::uint32_t timeout_ms) {
  // A lock file is never followed through a symbolic link nor opened when it is not a regular
  // file (opening a device can act on it; O_NONBLOCK keeps a FIFO from blocking the open).
  struct stat before {};
  if (::lstat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode)) {
    return unavailable(path, "the lock file is " + file_kind(before.st_mode) +
                                 ", not a regular file: remove it (the store creates an empty one)");
  }
  file_descriptor fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd.valid()) return unavailable(path, "cannot open the lock file", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return unavailable(path, "cannot stat the lock file", errno);
  if (!S_ISREG(info.st_mode)) {
    return unavailable(path, "the lock file is " + file_kind(info.st_mode) + ", not a regular file: remove it");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return unavailable(path, "cannot lock", errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      return unavailable(path, "still locked by another writer after " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

/// The whole file, at most `bytes_max`. `missing` is set (and an empty string returned) when the
/// file does not exist and `missing` is not null.
[[nodiscard]] inline result<std::string> read_file(const std::filesystem::path& path, std::size_t bytes_max,
                                                   bool* missing = nullptr) {
  // Never opened when it is not a regular file (a device's open can act on it), and opened with
  // O_NONBLOCK so that a FIFO swapped in between the stat and the open cannot block; fstat decides.
  struct stat before {};
  if (::stat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode)) {
    return unavailable(path, "is " + file_kind(before.st_mode) + ", not a regular file: refused, never read");
  }
  file_descriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT && missing != nullptr) {
      *missing = true;
      return std::string{};
    }
    return unavailable(path, "cannot open", errno);
  }
  if (missing != nullptr) *missing = false;
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return unavailable(path, "cannot stat", errno);
  if (!S_ISREG(info.st_mode)) {
    return unavailable(path, "is " + file_kind(info.st_mode) + ", not a regular file: refused, never read");
  }
  if (static_cast<std::uint64_t>(info.st_size) > bytes_max) {
    return fail(errc::capacity_exceeded, path.string() + ": larger than " + std::to_string(bytes_max) + " bytes");
  }
  std::string out;
  out.resize(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  for (;;) {
    if (done == out.size()) out.resize(out.size() + 4096);  // the file grew: read to its end
    const ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return unavailable(path, "cannot read", errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
    if (done > bytes_max) return fail(errc::capacity_exceeded, path.string() + ": larger than " + std::to_string(bytes_max) + " bytes");
  }
  out.resize(done);
  return out;
}

[[nodiscard]] inline result<void> fsync_directory(const std::filesystem::path& directory) {
  file_descriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return unavailable(directory, "cannot open the directory to fsync it", errno);
  if (::fsync(fd.get()) != 0) return unavailable(directory, "cannot fsync the directory", errno);
  return ok();
}

/// Replaces `path` by `content` atomically and durably, keeping the file's identity as the DNS
/// server and the operator see it:
///  - a symbolic link is FOLLOWED (to its final target): the target, which the server reads, is
///    replaced, and the link stays a link; a dangling link is refused;
///  - a file with several hard links is REFUSED: a rename would leave the other names with the
///    old content while the commit reports success;
///  - the owner, group and mode are kept (fchown, fchmod on the temp file before the rename); a
///    process that cannot give the file its owner back (not root, file owned by another user) is
///    refused with nothing written. ACLs, extended attributes and SELinux labels are not copied;
///  - anything but a regular file at `path` (a FIFO, a device, a directory) is refused, never opened.
/// Steps: remove a stale `<target>.tmp` (left by a crash; removed, not opened, so a FIFO or a
/// link planted there is never written through), create it with O_EXCL | O_NOFOLLOW, write, fsync,
/// rename over the target, fsync the target's directory. On every failure before the rename the
/// temp file is removed and the target is untouched; `renamed` tells the caller whether a failure
/// came after the rename (only the directory fsync). Every error names the file and errno.
[[nodiscard]] inline result<void> replace_file(const std::filesystem::path& path, std::string_view content,
                                               bool* renamed = nullptr) {
  if (renamed != nullptr) *renamed = false;
  std::filesystem::path target = path;
  struct stat info {};
  bool exists = false;
  if (::lstat(path.c_str(), &info) == 0) {
    exists = true;
    if (S_ISLNK(info.st_mode)) {
      std::error_code ec;
      target = std::filesystem::canonical(path, ec);
      if (ec) {
        return unavailable(path, "is a symbolic link whose target cannot be resolved (nothing was written): " +
                                     ec.message());
      }
      if (::lstat(target.c_str(), &info) != 0) {
        return unavailable(target, "the target of the symbolic link " + path.string() +
                                       " cannot be read (nothing was written)",
                           errno);
      }
    }
    if (!S_ISREG(info.st_mode)) {
      return unavailable(target, "is " + file_kind(info.st_mode) +
                                     ", not a regular file: refused (nothing was written)");
    }
    if (info.st_nlink > 1) {
      return unavailable(target, "has " + std::to_string(info.st_nlink) +
                                     " hard links: replacing it would leave the other names with the old content; "
                                     "make it a single file (a symbolic link is followed) (nothing was written)");
    }
  } else if (errno != ENOENT) {
    return unavailable(path, "cannot stat (nothing was written)", errno);
  }
  const std::filesystem::path temp = target.string() + std::string(zonefile_store::temp_suffix);
  if (::unlink(temp.c_str()) != 0 && errno != ENOENT) {
    return unavailable(temp,
                       "cannot create the temp file: a stale file of that name cannot be removed "
                       "(nothing was written)",
                       errno);
  }
  file_descriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd.valid()) return unavailable(temp, "cannot create the temp file (nothing was written)", errno);
  auto abandon = [&](std::string what, int error_number) {
    fd.reset();
    ::unlink(temp.c_str());
    return unavailable(temp, std::move(what) + " (nothing was written to " + target.string() + ")", error_number);
  };
  if (exists) {
    struct stat mine {};
    if (::fstat(fd.get(), &mine) != 0) return abandon("cannot stat the temp file", errno);
    const bool other_owner = mine.st_uid != info.st_uid || mine.st_gid != info.st_gid;
    if (other_owner && ::fchown(fd.get(), info.st_uid, info.st_gid) != 0) {
      return abandon("cannot give the temp file the owner " + std::to_string(info.st_uid) + ":" +
                         std::to_string(info.st_gid) + " of " + target.string() + " (run as that user or as root)",
                     errno);
    }
  }
  // After fchown, which may clear set-user-ID bits.
  const mode_t mode = exists ? (info.st_mode & 07777) : 0644;
  if (::fchmod(fd.get(), mode) != 0) return abandon("cannot set the mode", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return abandon("cannot write", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  // (1) fsync before rename: otherwise a crash could leave the rename durable and the data not,
  // an empty or partial zone file under the real name.
  if (::fsync(fd.get()) != 0) return abandon("cannot fsync", errno);
  if (fd.close() != 0) {
    const int error_number = errno;
    ::unlink(temp.c_str());
    return unavailable(temp, "cannot close (nothing was written to " + target.string() + ")", error_number);
  }
  // (2) rename: readers see the old file or the new one, never a mix.
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int error_number = errno;
    ::unlink(temp.c_str());
    return unavailable(target, "cannot rename the temp file over it (nothing was written)", error_number);
  }
  if (renamed != nullptr) *renamed = true;
  // (3) fsync the directory: the rename is a change of the directory; without this a crash could
  // bring the old file back, and with it an older generation (S1 across power loss).
  auto synced = fsync_directory(target.parent_path());
  if (!synced) {
    return unavailable(target, "written and renamed, but the directory fsync failed: the commit may not survive "
                               "a crash: " + synced.error().detail);
  }
  return ok();
}

/// `<dir>/planfence.floor`: "floor=N\n"; 0 when absent.
[[nodiscard]] inline result<fence_token> read_directory_floor(const std::filesystem::path& directory) {
  const std::filesystem::path path = directory / zonefile_store::floor_file_name;
  bool missing = false;
  auto text = read_file(path, 64, &missing);
  if (!text) return unexpected_error(std::move(text).error());
  if (missing) return fence_token{};
  std::string_view body = *text;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  // The same text as the zones' floor records. Out of range: refused, never clamped (a floor above
  // fence_max would fence out every writer for good).
  auto floor = dns::parse_floor(body);
  if (!floor) return fail_at(errc::store_unavailable, 1, 1, path.string() + ": " + floor.error().detail);
  return *floor;
}

/// Parses and decodes the text of one zone file. `code` is the error code for a text that does not
/// parse.
[[nodiscard]] inline result<std::pair<std::vector<zone_record>, zone_contents>> parse_text(std::string_view text,
                                                                                         const std::filesystem::path& file,
                                                                                         const std::string& zone,
                                                                                         const zonefile_options& options,
                                                                                         errc code) {
  zone_parse_options parse_options;
  parse_options.origin = zone;
  parse_options.records_max = options.records_max;
  auto records = parse_zone(text, parse_options);
  if (!records) {
    error e = std::move(records).error();
    return fail_at(code, e.line, e.column, file.string() + ": " + e.detail);
  }
  auto contents = decode_zone(*records, zone);
  if (!contents) {
    error e = std::move(contents).error();
    return fail_at(code, e.line, e.column, file.string() + ": " + e.detail);
  }
  return std::make_pair(std::move(*records), std::move(*contents));
}

/// Reads, parses and decodes one zone file (no cache). `code` is the error code for a file that
/// does not parse.
[[nodiscard]] inline result<std::pair<std::vector<zone_record>, zone_contents>> load(const std::filesystem::path& file,
                                                                                   const std::string& zone,
                                                                                   const zonefile_options& options,
                                                                                   errc code) {
  auto text = read_file(file, options.zone_bytes_max);
  if (!text) return unexpected_error(std::move(text).error());
  return parse_text(*text, file, zone, options, code);
}

[[nodiscard]] inline std::string header(std::string_view zone) {
  return "zone " + std::string(zone) +
         ", written by planfence's zone-file store (include/planfence/zonefile/store.hpp).\n"
         "Edit only under the lock " + std::string(zone.substr(0, zone.size() - 1)) +
         ".zone.lock: every commit rewrites this file whole.\n"
         "_planfence.<endpoint> TXT \"gen=G fence=F\" is an endpoint's stamp; _weight._planfence.<endpoint> its weights;\n"
         "_fence._planfence.<zone> TXT \"floor=N\" the zone's fence floor; _apply._planfence.<zone> TXT\n"
         "\"begun=B applied=A\" the store's apply marks, read in its home zone only (docs/zone-layout.md).";
}

/// The text of a zone file holding `records` (sorted: SOA first), as the store writes it.
[[nodiscard]] inline std::string zone_text(std::span<const zone_record> records, const std::string& zone) {
  std::string text = "$ORIGIN " + zone + "\n";
  planfence::detail::zone::append_records(text, records, header(zone));
  return text;
}

/// Writes records (SOA first, serial advanced by one under RFC 1982) to the zone file.
[[nodiscard]] inline result<void> write_zone(const std::filesystem::path& file, const std::string& zone,
                                             std::vector<zone_record> records, bool* renamed) {
  planfence::detail::zone::sort_records(records, zone);
  PLANFENCE_ASSERT(!records.empty());
  PLANFENCE_ASSERT(records[0].type == "SOA");
  const std::string text = zone_text(records, zone);
  return replace_file(file, text, renamed);
}

/// Sets the zone's apply marks record (the only one at its owner), appended; the number of records
/// removed (all before the one appended: sort_records' prefix shrinks by as many).
inline std::size_t set_marks(std::vector<zone_record>& records, const std::string& zone, const apply_marks& marks) {
  const std::string owner = dns::marks_owner(zone);
  const std::size_t removed = std::erase_if(records, [&](const zone_record& r) { return r.owner == owner; });
  records.push_back(zone_record{owner, 0, "TXT", planfence::detail::format_txt({dns::format_marks(marks)}), {}, 0});
  return removed;
}

/// Sets the zone's floor record at the canonical owner and removes the legacy owner, in the same
/// records (so in the same rewrite of the file: dns/zone_layout.hpp). Returns the number removed.
inline std::size_t set_floor(std::vector<zone_record>& records, const std::string& zone, fence_token floor) {
  const std::string owner = dns::floor_owner(zone);
  const std::string legacy = dns::legacy_floor_owner(zone);
  const std::size_t removed = std::erase_if(records, [&](const zone_record& r) { return r.owner == owner || r.owner == legacy; });
  records.push_back(zone_record{owner, 0, "TXT", planfence::detail::format_txt({dns::format_floor(floor)}), {}, 0});
  return removed;
}

/// Advances the SOA serial (records[0]); the SOA's fields as written.
inline soa_fields advance_serial(std::vector<zone_record>& records) {
  PLANFENCE_ASSERT(!records.empty());
  PLANFENCE_ASSERT(records[0].type == "SOA");
  auto soa = parse_soa(records[0].rdata);
  PLANFENCE_ASSERT(soa.has_value());
  soa->serial = dns::next_serial(soa->serial);
  records[0].rdata = format_soa(*soa);
  return std::move(*soa);
}

[[nodiscard]] inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace detail::zonefile

inline result<zonefile_store::snapshot_ptr> zonefile_store::load(const state& s, const zone_slot& zone, errc code) {
  // The file is read every time, with every check (regular file, O_NONBLOCK, size bound): only
  // the parse of bytes seen before is saved.
  auto text = detail::zonefile::read_file(zone.file, s.options.zone_bytes_max);
  if (!text) return unexpected_error(std::move(text).error());
  {
    std::lock_guard guard(s.cache_mutex);
    if (auto it = s.cache.find(zone.name); it != s.cache.end()) {
      const std::string& cached = it->second->bytes;
      if (cached.size() == text->size() && std::memcmp(cached.data(), text->data(), cached.size()) == 0) return it->second;
    }
  }
  s.parses.fetch_add(1, std::memory_order_relaxed);
  auto parsed = detail::zonefile::parse_text(*text, zone.file, zone.name, s.options, code);
  if (!parsed) return unexpected_error(std::move(parsed).error());
  snapshot_ptr snapshot = std::make_shared<zone_snapshot>(
      zone_snapshot{std::move(*text), std::move(parsed->first), std::move(parsed->second), false, std::nullopt});
  std::lock_guard guard(s.cache_mutex);
  s.cache[zone.name] = snapshot;  // a concurrent reader may replace it: at worst a later parse
  return snapshot;
}

inline result<void> zonefile_store::write(const state& s, const zone_slot& zone, std::vector<zone_record> records,
                                         rewrite_hints hints) {
  planfence::detail::zone::sort_records(records, zone.name, hints.sorted_prefix);
  PLANFENCE_ASSERT(!records.empty());
  PLANFENCE_ASSERT(records[0].type == "SOA");
  std::string text = detail::zonefile::zone_text(records, zone.name);
  bool renamed = false;
  auto written = detail::zonefile::replace_file(zone.file, text, &renamed);
  if (!renamed) {
    std::lock_guard guard(s.cache_mutex);
    s.cache.erase(zone.name);
    return written;
  }
  // In place (also when only the directory fsync failed): cache what was written. format_records
  // writes text that parse_zone reads back to the same records (syntax.hpp), so decoding the
  // records is decoding the text; their lines are the old file's or none: cleared ("built").
  // The decoded contents are the caller's (updated_contents: the old contents with the change,
  // equal to decoding the records), else decode_zone of the records.
  // A zone over records_max (a floor or marks record added to a full zone) is not cached: a
  // parse refuses it, so the next read must parse and report it as before.
  for (zone_record& r : records) r.line = 0;
  result<zone_contents> contents = fail(errc::capacity_exceeded);
  if (records.size() <= s.options.records_max) {
    contents = hints.contents ? result<zone_contents>(std::move(*hints.contents)) : decode_zone(records, zone.name);
  }
  std::lock_guard guard(s.cache_mutex);
  if (contents) {
    s.cache[zone.name] = std::make_shared<zone_snapshot>(
        zone_snapshot{std::move(text), std::move(records), std::move(*contents), true, std::move(hints.checked)});
  } else {
    s.cache.erase(zone.name);  // the next read parses
  }
  return written;
}

inline std::shared_ptr<zonefile_store::zone_snapshot> zonefile_store::owned_snapshot(const state& s, const zone_slot& zone,
                                                                                     snapshot_ptr& loaded) {
  {
    std::lock_guard guard(s.cache_mutex);
    if (auto it = s.cache.find(zone.name); it != s.cache.end() && it->second == loaded) s.cache.erase(it);
  }
  // No other holder, and none can appear: copies are made only from the cache or from a holder.
  // Every snapshot is made non-const (make_shared<zone_snapshot>), so moving out of it is defined.
  if (loaded.use_count() != 1) return nullptr;
  // use_count() is a relaxed read: the last other holder's reads of the snapshot must happen
  // before this thread moves out of it. weak_ptr::lock increments the count by an acquire-release
  // compare-and-swap (libstdc++ and libc++), which synchronizes with every earlier release of it.
  {
    std::weak_ptr<const zone_snapshot> weak = loaded;
    snapshot_ptr synchronized = weak.lock();
  }
  return std::const_pointer_cast<zone_snapshot>(loaded);
}

inline void zonefile_store::take_or_copy(const state& s, const zone_slot& zone, snapshot_ptr& loaded,
                                         std::vector<zone_record>& records, zone_contents& contents, std::size_t& sorted_prefix) {
  sorted_prefix = loaded->sorted ? loaded->records.size() : 0;
  if (auto owned = owned_snapshot(s, zone, loaded)) {
    records = std::move(owned->records);
    contents = std::move(owned->contents);
  } else {
    records = loaded->records;
    contents = loaded->contents;
  }
}

inline result<void> zonefile_store::scan(state& s) {
  std::error_code ec;
  std::filesystem::directory_iterator it(s.directory, ec);
  if (ec) return fail(errc::io_error, s.directory.string() + ": cannot list the directory: " + ec.message());
  std::vector<zone_slot> found;
  for (const auto& entry : it) {
    const std::string file = entry.path().filename().string();
    if (file.size() <= zone_suffix.size() || !file.ends_with(zone_suffix)) continue;
    // A FIFO, device or directory named like a zone is refused (never opened, so never blocked
    // on): skipping it would make its endpoints silently unknown. A link to a regular file is fine.
    if (!entry.is_regular_file(ec)) {
      struct stat info {};
      const std::string kind = ::stat(entry.path().c_str(), &info) == 0 ? detail::zonefile::file_kind(info.st_mode)
                                                                         : std::string("a dangling symbolic link");
      return fail(errc::io_error, entry.path().string() + ": named like a zone file but is " + kind +
                                      ", not a regular file: remove or rename it");
    }
    auto zone = planfence::detail::zone::zone_name(file.substr(0, file.size() - zone_suffix.size()));
    if (!zone) return fail(errc::invalid_name, entry.path().string() + ": the file name is not <zone>.zone: " + zone.error().detail);
    found.push_back(zone_slot{std::move(*zone), entry.path()});
  }
  for (zone_slot& z : found) {
    const bool known = std::any_of(s.zones.begin(), s.zones.end(), [&](const zone_slot& k) { return k.name == z.name; });
    if (known) continue;
    // Check it now, so that a bad file is reported when it appears, with its line and column.
    auto loaded = load(s, z, errc::parse_error);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    if (s.zones.size() >= zones_max) return fail(errc::capacity_exceeded, "more than 65536 zones in " + s.directory.string());
    s.zones.push_back(std::move(z));
  }
  return ok();
}

inline result<zonefile_store> zonefile_store::open(std::filesystem::path directory, zonefile_options options) {
  std::error_code ec;
  if (options.create_directory) std::filesystem::create_directories(directory, ec);
  if (!std::filesystem::is_directory(directory, ec)) {
    return fail(errc::io_error, directory.string() + ": not a directory" + (ec ? ": " + ec.message() : std::string{}));
  }
  auto s = std::make_unique<state>();
  s->directory = std::filesystem::absolute(directory, ec);
  if (ec) return fail(errc::io_error, directory.string() + ": " + ec.message());
  s->options = options;
  if (auto scanned = scan(*s); !scanned) return unexpected_error(std::move(scanned).error());
  return zonefile_store(std::move(s));
}

inline result<zonefile_store> zonefile_store::open_uri(std::string_view uri, zonefile_options options) {
  constexpr std::string_view scheme = "zonefile://";
  auto bad = [&](std::size_t at, std::string what) {
    return fail_at(errc::parse_error, 1, static_cast<std::uint32_t>(at + 1),
                   "store URI '" + detail::redact_uri(uri) + "': " + std::move(what));
  };
  if (uri.substr(0, scheme.size()) != scheme) return bad(0, "expected zonefile:///absolute/directory");
  const std::string_view rest = uri.substr(scheme.size());
  if (rest.empty() || rest[0] != '/') {
    return bad(scheme.size(), "expected an absolute path after zonefile:// (three slashes: no host)");
  }
  std::string path;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    const std::size_t at = scheme.size() + i;
    if (c == '?' || c == '#') return bad(at, "expected no query or fragment");
    if (c == '%') {
      const int high = i + 2 < rest.size() ? detail::zonefile::hex_value(rest[i + 1]) : -1;
      const int low = i + 2 < rest.size() ? detail::zonefile::hex_value(rest[i + 2]) : -1;
      if (high < 0 || low < 0) return bad(at, "expected two hex digits after '%'");
      const char decoded = static_cast<char>(high * 16 + low);
      if (decoded == '\0') return bad(at, "a NUL byte in the path");
      path += decoded;
      i += 2;
      continue;
    }
    path += c;
  }
  return open(std::filesystem::path(path), options);
}

inline result<void> zonefile_store::create_zone(const std::filesystem::path& directory, std::string_view zone,
                                                const zone_soa_options& soa, zonefile_options options) {
  auto name = planfence::detail::zone::zone_name(zone);
  if (!name) return unexpected_error(std::move(name).error());
  if (*name == ".") return fail(errc::invalid_name, "the root zone is not supported");
  auto records = planfence::detail::zone::apex_records(*name, soa, dns::initial_serial);
  if (!records) return unexpected_error(std::move(records).error());
  auto lock = detail::zonefile::lock_exclusive(directory / directory_lock_name, options.lock_timeout_ms);
  if (!lock) return unexpected_error(std::move(lock).error());
  const std::filesystem::path file = zone_path(directory, *name);
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) return fail(errc::io_error, file.string() + ": the zone exists already");
  auto floor = detail::zonefile::read_directory_floor(directory);
  if (!floor) return unexpected_error(std::move(floor).error());
  detail::zonefile::set_floor(*records, *name, *floor);
  // The zone lock too: a writer that found the file missing a moment ago cannot be mid-write,
  // but a hand-made lock holder (an operator's script) is respected.
  auto zone_lock = detail::zonefile::lock_exclusive(file.string() + std::string(lock_suffix), options.lock_timeout_ms);
  if (!zone_lock) return unexpected_error(std::move(zone_lock).error());
  if (auto loadable = check_zone_loadable(*records, *name); !loadable) {
    return fail(errc::invalid_plan, file.string() + ": not created: " + loadable.error().detail);
  }
  return detail::zonefile::write_zone(file, *name, std::move(*records), nullptr);
}

inline result<void> zonefile_store::create_zone(std::string_view zone, const zone_soa_options& soa) {
  if (auto made = create_zone(state_->directory, zone, soa, state_->options); !made) return made;
  std::lock_guard guard(state_->mutex);
  return scan(*state_);
}

inline result<endpoint_handle> zonefile_store::resolve(std::string_view name) const {
  {
    // A name given as resolved before (canonical, as the index keeps it): found without a copy.
    // Exact: a canonical name is its own canonical form, and only canonical names are keys.
    std::lock_guard guard(state_->mutex);
    if (auto it = state_->index.find(name); it != state_->index.end()) return endpoint_handle{it->second};
  }
  auto canonical = canonical_name(name);
  if (!canonical) return fail(errc::invalid_name, "endpoint '" + std::string(name) + "': " + canonical.error().detail);
  if (dns::has_reserved_label(*canonical)) {
    return fail(errc::invalid_name, "endpoint " + *canonical + ": labels beginning with _planfence are reserved for planfence's records");
  }
  std::lock_guard guard(state_->mutex);
  if (auto it = state_->index.find(*canonical); it != state_->index.end()) return endpoint_handle{it->second};
  auto best = [&]() -> std::optional<std::size_t> {
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < state_->zones.size(); ++i) {
      if (!planfence::detail::zone::inside(*canonical, state_->zones[i].name)) continue;
      if (!found || state_->zones[i].name.size() > state_->zones[*found].name.size()) found = i;
    }
    return found;
  };
  std::optional<std::size_t> zone = best();
  if (!zone) {
    if (auto scanned = scan(*state_); !scanned) return unexpected_error(std::move(scanned).error());
    zone = best();
  }
  if (!zone) return fail(errc::unknown_endpoint, *canonical + " is inside no zone of " + state_->directory.string());
  if (state_->endpoints.size() >= endpoints_max) return fail(errc::capacity_exceeded, "more than 2^26 endpoints resolved");
  const auto index = static_cast<std::uint32_t>(state_->endpoints.size());
  const endpoint_slot& made = state_->endpoints.emplace_back(endpoint_slot{std::move(*canonical), *zone});
  state_->index.emplace(made.name, index);
  return endpoint_handle{index};
}

inline result<zonefile_store::endpoint_slot> zonefile_store::slot(endpoint_handle h, zone_slot& zone) const {
  std::lock_guard guard(state_->mutex);
  PLANFENCE_ASSERT(h.index() < state_->endpoints.size());  // a handle from another store
  const endpoint_slot& e = state_->endpoints[h.index()];
  zone = state_->zones[e.zone];
  return e;
}

inline std::string zonefile_store::name(endpoint_handle h) const {
  std::lock_guard guard(state_->mutex);
  PLANFENCE_ASSERT(h.index() < state_->endpoints.size());
  return state_->endpoints[h.index()].name;
}

inline std::vector<std::string> zonefile_store::zones() const {
  std::lock_guard guard(state_->mutex);
  std::vector<std::string> out;
  for (const zone_slot& z : state_->zones) out.push_back(z.name);
  std::sort(out.begin(), out.end());
  return out;
}

namespace detail::zonefile {

[[nodiscard]] inline const zone_endpoint* find_endpoint(const zone_contents& contents, std::string_view name) {
  auto it = std::lower_bound(contents.endpoints.begin(), contents.endpoints.end(), name,
                             [](const zone_endpoint& e, std::string_view n) { return e.name < n; });
  return it != contents.endpoints.end() && it->name == name ? &*it : nullptr;
}

/// The stamp commits compare: the stamp written, its fence raised to the floor.
[[nodiscard]] inline stamp effective_stamp(const zone_endpoint* e, fence_token floor) {
  stamp s = e != nullptr && e->stamped ? *e->stamped : stamp{};
  s.fence = std::max(s.fence, floor);
  s.version = 0;
  return s;
}

}  // namespace detail::zonefile

inline result<stamp> zonefile_store::read_stamp(endpoint_handle h) const {
  zone_slot zone;
  auto e = slot(h, zone);
  if (!e) return unexpected_error(std::move(e).error());
  auto loaded = load(*state_, zone, errc::store_unavailable);
  if (!loaded) return unexpected_error(std::move(loaded).error());
  auto directory_floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!directory_floor) return unexpected_error(std::move(directory_floor).error());
  const fence_token floor = std::max((*loaded)->contents.floor, *directory_floor);
  return detail::zonefile::effective_stamp(detail::zonefile::find_endpoint((*loaded)->contents, e->name), floor);
}

namespace detail::zonefile {

/// One endpoint of a batch that passed its condition, and what it does to the zone's records.
struct zone_edit {
  std::size_t item = 0;                 ///< position in the batch
  const std::string* name = nullptr;    ///< the endpoint
  /// Its new records, weights and stamp: a part of one vector the batch's edits share (one
  /// allocation per batch, not per endpoint), which outlives the edits.
  std::span<zone_record> added;
  std::size_t removed = 0;              ///< records of the zone it replaces
  bool accepted = true;                 ///< applied in the rewrite
  /// The zone keeps records at the endpoint's name beside which a CNAME may not stand (types
  /// other than A, AAAA, CNAME, TXT, RRSIG and NSEC: an NS or MX there, say). Set by replaced_by.
  bool kept_other = false;
};

/// The endpoints a batch edits (views of their names -> index of the edit), and the owners each
/// edit replaces: the endpoint's name (its A, AAAA, CNAME and TXT records only: other types there
/// are the zone's) and its stamp and weight owners (every record). Looked up once per record of the
/// zone, by the endpoint name under the owner: no owner string is built per edit.
struct edit_index {
  std::unordered_map<std::string_view, std::size_t> endpoints;
  std::string stamp_prefix = dns::stamp_owner("");    // "_planfence."
  std::string weight_prefix = dns::weight_owner("");  // "_weight._planfence."
  /// Per record of the zone: the edit that replaces it, or `none` (filled once: replaced_by).
  std::vector<std::size_t> by_record;
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
};

/// The edit whose owners hold `r` (its endpoint's name, stamp or weight owner), if any; `data`:
/// `r` is at the endpoint's name.
[[nodiscard]] inline const std::size_t* edit_at(const edit_index& index, const zone_record& r, bool& data) {
  std::string_view owner = r.owner;
  data = false;
  if (owner.starts_with(index.weight_prefix)) {
    owner.remove_prefix(index.weight_prefix.size());
  } else if (owner.starts_with(index.stamp_prefix)) {
    owner.remove_prefix(index.stamp_prefix.size());
  } else {
    data = true;
  }
  auto it = index.endpoints.find(owner);
  return it == index.endpoints.end() ? nullptr : &it->second;
}

/// Fills owners.by_record for the zone `base`, counts each edit's `removed` and sets its
/// `kept_other`. An edit replaces every record at its stamp and weight owners, and the endpoint
/// data (A, AAAA, CNAME, TXT) at its name; other types there are the zone's. O(zone) expected.
inline void replaced_by(const std::vector<zone_record>& base, edit_index& owners, std::vector<zone_edit>& edits) {
  owners.by_record.assign(base.size(), edit_index::none);
  for (std::size_t i = 0; i < base.size(); ++i) {
    const zone_record& r = base[i];
    bool data = false;
    const std::size_t* by = edit_at(owners, r, data);
    if (by == nullptr) continue;
    if (data && !parse_record_type(r.type).has_value()) {
      if (r.type != "RRSIG" && r.type != "NSEC") edits[*by].kept_other = true;
      continue;
    }
    owners.by_record[i] = *by;
    ++edits[*by].removed;
  }
}

/// The records of a rewrite: the zone's records kept, in their order, then the edits' new records
/// (the first `kept` come from the zone, so they are in order if it was: sort_records' prefix).
struct zone_rewrite {
  std::vector<zone_record> records;
  std::size_t kept = 0;
};

/// Whether base[i] stays when the accepted edits are applied.
[[nodiscard]] inline bool kept_record(const edit_index& owners, const std::vector<zone_edit>& edits, std::size_t i) {
  const std::size_t by = owners.by_record[i];
  return by == edit_index::none || !edits[by].accepted;
}

/// The zone with the accepted edits applied, as pointers (for checking it without building it).
[[nodiscard]] inline std::vector<const zone_record*> edited_view(const std::vector<zone_record>& base, const edit_index& owners,
                                                                 const std::vector<zone_edit>& edits) {
  std::vector<const zone_record*> out;
  out.reserve(base.size() + 4 * edits.size());
  for (std::size_t i = 0; i < base.size(); ++i) {
    if (kept_record(owners, edits, i)) out.push_back(&base[i]);
  }
  for (const zone_edit& e : edits) {
    if (!e.accepted) continue;
    for (const zone_record& r : e.added) out.push_back(&r);
  }
  return out;
}

/// The zone's records with the accepted edits applied: every other record as it was, then each
/// accepted endpoint's new records. O(zone + edits) expected time. A copy of every record kept.
[[nodiscard]] inline zone_rewrite apply_edits(const std::vector<zone_record>& base, const edit_index& owners,
                                              const std::vector<zone_edit>& edits) {
  zone_rewrite out;
  out.records.reserve(base.size() + 4 * edits.size());
  for (std::size_t i = 0; i < base.size(); ++i) {
    if (kept_record(owners, edits, i)) out.records.push_back(base[i]);
  }
  out.kept = out.records.size();
  for (const zone_edit& e : edits) {
    if (e.accepted) out.records.insert(out.records.end(), e.added.begin(), e.added.end());
  }
  return out;
}

/// apply_edits when nothing needs the zone's records nor the edits' new records afterwards: done
/// in `base` itself (the records kept moved down over those removed, the new ones appended and
/// moved, not copied): no string is allocated, and no second vector of the zone, whose fresh
/// pages cost more than the moves. `base` is left empty.
[[nodiscard]] inline zone_rewrite take_edits(std::vector<zone_record>& base, const edit_index& owners, std::vector<zone_edit>& edits) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    if (!kept_record(owners, edits, i)) continue;
    if (kept != i) base[kept] = std::move(base[i]);
    ++kept;
  }
  base.erase(base.begin() + static_cast<std::ptrdiff_t>(kept), base.end());
  std::size_t added = 0;
  for (const zone_edit& e : edits) added += e.accepted ? e.added.size() : 0;
  // With room to spare (an eighth), so that the next rewrites of a zone about this size, and the
  // marks or floor record this one may add, move nothing into fresh pages.
  const std::size_t size = kept + added;
  if (base.capacity() < size + 2) base.reserve(size + size / 8 + 16);
  for (zone_edit& e : edits) {
    if (!e.accepted) continue;
    for (zone_record& r : e.added) base.push_back(std::move(r));
    e.added = {};
  }
  zone_rewrite out;
  out.records = std::move(base);
  out.kept = kept;
  base.clear();
  return out;
}

/// The edits (by index) that make the zone unloadable on their own, each with the rule it
/// breaks, found by checking halves: k such edits among n cost O(k log n) checks of the zone.
/// Requires the zone without any edit to be loadable. Leaves every edit's `accepted` as it was.
[[nodiscard]] inline std::vector<std::pair<std::size_t, error>> unloadable_edits(const std::vector<zone_record>& base,
                                                                                 const edit_index& owners,
                                                                                 std::vector<zone_edit>& edits,
                                                                                 const std::string& zone) {
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < edits.size(); ++i) {
    if (edits[i].accepted) candidates.push_back(i);
  }
  std::vector<std::pair<std::size_t, error>> bad;
  std::vector<std::pair<std::size_t, std::size_t>> ranges{{0, candidates.size()}};
  while (!ranges.empty()) {
    const auto [lo, hi] = ranges.back();
    ranges.pop_back();
    for (std::size_t i = 0; i < candidates.size(); ++i) edits[candidates[i]].accepted = i >= lo && i < hi;
    auto checked = planfence::detail::zone::check_loadable(edited_view(base, owners, edits), zone);
    if (checked) continue;
    if (hi - lo == 1) {
      bad.emplace_back(candidates[lo], std::move(checked).error());
      continue;
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    ranges.emplace_back(mid, hi);
    ranges.emplace_back(lo, mid);
  }
  for (std::size_t i : candidates) edits[i].accepted = true;
  std::sort(bad.begin(), bad.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  return bad;
}

/// Whether the zone stays loadable with the accepted edits applied, decided from the edits alone:
/// true only when check_zone_loadable of the edited zone passes. False says nothing (the caller
/// checks the whole zone). `zone` describes the records before the edits (loadability_of, or
/// carried from the rewrite that wrote them), which decode (a zone-file store's snapshot).
///
/// Why this is exact: take a zone that passes every rule and has no DNAME. An edit removes every
/// record at its stamp and weight owners and the endpoint data (A, AAAA, CNAME, TXT) at its name,
/// and adds A, AAAA, CNAME and TXT records at its name and TXT records at the other two. Every
/// other owner keeps all its records, so the rules hold there as before, but for one that looks
/// at another owner: an NS record needs an address at its host, which an edit may take away.
///  - Owner length and TTL are per record: the kept passed, the added are checked here.
///  - No DNAME before, none added: nothing is below one.
///  - CNAMEs: at the name, the kept records are never CNAMEs, so it breaks only with a CNAME
///    added beside another added record or beside a kept one (`kept_other`). At the stamp and
///    weight owners there is only TXT.
///  - Glue: an NS host whose records an edit replaces must get an A or AAAA. Only the name can
///    be such a host: in a zone that decodes, the stamp and weight owners hold TXT only, so no
///    NS of a loadable zone points there (checked anyway for the owners the edits add to).
/// Cost: O(records added), one binary search in the NS hosts per edit.
[[nodiscard]] inline bool quick_loadable(const planfence::detail::zone::loadability& zone, const std::vector<zone_edit>& edits) {
  if (!zone.loadable || zone.any_dname) return false;
  const auto ns_host = [&](const std::string& owner) {
    return std::binary_search(zone.ns_hosts.begin(), zone.ns_hosts.end(), owner);
  };
  for (const zone_edit& e : edits) {
    if (!e.accepted) continue;
    std::size_t cnames = 0;
    bool other = e.kept_other, address = false;
    for (const zone_record& r : e.added) {
      if (r.owner.size() > name_text_length_max + 1 || r.ttl > ttl_max) return false;
      if (r.owner != *e.name) {
        if (ns_host(r.owner)) return false;
        continue;
      }
      if (r.type == "CNAME") {
        ++cnames;
      } else {
        other = true;
      }
      address = address || r.type == "A" || r.type == "AAAA";
    }
    if (cnames > 1 || (cnames == 1 && other)) return false;
    if (!address && ns_host(*e.name)) return false;
  }
  return true;
}

/// The records of the rewrite: the zone with every edit applied that keeps it loadable
/// (check_zone_loadable) and within `records_max`; `refuse(edit, code, why)` for each edit left
/// out (its `accepted` cleared). Nothing when no edit is left to write. `checked` describes `base`
/// (quick_loadable): when it shows every edit fits, no check of the whole zone; else one check
/// of the zone when every edit fits, more (in memory) only when some do not. The checks look at the edited
/// zone through pointers; the records are built once, at the end: moved out of `take()` (the
/// zone's records when nobody else needs them: it is `base` itself, and the edits' new records
/// are moved too) or, when it gives nullptr, copied from `base`.
template <class Refuse, class Take>
[[nodiscard]] std::optional<zone_rewrite> zone_to_write(const std::vector<zone_record>& base, const edit_index& owners,
                                                        std::vector<zone_edit>& edits, const std::string& zone,
                                                        const planfence::detail::zone::loadability& checked,
                                                        std::size_t records_max, Refuse refuse, Take take) {
  PLANFENCE_ASSERT(owners.by_record.size() == base.size());
  // Never write a zone a DNS server would refuse to load (a CNAME beside other data, say): the
  // commit would report success while the server keeps serving the old zone, or nothing. An
  // endpoint's records touch only its own owners, so each edit breaks the rules or not on its own
  // (given a loadable zone): the ones that do are found and refused, the others written.
  bool dropped = false;
  const bool quick = quick_loadable(checked, edits);
  if (auto loadable = quick ? result<void>(ok()) : planfence::detail::zone::check_loadable(edited_view(base, owners, edits), zone);
      !loadable) {
    dropped = true;
    if (edits.size() == 1 || !check_zone_loadable(base, zone)) {
      // One item, or a zone that breaks a rule already: nothing of the zone is written.
      for (const auto& e : edits) refuse(e, errc::invalid_plan, loadable.error().detail.str());
      return std::nullopt;
    }
    for (auto& [e, why] : unloadable_edits(base, owners, edits, zone)) {
      edits[e].accepted = false;
      refuse(edits[e], errc::invalid_plan, why.detail.str());
    }
  }
  // The record bound: items in batch order, each admitted while the zone stays within it, as a
  // sequence of single commits would.
  std::size_t total = base.size();
  for (auto& e : edits) {
    if (!e.accepted) continue;
    const std::size_t after = total - e.removed + e.added.size();
    if (after > records_max) {
      e.accepted = false;
      dropped = true;
      refuse(e, errc::capacity_exceeded,
             "the zone would have more than " + std::to_string(records_max) + " records (zonefile_options::records_max)");
      continue;
    }
    total = after;
  }
  if (std::none_of(edits.begin(), edits.end(), [](const zone_edit& e) { return e.accepted; })) return std::nullopt;
  if (dropped && !quick) {
    if (auto loadable = planfence::detail::zone::check_loadable(edited_view(base, owners, edits), zone); !loadable) {
      // Edits that are loadable alone but not together: not possible with planfence's records
      // (above); should it happen, nothing of the zone is written.
      for (const auto& e : edits) {
        if (e.accepted) refuse(e, errc::invalid_plan, loadable.error().detail.str());
      }
      return std::nullopt;
    }
  }
  if (std::vector<zone_record>* owned = take()) {
    PLANFENCE_ASSERT(owned == &base);
    return take_edits(*owned, owners, edits);
  }
  return apply_edits(base, owners, edits);
}

/// The decoded zone after a rewrite, from the decoded zone before it (`before`, which decoding
/// the old records gave) and what the rewrite changed: `fresh`, the endpoints decode_endpoints
/// read from the records written for the edited endpoints (every record at their endpoint
/// owners), replacing or joining those of `before`; the marks when written (`marks`: the new
/// value) and the floor when written (`floor`: the legacy owner is gone); the SOA written. What
/// decode_zone gives for the records written with their lines cleared (so every line is 0): a
/// test compares them (tests/zonefile/cache_test.cpp). O(endpoints + fresh) moves.
[[nodiscard]] inline zone_contents updated_contents(zone_contents before, std::vector<zone_endpoint> fresh, soa_fields soa,
                                                    const std::optional<apply_marks>* marks = nullptr,
                                                    std::optional<fence_token> floor = std::nullopt) {
  zone_contents out;
  out.zone = std::move(before.zone);
  out.soa = std::move(soa);
  out.soa_line = 0;
  out.floor = floor ? *floor : before.floor;
  out.legacy_floor = floor ? false : before.legacy_floor;
  out.marks = marks != nullptr ? *marks : before.marks;
  out.marks_line = 0;
  // `fresh` was built, not read: its lines are 0 already.
  if (before.endpoints.empty()) {
    out.endpoints = std::move(fresh);  // a zone's first endpoints: nothing to merge with
    return out;
  }
  out.endpoints.reserve(before.endpoints.size() + fresh.size());
  auto old = before.endpoints.begin();
  const auto keep_old = [&]() {
    out.endpoints.push_back(std::move(*old++));
    out.endpoints.back().line = 0;
  };
  for (zone_endpoint& e : fresh) {
    while (old != before.endpoints.end() && old->name < e.name) keep_old();
    if (old != before.endpoints.end() && old->name == e.name) ++old;  // replaced
    out.endpoints.push_back(std::move(e));
  }
  while (old != before.endpoints.end()) keep_old();
  return out;
}

/// The accepted edits' endpoints as decode_zone reads them from the records written, in name
/// order (updated_contents' `fresh`): built from the items where that is certain
/// (written_endpoint), decoded from their records where not (weights; decode_endpoints).
/// O(records of the edits), and a sort by name when the batch was not in name order.
[[nodiscard]] inline result<std::vector<zone_endpoint>> written_endpoints(const std::vector<zone_edit>& edits,
                                                                          std::span<const commit_item> items,
                                                                          std::string_view zone) {
  std::vector<zone_endpoint> out;
  out.reserve(edits.size());
  std::vector<zone_record> undecided;
  for (const zone_edit& e : edits) {
    if (!e.accepted) continue;
    const commit_item& item = items[e.item];
    if (auto built = planfence::detail::zone::written_endpoint(*e.name, zone, item.records->records(), item.desired)) {
      out.push_back(std::move(*built));
    } else {
      planfence::detail::zone::endpoint_records(undecided, *e.name, item.records->records(), item.desired.gen, item.desired.fence);
    }
  }
  if (!undecided.empty()) {
    auto decoded = planfence::detail::zone::decode_endpoints(undecided, zone);
    if (!decoded) return unexpected_error(std::move(decoded).error());
    for (zone_endpoint& e : *decoded) out.push_back(std::move(e));
  }
  const auto by_name = [](const zone_endpoint& x, const zone_endpoint& y) { return x.name < y.name; };
  if (!std::is_sorted(out.begin(), out.end(), by_name)) std::sort(out.begin(), out.end(), by_name);
  return out;
}

/// The error commit_batch returns for several causes: store_unavailable if any cause was (the
/// caller reads those items again and retries), else the first cause's code and position; the
/// detail lists the causes, the first four in full.
[[nodiscard]] inline result<void> batch_failure(const std::vector<error>& causes) {
  if (causes.empty()) return ok();
  if (causes.size() == 1) return unexpected_error(causes.front());
  const bool unavailable = std::any_of(causes.begin(), causes.end(), [](const error& e) { return e.code == errc::store_unavailable; });
  std::string detail = std::to_string(causes.size()) + " failures in the batch: ";
  for (std::size_t i = 0; i < causes.size() && i < 4; ++i) detail += (i == 0 ? "" : "; ") + causes[i].message();
  if (causes.size() > 4) detail += "; and " + std::to_string(causes.size() - 4) + " more";
  const error& first = causes.front();
  return fail_at(unavailable ? errc::store_unavailable : first.code, first.line, first.column, detail);
}

}  // namespace detail::zonefile

template <class HandleAt>
std::vector<zonefile_store::batch_zone> zonefile_store::group_by_zone(std::size_t count, HandleAt handle_at,
                                                                      std::vector<const std::string*>& names) const {
  std::vector<batch_zone> out;
  std::unordered_map<std::size_t, std::size_t> group;  // zone slot -> position in out
  names.assign(count, nullptr);
  std::lock_guard guard(state_->mutex);
  for (std::size_t i = 0; i < count; ++i) {
    const endpoint_handle h = handle_at(i);
    PLANFENCE_ASSERT(h.index() < state_->endpoints.size());  // a handle from another store
    const endpoint_slot& e = state_->endpoints[h.index()];
    names[i] = &e.name;
    auto [it, fresh] = group.try_emplace(e.zone, out.size());  // allocates only for a zone not seen yet
    if (fresh) out.push_back(batch_zone{state_->zones[e.zone], {}});
    out[it->second].members.push_back(i);
  }
  return out;
}

template <class Visit>
result<void> zonefile_store::read_endpoints(std::span<const endpoint_handle> handles, Visit visit) const {
  std::vector<const std::string*> names;
  const std::vector<batch_zone> zones = group_by_zone(handles.size(), [&](std::size_t i) { return handles[i]; }, names);
  auto directory_floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!directory_floor) return unexpected_error(std::move(directory_floor).error());
  for (const batch_zone& z : zones) {
    auto loaded = load(*state_, z.zone, errc::store_unavailable);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    const fence_token floor = std::max((*loaded)->contents.floor, *directory_floor);
    for (std::size_t i : z.members) {
      const zone_endpoint* found = detail::zonefile::find_endpoint((*loaded)->contents, *names[i]);
      visit(i, found, detail::zonefile::effective_stamp(found, floor));
    }
  }
  return ok();
}

inline result<void> zonefile_store::read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const {
  PLANFENCE_ASSERT(handles.size() == out.size());
  return read_endpoints(handles, [&](std::size_t i, const zone_endpoint*, const stamp& st) { out[i] = st; });
}

inline result<stamp> zonefile_store::commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                            const record_set& records) {
  // A batch of one: the same decision, the same rewrite, the same errors.
  commit_item item{h, expected, desired, &records};
  auto done = commit_batch(std::span<commit_item>(&item, 1));
  if (!done) return unexpected_error(std::move(done).error());
  switch (item.outcome) {
    case commit_outcome::written: return item.now;
    case commit_outcome::stale: return fail(errc::stale);
    case commit_outcome::fenced: return fail(errc::fenced);
    case commit_outcome::conflict: return fail(errc::conflict);
    case commit_outcome::pending: break;
  }
  PLANFENCE_ASSERT(false);  // commit_batch leaves an item pending only with an error
  return fail(errc::store_unavailable);
}

inline void zonefile_store::prepare_items(std::span<commit_item> items) {
  if constexpr (PLANFENCE_ASSERTS_ENABLED) {
    // An endpoint at most once: the batch's handles sorted, O(n log n) in the batch alone.
    std::vector<std::uint32_t> seen;
    seen.reserve(items.size());
    for (const commit_item& item : items) seen.push_back(item.endpoint.index());
    std::sort(seen.begin(), seen.end());
    PLANFENCE_ASSERT(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  }
  for (commit_item& item : items) {
    PLANFENCE_ASSERT(item.records != nullptr);
    PLANFENCE_ASSERT(item.desired.gen != generation_none);
    item.outcome = commit_outcome::pending;
    item.now = item.expected;
  }
}

inline result<void> zonefile_store::commit_batch(std::span<commit_item> items, batch_marks& m) {
  PLANFENCE_ASSERT(m.begin == nullptr || m.target > m.begin->begun);
  m.began = m.begin_refused = m.finished = false;
  if (m.begin == nullptr && !m.finish) return commit_batch(items);
  prepare_items(items);
  std::vector<const std::string*> names;
  std::vector<batch_zone> zones = group_by_zone(items.size(), [&](std::size_t i) { return items[i].endpoint; }, names);
  std::optional<std::size_t> home;
  auto directory_zones = current_zones(home);
  if (!directory_zones) return unexpected_error(std::move(directory_zones).error());
  // Where the home zone is in the batch, if it is.
  auto in_batch = [&]() -> std::optional<std::size_t> {
    if (!home) return std::nullopt;
    for (std::size_t z = 0; z < zones.size(); ++z) {
      if (zones[z].zone.name == (*directory_zones)[*home].name) return z;
    }
    return std::nullopt;
  };
  zone_marks here{&m, false, false, false, &*directory_zones, home.value_or(0)};
  if (m.begin != nullptr) {
    if (const auto z = in_batch()) {
      std::rotate(zones.begin(), zones.begin() + static_cast<std::ptrdiff_t>(*z), zones.begin() + static_cast<std::ptrdiff_t>(*z) + 1);
      here.begin = true;  // the home zone first, its rewrite holding the begun mark
    } else {
      // The home zone is not written by this batch: the begin on its own, before any write.
      auto begun = write_marks(m.begin, m.target, m.token);
      if (!begun) {
        const errc code = begun.error().code;
        m.begin_refused = code == errc::fenced || code == errc::conflict;
        return unexpected_error(std::move(begun).error());
      }
      m.began = true;
      m.marks = *begun;
    }
  }
  if (m.finish) {
    // The finish in the home zone's rewrite only when that zone comes last: after every other
    // zone's items are written. With the begin in it too, only for a batch of that zone alone.
    if (const auto z = in_batch(); z && (!here.begin || zones.size() == 1)) {
      std::rotate(zones.begin() + static_cast<std::ptrdiff_t>(*z), zones.begin() + static_cast<std::ptrdiff_t>(*z) + 1, zones.end());
      here.finish = true;
    }
  }
  std::vector<error> causes;
  for (std::size_t z = 0; z < zones.size(); ++z) {
    const bool first = z == 0, last = z + 1 == zones.size();
    zone_marks marks = here;
    marks.begin = here.begin && first;
    marks.finish = here.finish && last;
    if (marks.finish) {
      marks.others_ok = causes.empty();
      for (std::size_t y = 0; y < z && marks.others_ok; ++y) {
        for (std::size_t i : zones[y].members) {
          if (items[i].outcome != commit_outcome::written && items[i].outcome != commit_outcome::stale) marks.others_ok = false;
        }
      }
    }
    auto done = commit_zone(zones[z].zone, items, zones[z].members, names, causes, marks.begin || marks.finish ? &marks : nullptr);
    if (!done) {
      // A refused begin: nothing of the batch was written (the home zone comes first).
      if (m.begin_refused) return unexpected_error(std::move(done).error());
      causes.push_back(std::move(done).error());
      // Nothing may be written before the begin is: without it, the other zones wait.
      if (marks.begin && !m.began) return detail::zonefile::batch_failure(causes);
    }
  }
  return detail::zonefile::batch_failure(causes);
}

inline result<void> zonefile_store::commit_batch(std::span<commit_item> items) {
  prepare_items(items);
  std::vector<const std::string*> names;
  const std::vector<batch_zone> zones = group_by_zone(items.size(), [&](std::size_t i) { return items[i].endpoint; }, names);
  std::vector<error> causes;
  for (const batch_zone& z : zones) {
    // A zone that cannot be locked, read or written leaves its items pending; the next zones go on.
    if (auto done = commit_zone(z.zone, items, z.members, names, causes); !done) causes.push_back(std::move(done).error());
  }
  return detail::zonefile::batch_failure(causes);
}

inline result<void> zonefile_store::commit_zone(const zone_slot& zone, std::span<commit_item> items,
                                                const std::vector<std::size_t>& members,
                                                const std::vector<const std::string*>& names, std::vector<error>& item_errors,
                                                const zone_marks* marks) {
  const std::size_t errors_before = item_errors.size();
  auto refused = [&](std::size_t i, errc code, const std::string& why) {
    item_errors.push_back(error{code, 0, 0, error_text(zone.file.string() + ": the commit of " + *names[i] + " at generation " +
                                                         std::to_string(items[i].desired.gen.value()) +
                                                         " is refused, nothing was written for it: " + why)});
  };
  const std::filesystem::path lock_path = zone.file.string() + std::string(lock_suffix);
  auto lock = detail::zonefile::lock_exclusive(lock_path, state_->options.lock_timeout_ms);
  if (!lock) return unexpected_error(std::move(lock).error());
  // Under the lock: re-read everything the decisions depend on. Nothing read before counts.
  auto directory_floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!directory_floor) return unexpected_error(std::move(directory_floor).error());
  auto loaded = load(*state_, zone, errc::store_unavailable);
  if (!loaded) return unexpected_error(std::move(loaded).error());
  const std::vector<zone_record>& base = (*loaded)->records;
  const fence_token floor = std::max((*loaded)->contents.floor, *directory_floor);

  // The begin first, by begin_apply's rules (write_marks): refused, nothing of the batch is written.
  const apply_marks marks_now = (*loaded)->contents.marks.value_or(apply_marks{});
  apply_marks marks_next = marks_now;
  if (marks != nullptr && marks->begin) {
    const batch_marks& m = *marks->request;
    const std::string what = zone.file.string() + ": begin_apply of generation " + std::to_string(m.target.value()) +
                             " with fence token " + std::to_string(m.token.value());
    if (m.target > generation_max) {
      return fail(errc::capacity_exceeded, what + ": " + dns::generation_range_problem(std::to_string(m.target.value())));
    }
    if (m.token < floor) {
      marks->request->begin_refused = true;
      return fail(errc::fenced, what + " is refused, nothing was written: the fence floor is " + std::to_string(floor.value()) +
                                    " (a newer lease holder raised it)");
    }
    if (marks_now.begun != m.begin->begun || marks_now.applied != m.begin->applied) {
      marks->request->begin_refused = true;
      return fail(errc::conflict, what + ": the apply marks at " + dns::marks_owner(zone.name) + " are \"" +
                                      dns::format_marks(marks_now) + "\", not the expected \"" +
                                      dns::format_marks(*m.begin) + "\": read them again (nothing was written)");
    }
    marks_next.begun = m.target;
  }

  // Each item by its own condition, from the file: exactly the single commit's rules.
  std::vector<detail::zonefile::zone_edit> edits;
  edits.reserve(members.size());
  // Every edit's new records, edit after edit (each edit's span is set once all are in).
  std::vector<zone_record> added;
  std::vector<std::size_t> added_from;
  {
    std::size_t count = 0;
    for (std::size_t i : members) count += items[i].records->records().size() + 1;  // the records and the stamp (weights: more)
    added.reserve(count);
    added_from.reserve(members.size() + 1);
  }
  detail::zonefile::edit_index owners;
  owners.endpoints.reserve(members.size());
  std::optional<stamp> stamp_of_text;  // the stamp whose TXT data stamp_text is (the same for a whole batch, usually)
  std::string stamp_text;
  for (std::size_t i : members) {
    commit_item& item = items[i];
    // A stamp is read back range-checked: writing one out of range would make the zone unreadable.
    if (std::string why = dns::stamp_range_problem(item.desired.gen, item.desired.fence); !why.empty()) {
      refused(i, errc::capacity_exceeded, "the desired stamp: " + why);
      continue;
    }
    const stamp now = detail::zonefile::effective_stamp(detail::zonefile::find_endpoint((*loaded)->contents, *names[i]), floor);
    item.now = now;
    if (item.desired.fence < floor) {
      item.outcome = commit_outcome::fenced;
    } else if (now.gen >= item.desired.gen) {
      item.outcome = commit_outcome::stale;  // S1
    } else if (now.fence > item.desired.fence) {
      item.outcome = commit_outcome::fenced;  // S2
    } else if (now.gen != item.expected.gen || now.fence != item.expected.fence) {
      item.outcome = commit_outcome::conflict;
    } else {
      const std::size_t e = edits.size();
      edits.push_back(detail::zonefile::zone_edit{i, names[i], {}, 0, true, false});
      if (!stamp_of_text || stamp_of_text->gen != item.desired.gen || stamp_of_text->fence != item.desired.fence) {
        stamp_of_text = item.desired;
        stamp_text = planfence::detail::zone::stamp_rdata(item.desired.gen, item.desired.fence);
      }
      added_from.push_back(added.size());
      planfence::detail::zone::endpoint_records(added, *names[i], item.records->records(), stamp_text);
      owners.endpoints.emplace(*names[i], e);
    }
  }
  added_from.push_back(added.size());
  for (std::size_t e = 0; e < edits.size(); ++e) {
    edits[e].added = std::span<zone_record>(added).subspan(added_from[e], added_from[e + 1] - added_from[e]);
  }
  if (edits.empty() && marks == nullptr) return ok();
  // From here `base` and the snapshot's contents may be moved out (owned_snapshot: only once the
  // rewrite is decided, and only when nobody else holds the snapshot).
  const bool had_marks = (*loaded)->contents.marks.has_value();
  const bool base_sorted = (*loaded)->sorted;
  std::shared_ptr<zone_snapshot> owned;
  std::optional<detail::zonefile::zone_rewrite> chosen;
  // What a check of the zone as it is gives (kept from the rewrite that wrote it; else worked out
  // now, once per zone read): the rewrite is checked on what it changes (quick_loadable).
  const std::optional<planfence::detail::zone::loadability>& known = (*loaded)->checked;
  planfence::detail::zone::loadability checked = known ? *known : planfence::detail::zone::loadability_of(base, zone.name);
  if (!edits.empty()) {
    detail::zonefile::replaced_by(base, owners, edits);
    chosen = detail::zonefile::zone_to_write(
        base, owners, edits, zone.name, checked, state_->options.records_max,
        [&](const detail::zonefile::zone_edit& e, errc code, const std::string& why) { refused(e.item, code, why); },
        [&]() -> std::vector<zone_record>* {
          owned = owned_snapshot(*state_, zone, *loaded);
          return owned ? &owned->records : nullptr;
        });
  }
  // The finish, in the same rewrite, when every item of the batch is decided: those of the zones
  // before (others_ok) and this zone's, each stale or written by this rewrite (an edit refused
  // left an error). Else declined: the caller finishes on its own, after its retries.
  bool finish = false;
  if (marks != nullptr && marks->finish && marks->others_ok && item_errors.size() == errors_before &&
      marks->request->token >= floor) {
    finish = std::all_of(members.begin(), members.end(), [&](std::size_t i) {
      return items[i].outcome == commit_outcome::stale || items[i].outcome == commit_outcome::pending;
    });
    if (finish) {
      marks_next.begun = std::max(marks_next.begun, marks->request->target);
      marks_next.applied = std::max(marks_next.applied, marks->request->target);
    }
  }
  const bool marks_change = marks_next != marks_now;
  if (!chosen && !marks_change) {
    if (finish) {
      marks->request->finished = true;  // already there: nothing to write
      marks->request->marks = marks_now;
    }
    return ok();
  }
  // The records of the rewrite (the zone's kept records first, in their order, then the edits'),
  // and the decoded zone before it: moved out of the snapshot when this commit holds it alone.
  std::vector<zone_record> next;
  std::size_t kept = 0;
  zone_contents contents;
  if (chosen) {
    next = std::move(chosen->records);
    kept = chosen->kept;
    if (owned) {
      contents = std::move(owned->contents);
    } else {
      contents = (*loaded)->contents;  // a copy: the snapshot is shared
    }
  } else {
    std::size_t ignored = 0;
    take_or_copy(*state_, zone, *loaded, next, contents, ignored);
    kept = next.size();
  }
  // The edited endpoints as decode_zone reads them, from their items (written_endpoints): the
  // rest of the decoded zone is the old one (updated_contents). Should they not decode, write()
  // decodes the whole zone, which then fails the same way (nothing is cached).
  auto fresh = detail::zonefile::written_endpoints(edits, items, zone.name);
  std::size_t marks_removed = 0;
  if (marks_change) {
    marks_removed = detail::zonefile::set_marks(next, zone.name, marks_next);
    if (auto fits = check_zone_loadable(std::span<const zone_record>(&next.back(), 1), zone.name); !fits) {
      return fail(errc::invalid_plan, zone.file.string() + ": the apply marks: not written: " + fits.error().detail.str());
    }
    // The first marks in this home zone: a former home's are removed first (write_marks).
    if (!had_marks) {
      if (auto dropped = drop_stale_marks(*marks->zones, marks->home); !dropped) return unexpected_error(std::move(dropped).error());
    }
  }
  rewrite_hints hints;
  hints.sorted_prefix = base_sorted ? kept - marks_removed : 0;
  // Loadable when the edits were checked (a rewrite is chosen only if it passes) on a loadable
  // zone, or none were made on one. The marks record, a TXT at its own owner where a zone that
  // decodes has TXT only, keeps it so unless a DNAME is above it.
  if ((chosen || checked.loadable) && !(marks_change && checked.any_dname)) {
    checked.loadable = true;
    hints.checked = std::move(checked);
  }
  soa_fields soa = detail::zonefile::advance_serial(next);
  if (fresh) {
    const std::optional<apply_marks> marks_written = marks_next;
    hints.contents = detail::zonefile::updated_contents(std::move(contents), std::move(*fresh), std::move(soa),
                                                        marks_change ? &marks_written : nullptr);
  }
  // One rewrite for every item written: all of them are in the file, or none (the rename). A
  // failure leaves them pending, also when only the directory fsync failed (then the new file is
  // in place: reading again finds the stamps, and a retry reports stale).
  auto written = write(*state_, zone, std::move(next), std::move(hints));
  if (!written) return unexpected_error(std::move(written).error());
  for (const auto& e : edits) {
    if (!e.accepted) continue;
    items[e.item].outcome = commit_outcome::written;
    items[e.item].now = stamp{items[e.item].desired.gen, items[e.item].desired.fence, 0};
  }
  if (marks != nullptr) {
    marks->request->began = marks->request->began || marks->begin;
    marks->request->finished = finish;
    marks->request->marks = marks_next;
  }
  return ok();
}

inline result<void> zonefile_store::raise_fence(fence_token token) {
  const std::string raising = "raise_fence to " + std::to_string(token.value()) + ": ";
  if (token > fence_max) {
    return fail(errc::capacity_exceeded, raising + dns::fence_range_problem(std::to_string(token.value()), "token"));
  }
  // Every failure says what was raised before it: nothing, or planfence.floor (which already
  // refuses smaller tokens in every zone) and the zones listed.
  const std::filesystem::path floor_file = state_->directory / floor_file_name;
  auto failed = [&](const error& cause, bool floor_written, const std::vector<std::string>& done) {
    std::string detail = raising + "FAILED: " + cause.detail.str() + "; ";
    if (!floor_written) {
      detail += "the floor was not raised (this call wrote nothing)";
    } else {
      detail += floor_file.string() + " says floor=" + std::to_string(token.value()) +
                " (every commit with a smaller token is refused), but not every zone's floor record was written";
      if (!done.empty()) {
        detail += " (written:";
        for (const std::string& z : done) detail += " " + z;
        detail += ")";
      }
      detail += ": run raise_fence again";
    }
    return fail_at(cause.code, cause.line, cause.column, std::move(detail));  // the cause's code and position
  };
  auto directory_lock = detail::zonefile::lock_exclusive(state_->directory / directory_lock_name, state_->options.lock_timeout_ms);
  if (!directory_lock) return failed(directory_lock.error(), false, {});
  auto directory_floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!directory_floor) return failed(directory_floor.error(), false, {});
  const bool floor_written = *directory_floor >= token;
  if (!floor_written) {
    auto written = detail::zonefile::replace_file(floor_file, "floor=" + std::to_string(token.value()) + "\n");
    if (!written) return failed(written.error(), false, {});
    // Read back: success is reported only for what the file now says.
    auto check = detail::zonefile::read_directory_floor(state_->directory);
    if (!check) return failed(check.error(), true, {});
    if (*check < token) {
      const std::string read_back = floor_file.string() + ": reads back floor=" + std::to_string(check->value());
      return failed(error{errc::store_unavailable, 0, 0, read_back}, false, {});
    }
  }
  std::vector<zone_slot> zones;
  {
    std::lock_guard guard(state_->mutex);
    if (auto scanned = scan(*state_); !scanned) return failed(scanned.error(), true, {});
    zones = state_->zones;
  }
  std::vector<std::string> done;
  for (const zone_slot& zone : zones) {
    // Always take the lock, even when the zone's floor is high enough: waiting for it is what
    // waits out a commit that read the old floor and has not written yet.
    auto lock = detail::zonefile::lock_exclusive(zone.file.string() + std::string(lock_suffix), state_->options.lock_timeout_ms);
    if (!lock) return failed(lock.error(), true, done);
    auto loaded = load(*state_, zone, errc::store_unavailable);
    if (!loaded) return failed(loaded.error(), true, done);
    if ((*loaded)->contents.floor >= token) continue;  // (a legacy floor owner stays until a floor is written)
    std::vector<zone_record> records;
    zone_contents contents;
    rewrite_hints hints;
    take_or_copy(*state_, zone, *loaded, records, contents, hints.sorted_prefix);
    const std::size_t removed = detail::zonefile::set_floor(records, zone.name, token);
    if (hints.sorted_prefix != 0) hints.sorted_prefix -= removed;
    soa_fields soa = detail::zonefile::advance_serial(records);
    hints.contents = detail::zonefile::updated_contents(std::move(contents), {}, std::move(soa), nullptr, token);
    auto written = write(*state_, zone, std::move(records), std::move(hints));
    if (!written) return failed(written.error(), true, done);
    done.push_back(zone.name);
  }
  return ok();
}

inline result<std::vector<zonefile_store::zone_slot>> zonefile_store::current_zones(std::optional<std::size_t>& home) const {
  std::vector<zone_slot> zones;
  {
    std::lock_guard guard(state_->mutex);
    if (auto scanned = scan(*state_); !scanned) return fail(errc::store_unavailable, scanned.error().message());
    zones = state_->zones;
  }
  home.reset();
  if (zones.empty()) return zones;
  std::vector<std::string> names;
  names.reserve(zones.size());
  for (const zone_slot& z : zones) names.push_back(z.name);
  const std::string_view chosen = dns::home_zone(names);  // the one rule, shared with the RFC 2136 store
  for (std::size_t i = 0; i < zones.size(); ++i) {
    if (zones[i].name == chosen) home = i;
  }
  return zones;
}

inline result<std::vector<generation>> zonefile_store::live_once() const {
  std::optional<std::size_t> home;
  auto zones = current_zones(home);
  if (!zones) return unexpected_error(std::move(zones).error());
  std::vector<generation> out;
  if (!home) return out;
  // The home zone first: the marks are read before (or, for the home zone's own endpoints, with)
  // every stamp they map to an effective generation.
  std::vector<std::size_t> order{*home};
  for (std::size_t i = 0; i < zones->size(); ++i) {
    if (i != *home) order.push_back(i);
  }
  apply_marks marks{};
  for (std::size_t i : order) {
    const zone_slot& zone = (*zones)[i];
    auto loaded = load(*state_, zone, errc::store_unavailable);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    if (i == *home) marks = (*loaded)->contents.marks.value_or(apply_marks{});
    for (const zone_endpoint& e : (*loaded)->contents.endpoints) {
      if (e.stamped) out.push_back(effective_generation(e.stamped->gen, marks));
    }
  }
  // A and B themselves: the inputs of the next apply's diff (S3), also when no stamp carries them.
  if (marks.applied != generation_none) out.push_back(marks.applied);
  if (marks.begun != generation_none) out.push_back(marks.begun);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

inline result<std::string> zonefile_store::home_zone() const {
  std::optional<std::size_t> home;
  auto zones = current_zones(home);
  if (!zones) return unexpected_error(std::move(zones).error());
  if (!home) {
    return fail(errc::store_unavailable, state_->directory.string() + " holds no zone file, so no home zone for the apply marks");
  }
  return (*zones)[*home].name;
}

inline result<apply_marks> zonefile_store::read_marks() const {
  std::optional<std::size_t> home;
  auto zones = current_zones(home);
  if (!zones) return unexpected_error(std::move(zones).error());
  if (!home) return apply_marks{};  // no zone: nothing was ever applied here
  const zone_slot& zone = (*zones)[*home];
  // A home zone that does not decode (a malformed marks record, say) is not a passing failure:
  // parse_error, with the file, the line and the owner.
  auto loaded = load(*state_, zone, errc::parse_error);
  if (!loaded) return unexpected_error(std::move(loaded).error());
  return (*loaded)->contents.marks.value_or(apply_marks{});
}

inline result<void> zonefile_store::drop_stale_marks(const std::vector<zone_slot>& zones, std::size_t home) const {
  for (std::size_t i = 0; i < zones.size(); ++i) {
    if (i == home) continue;
    const zone_slot& zone = zones[i];
    auto lock = detail::zonefile::lock_exclusive(zone.file.string() + std::string(lock_suffix), state_->options.lock_timeout_ms);
    if (!lock) return unexpected_error(std::move(lock).error());
    auto loaded = load(*state_, zone, errc::store_unavailable);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    if (!(*loaded)->contents.marks) continue;
    const std::string owner = dns::marks_owner(zone.name);
    std::vector<zone_record> records;
    zone_contents contents;
    rewrite_hints hints;
    take_or_copy(*state_, zone, *loaded, records, contents, hints.sorted_prefix);
    const std::size_t removed = std::erase_if(records, [&](const zone_record& r) { return r.owner == owner; });
    if (hints.sorted_prefix != 0) hints.sorted_prefix -= removed;
    soa_fields soa = detail::zonefile::advance_serial(records);
    const std::optional<apply_marks> no_marks;
    hints.contents = detail::zonefile::updated_contents(std::move(contents), {}, std::move(soa), &no_marks);
    auto written = write(*state_, zone, std::move(records), std::move(hints));
    if (!written) {
      error e = std::move(written).error();
      return fail_at(e.code, e.line, e.column, "removing the former home zone's apply marks " + owner + ": " + e.detail.str());
    }
  }
  return ok();
}

inline result<apply_marks> zonefile_store::begin_apply(const apply_marks& expected, generation target, fence_token token) {
  PLANFENCE_ASSERT(target > expected.begun);
  return write_marks(&expected, target, token);
}

inline result<apply_marks> zonefile_store::finish_apply(generation target, fence_token token) {
  return write_marks(nullptr, target, token);
}

inline result<apply_marks> zonefile_store::write_marks(const apply_marks* expected, generation target, fence_token token) {
  const std::string what = std::string(expected != nullptr ? "begin_apply" : "finish_apply") + " of generation " +
                           std::to_string(target.value()) + " with fence token " + std::to_string(token.value());
  // The marks are read back range-checked: never write one that could not be read.
  if (target > generation_max) {
    return fail(errc::capacity_exceeded, what + ": " + dns::generation_range_problem(std::to_string(target.value())));
  }
  std::optional<std::size_t> home;
  auto zones = current_zones(home);
  if (!zones) return unexpected_error(std::move(zones).error());
  if (!home) {
    return fail(errc::store_unavailable, what + ": " + state_->directory.string() +
                                             " holds no zone file: the apply marks are kept in the home zone (the "
                                             "smallest zone name); create a zone first (nothing was written)");
  }
  const zone_slot& zone = (*zones)[*home];
  auto with_context = [&](const error& e) { return fail_at(e.code, e.line, e.column, what + ": " + e.detail.str()); };
  // The lock every commit to the home zone takes; under it, re-read what the decision depends on.
  auto lock = detail::zonefile::lock_exclusive(zone.file.string() + std::string(lock_suffix), state_->options.lock_timeout_ms);
  if (!lock) return with_context(lock.error());
  auto directory_floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!directory_floor) return with_context(directory_floor.error());
  auto loaded = load(*state_, zone, errc::parse_error);
  if (!loaded) return with_context(loaded.error());
  // The floor rule of commits: the larger of the zone's floor record and planfence.floor, which
  // raise_fence writes first.
  const fence_token floor = std::max((*loaded)->contents.floor, *directory_floor);
  if (token < floor) {
    return fail(errc::fenced, zone.file.string() + ": " + what + " is refused, nothing was written: the fence floor is " +
                                  std::to_string(floor.value()) + " (a newer lease holder raised it)");
  }
  const std::string owner = dns::marks_owner(zone.name);
  const apply_marks now = (*loaded)->contents.marks.value_or(apply_marks{});
  apply_marks next = now;
  if (expected != nullptr) {
    if (now.begun != expected->begun || now.applied != expected->applied) {
      return fail(errc::conflict, zone.file.string() + ": " + what + ": the apply marks at " + owner + " are \"" +
                                      dns::format_marks(now) + "\", not the expected \"" + dns::format_marks(*expected) +
                                      "\": read them again (nothing was written)");
    }
    next.begun = target;
  } else {
    next.begun = std::max(now.begun, target);
    next.applied = std::max(now.applied, target);
    if (next == now) return now;  // idempotent: no rewrite
  }
  // As the floor record, the marks record is added without checking the rest of the zone (an
  // unrelated problem there must not block the marks); only its own owner and TTL are checked.
  // The marks record alone is checked first: nothing is taken from the snapshot when it is refused.
  {
    const std::vector<zone_record> alone{zone_record{owner, 0, "TXT", planfence::detail::format_txt({dns::format_marks(next)}), {}, 0}};
    if (auto fits = check_zone_loadable(alone, zone.name); !fits) {
      return fail(errc::invalid_plan, zone.file.string() + ": " + what + ": not written: " + fits.error().detail.str());
    }
  }
  const bool had_marks = (*loaded)->contents.marks.has_value();
  std::vector<zone_record> records;
  zone_contents contents;
  rewrite_hints hints;
  take_or_copy(*state_, zone, *loaded, records, contents, hints.sorted_prefix);
  const std::size_t removed = detail::zonefile::set_marks(records, zone.name, next);
  if (hints.sorted_prefix != 0) hints.sorted_prefix -= removed;
  if (!had_marks) {
    // The first marks in this home zone: the first apply, or the first since the zone set moved
    // the home zone here. A former home zone still holds its marks, whose begun generation is
    // below what applies stamp from now on; should the home zone move back, they would be read as
    // current and a diff from them would skip endpoints written since. Removed first, so that a
    // crash in between leaves no marks anywhere (read as never written: safe).
    if (auto dropped = drop_stale_marks(*zones, *home); !dropped) return with_context(dropped.error());
  }
  soa_fields soa = detail::zonefile::advance_serial(records);
  const std::optional<apply_marks> marks_written = next;
  hints.contents = detail::zonefile::updated_contents(std::move(contents), {}, std::move(soa), &marks_written);
  // One rewrite: temp file, fsync, rename, directory fsync. A failure of the last step only
  // leaves the new marks in place: reading them again tells (begin_apply then reports conflict).
  auto written = write(*state_, zone, std::move(records), std::move(hints));
  if (!written) return with_context(written.error());
  return next;
}

inline result<std::vector<generation>> zonefile_store::live_generations() const {
  // A zone being replaced is renamed into place, so a read never sees half a file; a failure is
  // retried twice in case it was a passing one (a file removed and written back by hand).
  for (int attempt = 0;; ++attempt) {
    auto live = live_once();
    if (live || attempt == 2) return live;
    std::this_thread::sleep_for(std::chrono::milliseconds(10 << attempt));
  }
}

inline result<void> zonefile_store::inspect(std::span<const endpoint_handle> handles,
                                            std::span<endpoint_state> out) const {
  PLANFENCE_ASSERT(handles.size() == out.size());
  return read_endpoints(handles, [&](std::size_t i, const zone_endpoint* found, const stamp& st) {
    out[i].st = st;
    out[i].records = found == nullptr ? std::vector<record>{} : found->records;
  });
}

inline result<std::vector<record>> zonefile_store::served(endpoint_handle h) const {
  zone_slot zone;
  auto e = slot(h, zone);
  if (!e) return unexpected_error(std::move(e).error());
  auto loaded = load(*state_, zone, errc::store_unavailable);
  if (!loaded) return unexpected_error(std::move(loaded).error());
  const zone_endpoint* found = detail::zonefile::find_endpoint((*loaded)->contents, e->name);
  if (found == nullptr) return std::vector<record>{};
  return found->records;
}

inline result<std::vector<std::string>> zonefile_store::endpoint_names() const {
  std::vector<zone_slot> zones;
  {
    std::lock_guard guard(state_->mutex);
    if (auto scanned = scan(*state_); !scanned) return fail(errc::store_unavailable, scanned.error().message());
    zones = state_->zones;
  }
  std::sort(zones.begin(), zones.end(), [](const zone_slot& x, const zone_slot& y) { return x.name < y.name; });
  std::vector<std::string> out;
  for (const zone_slot& zone : zones) {
    auto loaded = load(*state_, zone, errc::store_unavailable);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    std::vector<std::string> name_servers;
    for (const zone_record& r : (*loaded)->records) {
      if (r.type == "NS") name_servers.push_back(r.rdata);
    }
    for (const zone_endpoint& e : (*loaded)->contents.endpoints) {
      if (e.records.empty() && !e.stamped) continue;
      // Glue (the address of one of the zone's name servers) is the zone's own data, not an
      // endpoint, unless planfence wrote it (then it has a stamp).
      if (!e.stamped && std::find(name_servers.begin(), name_servers.end(), e.name) != name_servers.end()) continue;
      // A name inside a more specific zone of the directory belongs to that zone.
      const bool deeper = std::any_of(zones.begin(), zones.end(), [&](const zone_slot& z) {
        return z.name.size() > zone.name.size() && planfence::detail::zone::inside(z.name, zone.name) &&
               planfence::detail::zone::inside(e.name, z.name);
      });
      if (!deeper) out.push_back(e.name);
    }
  }
  return out;
}

inline result<fence_token> zonefile_store::fence_floor() const {
  auto floor = detail::zonefile::read_directory_floor(state_->directory);
  if (!floor) return floor;
  std::vector<zone_slot> zones;
  {
    std::lock_guard guard(state_->mutex);
    zones = state_->zones;
  }
  fence_token out = *floor;
  for (const zone_slot& zone : zones) {
    auto loaded = load(*state_, zone, errc::store_unavailable);
    if (!loaded) return unexpected_error(std::move(loaded).error());
    out = std::max(out, (*loaded)->contents.floor);
  }
  return out;
}

static_assert(record_store<zonefile_store>);
static_assert(inspectable_store<zonefile_store>);
static_assert(batched_store<zonefile_store>);
static_assert(batch_inspectable_store<zonefile_store>);
static_assert(change_following_store<zonefile_store>);
static_assert(marks_batch_store<zonefile_store>);

}  // namespace v1
}  // namespace planfence
