// planfence/rfc2136/store.hpp: a record store on an authoritative DNS server, written
// with RFC 2136 UPDATE messages signed with TSIG (RFC 8945), compare-and-swap by prerequisite.
//
// What it is. The store for control planes that drive a real DNS server (Knot, BIND, PowerDNS):
// endpoints are names in one zone of the primary; their records are the server's A, AAAA, CNAME
// and TXT RRsets. planfence's own records are those of dns/zone_layout.hpp, the layout the
// zone-file store writes too (docs/zone-layout.md), so a zone file written by that store can be
// loaded into the server and continued here: each endpoint's stamp is the TXT RRset
// `_planfence.<endpoint>` holding one string "gen=G fence=F"; its weights the TXT RRset
// `_weight._planfence.<endpoint>`, one "TYPE rdata W" per weighted record; the store's fence
// floor the TXT RRset `_fence._planfence.<zone>` holding "floor=F" (absent: no floor). The legacy
// floor owner `_planfence-floor.<zone>` (where this store kept the floor before) is read too: the
// floor in effect is the larger of the two, and raise_fence removes the legacy owner in the
// UPDATE that writes the canonical one. A commit is ONE UPDATE message whose prerequisites are
// the exact stamp read (a value-dependent "RRset exists" on the TXT rdata, or "RRset does not
// exist" for a first commit) and both floor owners exactly as read, and whose updates delete the
// endpoint's RRsets, add its new records, replace its weights and its stamp. The server checks the prerequisites and
// applies the updates as one atomic step (RFC 2136 section 3.2 and 3.4): that is the
// compare-and-swap. docs/rfc2136.md gives the exact messages.
//
//   auto store = planfence::rfc2136_store::open_uri(
//       "rfc2136://192.0.2.53:53/example.test.?tsig-file=/etc/planfence/key",
//       {"www.example.test.", "db.example.test."}).value();
//   auto www = store.resolve("www.example.test.").value();
//   auto seen = store.read_stamp(www).value();                     // one signed TXT query
//   auto applied = store.commit(www, seen, {gen, fence}, records); // one signed UPDATE
//
// Outcomes of commit (docs/concepts.md): success; errc::stale, errc::fenced, errc::conflict
// (decided from the expected stamp and, when the server's prerequisite fails, from the stamp and
// floor read again right after); errc::store_unavailable (no answer in time, SERVFAIL, a
// malformed answer: nothing was written, or the commit landed and a retry sees it as stale);
// errc::authentication_failed (the server refused our TSIG key, REFUSED or NOTAUTH, or its
// answer was unsigned or badly signed); errc::not_authoritative (the server does not serve the
// zone: told apart from a key problem by one unsigned SOA query, used only for the message);
// errc::parse_error (a stamp or floor on the server that is malformed or outside generation
// 1..2^40-1, fence 0..2^24-1: never taken as a value); errc::capacity_exceeded (the message would
// exceed 64 KiB, records DNS cannot hold: several CNAMEs, or a stamp out of those ranges);
// errc::invalid_rdata. Every error names the request, the RCODE and the TSIG error the server
// answered, and what the operator can do (docs/rfc2136.md, "Errors").
//
// raise_fence(token) replaces the floor RRset by "floor=token" (and deletes the legacy one) with
// prerequisites on both floors as read, so it never lowers it. Every commit pins the floor it believes in, so a commit
// whose UPDATE reaches the server after the raise fails its prerequisite and is then refused as
// fenced: no commit with a smaller token lands after raise_fence returns (S2), including one
// already in flight. Endpoint stamps are never touched by raise_fence.
//
// Batches (batched_store, store.hpp): commit_batch decides each item by its own condition, as
// commit would. Items the expected stamps and the known floor refuse are decided without sending;
// the others are split, in order, into UPDATEs of at most 65,535 octets with TSIG (and at most
// rfc2136_options::update_endpoints_max endpoints when set), each with the floor pinned once and
// one stamp prerequisite per endpoint ("RRset does not exist" for one never written). A message
// the server applies makes its endpoints `written`. A message it refuses (NXRRSET, YXRRSET:
// nothing of it applied) is followed by a read of the floor and of that message's stamps; the
// refused endpoints are marked stale, fenced or conflict as commit decides, and the rest sent
// again in a new message (at most unit_rounds_max per unit; then `conflict`). One endpoint too
// large for any message is errc::capacity_exceeded naming it, and nothing is sent. read_stamps
// pipelines its TXT queries on one TCP connection (queries_in_flight_max unanswered), each
// answer verified and range-checked as read_stamp's, falling back to read_stamp for any it cannot
// use. The server must enforce prerequisites (RFC 2136 section 3.2): Knot, BIND and PowerDNS do,
// as the tests show; one that ignored them would lose S1 silently (docs/rfc2136.md).
//
// Apply marks (change_following_store, store.hpp): the marks "begun=B applied=A" are the TXT
// RRset `_apply._planfence.<zone>` (dns::marks_owner of the home zone; this store has one zone,
// its home). read_marks is one query. begin_apply is ONE UPDATE whose prerequisites are both
// floor owners as last read (as a commit pins them) and the marks exactly as expected
// (value-dependent "RRset exists", or "RRset does not exist" for marks never written), and whose
// updates replace the marks RRset: the server refuses it when another write of the marks or a
// raise_fence landed first, so neither write lands once raise_fence(bigger) has returned. After a
// refusal the floor and the marks are read again: fenced when the floor is above the token,
// conflict when the marks moved. finish_apply reads the marks and sends the same conditional
// UPDATE with max(A, target), max(B, target), again when the marks moved (at most
// marks_retries_max), and nothing when they already say so. live_generations reads the marks,
// then the stamps, and gives effective_generation(stamp, marks) for each endpoint, plus A and B.
// The marks owner has a `_planfence` label, so it can never be an endpoint (open refuses it).
// commit_batch(items, marks) (marks_batch_store) folds the marks into the batch's messages: the
// begin into the first UPDATE, the finish into the last, each as the same marks prerequisite and
// replacement (room for them kept in every message of such a batch), so that a batch that fits
// one message takes the marks from expected to {target, target} with its items in ONE UPDATE.
// After a refusal of a message with the begin, the floor and the marks are read with the stamps:
// fenced or conflict refuse the begin (nothing written, every item pending), unless the marks are
// exactly what the message writes (a lost answer: landed, began, even when another writer changed
// some of its endpoints before the resend: those are decided as a refused unit's); else the
// items are decided as a refused unit's and the rest sent again with the begin. With no message
// to carry it, the begin is begin_apply's own UPDATE. The finish goes only when every item before
// the last message is written or stale (its prerequisite: the marks as known, one read_marks when
// the batch has no begin); a refused message is sent again without it (declined), unless it also
// carries the begin and the marks are as expected and only stale items were refused, or it
// landed (every stamp and the marks read back as it writes them: a lost answer, finished).
//
// Costs (loopback: bench/rfc2136_bench.cpp, docs/rfc2136.md): read_stamp is one UDP round trip;
// read_stamps of n about one TCP round trip plus the server's time per query; commit one TCP
// round trip on a pooled connection, plus one read of the stamp and the two floor owners when the
// prerequisite fails; commit_batch one round trip per message (about 100 endpoints of two A
// records each fit one), plus, per refused message, two floor queries, one pipelined read of its
// stamps and a new message; served() five queries (four types and the weights); read_floor two;
// begin_apply one UPDATE (plus, when refused, three queries and perhaps another UPDATE);
// finish_apply one query and one UPDATE (or one query and two floor queries when nothing changes);
// commit_batch with the marks as many UPDATEs as commit_batch (the enactor's plan that changes a
// few endpoints: one, where begin_apply, the batch and finish_apply were three), plus one marks
// query per refused message with the begin, and one before the last message for a finish alone
// (and one more when a message with the finish alone is refused with every stamp ours: a lost
// answer). Each message costs two HMAC-SHA256 (a few microseconds).
// Blocking: every operation does network I/O, bounded by the per-attempt timeout times the
// attempts. Allocates. Not for resolvers: they ask the DNS server.
//
// Thread safety: every member but the move operations may be called concurrently (connections
// are pooled under a mutex; no other shared mutable state but atomics).
//
// Limits: one zone per store; endpoints are the names given at open (endpoint_names() lists
// them; the store does not discover others), at most 235 characters (room for the weight owner)
// and without labels beginning with `_planfence`; DNS serves records without their weights (the
// weights are kept beside, and served() puts them back); at most one CNAME per endpoint (the
// zone-file store keeps several weighted CNAMEs in its weights; this store refuses them); no EDNS, so
// UDP answers are at most 512 octets and larger ones are fetched again over TCP; no IPv6 scope
// ids; only hmac-sha256.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "transport.hpp"
#include "wire.hpp"
#include "../detail/socket.hpp"
#include "tsig.hpp"
#include "../detail/uri.hpp"
#include "../dns/zone_layout.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../lease.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"

