// planfence/history.hpp: durable plan history, a plan registry backed by a directory.
//
// What it is: the plan registry (registry.hpp) with every published plan also kept as a file, so
// that plans survive a restart and an operator can read, export and re-apply any retained
// generation (planfence-ctl, docs/runbook.md). It wraps a `plan_registry`: opening a directory
// loads every plan file into an in-memory registry, and every publish and collection is written
// to the directory before (publish) or after (collection) the in-memory registry changes. It
// offers the registry's operations (publish, pin_latest, pin, find, latest, retained, collect,
// collect_one) with the same meaning, so the fixed enactor takes it unchanged as its Registry:
//
//     auto history = planfence::durable_history::open("/var/lib/planfence/history").value();
//     history->publish(std::move(plan)).value();        // durable before it returns
//     planfence::enactor e{store, authority, *history, clock, {.name = "az1"}};
//
// The directory: one file per generation, `0000000007.plan`, holding the plan's text form
// (format_plan, digest line included; the names `outage_replay --history` writes). Besides them
// only `planfence-history.lock` (the inter-process lock), `collected-high-water` (the largest
// generation ever collected) and, after a kill, abandoned temporary files `.*.tmp`.
//
// Guarantees:
//  - Durable and never torn. A plan file is written to a temporary file, fsynced, then linked to
//    its final name (link(2) fails if the name exists, so no file is ever replaced), and the
//    directory is fsynced, all before publish returns. A kill at any instant leaves either no
//    file for the generation or the complete one; an abandoned temporary file is ignored and
//    removed by the next writer that opens the directory.
//  - S5 across processes: publishes and collections of every process take an exclusive flock(2)
//    on the lock file, re-read the directory, and refuse a generation whose file holds other
//    content (errc::equivocation) or that was collected (errc::collected, from the persisted
//    high-water mark). Publishing identical content again is harmless.
//  - S7: a file that does not parse or whose digest does not match is never loaded; it is listed
//    in problems() with its file, line and column, left in place for an operator to inspect,
//    and a publish of that generation is refused rather than overwrite it.
//  - S3: collection is the in-memory registry's (pins, the live set read after the plan is closed
//    to new pins, the newest K), and only what it collected is deleted from the directory.
//    Pins are per process: a plan another process is applying is protected by the live set and
//    by the newest-K rule, and by the enactor's rule that only the lease holder collects (a
//    superseded holder's commits are fenced anyway).
//
// When not to use it: for plans that need no restart (plan_registry costs no I/O), or for hosts
// that do not share a file system (the etcd registry). Plans other processes publish become
// visible to pin_latest only after refresh(), which publish and collect call themselves; an
// embedder sharing a directory between processes calls it on its poll interval.
//
// Cost: publish and collect are blocking and allocate: a format_plan, two fsyncs (the file and the
// directory) and a directory scan each, milliseconds on a disk. open and refresh read and parse
// every new file: O(total plan text). pin_latest, pin and find are the in-memory registry's:
// lock-free, no I/O, no allocation.
//
// Limits: the registry's (retained generations must span less than `capacity`); one directory per
// registry; a local file system with POSIX link, rename and flock semantics (not NFS).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "plan.hpp"
#include "plan_text.hpp"
#include "registry.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// How a durable history is opened.
struct history_options {
  /// Read only: no lock file is created, nothing is cleaned or written; publish and collect
  /// refuse (errc::io_error). For inspection tools (planfence-ctl history, show, export).
  bool read_only = false;
  /// Create the directory if it does not exist (ignored when read_only).
  bool create = true;
  /// Retained plans at most; a power of two (basic_plan_registry's capacity).
  std::size_t capacity = plan_registry::capacity_default;
  /// Bound on a plan file's size: a larger file is not loaded (listed in problems(),
  /// errc::capacity_exceeded) and never read into memory. 256 MiB holds millions of endpoints:
  /// 1,000 endpoints of one A record each make 45 KB (docs/planfence-ctl.md, "Bounds").
  std::size_t plan_bytes_max = std::size_t{256} << 20;
};