namespace planfence {
inline namespace v1 {

/// How to reach the primary and what to sign with.
struct rfc2136_options {
  std::string host;                 ///< IPv4 or IPv6 literal (a name is resolved once, at open)
  std::uint16_t port = 53;
  std::string zone;                 ///< the zone the endpoints are in, e.g. "example.test."
  std::optional<detail::tsig_key> key{};  ///< sign every request and verify every answer
  std::chrono::milliseconds timeout{2000};  ///< per attempt
  unsigned attempts = 3;            ///< per request (UDP retries, TCP reconnects)
  std::uint32_t ttl_stamp = 0;      ///< TTL of the stamp and floor TXT records (0: not cached)
  bool udp_queries = true;          ///< queries over UDP first (TCP on truncation); else TCP only
  /// At most this many endpoints in one UPDATE of commit_batch (0: as many as fit 65,535 octets).
  std::size_t update_endpoints_max = 0;
  std::uint16_t tsig_fudge_seconds = detail::tsig_fudge_default_seconds;
  /// BROKEN ON PURPOSE, for tests only: send UPDATEs without prerequisites, as the popular
  /// RFC 2136 tools do (the 2025 time-of-check to time-of-use hole). The race test sets it to
  /// show that it would catch the store losing its compare-and-swap. Never set it otherwise.
  bool broken_omit_prerequisites = false;
};

/// The RFC 2136 store. See the header comment.
class rfc2136_store {
 public:
  static constexpr std::size_t endpoints_max = std::size_t{1} << 20;
  static constexpr unsigned attempts_max = 10;
  static constexpr unsigned floor_retries_max = 4;  // commits retried when only the floor moved
  static constexpr std::size_t connections_idle_max = 8;
  static constexpr unsigned unit_rounds_max = 16;            // messages per unit of a batch
  static constexpr std::size_t queries_in_flight_max = 64;   // pipelined stamp reads unanswered

  /// A store over `endpoints` (names in `options.zone`). Reads the fence floor once (both owners).
  /// Errors: errc::invalid_name (a name outside the zone, too long for its weight owner, or reserved),
  /// errc::invalid_plan (a name given twice), errc::io_error (host), and whatever reading the
  /// floor reports (errc::store_unavailable, errc::authentication_failed, errc::not_authoritative,
  /// errc::parse_error for a malformed or out-of-range floor).
  [[nodiscard]] static result<rfc2136_store> open(rfc2136_options options, const std::vector<std::string>& endpoints) {
    if (options.attempts == 0 || options.attempts > attempts_max) {
      return fail(errc::capacity_exceeded, "attempts must be 1 to 10");
    }
    if (endpoints.size() > endpoints_max) return fail(errc::capacity_exceeded, "more than 2^20 endpoints");
    auto zone = canonical_name(options.zone);
    if (!zone) return fail(errc::invalid_name, "zone '" + options.zone + "': " + zone.error().detail);
    options.zone = *zone;
    auto address = detail::resolve_address(options.host, options.port);
    if (!address) return unexpected_error(address.error());
    auto shared = std::make_unique<state>();
    shared->options = std::move(options);
    shared->server = std::move(*address);
    shared->floor_name = dns::floor_owner(shared->options.zone);
    shared->legacy_floor_name = dns::legacy_floor_owner(shared->options.zone);
    // The home zone of the apply marks (dns/zone_layout.hpp): of this store's one zone, that zone.
    shared->marks_name = dns::marks_owner(dns::home_zone(std::span<const std::string>(&shared->options.zone, 1)));
    if (shared->floor_name.size() > name_text_length_max + 1 || shared->legacy_floor_name.size() > name_text_length_max + 1 ||
        shared->marks_name.size() > name_text_length_max + 1) {
      return fail(errc::invalid_name, "zone name too long for the floor record " + shared->floor_name);
    }
    shared->names.reserve(endpoints.size());
    for (const std::string& raw : endpoints) {
      auto name = canonical_name(raw);
      if (!name) return fail(errc::invalid_name, "endpoint '" + raw + "': " + name.error().detail);
      if (!in_zone(*name, shared->options.zone)) {
        return fail(errc::invalid_name, "endpoint " + *name + " is not in zone " + shared->options.zone);
      }
      if (std::string why = dns::endpoint_name_problem(*name); !why.empty()) return fail(errc::invalid_name, std::move(why));
      const auto index = static_cast<std::uint32_t>(shared->names.size());
      if (!shared->index.emplace(*name, index).second) return fail(errc::invalid_plan, "endpoint " + *name + " given twice");
      shared->names.push_back(*name);
    }
    rfc2136_store out(std::move(shared));
    if (auto floor = out.read_floor(); !floor) return unexpected_error(floor.error());
    return out;
  }

  /// A store from `rfc2136://HOST[:PORT]/ZONE[?PARAMETERS]` (docs/rfc2136.md), parameters:
  ///   tsig=hmac-sha256:KEYNAME:BASE64SECRET   the key inline (visible in process lists)
  ///   tsig-file=PATH                          a file holding ALGORITHM:KEYNAME:BASE64SECRET
  ///                                           (owner-only, regular, small: read_key_file)
  ///   tsig-env=VARIABLE                       an environment variable holding the same
  ///   timeout-ms=N, attempts=N, tcp=1         per-attempt timeout, attempts, TCP-only queries
  /// Errors: errc::parse_error with what is wrong, then whatever open() reports.
  [[nodiscard]] static result<rfc2136_store> open_uri(std::string_view uri, const std::vector<std::string>& endpoints = {}) {
    auto options = parse_uri(uri);
    if (!options) return unexpected_error(options.error());
    return open(std::move(*options), endpoints);
  }

  /// The options a URI stands for (open_uri without connecting). Errors (errc::parse_error) name
  /// the URI through detail::redact_uri and never quote a query value, an unknown parameter's
  /// name (a misspelt `tsig` may carry the secret) or a key file's content.
  [[nodiscard]] static result<rfc2136_options> parse_uri(std::string_view uri) {
    auto bad = [&](std::string why) {
      return fail(errc::parse_error, "rfc2136 URI '" + detail::redact_uri(uri) + "': " + std::move(why));
    };
    constexpr std::string_view scheme = "rfc2136://";
    if (!uri.starts_with(scheme)) return bad("must start with rfc2136://");
    std::string_view rest = uri.substr(scheme.size());
    if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
      return bad("a fragment ('#...') is not allowed (a '#' in a value must be written %23)");
    }
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return bad("missing /ZONE after the host");
    const std::string_view authority = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
    std::string_view query;
    if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    rfc2136_options options;
    if (auto why = parse_authority(authority, options)) return bad(std::move(*why));
    auto zone = percent_decode(rest);
    if (!zone || zone->empty()) return bad("missing or badly escaped zone");
    options.zone = *zone;
    int key_sources = 0;
    for (unsigned position = 1; !query.empty(); ++position) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      if (auto why = parse_parameter(pair, position, options, key_sources)) return bad(std::move(*why));
    }
    return options;
  }

 private:
  /// HOST[:PORT] of an rfc2136 URI into `options`; what is wrong, or nothing.
  [[nodiscard]] static std::optional<std::string> parse_authority(std::string_view authority, rfc2136_options& options) {
    if (authority.find('@') != std::string_view::npos) {
      return "a user name or password before '@' is not supported: give the TSIG key with tsig-file=PATH";
    }
    if (authority.starts_with('[')) {
      const std::size_t close = authority.find(']');
      if (close == std::string_view::npos) return "unclosed [ in the host";
      options.host = std::string(authority.substr(1, close - 1));
      authority = authority.substr(close + 1);
      if (!authority.empty() && authority.front() != ':') return "expected :PORT after ]";
      if (!authority.empty()) authority.remove_prefix(1);
      if (!authority.empty() && !parse_port(authority, options.port)) return "bad port (1 to 65535)";
    } else {
      const std::size_t colon = authority.rfind(':');
      if (colon != std::string_view::npos && authority.find(':') != colon) return unbracketed_ipv6(authority, colon);
      options.host = std::string(authority.substr(0, colon));
      if (colon != std::string_view::npos && !parse_port(authority.substr(colon + 1), options.port)) {
        return "bad port (1 to 65535)";
      }
    }
    if (options.host.empty()) return "missing host";
    return std::nullopt;
  }

  /// Several colons: an IPv6 address, which is ambiguous with a port unless bracketed (RFC 3986
  /// section 3.2.2). "::1:15397" could be [::1]:15397 or the address ::1:15397: say both.
  [[nodiscard]] static std::string unbracketed_ipv6(std::string_view authority, std::size_t colon) {
    const std::string address(authority.substr(0, colon));
    const std::string port(authority.substr(colon + 1));
    const std::string whole(authority);
    std::uint16_t ignored = 0;
    const bool split = parse_port(port, ignored) && is_ipv6(address);
    std::string why = "an IPv6 address must be in brackets: write ";
    if (split) why += "[" + address + "]:" + port + " for port " + port;
    if (split && is_ipv6(whole)) why += ", or ";
    if (is_ipv6(whole)) why += "[" + whole + "] for that address on port 53 ([" + whole + "]:PORT for another)";
    if (!split && !is_ipv6(whole)) why += "[ADDRESS]:PORT";
    return why;
  }

  /// One NAME=VALUE of the query into `options`; what is wrong, or nothing. The pair itself is
  /// never quoted: it may be a secret typed in the wrong place.
  [[nodiscard]] static std::optional<std::string> parse_parameter(std::string_view pair, unsigned position,
                                                                  rfc2136_options& options, int& key_sources) {
    const std::string where = "query parameter " + std::to_string(position);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return where + " has no '=' (expected NAME=VALUE; not shown)";
    const std::string_view name = pair.substr(0, eq);
    static constexpr std::array<std::string_view, 6> known = {"tsig", "tsig-file", "tsig-env",
                                                              "timeout-ms", "attempts", "tcp"};
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return where + " has a name planfence does not know (not shown: a misspelt name may come with a "
                     "secret); known: tsig, tsig-file, tsig-env, timeout-ms, attempts, tcp";
    }
    auto value = percent_decode(pair.substr(eq + 1));
    if (!value) return "badly escaped value of " + std::string(name) + " (a % must be followed by two hex digits)";
    if (name == "timeout-ms") {
      unsigned ms = 0;
      if (!parse_unsigned(*value, ms) || ms == 0 || ms > 600'000) return "timeout-ms must be 1 to 600000";
      options.timeout = std::chrono::milliseconds(ms);
      return std::nullopt;
    }
    if (name == "attempts") {
      if (!parse_unsigned(*value, options.attempts) || options.attempts == 0 || options.attempts > attempts_max) {
        return "attempts must be 1 to 10";
      }
      return std::nullopt;
    }
    if (name == "tcp") {
      if (*value != "0" && *value != "1" && *value != "true" && *value != "false") return "tcp must be 0 or 1";
      options.udp_queries = *value != "1" && *value != "true";
      return std::nullopt;
    }
    auto spec = key_spec(name, *value);
    if (!spec) return spec.error().detail;
    if (++key_sources > 1) return "give the key once (tsig, tsig-file or tsig-env)";
    while (!spec->empty() && (spec->back() == '\n' || spec->back() == '\r' || spec->back() == ' ')) spec->pop_back();
    auto key = detail::parse_tsig_key(*spec);
    if (!key) {
      std::string from = std::string(name);
      if (name == "tsig-file") from += " " + *value;
      return from + ": " + key.error().detail;
    }
    options.key = std::move(*key);
    return std::nullopt;
  }

  /// The ALGORITHM:KEYNAME:SECRET text a tsig, tsig-file or tsig-env parameter gives. Errors
  /// (errc::parse_error) whose detail is the reason, without the secret.
  [[nodiscard]] static result<std::string> key_spec(std::string_view name, const std::string& value) {
    if (name == "tsig") return value;
    if (name == "tsig-file") return read_key_file(value);
    // tsig-env. Quote the variable's name only when it looks like one: the key itself is often
    // pasted here by mistake.
    const bool shown = !value.empty() && value.size() <= 64 && std::all_of(value.begin(), value.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    const std::string variable = shown ? "environment variable " + value : "the environment variable (name not shown)";
    if (value.find(':') != std::string::npos) {
      return fail(errc::parse_error, "tsig-env takes the NAME of an environment variable holding "
                                     "ALGORITHM:NAME:BASE64SECRET, not the key itself");
    }
    const char* text = std::getenv(value.c_str());
    if (text == nullptr) return fail(errc::parse_error, variable + " (tsig-env) is not set");
    return std::string(text);
  }

 public:
  /// The largest key file read_key_file accepts: ALGORITHM:NAME:SECRET is at most about 1 KiB.
  static constexpr std::size_t key_file_size_max = 4096;

  /// The first line of the key file at `path`, which must be a regular file (a FIFO or a device
  /// is refused, never waited on: it is opened with O_NONBLOCK, then checked with fstat) of at
  /// most key_file_size_max octets, readable by its owner only: the secret signs updates to the
  /// zone, so a file the group or others may read (or write) is refused (chmod 600). Errors
  /// (errc::io_error, errc::parse_error) name the file, never its content.
  [[nodiscard]] static result<std::string> read_key_file(const std::string& path) {
    const std::string named = "tsig-file " + path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      const int e = errno;
      return fail(errc::io_error, "cannot open " + named + ": " + std::strerror(e));
    }
    detail::unique_fd file(fd);
    struct ::stat info {};
    if (::fstat(fd, &info) != 0) {
      const int e = errno;
      return fail(errc::io_error, "cannot stat " + named + ": " + std::strerror(e));
    }
    if (!S_ISREG(info.st_mode)) {
      return fail(errc::io_error, named + " is not a regular file (a FIFO, device or directory is refused)");
    }
    if ((info.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
      return fail(errc::io_error, named + " has mode " + mode +
                                      ": its group or others may use it, and the secret in it signs updates to the "
                                      "zone; make it readable by its owner only (chmod 600 " + path + ")");
    }
    if (info.st_size < 0 || static_cast<std::uintmax_t>(info.st_size) > key_file_size_max) {
      return fail(errc::io_error, named + " is larger than " + std::to_string(key_file_size_max) +
                                      " octets: not a key file of the form ALGORITHM:NAME:BASE64SECRET");
    }
    std::string text(key_file_size_max + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
      const ::ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        return fail(errc::io_error, "cannot read " + named + ": " + std::strerror(e));
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got > key_file_size_max) {
      return fail(errc::io_error, named + " grew beyond " + std::to_string(key_file_size_max) + " octets");
    }
    text.resize(got);
    if (const std::size_t newline = text.find('\n'); newline != std::string::npos) text.resize(newline);
    if (text.empty()) {
      return fail(errc::parse_error, named + " is empty (expected ALGORITHM:NAME:BASE64SECRET on its first line)");
    }
    return text;
  }

  rfc2136_store(rfc2136_store&&) noexcept = default;
  rfc2136_store& operator=(rfc2136_store&&) noexcept = default;

  /// The handle of a canonical endpoint name. O(1) expected, allocates nothing but the hash.
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const {
    const auto it = state_->index.find(std::string(name));
    if (it == state_->index.end()) return fail(errc::unknown_endpoint);
    return endpoint_handle{it->second};
  }

  /// The endpoint's stamp, queried from the primary now (one signed TXT query). Errors:
  /// errc::store_unavailable, errc::authentication_failed, errc::not_authoritative,
  /// errc::parse_error (a malformed or out-of-range stamp, naming the record and the value).
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    auto answer = query(stamp_name(h), detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    return parse_stamp(*answer, stamp_name(h));
  }

  /// One UPDATE: if the endpoint's stamp is still `expected` (and the floor is what this store
  /// last read), serve `records` and carry `desired`: commit_batch with one item. See the header
  /// comment for outcomes; a refusal names the endpoint, what the server answered and the stamp
  /// and floor read back.
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records) {
    commit_item item{h, expected, desired, &records};
    refusal_note note;
    if (auto done = commit_items(std::span<commit_item>(&item, 1), note); !done) return unexpected_error(done.error());
    if (item.outcome == commit_outcome::written) return item.now;
    return refusal_error(item, note);
  }

  /// Each item committed under its own condition, exactly as `commit` would decide it
  /// (batched_store, store.hpp). Items the expected stamps and the floor already refuse are
  /// decided without sending anything; the others go in UPDATE messages of at most 65,535
  /// octets with TSIG (update_endpoints_max endpoints at most, when set), in the order given.
  /// When the server refuses a message (NXRRSET, YXRRSET), the floor and the stamps of that
  /// message's endpoints are read again (one pipelined read), the refused items marked stale,
  /// fenced or conflict, and the rest sent again in a new message (at most unit_rounds_max
  /// messages per unit; items still undecided then are `conflict`). Errors, with the items not
  /// yet decided left `pending`: errc::capacity_exceeded naming the item (a stamp out of range,
  /// several CNAMEs, or one endpoint's update larger than a message: then nothing is sent), and
  /// whatever a transport or the server reports (store_unavailable, authentication_failed, ...).
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) {
    refusal_note note;
    return commit_items(items, note);
  }

  /// commit_batch with the apply marks (marks_batch_store, store.hpp; header comment "Apply
  /// marks"): exactly begin_apply(*marks.begin, target, token) (if asked), commit_batch(items),
  /// then finish_apply(target, token) (if asked and every item came out written or stale), except
  /// that the begin goes in the first UPDATE of the batch and the finish in its last: a batch
  /// that fits one message, with both, is ONE UPDATE, which moves the marks from *marks.begin
  /// straight to {target, target} with its items. Each message that carries the marks has the
  /// marks prerequisite (as begin_apply's) besides the floor and the stamps, and room kept for
  /// them. A begin refused (fenced: the floor above the token; conflict: the marks moved) writes
  /// nothing: the error is returned with begin_refused set and every item `pending`. When no
  /// message goes out with the begin (every item decided without sending, or refused), the begin
  /// is begin_apply's own UPDATE. The finish goes only when every item decided before the last
  /// message is written or stale; its prerequisite is the marks as this call knows them (one
  /// read_marks before the last message when the batch has no begin); when the marks already say
  /// so, nothing is written for it. A message with the finish that the server refuses is sent
  /// again without it (declined: finished stays false, the caller finishes), unless it carries
  /// the begin too and the marks are still as expected and the items it refused are stale.
  /// A refused message whose marks read back exactly as it writes them landed (an attempt whose
  /// answer was lost, or an earlier call's): began (and finished, when it carried the finish and
  /// none of its items is refused but as stale), never begin_refused (docs/rfc2136.md, "A lost
  /// answer"). Errors as commit_batch and begin_apply.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items, batch_marks& marks) {
    PLANFENCE_ASSERT(marks.begin == nullptr || marks.target > marks.begin->begun);
    marks.began = marks.begin_refused = marks.finished = false;
    if (marks.begin == nullptr && !marks.finish) return commit_batch(items);
    PLANFENCE_ASSERT(marks.target != generation_none);
    if (marks.target > generation_max) {
      if (marks.begin != nullptr) return fail(errc::capacity_exceeded, marks_range_problem("begin_apply", marks.target));
      return commit_batch(items);  // the finish declined: finish_apply says why
    }
    std::string what = "begin_apply of generation ";
    what += std::to_string(marks.target.value());
    what += " (with the batch)";
    // A begin below the floor this store knows: refused before anything is sent, as begin_apply.
    if (const std::uint64_t floor = cached_floor().effective(); marks.begin != nullptr && floor > marks.token.value()) {
      return refuse_batch_begin(items, marks, marks_fenced(what, marks.token, floor, false).error());
    }
    std::vector<encoded_item> encoded(items.size());
    auto units = decide_and_plan(items, encoded, /*marks_room=*/true);
    if (!units) return unexpected_error(units.error());
    refusal_note note;
    for (std::size_t u = 0; u < units->size(); ++u) {
      unit_marks carried{};
      carried.target = marks.target;
      carried.token = marks.token;
      carried.what = what;
      if (u == 0 && marks.begin != nullptr) {
        carried.begin = true;
        carried.expected = *marks.begin;
      }
      // The finish with the last message, when every item decided so far is written or stale.
      std::optional<apply_marks> finished_already;
      if (u + 1 == units->size() && marks.finish && batch_settled(items)) {
        std::optional<apply_marks> known;
        if (marks.began) {
          known = marks.marks;
        } else if (carried.begin) {
          known = *marks.begin;
        } else if (auto read = read_marks()) {
          known = *read;
        }  // else declined: finish_apply meets the error
        if (known && marks_exist(*known) && known->begun >= marks.target && known->applied >= marks.target) {
          finished_already = known;
        } else if (known) {
          carried.finish = true;
          carried.expected = *known;
        }
      }
      auto done = commit_unit(items, encoded, std::move((*units)[u]), note, &carried);
      if (auto settled = settle_marks_unit(*this, items, marks, carried, std::move(done), u == 0); !settled) return settled;
      if (finished_already && batch_settled(items) && cached_floor().effective() <= marks.token.value()) {
        marks.finished = true;
        marks.marks = *finished_already;
      }
    }
    if (units->empty() && marks.begin != nullptr) return begin_batch_separately(*this, items, marks);
    return ok();
  }

  /// The stamps of `handles`, out[i] for handles[i] (same sizes), each as read_stamp gives it:
  /// range-checked and, with a key, from a verified answer. Several stamps are read as pipelined
  /// TXT queries on one pooled TCP connection (at most queries_in_flight_max unanswered, answers
  /// matched by message ID), so a batch costs about one round trip; a stamp whose pipelined
  /// answer is missing or unusable (a dropped connection, a timeout, an unsigned, badly signed or
  /// unexpected answer) is read again alone by read_stamp, which then reports its error. All or
  /// nothing: an error leaves `out` unspecified.
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const {
    PLANFENCE_ASSERT(handles.size() == out.size());
    for (const endpoint_handle h : handles) PLANFENCE_ASSERT(h.index() < state_->names.size());
    std::vector<bool> done(handles.size(), false);
    if (handles.size() > 1) read_stamps_pipelined(handles, out, done);
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (done[i]) continue;
      auto seen = read_stamp(handles[i]);
      if (!seen) return unexpected_error(seen.error());
      out[i] = *seen;
    }
    return ok();
  }

  /// The enactor's batch when its batch_max is 0 (planfence::preferred_batch_max): 500 endpoints,
  /// one pipelined read of their stamps and UPDATEs as large as fit (about 100 endpoints of two A
  /// records each): the batches bench/rfc2136_bench.cpp measures against knsupdate.
  [[nodiscard]] static constexpr std::uint32_t preferred_batch_max() noexcept { return 500; }

  /// How many UPDATE messages commits and the apply marks (begin_apply, finish_apply) have sent
  /// through this store (each message once, however many transport attempts it took): what tests
  /// and benchmarks read to see a batch split, or a write of the marks sent or not.
  [[nodiscard]] std::uint64_t updates_sent() const noexcept { return state_->updates_sent.load(std::memory_order_relaxed); }

  /// After this returns, every commit with a smaller token is refused (header comment). One
  /// read of the floor and, when it must rise, one UPDATE (retried if the floor moved
  /// meanwhile). Errors: errc::store_unavailable, errc::authentication_failed, errc::conflict
  /// (the floor kept moving: try again).
  [[nodiscard]] result<void> raise_fence(fence_token token) {
    if (token > fence_max) {
      return fail(errc::capacity_exceeded, "fence " + std::to_string(token.value()) + " is outside 0.." +
                                               std::to_string(fence_max.value()) + " (2^24 - 1)");
    }
    for (unsigned round = 0; round < floor_retries_max; ++round) {
      auto floor = read_floors();
      if (!floor) return unexpected_error(floor.error());
      if ((floor->canonical || floor->legacy) && floor->effective() >= token.value()) return ok();
      // One UPDATE, pinning both owners as read: the canonical owner gets the new floor, the
      // legacy owner goes (dns/zone_layout.hpp).
      detail::dns_message_builder b(next_id(), detail::dns_opcode::update);
      b.question(state_->options.zone, detail::dns_type::soa);
      pin_floor(b, *floor);
      b.update_delete_rrset(state_->legacy_floor_name, detail::dns_type::txt);
      b.update_delete_rrset(state_->floor_name, detail::dns_type::txt);
      b.update_add(state_->floor_name, detail::dns_type::txt, state_->options.ttl_stamp,
                   detail::txt_rdata(dns::format_floor(token)));
      auto answer = exchange(std::move(b).finish(), /*use_tcp=*/true, nullptr, "the update of the fence floor");
      if (!answer) return unexpected_error(answer.error());
      if (answer->rcode() == detail::dns_rcode::noerror) {
        store_floor(floors{token.value(), std::nullopt});
        return ok();
      }
      if (answer->rcode() != detail::dns_rcode::nxrrset && answer->rcode() != detail::dns_rcode::yxrrset) {
        return update_failure(answer->rcode(), "the update of the fence floor");
      }
    }
    return fail(errc::conflict, "the fence floor kept moving (" + std::to_string(floor_retries_max) +
                                    " prerequisite failures in a row): another writer raises it; try again");
  }

  /// The floor as the server has it now: the larger of the canonical and the legacy owner's
  /// (empty when neither was ever written). Two signed TXT queries. Errors as read_stamp.
  [[nodiscard]] result<std::optional<std::uint64_t>> read_floor() const {
    auto floor = read_floors();
    if (!floor) return unexpected_error(floor.error());
    if (!floor->canonical && !floor->legacy) return std::optional<std::uint64_t>{};
    return std::optional<std::uint64_t>{floor->effective()};
  }

  // ---- apply marks (change_following_store, store.hpp) -----------------------------------------

  /// How many times finish_apply writes again when the marks moved under it before giving up.
  static constexpr unsigned marks_retries_max = 8;

  /// The owner of this store's apply marks: `_apply._planfence.<zone>` (dns::marks_owner of the
  /// home zone, which for this one-zone store is its zone).
  [[nodiscard]] const std::string& marks_name() const noexcept { return state_->marks_name; }

  /// The apply marks as the server has them now: the TXT RRset at marks_name() (one signed
  /// query), "begun=B applied=A" (dns::format_marks). Absent: {generation_none, generation_none,
  /// version 0}; present: version 1. The version says whether the RRset exists, which is what
  /// begin_apply's prerequisite needs besides the text ("RRset does not exist" for version 0).
  /// Errors: errc::parse_error naming the owner (a malformed text, a value above 2^40 - 1, applied
  /// above begun, several records or strings: never taken as marks); errc::store_unavailable,
  /// errc::authentication_failed, errc::not_authoritative as read_stamp.
  [[nodiscard]] result<apply_marks> read_marks() const {
    const std::string& owner = state_->marks_name;
    auto answer = query(owner, detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    std::optional<std::string> text;
    for (const detail::dns_record& rr : answer->answers) {
      if (rr.name != owner || rr.type != detail::dns_type::txt) continue;
      if (text) {
        return fail(errc::parse_error, "apply marks " + owner + " TXT: several records (planfence writes one): "
                                       "delete the extra records on the server");
      }
      auto strings = detail::decode_txt_strings(rr.rdata);
      if (!strings || strings->size() != 1) {
        return fail(errc::parse_error, "apply marks " + owner + " TXT: expected one string (planfence writes "
                                       "\"begun=B applied=A\"): delete or correct the record on the server");
      }
      text = std::move((*strings)[0]);
    }
    if (!text) return apply_marks{};
    auto marks = dns::parse_marks(*text);
    if (!marks) {
      return fail(errc::parse_error, "apply marks " + owner + " TXT: " + marks.error().detail +
                                         "; it was not written by planfence: delete or correct the record on the server");
    }
    marks->version = marks_present;
    return *marks;
  }

  /// B := target, if the marks are still `expected` and `token` is not below the fence floor:
  /// ONE UPDATE to the zone whose prerequisites are both floor owners as this store last read
  /// them (as a commit pins them) and the marks RRset exactly as `expected` (value-dependent
  /// "RRset exists" with format_marks(expected), or "RRset does not exist" when expected is
  /// absent: version 0 and both marks none), and whose updates replace the RRset by
  /// "begun=target applied=expected.applied". The server checks and writes in one step, so a
  /// write of the marks or a raise_fence that lands first makes it refuse. Returns the marks
  /// stored. Precondition: target > expected.begun. Refusals (nothing written):
  ///   errc::fenced    the token is below the floor this store knows (nothing sent), or the
  ///                   server refused and the floor read again is above the token
  ///   errc::conflict  the server refused and the marks read again are not `expected` (read them
  ///                   again and decide again), or only the floor kept moving (floor_retries_max)
  /// Errors: errc::capacity_exceeded (a target above 2^40 - 1, nothing sent), errc::parse_error
  /// (the marks on the server, read after a refusal), and what commit reports for the transport
  /// and the server.
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) {
    PLANFENCE_ASSERT(target > expected.begun);
    if (target > generation_max) return fail(errc::capacity_exceeded, marks_range_problem("begin_apply", target));
    const apply_marks desired{target, expected.applied, marks_present};
    std::string what = "begin_apply of generation ";
    what += std::to_string(target.value());
    for (unsigned round = 0;; ++round) {
      const floors pinned = cached_floor();
      if (pinned.effective() > token.value()) return marks_fenced(what, token, pinned.effective(), false);
      auto rcode = write_marks(expected, desired, pinned, what);
      if (!rcode) return unexpected_error(rcode.error());
      if (*rcode == detail::dns_rcode::noerror) return desired;
      // The server refused a prerequisite (nothing written): read the floor and the marks again.
      auto floor = read_floors();
      if (!floor) return unexpected_error(floor.error());
      const std::string said(detail::rcode_name(*rcode));
      if (floor->effective() > token.value()) return marks_fenced(what, token, floor->effective(), true, said);
      auto now = read_marks();
      if (!now) return unexpected_error(now.error());
      if (!same_marks(*now, expected)) return unexpected_error(marks_moved(what, said, expected, *now));
      // Only the floor moved, and not above the token: send again against the floor read.
      if (round + 1 >= floor_retries_max) {
        return fail(errc::conflict, what + ": the fence floor kept moving (" + std::to_string(floor_retries_max) +
                                        " refusals in a row, marks unchanged): another writer raises it; try again");
      }
    }
  }

  /// A := max(A, target) and B := max(B, target), if `token` is not below the fence floor: the
  /// marks read (one query), then, unless they already say so, ONE UPDATE conditional on the
  /// floor as last read and the marks exactly as read (as begin_apply's); when the server refuses
  /// and the floor is not above the token, the marks moved under it: read again and write again,
  /// at most marks_retries_max times. Idempotent. Returns the marks stored (or found, when they
  /// already said so: then no UPDATE is sent, and the floor is read instead, two queries, so that
  /// a superseded holder still hears errc::fenced). Precondition: target is not generation_none.
  /// Errors: errc::fenced (below the floor; nothing written), errc::capacity_exceeded (a target
  /// above 2^40 - 1), errc::store_unavailable (the marks kept moving: try again; or the
  /// transport), errc::parse_error (malformed marks or floor on the server), and what commit
  /// reports for the server.
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token) {
    PLANFENCE_ASSERT(target != generation_none);
    if (target > generation_max) return fail(errc::capacity_exceeded, marks_range_problem("finish_apply", target));
    std::string what = "finish_apply of generation ";
    what += std::to_string(target.value());
    for (unsigned round = 0; round < marks_retries_max; ++round) {
      const floors pinned = cached_floor();
      if (pinned.effective() > token.value()) return marks_fenced(what, token, pinned.effective(), false);
      auto now = read_marks();
      if (!now) return unexpected_error(now.error());
      const apply_marks desired{std::max(now->begun, target), std::max(now->applied, target), marks_present};
      if (marks_exist(*now) && same_marks(*now, desired)) {
        auto floor = read_floors();
        if (!floor) return unexpected_error(floor.error());
        if (floor->effective() > token.value()) return marks_fenced(what, token, floor->effective(), false);
        return *now;
      }
      auto rcode = write_marks(*now, desired, pinned, what);
      if (!rcode) return unexpected_error(rcode.error());
      if (*rcode == detail::dns_rcode::noerror) return desired;
      auto floor = read_floors();
      if (!floor) return unexpected_error(floor.error());
      if (floor->effective() > token.value()) {
        return marks_fenced(what, token, floor->effective(), true, std::string(detail::rcode_name(*rcode)));
      }
    }
    return fail(errc::store_unavailable, what + ": the apply marks " + state_->marks_name + " kept moving (" +
                                             std::to_string(marks_retries_max) + " refused UPDATEs in a row): other "
                                             "enactors write them; try again (finish_apply is idempotent)");
  }

  /// Distinct *effective* generations the endpoints serve, ascending (change_following_store,
  /// store.hpp): the apply marks first (one query), then one stamp query per endpoint (pipelined,
  /// read_stamps), all read at the call; each endpoint counts as effective_generation(its stamp,
  /// the marks), and the marks' applied A and begun B are in the set too (when written), so that
  /// collection keeps what the endpoints serve and the inputs of the next apply's diff (S3). The
  /// marks are read before the stamps, so the A each stamp is mapped with already held when that
  /// stamp was read: no endpoint is mapped onto a plan newer than the one it served then (an A
  /// older than now only keeps more plans).
  /// Errors: errc::store_unavailable (naming the endpoint or the marks) when any query fails or
  /// the marks cannot be read: a live set with a guess in it could name too few plans, and the
  /// registry then collects nothing (collection_report::live_unavailable, S3). Allocates.
  [[nodiscard]] result<std::vector<generation>> live_generations() const {
    auto marks = read_marks();
    if (!marks) return fail(errc::store_unavailable, "live set: " + marks.error().message());
    std::vector<endpoint_handle> handles(state_->names.size());
    for (std::uint32_t i = 0; i < handles.size(); ++i) handles[i] = endpoint_handle{i};
    std::vector<stamp> stamps(handles.size());
    if (auto read = read_stamps(handles, stamps); !read) {
      return fail(errc::store_unavailable, "live set: " + read.error().message());
    }
    std::vector<generation> out;
    for (const stamp& s : stamps) {
      const generation effective = effective_generation(s.gen, *marks);
      if (effective != generation_none) out.push_back(effective);
    }
    if (marks->applied != generation_none) out.push_back(marks->applied);
    if (marks->begun != generation_none) out.push_back(marks->begun);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  /// What the server answers for the endpoint now: its A, AAAA, CNAME and TXT records, with the
  /// weights of `_weight._planfence.<endpoint>` put back (dns/zone_layout.hpp, as the zone-file
  /// store reads them), sorted: five signed queries. Empty for an endpoint never written.
  /// Errors as read_stamp; errc::parse_error for a malformed weight or one for a record the
  /// endpoint does not serve.
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    const std::string& name = state_->names[h.index()];
    std::vector<record> out;
    for (std::uint16_t type : {detail::dns_type::a, detail::dns_type::aaaa, detail::dns_type::cname, detail::dns_type::txt}) {
      auto answer = query(name, type);
      if (!answer) return unexpected_error(answer.error());
      for (const detail::dns_record& rr : answer->answers) {
        if (rr.name != name || rr.type != type || rr.klass != detail::dns_class::in) continue;
        auto r = detail::decode_record(rr);
        if (!r) return fail(errc::store_unavailable, "server answered a record planfence cannot read: " + r.error().detail);
        out.push_back(std::move(*r));
      }
    }
    auto weights = read_weights(name);
    if (!weights) return unexpected_error(weights.error());
    if (auto restored = dns::restore_weights(out, *weights, name); !restored) {
      return fail(errc::parse_error, dns::weight_owner(name) + ": " + restored.error().detail);
    }
    return out;
  }

  /// The endpoints given at open, in the order of their handles.
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const { return state_->names; }

  [[nodiscard]] std::size_t size() const noexcept { return state_->names.size(); }
  [[nodiscard]] std::string_view name(endpoint_handle h) const noexcept {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    return state_->names[h.index()];
  }
  [[nodiscard]] const rfc2136_options& options() const noexcept { return state_->options; }

  /// The UPDATE messages commit_batch would send for `items` (unsigned, split as it splits them,
  /// against the floor this store last read; no item decided locally), for docs, tests and dry
  /// runs. Errors: errc::capacity_exceeded as commit_batch.
  [[nodiscard]] result<std::vector<std::vector<std::uint8_t>>> preview_update(std::span<const commit_item> items) const {
    std::vector<std::size_t> all(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) all[i] = i;
    std::vector<encoded_item> encoded(items.size());
    auto units = plan_units(items, all, encoded);
    if (!units) return unexpected_error(units.error());
    std::vector<std::vector<std::uint8_t>> out;
    for (const std::vector<std::size_t>& unit : *units) out.push_back(assemble(encoded, unit, cached_floor()));
    return out;
  }

 private:
  struct state {
    rfc2136_options options;
    detail::socket_address server;
    std::string floor_name;         // the canonical owner
    std::string legacy_floor_name;  // read, and removed by every write of the floor
    std::string marks_name;         // the apply marks, in the home zone (the store's zone)
    std::vector<std::string> names;
    std::unordered_map<std::string, std::uint32_t> index;
    std::atomic<std::uint64_t> floor_cache{0};  // both floors as read: pack_floors
    std::mutex pool_mutex;
    std::vector<detail::unique_fd> idle;                  // pooled TCP connections
    std::atomic<std::uint64_t> updates_sent{0};           // UPDATE messages commits and apply marks sent
  };

  /// What the server said when it last refused a message, for a single commit's error.
  struct refusal_note {
    std::string server_said;  ///< empty: decided from the expected stamp, nothing sent
    std::uint64_t floor = 0;  ///< the floor read back then
  };

  /// One item's records, encoded once: its prerequisite (section 1) and its updates (section 2).
  /// Names are not compressed, so the octets are the same in whichever message they go.
  struct encoded_item {
    std::vector<std::uint8_t> prerequisite;
    std::size_t prerequisites = 0;
    std::vector<std::uint8_t> updates;
    std::size_t update_count = 0;
    [[nodiscard]] std::size_t size() const noexcept { return prerequisite.size() + updates.size(); }
  };

  /// The apply marks one unit of a batch carries (commit_batch with batch_marks): a begin, a
  /// finish, or both, as one prerequisite (the marks exactly as `expected`) and one replacement.
  struct unit_marks : batch_unit_marks {
    std::string what;  ///< how errors name the write of the marks
    /// The marks the unit writes.
    [[nodiscard]] apply_marks desired() const noexcept { return batch_unit_marks::desired(marks_present); }
  };

  explicit rfc2136_store(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}

  // ---- names, stamps, decisions --------------------------------------------------------------

  [[nodiscard]] static bool in_zone(std::string_view name, std::string_view zone) {
    if (zone == ".") return true;
    return name.size() > zone.size() && name.ends_with(zone) && name[name.size() - zone.size() - 1] == '.';
  }
  [[nodiscard]] std::string stamp_name(endpoint_handle h) const { return dns::stamp_owner(state_->names[h.index()]); }
  [[nodiscard]] static std::string stamp_text(const stamp& s) { return dns::format_stamp(s.gen, s.fence); }
  [[nodiscard]] static bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
  }
  template <class Unsigned>
  [[nodiscard]] static bool parse_unsigned(std::string_view text, Unsigned& out) {
    std::uint64_t v = 0;
    if (!parse_u64(text, v) || v > static_cast<std::uint64_t>(static_cast<Unsigned>(~Unsigned{0}))) return false;
    out = static_cast<Unsigned>(v);
    return true;
  }
  [[nodiscard]] static bool is_ipv6(const std::string& text) {
    in6_addr ignored{};
    return ::inet_pton(AF_INET6, text.c_str(), &ignored) == 1;
  }
  [[nodiscard]] static bool parse_port(std::string_view text, std::uint16_t& port) {
    unsigned v = 0;
    if (!parse_unsigned(text, v) || v == 0 || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
  }
  [[nodiscard]] static result<std::string> percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '%') {
        out += text[i];
        continue;
      }
      if (i + 2 >= text.size()) return fail(errc::parse_error, "cut % escape");
      unsigned v = 0;
      const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
      if (ec != std::errc{} || end != text.data() + i + 3) return fail(errc::parse_error, "bad % escape");
      out += static_cast<char>(v);
      i += 2;
    }
    return out;
  }
  /// The one string of the one TXT record at `owner` in `answer`: empty when there is none.
  /// Errors: errc::store_unavailable for several TXT records, errc::parse_error for several
  /// strings (`what` names the record for the message).
  [[nodiscard]] static result<std::optional<std::string>> single_txt(const detail::dns_message& answer,
                                                                      const std::string& owner, const char* what) {
    std::optional<std::string> text;
    for (const detail::dns_record& rr : answer.answers) {
      if (rr.name != owner || rr.type != detail::dns_type::txt) continue;
      if (text) {
        return fail(errc::store_unavailable, std::string("malformed ") + what + ": several TXT records at " + owner +
                                                 " (planfence writes one): delete the extra records on the server");
      }
      auto strings = detail::decode_txt_strings(rr.rdata);
      if (!strings || strings->size() != 1) {
        return fail(errc::parse_error, std::string("malformed ") + what + " at " + owner + " TXT: expected one string");
      }
      text = std::move((*strings)[0]);
    }
    return text;
  }

  /// The stamp in `answer` at `owner`, range-checked (dns::parse_stamp): a stamp outside would
  /// wedge the endpoint (a generation no plan can exceed) or the fence. Errors: errc::parse_error
  /// naming the record, the value and the range; errc::store_unavailable for several TXT records.
  [[nodiscard]] static result<stamp> parse_stamp(const detail::dns_message& answer, const std::string& owner) {
    auto text = single_txt(answer, owner, "stamp");
    if (!text) return unexpected_error(text.error());
    if (!*text) return stamp{};
    auto s = dns::parse_stamp(**text);
    if (!s) {
      return fail(errc::parse_error, "stamp " + owner + " TXT: " + s.error().detail +
                                         "; it was not written by planfence: delete or correct the record on the server");
    }
    return *s;
  }

  /// Both floors as read, and the one in effect.
  struct floors {
    std::optional<std::uint64_t> canonical;
    std::optional<std::uint64_t> legacy;
    [[nodiscard]] std::uint64_t effective() const noexcept { return std::max(canonical.value_or(0), legacy.value_or(0)); }
  };

  /// The floor at `owner` (empty when absent). One signed TXT query.
  [[nodiscard]] result<std::optional<std::uint64_t>> read_floor_at(const std::string& owner) const {
    auto answer = query(owner, detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    auto text = single_txt(*answer, owner, "fence floor");
    if (!text) return unexpected_error(text.error());
    if (!*text) return std::optional<std::uint64_t>{};
    auto floor = dns::parse_floor(**text);
    if (!floor) {
      return fail(errc::parse_error, "fence floor " + owner + " TXT: " + floor.error().detail +
                                         "; it was not written by planfence: delete or correct the record on the server");
    }
    return std::optional<std::uint64_t>{floor->value()};
  }

  /// Both floors as the server has them now (two queries), remembered for the next commit.
  [[nodiscard]] result<floors> read_floors() const {
    auto canonical = read_floor_at(state_->floor_name);
    if (!canonical) return unexpected_error(canonical.error());
    auto legacy = read_floor_at(state_->legacy_floor_name);
    if (!legacy) return unexpected_error(legacy.error());
    const floors out{*canonical, *legacy};
    store_floor(out);
    return out;
  }

  /// The weights at `_weight._planfence.<name>` (one signed TXT query; none when absent).
  [[nodiscard]] result<std::vector<dns::weight_entry>> read_weights(const std::string& name) const {
    const std::string owner = dns::weight_owner(name);
    auto answer = query(owner, detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    std::vector<dns::weight_entry> out;
    for (const detail::dns_record& rr : answer->answers) {
      if (rr.name != owner || rr.type != detail::dns_type::txt) continue;
      auto strings = detail::decode_txt_strings(rr.rdata);
      if (!strings || strings->size() != 1) return fail(errc::parse_error, "malformed weight at " + owner + " TXT: expected one string");
      auto w = dns::parse_weight((*strings)[0], rr.ttl);
      if (!w) return fail(errc::parse_error, owner + " TXT: " + w.error().detail);
      out.push_back(std::move(*w));
    }
    return out;
  }

  /// The concept's decision for one endpoint, from its stamp `now` when known (else from
  /// `expected`) and the floor. Empty: no refusal (the commit may go ahead).
  [[nodiscard]] static std::optional<errc> decide(const stamp& expected, const stamp& desired, std::uint64_t floor,
                                                  std::optional<stamp> now) {
    const stamp& current = now ? *now : expected;
    if (current.gen >= desired.gen) return errc::stale;
    if (current.fence > desired.fence || floor > desired.fence.value()) return errc::fenced;
    if (now && (now->gen != expected.gen || now->fence != expected.fence)) return errc::conflict;
    return std::nullopt;
  }

  /// What a refused single commit says: the endpoint and, when the server refused the
  /// prerequisite, what it answered and what the stamp and floor were read back as.
  [[nodiscard]] result<stamp> refusal_error(const commit_item& item, const refusal_note& note) const {
    std::string why = state_->names[item.endpoint.index()];
    if (note.server_said.empty()) {
      why += ": decided from the expected stamp gen " + std::to_string(item.expected.gen.value()) + " fence " +
             std::to_string(item.expected.fence.value()) + ", nothing sent";
    } else {
      why += ": the server refused the prerequisite (" + note.server_said + "); it serves gen " +
             std::to_string(item.now.gen.value()) + " fence " + std::to_string(item.now.fence.value()) + ", floor " +
             std::to_string(note.floor);
    }
    switch (item.outcome) {
      case commit_outcome::stale: return fail(errc::stale, std::move(why));
      case commit_outcome::fenced: return fail(errc::fenced, std::move(why));
      case commit_outcome::conflict: return fail(errc::conflict, std::move(why));
      default: break;
    }
    PLANFENCE_ASSERT(false);
    return fail(errc::conflict, std::move(why));
  }

  [[nodiscard]] static commit_outcome outcome_of(errc code) noexcept {
    switch (code) {
      case errc::stale: return commit_outcome::stale;
      case errc::fenced: return commit_outcome::fenced;
      default: return commit_outcome::conflict;
    }
  }

  /// The error for an UPDATE answered (and, with a key, correctly signed) with `rcode`, which
  /// is neither NOERROR nor a failed prerequisite: the RCODE, its meaning, what to do.
  [[nodiscard]] result<void> update_failure(std::uint16_t rcode, std::string_view what) const {
    const std::string code = detail::rcode_text(rcode);
    switch (rcode) {
      case detail::dns_rcode::refused:
      case detail::dns_rcode::notauth:
        return unexpected_error(refusal(rcode, what, /*is_update=*/true, state_->options.key.has_value()));
      case detail::dns_rcode::notzone:
        return fail(errc::not_authoritative, "the server answered " + std::string(what) + " with NOTZONE: a name in it "
                                             "is not in zone " + state_->options.zone + " as the server has it (a "
                                             "delegation or another zone below it?): check the endpoints and the zone");
      case detail::dns_rcode::servfail:
        return fail(errc::store_unavailable, "the server answered " + std::string(what) + " with SERVFAIL: it failed "
                                             "to apply it (see its log); nothing was written; try again later");
      case detail::dns_rcode::formerr:
      case detail::dns_rcode::notimp:
        return fail(errc::store_unavailable, "the server answered " + std::string(what) + " with " + code +
                                                 ": it does not accept RFC 2136 updates as planfence sends them "
                                                 "(is dynamic update enabled for " + state_->options.zone + "?)");
      default:
        return fail(errc::store_unavailable, "the server answered " + std::string(what) + " with " + code +
                                                 "; nothing was written");
    }
  }

  /// Whether the server serves the zone, asked with one unsigned SOA query over UDP; only to
  /// choose the message of a refusal (an unsigned answer is never believed for anything else).
  enum class zone_service { serves, does_not_serve, unknown };
  struct zone_probe {
    zone_service service = zone_service::unknown;
    std::string said;  ///< what the server answered, for the message
  };
  [[nodiscard]] zone_probe probe_zone() const {
    const std::string& zone = state_->options.zone;
    const std::string question = "an SOA query for " + zone;
    auto raw = detail::exchange_udp(state_->server, detail::make_query(next_id(), zone, detail::dns_type::soa),
                                    detail::deadline_after(state_->options.timeout));
    if (!raw) return {zone_service::unknown, question + " got no answer (" + raw.error().message() + ")"};
    auto answer = detail::decode_message(*raw);
    if (!answer || !answer->is_response()) return {zone_service::unknown, question + " got a malformed answer"};
    const std::string code = detail::rcode_text(answer->rcode());
    if (answer->rcode() == detail::dns_rcode::refused || answer->rcode() == detail::dns_rcode::notauth) {
      return {zone_service::does_not_serve, question + " was answered " + code};
    }
    for (const detail::dns_record& rr : answer->authority) {
      if (rr.type == detail::dns_type::soa && rr.name != zone) {
        return {zone_service::does_not_serve, question + " was answered " + code + " from zone " + rr.name};
      }
    }
    if (!answer->authoritative()) return {zone_service::does_not_serve, question + " was answered without authority"};
    for (const detail::dns_record& rr : answer->answers) {
      if (rr.type == detail::dns_type::soa && rr.name == zone && answer->rcode() == detail::dns_rcode::noerror) {
        return {zone_service::serves, question + " was answered with its SOA"};
      }
    }
    return {zone_service::unknown, question + " was answered " + code + " without an SOA"};
  }

  /// The error for a request (`what`) the server refused with REFUSED or NOTAUTH: a zone it does
  /// not serve (errc::not_authoritative, told apart by probe_zone) or a key it refuses
  /// (errc::authentication_failed), each with what to check.
  [[nodiscard]] error refusal(std::uint16_t rcode, std::string_view what, bool is_update, bool signed_answer) const {
    const rfc2136_options& o = state_->options;
    const std::string code = detail::rcode_text(rcode);
    const std::string server = "the server at " + endpoint_text();
    const zone_probe probe = probe_zone();
    if (probe.service == zone_service::does_not_serve) {
      return error{errc::not_authoritative, 0, 0,
                   server + " is not authoritative for " + o.zone + ": it answered " + std::string(what) + " with " +
                       code + ", and " + probe.said +
                       ": check the zone and the host in the store URI (they must name the zone's primary)"};
    }
    const std::string checked = probe.service == zone_service::serves ? " (it serves " + o.zone + ": " + probe.said + ")"
                                                                      : " (" + probe.said + ")";
    const std::string verb = is_update ? "update" : "query";
    if (!o.key) {
      return error{errc::authentication_failed, 0, 0,
                   server + " refused " + std::string(what) + " with " + code + checked + "; no TSIG key was given, "
                   "and the server requires one allowed to " + verb + " " + o.zone +
                   ": give it with tsig-file=PATH (ALGORITHM:NAME:BASE64SECRET)"};
    }
    if (!signed_answer) {
      return error{errc::authentication_failed, 0, 0,
                   server + " refused " + std::string(what) + " with " + code + " without signing its answer" + checked +
                       ": the key name (" + o.key->name + ") or its secret is wrong, or the key is not allowed to "
                       "update " + o.zone + ": check the key against the server's configuration"};
    }
    return error{errc::authentication_failed, 0, 0,
                 server + " refused " + std::string(what) + " with " + code + " in an answer signed with key " +
                     o.key->name + checked + ": the key is right but not allowed to update " + o.zone +
                     ": check the server's update ACL or policy for that key"};
  }

  [[nodiscard]] std::string endpoint_text() const {
    const std::string& host = state_->options.host;
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(state_->options.port);
  }

  // Both floors in one atomic word, so that a commit pins a pair that was read together: each
  // half is 0 when absent, else floor + 1 (floors are at most 2^24 - 1).
  [[nodiscard]] floors cached_floor() const noexcept {
    const std::uint64_t v = state_->floor_cache.load(std::memory_order_acquire);
    const std::uint64_t canonical = v & 0xffffffffu, legacy = v >> 32;
    return floors{canonical == 0 ? std::nullopt : std::optional<std::uint64_t>(canonical - 1),
                  legacy == 0 ? std::nullopt : std::optional<std::uint64_t>(legacy - 1)};
  }
  void store_floor(const floors& f) const noexcept {
    const std::uint64_t canonical = f.canonical ? *f.canonical + 1 : 0, legacy = f.legacy ? *f.legacy + 1 : 0;
    state_->floor_cache.store(canonical | (legacy << 32), std::memory_order_release);
  }

  /// Prerequisites pinning both floor owners as read (dns/zone_layout.hpp): a floor written since,
  /// at either owner, fails the UPDATE at the server.
  void pin_floor(detail::dns_message_builder& b, const floors& f) const {
    const std::pair<const std::string*, std::optional<std::uint64_t>> owners[] = {{&state_->floor_name, f.canonical},
                                                                                  {&state_->legacy_floor_name, f.legacy}};
    for (const auto& [owner, floor] : owners) {
      if (floor) {
        b.prerequisite_rrset_equals(*owner, detail::dns_type::txt, detail::txt_rdata(dns::format_floor(fence_token{*floor})));
      } else {
        b.prerequisite_rrset_absent(*owner, detail::dns_type::txt);
      }
    }
  }

  // ---- apply marks -------------------------------------------------------------------------------

  /// apply_marks::version of marks read from the server: 0 when the RRset is absent, 1 when present.
  static constexpr std::uint64_t marks_present = 1;

  [[nodiscard]] static bool marks_exist(const apply_marks& m) noexcept {
    return m.version != 0 || m.begun != generation_none || m.applied != generation_none;
  }
  /// The same marks on the server: the same text, or both absent.
  [[nodiscard]] static bool same_marks(const apply_marks& a, const apply_marks& b) noexcept {
    return marks_exist(a) == marks_exist(b) && a.begun == b.begun && a.applied == b.applied;
  }
  /// The marks as a message shows them: the quoted text, or "none" when absent.
  [[nodiscard]] static std::string marks_text(const apply_marks& m) {
    if (!marks_exist(m)) return "none (no record)";
    std::string out = "\"";
    out += dns::format_marks(m);
    out += '"';
    return out;
  }
  [[nodiscard]] static std::string marks_range_problem(std::string_view what, generation target) {
    return std::string(what) + ": " + dns::generation_range_problem(std::to_string(target.value())) + "; nothing sent";
  }

  /// errc::fenced for a write of the marks whose token is below the floor.
  [[nodiscard]] result<apply_marks> marks_fenced(const std::string& what, fence_token token, std::uint64_t floor,
                                                 bool sent, const std::string& said = {}) const {
    return fail(errc::fenced, what + " with fence token " + std::to_string(token.value()) + ": the fence floor of " +
                                  state_->options.zone + " is " + std::to_string(floor) +
                                  (sent ? " (the server refused the prerequisite, " + said + ", and the floor was read again)"
                                        : "") +
                                  ": a newer lease holder raised it; the apply marks " + state_->marks_name +
                                  " were not written" + (sent ? "" : ", nothing sent"));
  }

  /// errc::conflict for a write of the marks (`what`) the server refused (`said`) because the marks
  /// read again (`now`) are not `expected`.
  [[nodiscard]] error marks_moved(const std::string& what, const std::string& said, const apply_marks& expected,
                                  const apply_marks& now) const {
    return error{errc::conflict, 0, 0,
                 what + ": the server refused the prerequisite (" + said + "): the apply marks " + state_->marks_name +
                     " moved: expected " + marks_text(expected) + ", found " + marks_text(now) +
                     "; read them again (read_marks) and decide again; nothing written"};
  }

  /// The prerequisite that the marks RRset is exactly `expected`: value-dependent "RRset exists"
  /// on its text, or "RRset does not exist" when `expected` is absent.
  void pin_marks(detail::dns_message_builder& b, const apply_marks& expected) const {
    if (marks_exist(expected)) {
      b.prerequisite_rrset_equals(state_->marks_name, detail::dns_type::txt, detail::txt_rdata(dns::format_marks(expected)));
    } else {
      b.prerequisite_rrset_absent(state_->marks_name, detail::dns_type::txt);
    }
  }
  /// The updates replacing the marks RRset by `desired`.
  void replace_marks(detail::dns_message_builder& b, const apply_marks& desired) const {
    b.update_delete_rrset(state_->marks_name, detail::dns_type::txt);
    b.update_add(state_->marks_name, detail::dns_type::txt, state_->options.ttl_stamp,
                 detail::txt_rdata(dns::format_marks(desired)));
  }

  /// One UPDATE replacing the marks by `desired`, conditional on both floor owners as `pinned` and
  /// the marks exactly as `expected` (absent: "RRset does not exist"). The server's RCODE when it
  /// is NOERROR, NXRRSET or YXRRSET (a prerequisite failed: nothing written); else the error.
  [[nodiscard]] result<std::uint16_t> write_marks(const apply_marks& expected, const apply_marks& desired,
                                                  const floors& pinned, const std::string& what) {
    detail::dns_message_builder b(next_id(), detail::dns_opcode::update);
    b.question(state_->options.zone, detail::dns_type::soa);
    if (!state_->options.broken_omit_prerequisites) {
      pin_floor(b, pinned);
      pin_marks(b, expected);
    }
    replace_marks(b, desired);
    state_->updates_sent.fetch_add(1, std::memory_order_relaxed);
    auto answer = exchange(std::move(b).finish(), /*use_tcp=*/!state_->options.udp_queries, nullptr, what);
    if (!answer) return unexpected_error(answer.error());
    const std::uint16_t rcode = answer->rcode();
    if (rcode == detail::dns_rcode::noerror || rcode == detail::dns_rcode::nxrrset || rcode == detail::dns_rcode::yxrrset) {
      return rcode;
    }
    return unexpected_error(update_failure(rcode, what).error());
  }

  // ---- batches ---------------------------------------------------------------------------------

  [[nodiscard]] result<void> commit_items(std::span<commit_item> items, refusal_note& note) {
    std::vector<encoded_item> encoded(items.size());
    auto units = decide_and_plan(items, encoded, /*marks_room=*/false);
    if (!units) return unexpected_error(units.error());
    for (std::vector<std::size_t>& unit : *units) {
      if (auto done = commit_unit(items, encoded, std::move(unit), note); !done) return done;
    }
    return ok();
  }

  /// The first steps of a batch: each item checked and reset to pending, the refusals the
  /// expected stamps and the known floor decide made (nothing is sent for those), and the rest
  /// encoded into `encoded` and split into units (plan_units; with room for the apply marks in
  /// each when `marks_room`). Errors: errc::capacity_exceeded naming an item, nothing sent.
  [[nodiscard]] result<std::vector<std::vector<std::size_t>>> decide_and_plan(std::span<commit_item> items,
                                                                              std::vector<encoded_item>& encoded,
                                                                              bool marks_room) const {
    if (items.empty()) return std::vector<std::vector<std::size_t>>{};
    std::vector<bool> seen(state_->names.size(), false);
    for (commit_item& item : items) {
      PLANFENCE_ASSERT(item.endpoint.index() < state_->names.size());
      PLANFENCE_ASSERT(item.records != nullptr);
      PLANFENCE_ASSERT(item.desired.gen != generation_none);
      PLANFENCE_ASSERT(!seen[item.endpoint.index()]);  // an endpoint at most once per batch
      seen[item.endpoint.index()] = true;
      item.outcome = commit_outcome::pending;
      item.now = item.expected;
    }
    for (const commit_item& item : items) {
      // A stamp this store would refuse to read back is never written.
      if (item.desired.gen > generation_max || item.desired.fence > fence_max) {
        return fail(errc::capacity_exceeded, state_->names[item.endpoint.index()] + ": stamp gen " +
                                                 std::to_string(item.desired.gen.value()) + " fence " +
                                                 std::to_string(item.desired.fence.value()) +
                                                 " is outside generation 1..2^40-1, fence 0..2^24-1; nothing sent");
      }
    }
    // Refusals the expected stamps and the known floor already decide: nothing is sent for them.
    const std::uint64_t floor_known = cached_floor().effective();
    std::vector<std::size_t> live;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (auto refused = decide(items[i].expected, items[i].desired, floor_known, std::nullopt)) {
        items[i].outcome = outcome_of(*refused);
      } else {
        live.push_back(i);
      }
    }
    if (live.empty()) return std::vector<std::vector<std::size_t>>{};
    return plan_units(items, live, encoded, marks_room);  // every item encoded before anything is sent
  }

  /// The octets an UPDATE may hold besides its endpoints: the header, the zone, both floors'
  /// prerequisites at their largest, and the TSIG record (owner, fixed fields, hmac-sha256's
  /// name and a 32-octet MAC, the other fields).
  [[nodiscard]] std::size_t message_budget() const {
    detail::dns_message_builder b(0, detail::dns_opcode::update);
    b.question(state_->options.zone, detail::dns_type::soa);
    pin_floor(b, floors{fence_max.value(), fence_max.value()});
    std::size_t fixed = b.size();
    if (state_->options.key) fixed += state_->options.key->name.size() + 2 + 10 + 13 + 6 + 2 + 2 + 32 + 2 + 2 + 2 + 8;
    return detail::dns_message_size_max - fixed;
  }

  /// The octets the apply marks take in an UPDATE that carries them, at their largest: the marks
  /// prerequisite (pin_marks) and their replacement (replace_marks).
  [[nodiscard]] std::size_t marks_octets_max() const {
    detail::dns_message_builder b(0, detail::dns_opcode::update);
    const std::size_t empty = b.size();
    const apply_marks largest{generation_max, generation_max, marks_present};
    pin_marks(b, largest);
    replace_marks(b, largest);
    return b.size() - empty;
  }

  /// `chosen` (indices into `items`) split into units, each one UPDATE: consecutive, each as
  /// large as fits message_budget() (less room for the apply marks when `marks_room`) and
  /// update_endpoints_max. Encodes each chosen item into `encoded`. Errors:
  /// errc::capacity_exceeded naming an item that fits no message.
  [[nodiscard]] result<std::vector<std::vector<std::size_t>>> plan_units(std::span<const commit_item> items,
                                                                         const std::vector<std::size_t>& chosen,
                                                                         std::vector<encoded_item>& encoded,
                                                                         bool marks_room = false) const {
    const std::size_t budget = message_budget() - (marks_room ? marks_octets_max() : 0);
    const std::size_t records_max = 0xffff - (marks_room ? std::size_t{2} : 0);  // the marks' delete and add
    const std::size_t per_message = state_->options.update_endpoints_max;
    std::vector<std::vector<std::size_t>> units;
    std::size_t used = 0, records = 0;
    for (const std::size_t i : chosen) {
      auto e = encode_item(items[i]);
      if (!e) return unexpected_error(e.error());
      if (e->size() > budget) {
        return fail(errc::capacity_exceeded, state_->names[items[i].endpoint.index()] + ": its update is " +
                                                 std::to_string(e->size()) + " octets, more than the " +
                                                 std::to_string(budget) + " one UPDATE (65535 with the zone, the "
                                                 "floor and TSIG) can hold: give it fewer records; nothing sent");
      }
      const bool full = units.empty() || used + e->size() > budget || records + e->update_count > records_max ||
                        (per_message != 0 && units.back().size() >= per_message);
      if (full) {
        units.emplace_back();
        used = records = 0;
      }
      units.back().push_back(i);
      used += e->size();
      records += e->update_count;
      encoded[i] = std::move(*e);
    }
    return units;
  }

  /// One item's prerequisite (its stamp as expected, or "RRset does not exist") and updates
  /// (every RRset of the endpoint replaced, its weights and its stamp). Errors:
  /// errc::capacity_exceeded (several CNAMEs), errc::invalid_rdata.
  [[nodiscard]] result<encoded_item> encode_item(const commit_item& item) const {
    const std::string& name = state_->names[item.endpoint.index()];
    const std::string stamp_owner = stamp_name(item.endpoint);
    std::size_t cnames = 0;
    for (const record& r : item.records->records()) cnames += r.type == record_type::cname ? 1 : 0;
    if (cnames > 1) return fail(errc::capacity_exceeded, name + ": DNS cannot hold several CNAMEs (weighted CNAMEs)");
    encoded_item out;
    if (!state_->options.broken_omit_prerequisites) {
      detail::dns_message_builder p(0, detail::dns_opcode::update);
      if (item.expected.gen == generation_none) {
        p.prerequisite_rrset_absent(stamp_owner, detail::dns_type::txt);
      } else {
        p.prerequisite_rrset_equals(stamp_owner, detail::dns_type::txt, detail::txt_rdata(stamp_text(item.expected)));
      }
      out.prerequisite.assign(p.body().begin(), p.body().end());
      out.prerequisites = p.count(1);
    }
    detail::dns_message_builder u(0, detail::dns_opcode::update);
    for (std::uint16_t type : {detail::dns_type::a, detail::dns_type::aaaa, detail::dns_type::cname, detail::dns_type::txt}) {
      u.update_delete_rrset(name, type);
    }
    for (const record& r : item.records->records()) {
      auto rdata = detail::encode_rdata(r);
      if (!rdata) return unexpected_error(rdata.error());
      u.update_add(name, wire_type(r.type), r.ttl, *rdata);
    }
    // The weights beside the records (dns/zone_layout.hpp): replaced, none when unweighted.
    const std::string weights = dns::weight_owner(name);
    u.update_delete_rrset(weights, detail::dns_type::txt);
    for (const record& r : item.records->records()) {
      if (r.weight) u.update_add(weights, detail::dns_type::txt, r.ttl, detail::txt_rdata(dns::format_weight(r)));
    }
    u.update_delete_rrset(stamp_owner, detail::dns_type::txt);
    u.update_add(stamp_owner, detail::dns_type::txt, state_->options.ttl_stamp, detail::txt_rdata(stamp_text(item.desired)));
    out.updates.assign(u.body().begin(), u.body().end());
    out.update_count = u.count(2);
    return out;
  }

  /// The UPDATE for `unit`: the zone, both floors pinned as `floor`, the marks as marks->expected
  /// (when it carries them), each endpoint's prerequisite, then each endpoint's updates and the
  /// marks replaced by marks->desired().
  [[nodiscard]] std::vector<std::uint8_t> assemble(const std::vector<encoded_item>& encoded, std::span<const std::size_t> unit,
                                                   const floors& floor, const unit_marks* marks = nullptr) const {
    detail::dns_message_builder b(next_id(), detail::dns_opcode::update);
    b.question(state_->options.zone, detail::dns_type::soa);
    if (!state_->options.broken_omit_prerequisites) {
      pin_floor(b, floor);
      if (marks != nullptr) pin_marks(b, marks->expected);
      for (const std::size_t i : unit) b.append_records(1, encoded[i].prerequisite, encoded[i].prerequisites);
    }
    for (const std::size_t i : unit) b.append_records(2, encoded[i].updates, encoded[i].update_count);
    if (marks != nullptr) replace_marks(b, marks->desired());
    return std::move(b).finish();
  }

  /// Sends one unit until every item of it is decided: written when the server applies the
  /// message; after a refused prerequisite, each item decided from the floor and its stamp read
  /// again, the refused ones left out of the next message. A message whose endpoints all serve
  /// their desired stamp already is ours, applied by an attempt whose answer was lost (the same
  /// generation under the same fence is the same plan, S5): written.
  /// With `marks` (a begin, a finish or both), every message of the unit carries them too. After
  /// a refusal of a message with the begin, the marks are read as well: the floor above the token
  /// or marks that moved refuse the begin (marks->refused, the error returned), unless the marks
  /// are exactly what the message writes (ours, answer lost: landed, its items that serve their
  /// desired stamp written, the others decided and the rest sent without the marks; the finish
  /// kept only when none of them is refused but as stale). A finish is dropped from the messages
  /// after any refusal, except from one with the begin whose marks are still as expected while
  /// every item refused so far is stale, and except when it landed: a message with the finish
  /// alone whose stamps are all ours and whose marks read back as it writes them (one query).
  [[nodiscard]] result<void> commit_unit(std::span<commit_item> items, const std::vector<encoded_item>& encoded,
                                         std::vector<std::size_t> working, refusal_note& note,
                                         unit_marks* marks = nullptr) {
    unsigned floor_rounds = 0;
    for (unsigned round = 0; round < unit_rounds_max && !working.empty(); ++round) {
      const floors pinned = cached_floor();
      // Marks that landed (an attempt whose answer was lost) are not sent again with the rest.
      const unit_marks* carried = marks != nullptr && !marks->landed && (marks->begin || marks->finish) ? marks : nullptr;
      state_->updates_sent.fetch_add(1, std::memory_order_relaxed);
      // UDP when it fits (as knsupdate does; Knot answers it sooner), TCP otherwise.
      auto answer = exchange(assemble(encoded, working, pinned, carried), /*use_tcp=*/!state_->options.udp_queries,
                             nullptr, "the update");
      if (!answer) return unexpected_error(answer.error());
      const std::uint16_t rcode = answer->rcode();
      if (rcode == detail::dns_rcode::noerror) {
        for (const std::size_t i : working) {
          items[i].outcome = commit_outcome::written;
          items[i].now = stamp{items[i].desired.gen, items[i].desired.fence, 0};
        }
        if (carried != nullptr) land(*marks);
        return ok();
      }
      if (rcode != detail::dns_rcode::nxrrset && rcode != detail::dns_rcode::yxrrset) return update_failure(rcode, "the update");
      // A prerequisite failed: read the floor and this message's stamps again, decide from them.
      auto floor = read_floor();
      if (!floor) return unexpected_error(floor.error());
      note.server_said = std::string(detail::rcode_name(rcode));
      note.floor = floor->value_or(0);
      std::optional<apply_marks> marks_now;
      if (carried != nullptr && carried->begin) {
        // The begin by begin_apply's rules: fenced first, then the marks.
        if (note.floor > marks->token.value()) {
          marks->refused = true;
          return unexpected_error(marks_fenced(marks->what, marks->token, note.floor, true, note.server_said).error());
        }
        auto now = read_marks();
        if (!now) return unexpected_error(now.error());
        marks_now = *now;
      }
      std::vector<endpoint_handle> handles;
      handles.reserve(working.size());
      for (const std::size_t i : working) handles.push_back(items[i].endpoint);
      std::vector<stamp> found(working.size());
      if (auto read = read_stamps(handles, found); !read) return unexpected_error(read.error());
      bool all_ours = true;
      for (std::size_t k = 0; k < working.size(); ++k) {
        const commit_item& item = items[working[k]];
        all_ours = all_ours && found[k].gen == item.desired.gen && found[k].fence == item.desired.fence;
      }
      if (carried != nullptr && !carried->begin && all_ours) {
        // A finish alone whose every endpoint serves its desired stamp: the message landed if the
        // marks are what it writes too (one query; else the finish is declined, as below).
        if (auto now = read_marks(); now && same_marks(*now, marks->desired())) land(*marks);
      }
      // The marks moved exactly to what this message writes: an attempt of it landed and its
      // answer was lost (the begin is made: B is at the target, as began says), even when another
      // writer changed some of its endpoints since. Those of its endpoints that serve their
      // desired stamp are written (S5), the others decided as a refused unit's.
      bool landed_here = false;
      if (marks_now && !same_marks(*marks_now, marks->expected)) {
        if (!same_marks(*marks_now, marks->desired())) {
          marks->refused = true;
          return unexpected_error(marks_moved(marks->what, note.server_said, marks->expected, *marks_now));
        }
        land(*marks);
        landed_here = true;
      }
      std::vector<std::size_t> next;
      bool only_stale = true;  // every item refused in this round is stale
      for (std::size_t k = 0; k < working.size(); ++k) {
        commit_item& item = items[working[k]];
        item.now = found[k];
        const bool ours = found[k].gen == item.desired.gen && found[k].fence == item.desired.fence;
        if (all_ours || (landed_here && ours)) {
          item.outcome = commit_outcome::written;
        } else if (auto refused = decide(item.expected, item.desired, note.floor, found[k])) {
          item.outcome = outcome_of(*refused);
          only_stale = only_stale && item.outcome == commit_outcome::stale;
        } else {
          next.push_back(working[k]);
        }
      }
      if (marks != nullptr && marks->finish && !marks->landed && !(marks_now && only_stale)) marks->finish = false;
      // A landed finish is reported only when every item of its message is written or stale (the
      // marks stay as written; the caller's finish_apply finds them so).
      if (landed_here && marks->finish && (!next.empty() || !only_stale)) marks->finish = false;
      // Nobody refused: only the floor moved (not above our tokens): send again against it.
      if (next.size() == working.size() && ++floor_rounds >= floor_retries_max) break;
      working = std::move(next);
    }
    // Bounded: the server kept refusing (the floor or stamps kept moving). Read again, decide again.
    for (const std::size_t i : working) items[i].outcome = commit_outcome::conflict;
    return ok();
  }

  /// The unit's marks written (as its message wrote them).
  static void land(unit_marks& marks) noexcept {
    marks.landed = true;
    marks.stored = marks.desired();
  }

  // ---- pipelined stamp reads -------------------------------------------------------------------

  /// Reads the stamps of `handles` as TXT queries pipelined on one TCP connection, filling
  /// out[i] and setting done[i] for each answer that is usable: verified (with a key), echoing
  /// the question, authoritative for our zone, NOERROR or NXDOMAIN, and a stamp in range.
  /// Anything else leaves done[i] unset (read_stamps reads those alone, and reports their
  /// errors); a transport failure ends the pipeline and drops the connection.
  void read_stamps_pipelined(std::span<const endpoint_handle> handles, std::span<stamp> out, std::vector<bool>& done) const {
    detail::unique_fd fd = take_connection();
    bool reused = fd.valid();
    for (;;) {
      if (!fd.valid()) {
        auto connected = detail::tcp_connect(state_->server, detail::deadline_after(state_->options.timeout));
        if (!connected) return;
        fd = std::move(*connected);
      }
      std::size_t answered = 0;
      if (pipeline(fd.get(), handles, out, done, answered)) {
        give_back(std::move(fd));
        return;
      }
      fd.reset();
      // A pooled connection the server closed while idle fails at once: one fresh try.
      if (!reused || answered != 0) return;
      reused = false;
    }
  }

  /// The pipeline itself on connected `fd`: whether every query was answered (`answered` counts
  /// the answers matched).
  [[nodiscard]] bool pipeline(int fd, std::span<const endpoint_handle> handles, std::span<stamp> out,
                              std::vector<bool>& done, std::size_t& answered) const {
    const rfc2136_options& o = state_->options;
    struct in_flight {
      std::size_t index;
      detail::hmac_sha256_mac mac;
    };
    std::unordered_map<std::uint16_t, in_flight> waiting;
    const std::uint16_t base = next_id();
    std::size_t next = 0, unmatched = 0;
    while (next < handles.size() || !waiting.empty()) {
      if (next < handles.size() && waiting.size() <= queries_in_flight_max / 2) {
        std::vector<std::uint8_t> burst;
        while (next < handles.size() && waiting.size() < queries_in_flight_max) {
          const auto id = static_cast<std::uint16_t>(base + next);
          in_flight slot{next, {}};
          std::vector<std::uint8_t> wire = detail::make_query(id, stamp_name(handles[next]), detail::dns_type::txt);
          if (o.key) wire = detail::tsig_sign(std::move(wire), *o.key, detail::unix_seconds_now(), slot.mac, o.tsig_fudge_seconds);
          burst.push_back(static_cast<std::uint8_t>(wire.size() >> 8));
          burst.push_back(static_cast<std::uint8_t>(wire.size() & 0xff));
          burst.insert(burst.end(), wire.begin(), wire.end());
          waiting.emplace(id, slot);
          ++next;
        }
        if (!detail::send_all(fd, burst, detail::deadline_after(o.timeout))) return false;
      }
      const detail::socket_deadline deadline = detail::deadline_after(o.timeout);
      std::array<std::uint8_t, 2> prefix{};
      if (!detail::receive_exactly(fd, prefix, deadline)) return false;
      std::vector<std::uint8_t> raw(static_cast<std::size_t>(prefix[0]) << 8 | prefix[1]);
      if (raw.size() < detail::dns_header_size || !detail::receive_exactly(fd, raw, deadline)) return false;
      const auto id = static_cast<std::uint16_t>(raw[0] << 8 | raw[1]);
      const auto it = waiting.find(id);
      if (it == waiting.end()) {  // a late answer to an abandoned request; a flood of them ends it
        if (++unmatched > 16) return false;
        continue;
      }
      const in_flight slot = it->second;
      waiting.erase(it);
      ++answered;
      if (auto s = pipelined_stamp(raw, slot.mac, stamp_name(handles[slot.index]))) {
        out[slot.index] = *s;
        done[slot.index] = true;
      }
    }
    return true;
  }

  /// The stamp in a pipelined answer, when the answer is one read_stamp would accept; empty
  /// otherwise (read_stamp then asks again and says what is wrong).
  [[nodiscard]] std::optional<stamp> pipelined_stamp(std::span<const std::uint8_t> raw, const detail::hmac_sha256_mac& mac,
                                                     const std::string& owner) const {
    const rfc2136_options& o = state_->options;
    auto decoded = detail::decode_message(raw);
    if (!decoded || !decoded->is_response()) return std::nullopt;
    if (o.key) {
      if (!has_tsig(*decoded)) return std::nullopt;
      if (!detail::tsig_verify_response(raw, *decoded, *o.key, mac, detail::unix_seconds_now(), o.tsig_fudge_seconds)) {
        return std::nullopt;
      }
      decoded->additional.pop_back();
    }
    const std::uint16_t rcode = decoded->rcode();
    if (decoded->questions.size() != 1 || decoded->questions[0].name != owner ||
        decoded->questions[0].type != detail::dns_type::txt || !decoded->authoritative() ||
        (rcode != detail::dns_rcode::noerror && rcode != detail::dns_rcode::nxdomain)) {
      return std::nullopt;
    }
    for (const detail::dns_record& rr : decoded->authority) {
      if (rr.type == detail::dns_type::soa && rr.name != state_->options.zone) return std::nullopt;
    }
    auto s = parse_stamp(*decoded, owner);
    if (!s) return std::nullopt;
    return *s;
  }


  // ---- transport -------------------------------------------------------------------------------

  [[nodiscard]] static std::uint16_t next_id() {
    thread_local std::mt19937 generator{std::random_device{}()};
    return static_cast<std::uint16_t>(generator() & 0xffff);
  }

  [[nodiscard]] result<detail::dns_message> query(const std::string& name, std::uint16_t type) const {
    const std::string what = "the query for " + name;
    auto answer = exchange(detail::make_query(next_id(), name, type), !state_->options.udp_queries, nullptr, what);
    if (!answer) return answer;
    const std::uint16_t rcode = answer->rcode();
    const std::string code = detail::rcode_text(rcode);
    if (answer->questions.size() != 1 || answer->questions[0].name != name || answer->questions[0].type != type) {
      return fail(errc::store_unavailable, "the answer (" + code + ") to " + what + " does not echo the question");
    }
    if (rcode == detail::dns_rcode::refused || rcode == detail::dns_rcode::notauth) {
      return unexpected_error(refusal(rcode, what, /*is_update=*/false, state_->options.key.has_value()));
    }
    if (rcode != detail::dns_rcode::noerror && rcode != detail::dns_rcode::nxdomain) {
      return fail(errc::store_unavailable, "the server answered " + what + " with " + code +
                                               " (see its log: did the zone load?); try again later");
    }
    if (!answer->authoritative()) {
      return fail(errc::not_authoritative, "the server at " + endpoint_text() + " answered " + what + " (" + code +
                                               ") without authority: it is not authoritative for " +
                                               state_->options.zone + "; check the zone and the host in the store URI");
    }
    // An authoritative NXDOMAIN or NODATA carries the SOA of the zone the name is in (RFC 2308):
    // another zone's means the server answers from a parent (it does not serve ours) or a child.
    for (const detail::dns_record& rr : answer->authority) {
      if (rr.type == detail::dns_type::soa && rr.name != state_->options.zone) {
        const std::string& zone = state_->options.zone;
        if (in_zone(rr.name, zone)) {
          return fail(errc::not_authoritative, "the server at " + endpoint_text() + " answered " + what + " (" + code +
                                                   ") from zone " + rr.name + ", below " + zone +
                                                   ": the name is in another zone; planfence writes in one zone "
                                                   "only: check the endpoints and the zone in the store URI");
        }
        return fail(errc::not_authoritative, "the server at " + endpoint_text() + " is not authoritative for " + zone +
                                                 ": it answered " + what + " (" + code + ") from zone " + rr.name +
                                                 "; check the zone and the host in the store URI");
      }
    }
    return answer;
  }

  /// Signs `request` (when a key is configured), sends it (UDP first unless `use_tcp`, TCP on
  /// truncation), verifies and decodes the answer; retries up to `attempts` on transport
  /// failures. `sent` is set once a request may have reached the server.
  [[nodiscard]] result<detail::dns_message> exchange(std::vector<std::uint8_t> request, bool use_tcp, bool* sent,
                                                     std::string_view what) const {
    const rfc2136_options& o = state_->options;
    error last{errc::store_unavailable, 0, 0, "no attempt made"};
    for (unsigned attempt = 0; attempt < o.attempts; ++attempt) {
      detail::hmac_sha256_mac request_mac{};
      std::vector<std::uint8_t> wire =
          o.key ? detail::tsig_sign(request, *o.key, detail::unix_seconds_now(), request_mac, o.tsig_fudge_seconds) : request;
      const detail::socket_deadline deadline = detail::deadline_after(o.timeout);
      result<std::vector<std::uint8_t>> raw = fail(errc::io_error);
      bool tcp = use_tcp || wire.size() > detail::dns_udp_payload_max;
      if (!tcp) {
        if (sent != nullptr) *sent = true;
        raw = detail::exchange_udp(state_->server, wire, deadline);
        if (raw) {
          auto head = detail::decode_message(*raw);
          if (head && head->truncated()) tcp = true;  // RFC 1035 section 4.2.1: ask again over TCP
        }
      }
      if (tcp) raw = exchange_pooled(wire, deadline, sent);
      if (!raw) {
        last = error{errc::store_unavailable, 0, 0,
                     "no answer to " + std::string(what) + " from " + endpoint_text() + " after " +
                         std::to_string(attempt + 1) + " attempt(s) (last: " + raw.error().message() +
                         "): is the server running and reachable there? (timeout-ms and attempts in the URI)"};
        continue;
      }
      auto decoded = detail::decode_message(*raw);
      if (!decoded) {
        return fail(errc::store_unavailable, "malformed answer to " + std::string(what) + ": " + decoded.error().detail);
      }
      if (!decoded->is_response()) {
        return fail(errc::store_unavailable, "the answer to " + std::string(what) + " is not a response");
      }
      const std::uint16_t rcode = decoded->rcode();
      if (o.key && !has_tsig(*decoded) && (rcode == detail::dns_rcode::refused || rcode == detail::dns_rcode::notauth)) {
        // Refused without a signature (PowerDNS and Knot answer so to a key they refuse, or for
        // a zone they do not serve): not believed, but explained.
        return unexpected_error(refusal(rcode, what, decoded->opcode() == detail::dns_opcode::update, false));
      }
      if (o.key) {
        auto verified = detail::tsig_verify_response(*raw, *decoded, *o.key, request_mac, detail::unix_seconds_now(),
                                                     o.tsig_fudge_seconds);
        if (!verified) {
          // The RCODE, unless the TSIG error's message already names it.
          const bool named = verified.error().detail.view().find("server answered") != std::string_view::npos;
          return fail(errc::authentication_failed, std::string(what) + " (" + endpoint_text() +
                                                       (named ? "" : ", answered " + detail::rcode_text(rcode)) +
                                                       "): " + verified.error().detail);
        }
        decoded->additional.pop_back();  // the TSIG record, verified
      }
      return decoded;
    }
    return unexpected_error(std::move(last));
  }

  [[nodiscard]] static bool has_tsig(const detail::dns_message& m) noexcept {
    return std::any_of(m.additional.begin(), m.additional.end(),
                       [](const detail::dns_record& rr) { return rr.type == detail::dns_type::tsig; });
  }

  /// An idle pooled TCP connection, or none.
  [[nodiscard]] detail::unique_fd take_connection() const {
    std::lock_guard lock(state_->pool_mutex);
    if (state_->idle.empty()) return detail::unique_fd{};
    detail::unique_fd fd = std::move(state_->idle.back());
    state_->idle.pop_back();
    return fd;
  }
  /// A connection whose every request was answered, back to the pool (closed when it is full).
  void give_back(detail::unique_fd fd) const {
    std::lock_guard lock(state_->pool_mutex);
    if (state_->idle.size() < connections_idle_max) state_->idle.push_back(std::move(fd));
  }

  [[nodiscard]] result<std::vector<std::uint8_t>> exchange_pooled(std::span<const std::uint8_t> wire,
                                                                  detail::socket_deadline deadline, bool* sent) const {
    detail::unique_fd fd = take_connection();
    bool reused = fd.valid();
    for (;;) {
      if (!fd.valid()) {
        auto connected = detail::tcp_connect(state_->server, deadline);
        if (!connected) return unexpected_error(connected.error());
        fd = std::move(*connected);
      }
      if (sent != nullptr) *sent = true;
      auto raw = detail::exchange_tcp(fd.get(), wire, deadline);
      if (!raw) {
        fd.reset();
        // A pooled connection the server closed while idle fails at once: one fresh try.
        if (reused) {
          reused = false;
          continue;
        }
        return raw;
      }
      give_back(std::move(fd));
      return raw;
    }
  }

  std::unique_ptr<state> state_;
};

static_assert(record_store<rfc2136_store>);
static_assert(batched_store<rfc2136_store>);
static_assert(inspectable_store<rfc2136_store>);
static_assert(change_following_store<rfc2136_store>);
static_assert(marks_batch_store<rfc2136_store>);

}  // namespace v1
}  // namespace planfence