/// A file in the history directory that could not be loaded (S7: never applied).
struct history_problem {
  std::string file;  ///< its path
  error what;        ///< what was wrong, with line and column when the text is at fault
};

/// A durable plan history. See the header comment.
///
/// Thread safety: every member may be called concurrently, and several processes may open the
/// same directory.
class durable_history {
 public:
  /// The lock file, the collected high-water file, and the plan file name width.
  static constexpr std::string_view lock_file_name = "planfence-history.lock";
  static constexpr std::string_view high_water_file_name = "collected-high-water";
  static constexpr std::size_t plan_file_digits = 10;

  /// Opens (and unless read_only, creates) the history in `directory` and loads every plan file.
  /// Files that do not load are listed in problems(), not refused: the rest of the history is
  /// still usable. Errors: errc::io_error (the directory cannot be read or created, or the lock
  /// cannot be taken). Blocking, allocates.
  [[nodiscard]] static result<std::unique_ptr<durable_history>> open(std::filesystem::path directory,
                                                                     history_options options = {}) {
    PLANFENCE_ASSERT(options.capacity >= 2);
    PLANFENCE_ASSERT((options.capacity & (options.capacity - 1)) == 0);
    std::unique_ptr<durable_history> history(new durable_history(std::move(directory), options));
    std::error_code ec;
    if (!options.read_only && options.create) std::filesystem::create_directories(history->directory_, ec);
    if (ec) return fail(errc::io_error, "cannot create " + history->directory_.string() + ": " + ec.message());
    if (!std::filesystem::is_directory(history->directory_, ec)) {
      const bool exists = std::filesystem::exists(history->directory_, ec);
      return fail(errc::io_error, history->directory_.string() + (exists ? " is not a directory" : " does not exist"));
    }
    if (!options.read_only) {
      const std::filesystem::path lock_path = history->directory_ / lock_file_name;
      // O_NOFOLLOW and O_NONBLOCK: a symlink or a FIFO planted under the lock's name is refused
      // rather than followed or blocked on.
      history->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
      if (history->lock_fd_ < 0) return fail(errc::io_error, "cannot open " + lock_path.string() + ": " + std::strerror(errno));
      struct stat info {};
      if (::fstat(history->lock_fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
        return fail(errc::io_error, lock_path.string() + ": not a regular file");
      }
    }
    std::lock_guard guard(history->mutex_);
    auto locked = history->lock_directory();
    if (!locked) return unexpected_error(locked.error());
    auto loaded = history->refresh_locked(/*clean=*/!options.read_only);
    if (!loaded) return unexpected_error(loaded.error());
    return history;
  }

  durable_history(const durable_history&) = delete;
  durable_history& operator=(const durable_history&) = delete;
  ~durable_history() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  /// Publishes `p`: durable in the directory, then in memory; returns it pinned. Errors:
  /// errc::equivocation (S5: the generation's file or in-memory plan holds other content),
  /// errc::collected (the generation was collected, by any process), errc::registry_full (its
  /// slot belongs to another retained generation), errc::digest_mismatch / parse_error (the
  /// generation's existing file is corrupt: it is not overwritten), errc::io_error (nothing was
  /// published). Identical content again returns the existing plan. Blocking, allocates.
  [[nodiscard]] result<pinned_plan> publish(plan p) {
    if (options_.read_only) return fail(errc::io_error, "history opened read-only");
    PLANFENCE_ASSERT(p.gen() != generation_none);
    const generation gen = p.gen();
    std::lock_guard guard(mutex_);
    auto locked = lock_directory();
    if (!locked) return unexpected_error(locked.error());
    auto fresh = refresh_locked(/*clean=*/false);
    if (!fresh) return unexpected_error(fresh.error());

    if (auto existing = registry_.pin(gen)) {
      if ((*existing)->digest() != p.digest()) {
        return fail(errc::equivocation, "generation " + std::to_string(gen.value()) + " is already sha256:" +
                                            (*existing)->digest_hex() + " in " + file_of(gen).string() +
                                            ", refusing sha256:" + p.digest_hex());
      }
      return std::move(*existing);
    }
    for (const history_problem& problem : problems_) {
      if (problem.file == file_of(gen).string()) {
        return unexpected_error(error{problem.what.code, problem.what.line, problem.what.column,
                                      problem.file + " exists but does not load (" + problem.what.message() +
                                          "): refusing to overwrite it"});
      }
    }
    if (gen <= collected_high_water_) {
      return fail(errc::collected, "generation " + std::to_string(gen.value()) + " was already collected (high water " +
                                       std::to_string(collected_high_water_.value()) + ")");
    }
    for (generation g : registry_.retained()) {
      if (((g.value() ^ gen.value()) & (options_.capacity - 1)) == 0) {
        return fail(errc::registry_full, "generation " + std::to_string(g.value()) +
                                             " still occupies the slot: collect old plans first");
      }
    }

    const std::string text = format_plan(p);
    const std::filesystem::path final_path = file_of(gen);
    const std::filesystem::path temporary = temporary_of(gen);
    if (auto written = write_synced(temporary, text); !written) return unexpected_error(written.error());
    // link(2), not rename(2): it refuses to replace an existing name, so a writer that does not
    // take our lock (another tool) can never have its plan silently overwritten.
    if (::link(temporary.c_str(), final_path.c_str()) != 0) {
      const int link_errno = errno;
      ::unlink(temporary.c_str());
      if (link_errno != EEXIST) {
        return fail(errc::io_error, "cannot link " + temporary.string() + " to " + final_path.string() + ": " +
                                        std::strerror(link_errno));
      }
      auto theirs = load_file(final_path, options_.plan_bytes_max);
      if (!theirs) {
        return unexpected_error(error{theirs.error().code, theirs.error().line, theirs.error().column,
                                      final_path.string() + " exists but does not load: " + theirs.error().message()});
      }
      if (theirs->digest() != p.digest()) {
        return fail(errc::equivocation, "generation " + std::to_string(gen.value()) + " is already sha256:" +
                                            theirs->digest_hex() + " in " + final_path.string() +
                                            ", refusing sha256:" + p.digest_hex());
      }
      // Same content, written by a writer outside our lock: adopt it.
    } else {
      ::unlink(temporary.c_str());
    }
    if (auto synced = sync_directory(); !synced) return unexpected_error(synced.error());
    // The file is durable: from here on the plan is published even if this process dies.
    auto published = registry_.publish(std::move(p));
    PLANFENCE_ASSERT(published.has_value() || published.error().code != errc::equivocation);
    return published;
  }

  /// The newest plan, pinned (the in-memory registry's; see refresh()). Lock-free, no I/O.
  [[nodiscard]] pinned_plan pin_latest() const noexcept { return registry_.pin_latest(); }
  /// The plan of `gen`, pinned. Errors: errc::not_found. Lock-free, no I/O.
  [[nodiscard]] result<pinned_plan> pin(generation gen) const noexcept { return registry_.pin(gen); }
  /// As plan_registry::find. Wait-free, no I/O.
  [[nodiscard]] const plan* find(generation gen, const detail::epoch_guard& guard) const noexcept {
    return registry_.find(gen, guard);
  }
  /// As plan_registry::retains. Wait-free, no I/O.
  [[nodiscard]] bool retains(generation gen, const detail::epoch_guard& guard) const noexcept {
    return registry_.retains(gen, guard);
  }
  /// The newest loaded generation. Wait-free.
  [[nodiscard]] generation latest() const noexcept { return registry_.latest(); }
  /// Loaded generations, oldest first. Blocking, allocates.
  [[nodiscard]] std::vector<generation> retained() const { return registry_.retained(); }
  /// The largest generation ever collected from this directory (generation_none if none).
  [[nodiscard]] generation collected_high_water() const {
    std::lock_guard guard(mutex_);
    return collected_high_water_;
  }
  /// Files that did not load. Blocking, allocates.
  [[nodiscard]] std::vector<history_problem> problems() const {
    std::lock_guard guard(mutex_);
    return problems_;
  }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  /// The path of the file that holds (or would hold) generation `gen`.
  [[nodiscard]] std::filesystem::path file_of(generation gen) const {
    char name[40];
    std::snprintf(name, sizeof name, "%0*llu.plan", static_cast<int>(plan_file_digits),
                  static_cast<unsigned long long>(gen.value()));
    return directory_ / name;
  }

  /// Loads plans other processes published since the last look. Returns how many were new.
  /// Errors: errc::io_error. Blocking, allocates.
  [[nodiscard]] result<std::size_t> refresh() {
    std::lock_guard guard(mutex_);
    auto locked = lock_directory();
    if (!locked) return unexpected_error(locked.error());
    return refresh_locked(/*clean=*/false);
  }

  /// Collects every plan the policy does not keep and S3 does not protect, as
  /// plan_registry::collect, then deletes their files. A file that cannot be deleted stays and is
  /// loaded again by the next open (keeping a plan is always safe). Blocking, allocates.
  template <class LiveGenerations>
  [[nodiscard]] collection_report collect(const retention_policy& policy, std::uint64_t now_unix_ms,
                                          LiveGenerations&& live) {
    if (options_.read_only) return {};
    std::lock_guard guard(mutex_);
    auto locked = lock_directory();
    if (!locked) return {};
    if (!refresh_locked(/*clean=*/false)) return {};
    collection_report report = registry_.collect(policy, now_unix_ms, live);
    forget_files(report.collected);
    return report;
  }

  /// Collects one generation if S3 allows it, as plan_registry::collect_one, then deletes its
  /// file. Errors: those of collect_one, errc::io_error. Blocking, allocates.
  template <class LiveGenerations>
  [[nodiscard]] result<void> collect_one(generation gen, LiveGenerations&& live) {
    if (options_.read_only) return fail(errc::io_error, "history opened read-only");
    std::lock_guard guard(mutex_);
    auto locked = lock_directory();
    if (!locked) return unexpected_error(locked.error());
    if (auto fresh = refresh_locked(/*clean=*/false); !fresh) return unexpected_error(fresh.error());
    auto collected = registry_.collect_one(gen, live);
    if (!collected) return collected;
    forget_files(std::span<const generation>(&gen, 1));
    return ok();
  }

  /// Reads and checks one plan file (S7): a regular file of at most `bytes_max` bytes whose text
  /// parses, carries a digest that matches, is exactly the canonical text publish writes (no
  /// comments or padding: nothing but publish writes these files), and names the generation its
  /// file name says (when the name is a generation's). Blocking.
  [[nodiscard]] static result<plan> load_file(const std::filesystem::path& path,
                                              std::size_t bytes_max = history_options{}.plan_bytes_max) {
    auto text = read_file(path, bytes_max);
    if (!text) return unexpected_error(text.error());
    auto parsed = parse_plan(*text);
    if (!parsed) return parsed;
    if (format_plan(*parsed) != *text) {
      return fail(errc::invalid_plan, "not the text publish writes (comments, blank lines or spacing were added): "
                                      "history files are written only by planfence");
    }
    if (auto named = generation_of_file_name(path.filename().string()); named && *named != parsed->gen()) {
      return fail(errc::invalid_plan, "the file name says generation " + std::to_string(named->value()) +
                                          " but the plan is generation " + std::to_string(parsed->gen().value()));
    }
    return parsed;
  }

  /// The generation a plan file name (`0000000007.plan`) names, or nothing for other names.
  [[nodiscard]] static std::optional<generation> generation_of_file_name(std::string_view name) noexcept {
    constexpr std::string_view suffix = ".plan";
    if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return std::nullopt;
    const std::string_view digits = name.substr(0, name.size() - suffix.size());
    if (digits.size() > 20 || digits.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value == 0) return std::nullopt;
    return generation{value};
  }

 private:
  durable_history(std::filesystem::path directory, history_options options)
      : directory_(std::move(directory)), options_(options), registry_(options.capacity) {}

  /// The inter-process lock for one operation: an exclusive flock(2) on the lock file, released
  /// when the operation ends. A process killed while holding it releases it (flock locks die with
  /// their file description). Read-only histories take none.
  class directory_lock {
   public:
    directory_lock() noexcept = default;
    explicit directory_lock(int fd) noexcept : fd_(fd) {}
    directory_lock(directory_lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    directory_lock& operator=(directory_lock&&) = delete;
    directory_lock(const directory_lock&) = delete;
    directory_lock& operator=(const directory_lock&) = delete;
    ~directory_lock() {
      if (fd_ >= 0) ::flock(fd_, LOCK_UN);
    }

   private:
    int fd_ = -1;
  };

  [[nodiscard]] result<directory_lock> lock_directory() {
    if (lock_fd_ < 0) return directory_lock{};
    while (::flock(lock_fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      return fail(errc::io_error, "cannot lock " + (directory_ / lock_file_name).string() + ": " + std::strerror(errno));
    }
    return directory_lock{lock_fd_};
  }

  /// Scans the directory: loads plan files not yet loaded, records the ones that do not load,
  /// reads the collected high-water mark and, with `clean`, removes abandoned temporary files
  /// (safe: every writer holds the lock while its temporary file exists, and so do we).
  [[nodiscard]] result<std::size_t> refresh_locked(bool clean) {
    auto high_water = read_high_water();
    if (!high_water) return unexpected_error(high_water.error());
    collected_high_water_ = std::max(collected_high_water_, *high_water);

    DIR* dir = ::opendir(directory_.c_str());
    if (dir == nullptr) return fail(errc::io_error, "cannot read " + directory_.string() + ": " + std::strerror(errno));
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) names.emplace_back(entry->d_name);
    ::closedir(dir);
    std::sort(names.begin(), names.end());

    std::size_t loaded = 0;
    for (const std::string& name : names) {
      const std::filesystem::path path = directory_ / name;
      if (name.size() > 5 && name[0] == '.' && name.ends_with(".tmp")) {
        if (clean) ::unlink(path.c_str());
        continue;
      }
      const auto gen = generation_of_file_name(name);
      if (!gen || registry_.pin(*gen)) continue;
      auto known_problem = std::find_if(problems_.begin(), problems_.end(),
                                        [&](const history_problem& x) { return x.file == path.string(); });
      auto plan_read = load_file(path, options_.plan_bytes_max);
      if (!plan_read) {
        if (known_problem == problems_.end()) problems_.push_back({path.string(), plan_read.error()});
        continue;
      }
      if (known_problem != problems_.end()) problems_.erase(known_problem);  // repaired by hand
      auto published = registry_.publish(std::move(*plan_read));
      if (!published) {
        problems_.push_back({path.string(), published.error()});
        continue;
      }
      ++loaded;
    }
    return loaded;
  }

  /// Persists the collection of `collected`: first the high-water mark (so no process can
  /// publish these generations again), then the files.
  void forget_files(std::span<const generation> collected) {
    if (collected.empty()) return;
    const generation highest = *std::max_element(collected.begin(), collected.end());
    if (highest > collected_high_water_) {
      const std::string text = std::to_string(highest.value()) + "\n";
      const std::filesystem::path final_path = directory_ / high_water_file_name;
      const std::filesystem::path temporary = directory_ / ("." + std::string(high_water_file_name) + "." +
                                                            std::to_string(::getpid()) + ".tmp");
      auto written = write_synced(temporary, text);
      if (!written || ::rename(temporary.c_str(), final_path.c_str()) != 0 || !sync_directory()) {
        ::unlink(temporary.c_str());
        return;  // the files stay: the plans reappear at the next open, which is safe
      }
      collected_high_water_ = highest;
    }
    for (generation g : collected) ::unlink(file_of(g).c_str());
    (void)sync_directory();
  }

  [[nodiscard]] result<generation> read_high_water() const {
    const std::filesystem::path path = directory_ / high_water_file_name;
    auto text = read_file(path, 64);
    if (!text) {
      if (text.error().code == errc::not_found) return generation_none;
      return unexpected_error(text.error());
    }
    std::string_view digits = *text;
    while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' ')) digits.remove_suffix(1);
    std::uint64_t value = 0;
    if (!detail::parse_decimal(digits, value) || value > generation_max.value()) {
      return fail_at(errc::parse_error, 1, 1, path.string() + ": expected the decimal generation last collected");
    }
    return generation{value};
  }

  [[nodiscard]] std::filesystem::path temporary_of(generation gen) const {
    static std::atomic<std::uint64_t> sequence{0};
    return directory_ / ("." + file_of(gen).filename().string() + "." + std::to_string(::getpid()) + "." +
                         std::to_string(sequence.fetch_add(1, std::memory_order_relaxed)) + ".tmp");
  }

  /// The file's whole text. Only a regular file of at most `bytes_max` bytes is read: a FIFO,
  /// a device (a symlink to /dev/zero) or a larger file is refused before any read, so nothing
  /// blocks and nothing unbounded is allocated. Errors: not_found, io_error, capacity_exceeded.
  [[nodiscard]] static result<std::string> read_file(const std::filesystem::path& path, std::size_t bytes_max) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      if (errno == ENOENT) return fail(errc::not_found, path.string() + ": no such file");
      return fail(errc::io_error, "cannot open " + path.string() + ": " + std::strerror(errno));
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      return fail(errc::io_error, path.string() + ": not a regular file (a FIFO, device or directory is never read)");
    }
    if (static_cast<std::uint64_t>(info.st_size) > bytes_max) {
      ::close(fd);
      return fail(errc::capacity_exceeded, path.string() + ": " + std::to_string(info.st_size) +
                                               " bytes, more than the bound of " + std::to_string(bytes_max));
    }
    std::string text;
    char buffer[8192];
    for (;;) {
      if (text.size() > bytes_max) {  // the file grew while being read
        ::close(fd);
        return fail(errc::capacity_exceeded, path.string() + ": more than the bound of " + std::to_string(bytes_max) + " bytes");
      }
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int read_errno = errno;
        ::close(fd);
        return fail(errc::io_error, "cannot read " + path.string() + ": " + std::strerror(read_errno));
      }
      if (n == 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
  }

  /// Writes `text` to a new file at `path` and fsyncs it. Blocking.
  [[nodiscard]] static result<void> write_synced(const std::filesystem::path& path, std::string_view text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return fail(errc::io_error, "cannot create " + path.string() + ": " + std::strerror(errno));
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int write_errno = errno;
        ::close(fd);
        ::unlink(path.c_str());
        return fail(errc::io_error, "cannot write " + path.string() + ": " + std::strerror(write_errno));
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const int sync_errno = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return fail(errc::io_error, "cannot fsync " + path.string() + ": " + std::strerror(sync_errno));
    }
    if (::close(fd) != 0) {
      ::unlink(path.c_str());
      return fail(errc::io_error, "cannot close " + path.string() + ": " + std::strerror(errno));
    }
    return ok();
  }

  [[nodiscard]] result<void> sync_directory() const {
    const int fd = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(errc::io_error, "cannot open " + directory_.string() + ": " + std::strerror(errno));
    const bool synced = ::fsync(fd) == 0;
    const int sync_errno = errno;
    ::close(fd);
    if (!synced) return fail(errc::io_error, "cannot fsync " + directory_.string() + ": " + std::strerror(sync_errno));
    return ok();
  }

  std::filesystem::path directory_;
  history_options options_;
  plan_registry registry_;
  mutable std::mutex mutex_;  // serialises this process's threads; flock serialises processes
  int lock_fd_ = -1;
  std::vector<history_problem> problems_;
  generation collected_high_water_ = generation_none;
};
// An enactor applies plans straight from a history directory (pins and lookups are its
// in-memory registry's; collect also deletes files).
static_assert(enactor_registry<durable_history>);

}  // namespace v1
}  // namespace planfence
