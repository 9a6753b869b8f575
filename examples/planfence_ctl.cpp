// examples/planfence_ctl.cpp: planfence-ctl, the operator's tool for manual recovery.
//
// What it is for: the path nobody practised in 2025. Every plan the planner publishes is kept in a
// durable history directory (include/planfence/history.hpp); this program reads it, exports any
// retained generation as a zone file, compares a store with a plan, applies a plan through the
// fixed enactor's own commit rules, and lets an operator fence automation out and hand control
// back (include/planfence/recovery.hpp; on etcd the hold is the lease authority's own holder key,
// include/planfence/etcd/operator_hold.hpp), and shows a store's state at a glance for the
// operator on call (status). docs/runbook.md walks through the 2025 situation with it;
// docs/planfence-ctl.md lists every command and option. Run `planfence-ctl --help`, or
// `planfence-ctl COMMAND --help`.
//
// The rule every command keeps (docs/planfence-ctl.md, "What the exit status promises"): exit 0
// only when what the command says happened happened and was verified, by reading the store back
// where the store allows it; every failure prints its cause in the store's own words and what the
// operator can do; the output is checked (a report or zone that could not be written is an error,
// and a zone or plan written to a file is never left torn). Store URIs are printed redacted
// (detail/uri.hpp): no secret reaches any output. SIGINT and SIGTERM stop a long command between
// two endpoints, with a report of what was done, and temporary files are removed.
//
// Exit status: 0 success (diff: the store agrees with the plan); 1 the operation ran and found or
// left something wrong (diff: drift; apply: an endpoint not verified; history: a file that does not
// load; release: no hold); 2 bad usage or an error before anything was done; 3 the command ran but
// its output could not be written; 130 / 143 interrupted by SIGINT / SIGTERM.
#include <planfence/etcd/operator_hold.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/history.hpp>
#include <planfence/plan.hpp>
#include <planfence/plan_text.hpp>
#include <planfence/recovery.hpp>
#include <planfence/store/any_store.hpp>
#include <planfence/store/open_store.hpp>
#include <planfence/zonefile/zone.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>  // mkdtemp
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace pf = planfence;

constexpr int exit_ok = 0;
constexpr int exit_found = 1;
constexpr int exit_usage = 2;
constexpr int exit_output = 3;

// --- interruption --------------------------------------------------------------------------------

// SIGINT and SIGTERM set these; long loops read them between two endpoints and stop with a report.
// A second signal takes the default action at once (SA_RESETHAND).
std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal{0};

extern "C" void on_stop_signal(int signal_number) {
  stop_signal.store(signal_number, std::memory_order_relaxed);
  stop_requested.store(true, std::memory_order_relaxed);
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = &on_stop_signal;
  action.sa_flags = SA_RESETHAND;  // no SA_RESTART: a blocking wait returns early and is retried
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

[[nodiscard]] bool interrupted() { return stop_requested.load(std::memory_order_relaxed); }

int interrupted_status() {
  const int number = stop_signal.load(std::memory_order_relaxed);
  return 128 + (number == 0 ? SIGINT : number);
}

const char* signal_name() { return stop_signal.load(std::memory_order_relaxed) == SIGTERM ? "SIGTERM" : "SIGINT"; }

// --- output --------------------------------------------------------------------------------------

// Where standard output started when it is a regular file: a document (plan, zone) that cannot
// be written whole is cut back to it, so no torn zone is ever left for a server to load.
struct output_origin {
  bool regular = false;
  off_t offset = 0;
};
output_origin stdout_origin() {
  struct stat info {};
  output_origin out;
  if (::fstat(STDOUT_FILENO, &info) == 0 && S_ISREG(info.st_mode)) {
    // Opened for appending (>>), writes start at the end whatever the offset says now.
    const int flags = ::fcntl(STDOUT_FILENO, F_GETFL);
    const off_t at = flags >= 0 && (flags & O_APPEND) != 0 ? info.st_size : ::lseek(STDOUT_FILENO, 0, SEEK_CUR);
    out.regular = at >= 0;
    out.offset = at < 0 ? 0 : at;
  }
  return out;
}

/// Writes all of `text` to `fd`; errno on failure, 0 on success.
int write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// --- options --------------------------------------------------------------------------------

struct option_spec {
  std::string_view name;        // "--dir"
  std::string_view value_name;  // "DIR", empty for a flag
  std::string_view help;
};

struct command_spec {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;
  std::vector<option_spec> options;
  std::string_view description;
};

const option_spec dir_option{"--dir", "DIR", "the plan history directory (one NNNNNNNNNN.plan file per generation), or etcd[s]://HOST:PORT[,...]/PREFIX (read only)"};
const option_spec generation_option{"--generation", "N", "a retained generation, or 'latest'"};
const option_spec store_option{"--store", "URI", "the record store, e.g. zonefile:///var/lib/planfence/zones"};
const option_spec plan_bytes_option{"--plan-bytes-max", "BYTES",
                                    "refuse plan files larger than this (default 268435456, 256 MiB)"};
const option_spec batch_option{"--batch", "N", "endpoints per store call, 1 to 65536 (default 4096; smaller stops sooner on a signal)"};
static_assert(pf::batch_max_limit == 65536, "--batch's help says 1 to 65536");

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> all = {
      {"history", "list the retained generations: times, digests, endpoint counts",
       "planfence-ctl history --dir DIR [--plan-bytes-max BYTES]",
       {dir_option, plan_bytes_option},
       "Lists every plan file of the history, oldest first, and every file that does not load\n"
       "(file, line, column, what is wrong). A file that does not load is never applied (S7).\n"
       "Exit status 1 when such a file exists. Reads only."},
      {"show", "print one generation in the plan text form", "planfence-ctl show --dir DIR --generation N [--plan-bytes-max BYTES]",
       {dir_option, generation_option, plan_bytes_option},
       "Prints the plan exactly as stored (format_plan; its digest line is checked on load). Reads only.\n"
       "When standard output is a file that cannot be written whole, the file is cut back to what it held\n"
       "before, and the exit status is 3."},
      {"export", "print one generation as an RFC 1035 zone file",
       "planfence-ctl export --dir DIR --generation N --zone ZONE [--output FILE] [--skip-outside] "
       "[--name-server NAME] [--plan-bytes-max BYTES]",
       {dir_option, generation_option, {"--zone", "ZONE", "the zone's name, e.g. us-east-1.example."},
        {"--output", "FILE", "write the zone to FILE atomically (temp file, fsync, rename; a symlink is followed,\n"
         "                         owner and mode kept) instead of standard output"},
        {"--skip-outside", "", "leave out endpoints outside ZONE (default: refuse them)"},
        {"--name-server", "NAME", "an NS name for the SOA and NS records (default ns1.ZONE, glue 127.0.0.1)"},
        plan_bytes_option},
       "Writes a complete zone (SOA with the serial derived from the generation, NS, every endpoint's\n"
       "records, the _planfence stamps, weights in _weight._planfence TXT records), only once all of it\n"
       "is built. Load it with any authoritative server (knotd, named, nsd). With --output the file\n"
       "appears whole or not at all. On standard output, a file that cannot be written whole is cut back\n"
       "to what it held before, and the exit status is 3: never load a zone from a failed export."},
      {"diff", "compare what a store serves with a generation",
       "planfence-ctl diff --dir DIR --generation N --store URI [--plan-bytes-max BYTES]",
       {dir_option, generation_option, store_option, plan_bytes_option},
       "For every endpoint the store holds or the plan names: the records the plan has that the store\n"
       "does not serve ('missing', marked -), the records the store serves that the plan does not\n"
       "('extra', marked +), and the generation it serves, which must be N for every endpoint of the\n"
       "plan: its stamp's, or the store's applied mark when that is newer (an endpoint a later apply\n"
       "did not change). Exit status 0 only when records and generations agree. Reads only: writes\n"
       "nothing to the store or the history."},
      {"apply", "apply one generation through the enactor's commit rules",
       "planfence-ctl apply --dir DIR --generation N --store URI [--fence F] [--batch N] [--plan-bytes-max BYTES]",
       {dir_option, generation_option, store_option,
        {"--fence", "F", "the fence token to commit with (default: the store's current fence floor)"},
        batch_option, plan_bytes_option},
       "Runs the fixed enactor once, for generation N only: raises the store's fence to F, then for each\n"
       "endpoint reads its stamp and commits conditionally (S1: an endpoint serving N or newer is left\n"
       "alone; S2: a larger fence refuses the whole apply; S4: an endpoint is never emptied unless the\n"
       "plan says intent=empty; S7: the digest is checked). Each endpoint's outcome is printed as it is\n"
       "decided, with progress on standard error. Every endpoint of the plan is written, not only what\n"
       "changed (a repair), under the store's apply marks (an N older than the applied one: nothing).\n"
       "Then every endpoint is read back: exit status 0 only when each serves N or newer, with N's\n"
       "records. Does not keep automation out: see override. On an etcd store with holder-key fencing\n"
       "it commits only while override's hold is in place, with the hold's token."},
      {"override", "fence automation out with an operator hold, then apply a generation",
       "planfence-ctl override --dir DIR --generation N --store URI [--batch N] [--plan-bytes-max BYTES]",
       {dir_option, generation_option, store_option, batch_option, plan_bytes_option},
       "Fences automation out, then applies N as apply does (read back included). On an etcd store\n"
       "with holder-key fencing (the default URI) the hold is the etcd lease authority's own holder key,\n"
       "PREFIX/holder, created with no etcd lease so that it outlives this command (an automation\n"
       "holder's key is deleted and its lease revoked first): etcd refuses every commit with another\n"
       "token, and automation cannot acquire the lease until release. On other stores, and etcd with\n"
       "?fence=floor, it raises the store's fence to an operator fence (the next multiple of 1024 above\n"
       "the floor) and reads the floor back; automation's lease authority, wrapped in\n"
       "fence_floor_authority, refuses to grant while the floor is an operator fence. Either hold is\n"
       "read back before anything is applied; when it cannot be taken, nothing is applied (exit 2)."},
      {"release", "hand control back to automation after override", "planfence-ctl release --store URI",
       {store_option},
       "Ends the operator hold and reads the store back. On etcd: deletes the holder key override\n"
       "took; automation acquires the lease at once, with a newer token (an etcd revision above the\n"
       "hold's). A floor-based hold: raises the store's fence once more, to the operator fence + 1;\n"
       "automation (fence_floor_authority) then grants tokens above it and resumes, and the operator's\n"
       "own fence is refused from then on. Exit status 1 when there is no operator hold to release\n"
       "(then nothing is written)."},
      {"status", "one screen for the person on call: hold, generations served, what is broken",
       "planfence-ctl status --store URI [--dir DIR] [--json] [--plan-bytes-max BYTES]",
       {store_option, dir_option, {"--json", "", "print one JSON document (every list in full) instead of the screen"},
        plan_bytes_option},
       "Reads the whole store once (1,024 endpoints per store call, progress on standard error) and\n"
       "shows its fence floor and whether an operator hold is in place (on etcd, who holds the lease),\n"
       "the newest generation the history (--dir) retains, how many endpoints serve it, which serve\n"
       "an older or a newer one, which serve NO RECORDS, and which serve a generation whose plan the\n"
       "history no longer has. Generations are effective ones: an endpoint a later apply did not\n"
       "change serves the store's applied mark. Each list shows its first 20 names on the screen;\n"
       "--json lists them all. All stores list their endpoints but RFC 2136 ones, for which the\n"
       "newest plan's are read (--dir is then required). Exit status 1 when an endpoint serves\n"
       "nothing (and no plan says it should) or serves a generation the history does not retain;\n"
       "0 otherwise, also during an operator hold. Reads only: writes nothing anywhere."},
      {"rehearse", "REHEARSAL ONLY: put a fresh zone-file store into the 2025 state",
       "planfence-ctl rehearse --dir DIR --store URI --zone ZONE --endpoint NAME [--generation N] [--stamp G] "
       "[--plan-bytes-max BYTES]",
       {dir_option, {"--generation", "N", "the generation the other endpoints serve (default: latest)"}, store_option,
        {"--zone", "ZONE", "the zone to create in the store, e.g. us-east-1.amazonaws.com."},
        {"--endpoint", "NAME", "the endpoint to leave empty, as the 2025 enactors left it"},
        {"--stamp", "G", "the generation the emptied endpoint's stamp names (default: the oldest retained)"},
        plan_bytes_option},
       "For drills (docs/runbook.md, 'Rehearse it'): creates ZONE in a zone-file store that serves\n"
       "nothing yet, makes every endpoint of generation N serve N, except NAME, which is left with no\n"
       "records under the stamp of an older generation (--stamp): what a delayed enactor's unconditional\n"
       "write followed by the clean-up of that plan left in 2025. It writes past the enactor's rules on\n"
       "purpose, so it refuses any store in which an endpoint was ever written."},
  };
  return all;
}

const command_spec* find_command(std::string_view name) {
  for (const command_spec& c : commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void print_main_help() {
  std::printf(
      "planfence-ctl: manual recovery for planfence plan automation (docs/runbook.md)\n\n"
      "Usage: planfence-ctl COMMAND [OPTIONS]   (planfence-ctl COMMAND --help for one command)\n\n"
      "Commands:\n");
  for (const command_spec& c : commands()) {
    std::printf("  %-9s %s\n", std::string(c.name).c_str(), std::string(c.summary).c_str());
  }
  std::printf("\nStores are named by URI:\n");
  for (const pf::store_scheme& s : pf::known_store_schemes()) std::printf("  %s\n", std::string(s.example).c_str());
  std::printf(
      "\nExit status: 0 success, verified (diff: agreement); 1 something found or not applied; 2 usage, or an\n"
      "error before anything was done; 3 the output could not be written; 130/143 interrupted (SIGINT/SIGTERM).\n");
}

void print_command_help(const command_spec& c) {
  std::string summary(c.summary);
  if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z') summary[0] = static_cast<char>(summary[0] - 'a' + 'A');
  std::printf("Usage: %s\n\n%s.\n\n", std::string(c.usage).c_str(), summary.c_str());
  std::printf("Options:\n");
  for (const option_spec& o : c.options) {
    const std::string left = std::string(o.name) + (o.value_name.empty() ? "" : " " + std::string(o.value_name));
    std::printf("  %-22s %s\n", left.c_str(), std::string(o.help).c_str());
  }
  std::printf("  %-22s %s\n\n%s\n", "--help", "this text", std::string(c.description).c_str());
}

[[noreturn]] void usage_error(const command_spec* c, const std::string& message) {
  std::fprintf(stderr, "planfence-ctl%s%s: %s\n", c ? " " : "", c ? std::string(c->name).c_str() : "", message.c_str());
  std::fprintf(stderr, "Try 'planfence-ctl %s--help'.\n", c ? (std::string(c->name) + " ").c_str() : "");
  std::exit(exit_usage);
}

struct arguments {
  std::map<std::string, std::string, std::less<>> values;
  [[nodiscard]] bool has(std::string_view name) const { return values.find(name) != values.end(); }
  [[nodiscard]] const std::string& get(std::string_view name) const { return values.find(name)->second; }
};

arguments parse_arguments(const command_spec& c, int argc, char** argv) {
  arguments out;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_command_help(c);
      std::exit(exit_ok);
    }
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (const std::size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const auto spec = std::find_if(c.options.begin(), c.options.end(), [&](const option_spec& o) { return o.name == name; });
    if (spec == c.options.end()) usage_error(&c, "unknown option '" + std::string(arg) + "'");
    if (out.has(name)) usage_error(&c, std::string(name) + " given twice");
    if (spec->value_name.empty()) {
      if (inline_value) usage_error(&c, std::string(name) + " takes no value");
      out.values.emplace(std::string(name), "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) usage_error(&c, std::string(name) + " needs " + std::string(spec->value_name));
      inline_value = argv[++i];
    }
    if (inline_value->empty()) usage_error(&c, std::string(name) + ": empty " + std::string(spec->value_name));
    out.values.emplace(std::string(name), std::string(*inline_value));
  }
  // Every option with a value that appears in the usage line without brackets is required.
  for (const option_spec& o : c.options) {
    if (o.value_name.empty()) continue;
    const std::string required = std::string(o.name) + " " + std::string(o.value_name);
    const std::string usage(c.usage);
    const std::size_t at = usage.find(required);
    const bool optional = at == std::string::npos || (at > 0 && usage[at - 1] == '[');
    if (!optional && !out.has(o.name)) usage_error(&c, "missing " + required);
  }
  return out;
}

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t value = 0;
  if (!pf::detail::parse_decimal(text, value)) return std::nullopt;
  return value;
}

// --- shared steps ---------------------------------------------------------------------------

/// Prints a library error as "planfence-ctl CMD: context: what" and returns exit_usage. Store
/// errors never carry a secret (the stores redact their URIs), and `context` names stores by
/// their redacted URI.
int report_error(const command_spec& c, const std::string& context, const pf::error& e) {
  std::fflush(stdout);
  std::fprintf(stderr, "planfence-ctl %s: %s%s%s\n", std::string(c.name).c_str(), context.c_str(),
               context.empty() ? "" : ": ", e.message().c_str());
  return exit_usage;
}

/// "FILE:LINE:COLUMN: code: what" (the position only when the text is at fault).
std::string describe_problem(const pf::history_problem& p) {
  std::string out = p.file;
  if (p.what.line != 0) out += ":" + std::to_string(p.what.line) + ":" + std::to_string(p.what.column);
  out += ": ";
  out += pf::to_string(p.what.code);
  if (!p.what.detail.empty()) out += ": " + p.what.detail;
  return out;
}

// What --dir names, for messages: the directory, or the redacted etcd URI a snapshot was taken from.
std::string history_label;
// Plans of an etcd history that did not load (problems() of a directory history lists its own).
std::vector<pf::history_problem> snapshot_problems;

/// --batch: endpoints per store call in apply_plan.
std::uint32_t batch_size(const command_spec& c, const arguments& args) {
  if (!args.has("--batch")) return pf::apply_plan_batch_max;
  std::uint64_t value = 0;
  if (!pf::detail::parse_decimal(args.get("--batch"), value) || value == 0 || value > pf::batch_max_limit) {
    usage_error(&c, "--batch: expected a number of endpoints from 1 to " + std::to_string(pf::batch_max_limit) + ", got '" + args.get("--batch") + "'");
  }
  return static_cast<std::uint32_t>(value);
}

std::size_t plan_bytes_max(const command_spec& c, const arguments& args) {
  if (!args.has("--plan-bytes-max")) return pf::history_options{}.plan_bytes_max;
  std::uint64_t value = 0;
  if (!pf::detail::parse_decimal(args.get("--plan-bytes-max"), value) || value == 0 ||
      value > (std::uint64_t{1} << 40)) {
    usage_error(&c, "--plan-bytes-max: expected a byte count from 1 to 2^40, got '" + args.get("--plan-bytes-max") + "'");
  }
  return static_cast<std::size_t>(value);
}

// A plan history kept in etcd (--dir etcd://HOST:PORT/PREFIX, docs/etcd.md) is read into a
// private temporary directory, one plan file per retained generation, and opened from there like
// any other history: every plan is digest-checked on the way in (S7), and nothing is written to
// etcd. The snapshot is removed when the program exits, also after SIGINT or SIGTERM (the loop
// stops between two plans and the program exits normally).
struct etcd_history_snapshot {
  std::filesystem::path directory;
  ~etcd_history_snapshot() {
    std::error_code ec;
    if (!directory.empty()) std::filesystem::remove_all(directory, ec);
  }
};

std::string snapshot_etcd_history(const command_spec& c, const std::string& uri) {
  static etcd_history_snapshot snapshot;
  const std::string label = "--dir " + pf::detail::redact_uri(uri);
  // must_exist: a mistyped prefix is an error naming it, not an empty history.
  auto registry = pf::etcd::etcd_plan_registry::open_uri(uri, {.must_exist = true});
  if (!registry) std::exit(report_error(c, label, registry.error()));
  auto retained = registry->retained();
  if (!retained) std::exit(report_error(c, label, retained.error()));
  std::string pattern = (std::filesystem::temp_directory_path() / "planfence-ctl-etcd-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::exit(report_error(c, label, pf::error{pf::errc::io_error, 0, 0, "cannot make a temporary directory: " +
                                                                              std::string(std::strerror(errno))}));
  }
  snapshot.directory = pattern;
  auto history = pf::durable_history::open(snapshot.directory);
  if (!history) std::exit(report_error(c, label, history.error()));
  for (pf::generation g : *retained) {
    if (interrupted()) {
      std::fprintf(stderr, "planfence-ctl %s: interrupted by %s while reading the history; nothing was done\n",
                   std::string(c.name).c_str(), signal_name());
      std::exit(interrupted_status());
    }
    auto p = registry->lookup(g);
    if (!p) {
      if (p.error().code == pf::errc::not_found) continue;  // collected while we listed
      snapshot_problems.push_back({registry->keys().plan(g.value()), p.error()});  // named by its key
      continue;
    }
    auto published = (*history)->publish(std::move(*p));
    if (!published) std::exit(report_error(c, label, published.error()));
  }
  return pattern;
}

/// Every plan of the history that does not load: the directory's and the etcd snapshot's.
std::vector<pf::history_problem> all_problems(const pf::durable_history& history) {
  std::vector<pf::history_problem> out = history.problems();
  out.insert(out.end(), snapshot_problems.begin(), snapshot_problems.end());
  return out;
}

/// The generation a problem names, when it names one: a plan file's name, or an etcd plan key's
/// last component (PREFIX/plans/NNNNNNNNNNNNNNNNNNNN).
std::optional<pf::generation> generation_of_problem(const pf::history_problem& p) {
  const std::string last = std::filesystem::path(p.file).filename().string();
  if (auto named = pf::durable_history::generation_of_file_name(last)) return named;
  std::uint64_t value = 0;
  if (!last.empty() && pf::detail::parse_decimal(last, value) && value != 0 && value <= pf::generation_max.value()) {
    return pf::generation{value};
  }
  return std::nullopt;
}

std::unique_ptr<pf::durable_history> open_history(const command_spec& c, const arguments& args, bool warn = true) {
  const std::string& given = args.get("--dir");
  const bool in_etcd = given.starts_with("etcd://") || given.starts_with("etcds://");
  history_label = in_etcd ? pf::detail::redact_uri(given) : given;
  const std::string dir = in_etcd ? snapshot_etcd_history(c, given) : given;
  pf::history_options options;
  options.read_only = true;
  options.plan_bytes_max = plan_bytes_max(c, args);
  auto history = pf::durable_history::open(dir, options);
  if (!history) std::exit(report_error(c, "--dir " + history_label, history.error()));
  for (const pf::history_problem& p : warn ? all_problems(**history) : std::vector<pf::history_problem>{}) {
    std::fprintf(stderr, "planfence-ctl %s: warning: %s (not loaded, never applied)\n", std::string(c.name).c_str(),
                 describe_problem(p).c_str());
  }
  return std::move(*history);
}

pf::pinned_plan pin_generation(const command_spec& c, const arguments& args, const pf::durable_history& history) {
  const std::string& text = args.get("--generation");
  pf::generation gen = history.latest();
  if (text != "latest") {
    const auto number = parse_number(text);
    if (!number || *number == 0 || *number > pf::generation_max.value()) {
      usage_error(&c, "--generation: expected a generation number from 1 to 2^40-1 or 'latest', got '" + text + "'");
    }
    gen = pf::generation{*number};
  } else {
    // 'latest' means the newest plan of the history, not the newest that loads: an operator who
    // asks for the latest must not silently get an older one.
    const std::vector<pf::history_problem> problems = all_problems(history);
    const pf::history_problem* newest_broken = nullptr;
    pf::generation broken_gen = gen;
    for (const pf::history_problem& p : problems) {
      const auto broken = generation_of_problem(p);
      if (broken && *broken > broken_gen) {
        broken_gen = *broken;
        newest_broken = &p;
      }
    }
    if (newest_broken != nullptr) {
      std::fprintf(stderr,
                   "planfence-ctl %s: the newest generation, %llu, does not load: %s\n"
                   "Name a generation (--generation N) to use an older one; 'planfence-ctl history' lists them.\n",
                   std::string(c.name).c_str(), static_cast<unsigned long long>(broken_gen.value()),
                   describe_problem(*newest_broken).c_str());
      std::exit(exit_usage);
    }
  }
  auto pinned = history.pin(gen);
  if (gen == pf::generation_none || !pinned) {
    std::string retained;
    for (pf::generation g : history.retained()) retained += " " + std::to_string(g.value());
    std::fprintf(stderr, "planfence-ctl %s: generation %s is not in %s (retained:%s)\n", std::string(c.name).c_str(),
                 text.c_str(), history_label.c_str(), retained.empty() ? " none" : retained.c_str());
    std::exit(exit_usage);
  }
  return std::move(*pinned);
}

enum class store_use { read, write };

/// Opens --store; `p` (when given) names the endpoints for stores that cannot list their own. A
/// store only read (diff, release's check) must exist: an etcd prefix holding nothing is a
/// mistyped prefix, an error naming it, rather than a store that differs from everything.
pf::any_store open_store(const command_spec& c, const arguments& args, const pf::plan* p = nullptr,
                         store_use use = store_use::write) {
  const std::string& uri = args.get("--store");
  std::vector<std::string> names;
  if (p != nullptr) {
    for (const auto& e : p->endpoints()) names.push_back(e->name);
  }
  auto store = use == store_use::read && (uri.starts_with("etcd://") || uri.starts_with("etcds://"))
                   ? pf::make_any_store(pf::etcd_store::open_uri(uri, {.must_exist = true}), pf::detail::redact_uri(uri))
                   : pf::open_store(uri, pf::known_store_schemes(), names);
  if (!store) std::exit(report_error(c, "--store " + pf::detail::redact_uri(uri), store.error()));
  return std::move(*store);
}

/// The etcd store behind `store` when it fences by holder key (the default): override then takes
/// the lease authority's own holder key as its hold (etcd/operator_hold.hpp).
pf::etcd_store* holder_key_etcd(pf::any_store& store) {
  auto* etcd = store.get_if<pf::etcd_store>();
  return etcd != nullptr && etcd->mode() == pf::etcd::fence_mode::holder_key ? etcd : nullptr;
}

/// apply commits with planfence-ctl's own token, which is no etcd holder key unless an operator
/// hold (override) is in place: an etcd store in holder-key mode would refuse every commit as
/// fenced. Say so before anything is done.
[[noreturn]] void refuse_holder_key_apply(const command_spec& c, pf::any_store& store) {
  usage_error(&c, "--store " + store.description() +
                      ": this etcd store uses holder-key fencing (the default), which refuses every commit whose\n"
                      "token is not the create revision of a live holder key, and no operator hold is in place.\n"
                      "Run 'planfence-ctl override' (it takes the holder key itself and keeps automation out), or add\n"
                      "?fence=floor to the URI when automation is known to be stopped (docs/etcd.md)");
}

/// Reads the store's fence floor back after raising it to `wanted`; an error when it is lower.
pf::result<pf::fence_token> raise_and_verify(pf::any_store& store, pf::fence_token wanted) {
  if (auto raised = store.raise_fence(wanted); !raised) return pf::unexpected_error(std::move(raised).error());
  auto floor = pf::store_fence_floor(store);
  if (!floor) return floor;
  if (*floor < wanted) {
    return pf::fail(pf::errc::store_unavailable, "the store accepted the fence " + std::to_string(wanted.value()) +
                                                     " but its floor reads back as " + std::to_string(floor->value()));
  }
  return floor;
}

std::string utc_time(std::uint64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", parts.tm_year + 1900, parts.tm_mon + 1,
                parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, static_cast<unsigned>(unix_ms % 1000));
  return text;
}

std::string describe_record(const pf::record& r) {
  std::string out = std::string(pf::to_string(r.type)) + " " + std::to_string(r.ttl);
  if (r.weight) out += " weight=" + std::to_string(*r.weight);
  return out + " " + r.rdata;
}

std::string describe_stamp(const pf::stamp& s) {
  if (s.gen == pf::generation_none && s.fence == pf::fence_token{}) return "never written";
  return "serves g" + std::to_string(s.gen.value()) + ", fence " + std::to_string(s.fence.value());
}

std::string describe_outcome(const pf::endpoint_outcome& o) {
  const std::string because = o.detail.empty() ? std::string{} : ": " + o.detail;
  switch (o.outcome) {
    case pf::event_kind::applied: return "applied";
    case pf::event_kind::stale: return "left alone: already serves this generation or a newer one (S1)";
    case pf::event_kind::refused_blast_radius: return "REFUSED: would empty the endpoint or change too much (S4)";
    case pf::event_kind::unknown_endpoint: return "NOT APPLIED: the store has no such endpoint" + because;
    case pf::event_kind::conflict:
      return "NOT APPLIED: its stamp kept moving (another writer is active; run again once it has stopped)";
    case pf::event_kind::fenced: return "FENCED (S2): the store holds a larger token" + because;
    case pf::event_kind::store_error: return "NOT APPLIED: the store failed" + because;
    default: return std::string(pf::to_string(o.outcome));
  }
}

/// Standard-error progress for long commands: at most one line every two seconds, or every
/// PLANFENCE_CTL_PROGRESS_MS milliseconds when that is set (0: a line per endpoint).
class progress_meter {
 public:
  progress_meter(const command_spec& c, std::string what) : command_(c.name), what_(std::move(what)) {
    std::uint64_t ms = 0;
    if (const char* text = std::getenv("PLANFENCE_CTL_PROGRESS_MS"); text != nullptr && pf::detail::parse_decimal(text, ms)) {
      interval_ = std::chrono::milliseconds(std::min<std::uint64_t>(ms, 3'600'000));
    }
  }
  void operator()(std::size_t done, std::size_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < interval_ && done != total) return;
    if (done == total && !shown_ && interval_.count() != 0) return;  // a short run needs no progress line
    last_ = now;
    shown_ = true;
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) * 1000.0 / static_cast<double>(elapsed) : 0.0;
    std::fprintf(stderr, "planfence-ctl %s: %s %zu of %zu endpoints (%zu%%), %llds, %.0f endpoints/s\n",
                 std::string(command_).c_str(), what_.c_str(), done, total, total == 0 ? 100 : done * 100 / total,
                 static_cast<long long>(elapsed / 1000), rate);
  }

 private:
  std::string_view command_;
  std::string what_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::milliseconds interval_{2000};
  std::chrono::steady_clock::time_point last_ = started_;
  bool shown_ = false;
};

/// Runs apply_plan, printing each endpoint's outcome as soon as it is final, then the summary.
/// Returns the exit status.
int apply_and_report(const command_spec& c, pf::any_store& store, const pf::durable_history& history, pf::generation gen,
                     pf::fence_token fence, std::uint32_t batch) {
  std::printf("Applying generation %llu to %s with fence %llu:\n", static_cast<unsigned long long>(gen.value()),
              store.description().c_str(), static_cast<unsigned long long>(fence.value()));
  std::fflush(stdout);
  progress_meter meter(c, "decided");
  pf::recovery_hooks hooks;
  hooks.stop = &stop_requested;
  hooks.on_endpoint = [](const pf::endpoint_outcome& o) {
    std::printf("  %-44s %s\n", o.name.c_str(), describe_outcome(o).c_str());
    std::fflush(stdout);
  };
  hooks.progress = [&](std::size_t done, std::size_t total) { meter(done, total); };
  auto report = pf::apply_plan(store, history, gen, fence, hooks, batch);
  if (!report) return report_error(c, store.description(), report.error());
  const auto count = [&](pf::event_kind kind) {
    return static_cast<std::size_t>(std::count_if(report->endpoints.begin(), report->endpoints.end(),
                                                  [&](const pf::endpoint_outcome& o) { return o.outcome == kind; }));
  };
  for (const std::string& e : report->store_errors) std::printf("Store error: %s\n", e.c_str());
  if (report->invalid) {
    std::printf("Not applied: the plan does not match its digest (S7).\n");
    return exit_found;
  }
  if (report->interrupted) {
    std::printf("Interrupted by %s after %zu endpoints were decided (%zu applied); the others were not touched.\n"
                "Every commit is atomic: run the same command again to finish.\n",
                signal_name(), report->endpoints.size(), count(pf::event_kind::applied));
    return interrupted_status();
  }
  if (report->fenced) {
    std::printf("Stopped: the store refused fence %llu because it has accepted a larger token (S2). Someone took\n"
                "control after this command raised its fence: run 'planfence-ctl diff' to see the store's state.\n",
                static_cast<unsigned long long>(fence.value()));
    return exit_found;
  }
  if (!report->unverified.empty()) {
    std::printf("Not done: read back, %zu endpoint%s of generation %llu do%s not serve it or a newer one:\n",
                report->unverified.size(), report->unverified.size() == 1 ? "" : "s",
                static_cast<unsigned long long>(gen.value()), report->unverified.size() == 1 ? "es" : "");
    for (const pf::endpoint_unverified& u : report->unverified) std::printf("  %-44s %s\n", u.name.c_str(), u.why.c_str());
    return exit_found;
  }
  if (!report->complete) {
    std::printf("Not done: the run ended before every endpoint was decided (see the store errors above).\n");
    return exit_found;
  }
  std::printf("Verified by reading the store back: every endpoint of generation %llu serves it or a newer one.\n",
              static_cast<unsigned long long>(gen.value()));
  return exit_ok;
}

std::optional<std::string> canonical_or_usage(const command_spec& c, std::string_view option, const std::string& name) {
  auto canonical = pf::canonical_name(name);
  if (!canonical) usage_error(&c, std::string(option) + ": " + canonical.error().message());
  return *canonical;
}

/// Writes a document (a plan or a zone) to standard output whole, or not at all: when the write
/// fails and standard output is a regular file, the file is cut back to what it held before.
int write_document(const command_spec& c, std::string_view text, const output_origin& origin) {
  std::fflush(stdout);
  int error_number = write_all(STDOUT_FILENO, text);
  if (error_number == 0 && origin.regular && ::fsync(STDOUT_FILENO) != 0 && errno != EINVAL) error_number = errno;
  if (error_number == 0) return exit_ok;
  std::string outcome = "standard output holds part of it: do not use it";
  if (origin.regular) {
    outcome = ::ftruncate(STDOUT_FILENO, origin.offset) == 0
                  ? "the output file was cut back to what it held before"
                  : "cutting the output file back failed too (" + std::string(std::strerror(errno)) + "): delete it";
  }
  std::fprintf(stderr, "planfence-ctl %s: cannot write standard output: %s; %s\n", std::string(c.name).c_str(),
               std::strerror(error_number), outcome.c_str());
  return exit_output;
}

/// Writes `text` to `path` atomically and durably: a temporary file beside it, fsync, rename,
/// fsync the directory. On any failure the temporary file is removed and `path` is untouched. A
/// symlink is followed (the file a server loads through it is the one replaced, and the link
/// stays), and an existing file keeps its owner, group and mode; when they cannot be kept,
/// nothing is written.
int write_file_atomically(const command_spec& c, std::filesystem::path path, std::string_view text) {
  std::error_code ec;
  if (std::filesystem::is_symlink(path, ec)) {
    const std::filesystem::path target = std::filesystem::weakly_canonical(path, ec);
    if (ec) {
      std::fprintf(stderr, "planfence-ctl %s: %s: cannot follow the symlink: %s; nothing was written\n",
                   std::string(c.name).c_str(), path.string().c_str(), ec.message().c_str());
      return exit_output;
    }
    path = target;
  }
  struct stat existing {};
  const bool replaces = ::stat(path.c_str(), &existing) == 0;
  if (replaces && !S_ISREG(existing.st_mode)) {
    std::fprintf(stderr, "planfence-ctl %s: %s is not a regular file; nothing was written\n", std::string(c.name).c_str(),
                 path.string().c_str());
    return exit_output;
  }
  const std::filesystem::path directory = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::string temp = (directory / ("." + path.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  auto fail_with = [&](const std::string& what, int error_number) {
    std::fprintf(stderr, "planfence-ctl %s: %s: %s: %s; %s was not written\n", std::string(c.name).c_str(),
                 what.c_str(), temp.c_str(), std::strerror(error_number), path.string().c_str());
    return exit_output;
  };
  if (fd < 0) return fail_with("cannot create a temporary file", errno);
  int error_number = write_all(fd, text);
  if (error_number == 0 && ::fchmod(fd, replaces ? existing.st_mode & 07777 : 0644) != 0) error_number = errno;
  if (error_number == 0 && replaces && ::fchown(fd, existing.st_uid, existing.st_gid) != 0) error_number = errno;
  if (error_number == 0 && ::fsync(fd) != 0) error_number = errno;
  if (::close(fd) != 0 && error_number == 0) error_number = errno;
  if (error_number == 0 && ::rename(temp.c_str(), path.c_str()) != 0) error_number = errno;
  if (error_number != 0) {
    ::unlink(temp.c_str());
    return fail_with("cannot write, or keep the owner and mode of the file it replaces", error_number);
  }
  const int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd < 0 || ::fsync(directory_fd) != 0) {
    std::fprintf(stderr, "planfence-ctl %s: %s was written but its directory could not be fsynced: %s\n",
                 std::string(c.name).c_str(), path.string().c_str(), std::strerror(errno));
    if (directory_fd >= 0) ::close(directory_fd);
    return exit_output;
  }
  ::close(directory_fd);
  return exit_ok;
}

/// Who took an operator hold, and when, for P/holder's value (no secret: a user and a host name).
std::string hold_note() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::string out = "taken " + utc_time(static_cast<std::uint64_t>(now.count()));
  if (user != nullptr && *user != '\0') out += " by " + std::string(user).substr(0, 32);
  if (host[0] != '\0') out += std::string(user != nullptr && *user != '\0' ? "@" : " on ") + std::string(host).substr(0, 64);
  return out;
}

/// override on a holder-key etcd store: the hold is the etcd lease authority's own holder key,
/// created without an etcd lease (etcd/operator_hold.hpp), so etcd itself keeps automation out
/// while it exists and release lets automation back in at once.
int override_with_holder_key(const command_spec& c, pf::any_store& store, pf::etcd_store& etcd,
                             const pf::durable_history& history, pf::generation gen, std::uint32_t batch) {
  const std::string key = etcd.keys().holder();
  auto taken = pf::etcd::take_operator_hold(etcd.connection(), etcd.keys(), hold_note());
  // A token that is a multiple of the operator stride would read, once apply raises the floor to
  // it, like a floor-based operator fence (is_operator_fence): take the next revision instead.
  for (int again = 0; taken && pf::is_operator_fence(taken->fence) && again < 4; ++again) {
    auto first = taken->superseded;
    taken = pf::etcd::take_operator_hold(etcd.connection(), etcd.keys(), hold_note());
    if (taken) taken->superseded = first;
  }
  if (!taken) {
    report_error(c, store.description() + ": taking the operator hold " + key, taken.error());
    std::fprintf(stderr, "Nothing was applied, and automation is NOT known to be fenced out (a hold may have been\n"
                         "created before the error: 'planfence-ctl status' shows it, 'planfence-ctl release' removes it).\n"
                         "Fix the cause and run again.\n");
    return exit_usage;
  }
  const unsigned long long fence = taken->fence.value();
  // The store's own floor must admit the hold's token (a floor-based operator fence raised
  // earlier through ?fence=floor may be above etcd's revision).
  auto floor = etcd.fence_floor();
  if (!floor || floor->value() > fence) {
    auto released = pf::etcd::release_operator_hold(etcd.connection(), etcd.keys());
    if (!floor) report_error(c, store.description() + ": reading its fence floor", floor.error());
    else std::fprintf(stderr,
                      "planfence-ctl %s: %s: the store's fence floor %llu is above the hold's token %llu (etcd's revision),\n"
                      "so every commit under the hold would be refused. Release the floor's hold with\n"
                      "'planfence-ctl release', or override through ?fence=floor (docs/etcd.md).\n",
                      std::string(c.name).c_str(), store.description().c_str(),
                      static_cast<unsigned long long>(floor->value()), fence);
    std::fprintf(stderr, "Nothing was applied; the hold was %s.\n",
                 released ? "removed again (read back)" : ("NOT removed: " + released.error().message() +
                                                           "; run 'planfence-ctl release'").c_str());
    return exit_usage;
  }
  std::printf("Operator hold %s is in place with fence %llu (read back; attached to no etcd lease, so it lasts\n"
              "until 'planfence-ctl release'): etcd refuses every commit whose token is not %llu, and automation's\n"
              "etcd lease authority cannot acquire while it exists.\n",
              key.c_str(), fence, fence);
  if (taken->superseded) {
    std::printf("It superseded %s%s.\n", pf::etcd::describe(*taken->superseded).c_str(),
                taken->superseded->operator_hold ? "" : ", whose etcd lease was revoked");
  }
  return apply_and_report(c, store, history, gen, taken->fence, batch);
}

// --- commands -------------------------------------------------------------------------------

int run_history(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args, /*warn=*/false);
  const auto retained = history->retained();
  std::printf("History %s: %zu plan%s", history_label.c_str(), retained.size(), retained.size() == 1 ? "" : "s");
  if (!retained.empty()) {
    std::printf(", generations %llu..%llu", static_cast<unsigned long long>(retained.front().value()),
                static_cast<unsigned long long>(retained.back().value()));
  }
  if (history->collected_high_water() != pf::generation_none) {
    std::printf(", collected up to %llu", static_cast<unsigned long long>(history->collected_high_water().value()));
  }
  std::printf("\n\n%10s  %-24s  %9s  %7s  %s\n", "generation", "created (UTC)", "endpoints", "records", "digest");
  for (pf::generation g : retained) {
    auto p = history->pin(g);
    if (!p) continue;  // collected meanwhile by another process
    std::size_t records = 0;
    for (const auto& e : (*p)->endpoints()) records += e->records.size();
    std::printf("%10llu  %-24s  %9zu  %7zu  sha256:%s%s\n", static_cast<unsigned long long>(g.value()),
                utc_time((*p)->created_unix_ms()).c_str(), (*p)->size(), records, (*p)->digest_hex().c_str(),
                (*p)->bulk_change_intended() ? "  (intent bulk-change)" : "");
  }
  const auto problems = all_problems(*history);
  if (!problems.empty()) {
    std::printf("\n%zu plan%s not load and %s never applied (S7):\n", problems.size(),
                problems.size() == 1 ? " does" : "s do", problems.size() == 1 ? "is" : "are");
    for (const pf::history_problem& p : problems) std::printf("  %s\n", describe_problem(p).c_str());
    return exit_found;
  }
  return exit_ok;
}

int run_show(const command_spec& c, const arguments& args, const output_origin& origin) {
  auto history = open_history(c, args);
  auto p = pin_generation(c, args, *history);
  return write_document(c, pf::format_plan(*p), origin);
}

int run_export(const command_spec& c, const arguments& args, const output_origin& origin) {
  auto history = open_history(c, args);
  auto p = pin_generation(c, args, *history);
  pf::zone_export_options options;
  options.zone = args.get("--zone");
  options.skip_outside = args.has("--skip-outside");
  if (args.has("--name-server")) options.soa.name_servers.push_back(args.get("--name-server"));
  auto zone = pf::format_zone(*p, options);
  if (!zone) {
    const int status = report_error(c, "generation " + std::to_string(p->gen().value()) + " as zone " + options.zone, zone.error());
    if (zone.error().code == pf::errc::invalid_plan && !options.skip_outside) {
      std::fprintf(stderr, "(export one zone at a time; --skip-outside leaves out the endpoints of other zones)\n");
    }
    return status;
  }
  if (args.has("--output")) return write_file_atomically(c, args.get("--output"), *zone);
  return write_document(c, *zone, origin);
}

int run_diff(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  auto p = pin_generation(c, args, *history);
  pf::any_store store = open_store(c, args, p.get(), store_use::read);
  progress_meter meter(c, "compared");
  pf::recovery_hooks hooks;
  hooks.stop = &stop_requested;
  hooks.progress = [&](std::size_t done, std::size_t total) { meter(done, total); };
  auto drift = pf::diff_store(store, *p, hooks);
  if (!drift) return report_error(c, store.description(), drift.error());
  const unsigned long long gen = p->gen().value();
  for (const pf::endpoint_drift& d : drift->drifted) {
    const pf::endpoint_entry* planned = p->find(d.name);
    const std::size_t served = (planned ? planned->records.size() : 0) - d.missing.size() + d.extra.size();
    std::printf("%s (store: %s%s%s)\n", d.name.c_str(), describe_stamp(d.served_stamp).c_str(),
                served == 0 ? ", SERVES NO RECORDS" : "", d.in_plan ? "" : "; the plan does not name it");
    if (d.stamp_differs) {
      std::printf("  stamp: generation %llu, not %llu   (an apply of %llu decides from the stamp)\n",
                  static_cast<unsigned long long>(d.served_stamp.gen.value()), gen, gen);
    }
    for (const pf::record& r : d.missing) std::printf("  - %s   (in the plan, not served)\n", describe_record(r).c_str());
    for (const pf::record& r : d.extra) std::printf("  + %s   (served, not in the plan)\n", describe_record(r).c_str());
  }
  if (!drift->unmanaged.empty()) {
    std::string names;
    for (const std::string& n : drift->unmanaged) names += " " + n;
    std::printf("Not managed by planfence (no stamp, not in the plan), not compared:%s\n", names.c_str());
  }
  if (drift->interrupted) {
    std::printf("Interrupted by %s after %zu endpoints agreed and %zu differed; the rest were not compared.\n",
                signal_name(), drift->endpoints_agreeing, drift->drifted.size());
    return interrupted_status();
  }
  std::printf("%s %s generation %llu: %zu endpoint%s agree, %zu differ.\n", store.description().c_str(),
              drift->agrees() ? "agrees with" : "differs from", gen, drift->endpoints_agreeing,
              drift->endpoints_agreeing == 1 ? "" : "s", drift->drifted.size());
  return drift->agrees() ? exit_ok : exit_found;
}

int run_apply(const command_spec& c, const arguments& args) {
  const std::uint32_t batch = batch_size(c, args);  // usage errors before anything is done
  auto history = open_history(c, args);
  const pf::pinned_plan chosen = pin_generation(c, args, *history);
  const pf::generation gen = chosen->gen();
  pf::any_store store = open_store(c, args, chosen.get());
  std::optional<pf::fence_token> hold_fence;
  if (pf::etcd_store* etcd = holder_key_etcd(store)) {
    auto holder = pf::etcd::read_holder(etcd->connection(), etcd->keys());
    if (!holder) return report_error(c, store.description(), holder.error());
    if (!holder->operator_hold) refuse_holder_key_apply(c, store);
    hold_fence = holder->fence;
  }
  pf::fence_token fence{};
  if (hold_fence && !args.has("--fence")) {
    fence = *hold_fence;  // commit under the operator hold that override took
  } else if (args.has("--fence")) {
    const auto number = parse_number(args.get("--fence"));
    if (!number || *number == 0 || *number > pf::fence_max.value()) {
      usage_error(&c, "--fence: expected a token from 1 to 16777215, got '" + args.get("--fence") + "'");
    }
    fence = pf::fence_token{*number};
  } else {
    auto floor = pf::store_fence_floor(store);
    if (!floor) return report_error(c, store.description() + ": reading its fence floor", floor.error());
    fence = pf::fence_token{std::max<std::uint64_t>(floor->value(), 1)};
  }
  return apply_and_report(c, store, *history, gen, fence, batch);
}

int run_override(const command_spec& c, const arguments& args) {
  const std::uint32_t batch = batch_size(c, args);  // usage errors before anything is done
  auto history = open_history(c, args);
  const pf::pinned_plan chosen = pin_generation(c, args, *history);
  const pf::generation gen = chosen->gen();
  pf::any_store store = open_store(c, args, chosen.get());
  if (pf::etcd_store* etcd = holder_key_etcd(store)) return override_with_holder_key(c, store, *etcd, *history, gen, batch);
  auto floor = pf::store_fence_floor(store);
  if (!floor) return report_error(c, store.description() + ": reading its fence floor", floor.error());
  auto fence = pf::next_operator_fence(*floor);
  if (!fence) return report_error(c, store.description(), fence.error());
  auto raised = raise_and_verify(store, *fence);
  if (!raised) {
    report_error(c, store.description() + ": raising the fence to the operator fence " + std::to_string(fence->value()),
                 raised.error());
    std::fprintf(stderr, "Nothing was applied, and automation is NOT fenced out. Fix the cause and run again.\n");
    return exit_usage;
  }
  std::printf("Operator fence %llu is in place (read back; the floor was %llu%s): from now on the store refuses\n"
              "every commit carrying an older token, so automation is fenced out until 'planfence-ctl release'.\n",
              static_cast<unsigned long long>(fence->value()), static_cast<unsigned long long>(floor->value()),
              pf::is_operator_fence(*floor) ? ", already an operator fence" : "");
  return apply_and_report(c, store, *history, gen, *fence, batch);
}

int run_release(const command_spec& c, const arguments& args) {
  pf::any_store store = open_store(c, args, nullptr, store_use::read);
  // On etcd, the hold override takes is the holder key (whatever the URI's fence mode): delete it
  // and read it back. A floor-based hold (?fence=floor) is released below as on other stores.
  bool released_holder = false;
  if (auto* etcd = store.get_if<pf::etcd_store>()) {
    auto released = pf::etcd::release_operator_hold(etcd->connection(), etcd->keys());
    if (!released) {
      report_error(c, store.description() + ": deleting the operator hold " + etcd->keys().holder(), released.error());
      std::fprintf(stderr, "The operator hold may still be in place ('planfence-ctl status' shows it). Fix the cause and run again.\n");
      return exit_usage;
    }
    if (*released) {
      released_holder = true;
      auto now = pf::etcd::read_holder(etcd->connection(), etcd->keys());
      std::printf("Released the operator hold %s with fence %llu on %s: read back, %s is held by %s.\n"
                  "Automation using the etcd lease authority acquires at once; its token, a newer etcd revision,\n"
                  "is above %llu.\n",
                  etcd->keys().holder().c_str(), static_cast<unsigned long long>((*released)->fence.value()),
                  store.description().c_str(), etcd->keys().holder().c_str(),
                  now ? pf::etcd::describe(*now).c_str() : "(cannot be read now)",
                  static_cast<unsigned long long>((*released)->fence.value()));
    }
  }
  auto floor = released_holder ? store.fence_floor() : pf::store_fence_floor(store);
  if (!floor) return report_error(c, store.description() + ": reading its fence floor", floor.error());
  if (!pf::is_operator_fence(*floor)) {
    if (released_holder) return exit_ok;
    std::printf("No operator hold on %s (its fence floor %llu is not an operator fence%s): nothing to release.\n",
                store.description().c_str(), static_cast<unsigned long long>(floor->value()),
                store.get_if<pf::etcd_store>() != nullptr ? ", and no lease-less holder key" : "");
    return exit_found;
  }
  const pf::fence_token released{floor->value() + 1};
  auto raised = raise_and_verify(store, released);
  if (!raised) {
    report_error(c, store.description() + ": raising the fence to " + std::to_string(released.value()), raised.error());
    std::fprintf(stderr, "The operator hold at fence %llu is still in place. Fix the cause and run again.\n",
                 static_cast<unsigned long long>(floor->value()));
    return exit_usage;
  }
  std::printf("Released the operator hold at fence %llu on %s: its floor reads back as %llu.\n"
              "Automation whose lease authority is wrapped in fence_floor_authority acquires its next lease\n"
              "above %llu and resumes; the operator fence %llu is refused from now on.\n",
              static_cast<unsigned long long>(floor->value()), store.description().c_str(),
              static_cast<unsigned long long>(raised->value()), static_cast<unsigned long long>(raised->value()),
              static_cast<unsigned long long>(floor->value()));
  return exit_ok;
}

/// A JSON string literal (RFC 8259): quotes, backslashes, control characters and bytes outside
/// ASCII escaped (a byte >= 0x80 as \u00XX: names are ASCII; a stray byte keeps the document valid).
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u >= 0x7F) {  // control bytes, and any non-ASCII byte (the output stays valid UTF-8)
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

/// What `status` found on the hold: the floor's operator fence and, on etcd, the holder key.
struct hold_view {
  bool floor_hold = false;                      // the fence floor is an operator fence
  std::optional<pf::etcd::holder_info> holder;  // etcd only: PREFIX/holder
  std::string holder_key;
};

int run_status(const command_spec& c, const arguments& args) {
  const bool json = args.has("--json");
  std::unique_ptr<pf::durable_history> history;
  if (args.has("--dir")) history = open_history(c, args);
  const std::string& uri = args.get("--store");
  if (!history && uri.starts_with("rfc2136://")) {
    usage_error(&c, "--store " + pf::detail::redact_uri(uri) +
                        ": a DNS server does not list its zone's endpoints; give --dir so that the newest plan names them");
  }
  pf::pinned_plan newest;
  if (history && history->latest() != pf::generation_none) {
    if (auto p = history->pin(history->latest())) newest = std::move(*p);
  }
  pf::any_store store = open_store(c, args, newest ? newest.get() : nullptr, store_use::read);
  progress_meter meter(c, "read");
  pf::recovery_hooks hooks;
  hooks.stop = &stop_requested;
  hooks.progress = [&](std::size_t done, std::size_t total) { meter(done, total); };
  auto survey = pf::survey_store(store, history.get(), hooks);
  if (!survey) return report_error(c, store.description(), survey.error());
  auto own_floor = store.fence_floor();
  if (!own_floor && own_floor.error().code != pf::errc::not_found) {
    return report_error(c, store.description() + ": reading its fence floor", own_floor.error());
  }
  const pf::fence_token floor = std::max(own_floor ? *own_floor : pf::fence_token{}, survey->stamp_fence_max);
  hold_view hold;
  hold.floor_hold = pf::is_operator_fence(floor);
  if (auto* etcd = store.get_if<pf::etcd_store>()) {
    auto holder = pf::etcd::read_holder(etcd->connection(), etcd->keys());
    if (!holder) return report_error(c, store.description(), holder.error());
    hold.holder = *holder;
    hold.holder_key = etcd->keys().holder();
  }
  const bool holder_hold = hold.holder && hold.holder->operator_hold;

  // The classes (an endpoint may be in two: serving nothing under a missing plan's stamp).
  std::vector<const pf::endpoint_status*> at_newest, older, newer, nothing, missing;
  std::map<pf::generation, std::size_t> by_generation;
  for (const pf::endpoint_status& e : survey->endpoints) {
    ++by_generation[e.serves];
    if (e.serves_nothing) nothing.push_back(&e);
    if (e.plan_missing) missing.push_back(&e);
    if (!survey->history_known || e.serves == pf::generation_none) continue;
    if (e.serves == survey->newest) at_newest.push_back(&e);
    else if (e.serves < survey->newest) older.push_back(&e);
    else newer.push_back(&e);
  }
  const bool healthy = survey->healthy();
  const auto problems = history ? all_problems(*history) : std::vector<pf::history_problem>{};
  const auto retained = history ? history->retained() : std::vector<pf::generation>{};

  if (json) {
    auto endpoint_list = [](const std::vector<const pf::endpoint_status*>& list) {
      std::string out = "[";
      for (const pf::endpoint_status* e : list) {
        if (out.size() > 1) out += ",";
        out += "\n    {\"name\": " + json_string(e->name) + ", \"generation\": " + std::to_string(e->serves.value()) +
               ", \"stamp_generation\": " + std::to_string(e->stored.gen.value()) +
               ", \"fence\": " + std::to_string(e->stored.fence.value()) + ", \"records\": " + std::to_string(e->records) +
               ", \"in_store\": " + (e->in_store ? "true" : "false") + ", \"in_newest\": " + (e->in_newest ? "true" : "false") + "}";
      }
      return out + (list.empty() ? "]" : "\n  ]");
    };
    std::string out = "{\n  \"store\": " + json_string(store.description()) + ",\n  \"fence_floor\": " +
                      std::to_string(floor.value()) + ",\n  \"operator_hold\": ";
    if (holder_hold) {
      out += "{\"kind\": \"holder-key\", \"key\": " + json_string(hold.holder_key) + ", \"fence\": " +
             std::to_string(hold.holder->fence.value()) + ", \"note\": " + json_string(hold.holder->note) + "}";
    } else if (hold.floor_hold) {
      out += "{\"kind\": \"fence-floor\", \"fence\": " + std::to_string(floor.value()) + "}";
    } else {
      out += "null";
    }
    out += ",\n  \"floor_operator_fence\": " + std::string(hold.floor_hold ? "true" : "false");
    out += ",\n  \"lease_holder\": ";
    if (hold.holder && hold.holder->held) {
      out += "{\"name\": " + json_string(hold.holder->name) + ", \"fence\": " + std::to_string(hold.holder->fence.value()) +
             ", \"lease\": " + std::to_string(hold.holder->lease) + ", \"operator_hold\": " +
             (hold.holder->operator_hold ? "true" : "false") + "}";
    } else {
      out += "null";
    }
    out += ",\n  \"apply_marks\": {\"begun\": " + std::to_string(survey->marks.begun.value()) + ", \"applied\": " +
           std::to_string(survey->marks.applied.value()) + "}";
    out += ",\n  \"history\": ";
    if (history) {
      std::string gens;
      for (pf::generation g : retained) gens += (gens.empty() ? "" : ", ") + std::to_string(g.value());
      std::string broken;
      for (const pf::history_problem& p : problems) broken += (broken.empty() ? "" : ", ") + json_string(describe_problem(p));
      out += "{\"source\": " + json_string(history_label) + ", \"newest\": " + std::to_string(survey->newest.value()) +
             ", \"retained\": [" + gens + "], \"not_loading\": [" + broken + "]}";
    } else {
      out += "null";
    }
    out += ",\n  \"endpoints\": " + std::to_string(survey->endpoints.size());
    std::string counts;
    for (const auto& [g, n] : by_generation) {
      counts += (counts.empty() ? "" : ", ") + json_string(std::to_string(g.value())) + ": " + std::to_string(n);
    }
    out += ",\n  \"by_generation\": {" + counts + "}";
    out += ",\n  \"serving_newest\": " + endpoint_list(at_newest);
    out += ",\n  \"serving_older\": " + endpoint_list(older);
    out += ",\n  \"serving_newer\": " + endpoint_list(newer);
    out += ",\n  \"serving_nothing\": " + endpoint_list(nothing);
    out += ",\n  \"missing_plan\": " + endpoint_list(missing);
    std::string unmanaged;
    for (const std::string& n : survey->unmanaged) unmanaged += (unmanaged.empty() ? "" : ", ") + json_string(n);
    out += ",\n  \"unmanaged\": [" + unmanaged + "]";
    out += ",\n  \"interrupted\": " + std::string(survey->interrupted ? "true" : "false");
    out += ",\n  \"healthy\": " + std::string(healthy && !survey->interrupted ? "true" : "false") + "\n}\n";
    std::fputs(out.c_str(), stdout);
  } else {
    std::printf("Store %s\n", store.description().c_str());
    std::printf("  fence floor   %llu%s\n", static_cast<unsigned long long>(floor.value()),
                hold.floor_hold ? "  OPERATOR HOLD (an operator fence): automation is fenced out until 'planfence-ctl release'" : "");
    if (hold.holder) {
      if (holder_hold) {
        std::printf("  etcd lease    OPERATOR HOLD: %s is %s: automation cannot acquire until 'planfence-ctl release'\n",
                    hold.holder_key.c_str(), pf::etcd::describe(*hold.holder).c_str());
      } else {
        std::printf("  etcd lease    held by %s\n", pf::etcd::describe(*hold.holder).c_str());
      }
    }
    if (survey->marks.begun != pf::generation_none || survey->marks.applied != pf::generation_none) {
      std::printf("  apply marks   begun %llu, applied %llu\n", static_cast<unsigned long long>(survey->marks.begun.value()),
                  static_cast<unsigned long long>(survey->marks.applied.value()));
    }
    if (history) {
      std::printf("History %s: %zu plan%s retained", history_label.c_str(), retained.size(), retained.size() == 1 ? "" : "s");
      if (!retained.empty()) {
        std::printf(", generations %llu..%llu; newest %llu", static_cast<unsigned long long>(retained.front().value()),
                    static_cast<unsigned long long>(retained.back().value()),
                    static_cast<unsigned long long>(survey->newest.value()));
      }
      std::printf("\n");
      for (const pf::history_problem& p : problems) std::printf("  does not load (never applied): %s\n", describe_problem(p).c_str());
    } else {
      std::printf("History: not given (--dir): the newest generation and missing plans are not known\n");
    }
    std::printf("Endpoints: %zu managed", survey->endpoints.size());
    if (!survey->unmanaged.empty()) std::printf(" (and %zu names not managed by planfence)", survey->unmanaged.size());
    std::printf("; by generation served:");
    for (auto it = by_generation.rbegin(); it != by_generation.rend(); ++it) {
      std::printf("%s %s %zu", it == by_generation.rbegin() ? "" : ",",
                  it->first == pf::generation_none ? "none" : ("g" + std::to_string(it->first.value())).c_str(), it->second);
    }
    std::printf("\n");
    constexpr std::size_t shown_max = 20;
    // `title` starts with the plural verb ("serve ...", "SERVE ..."): one endpoint "serves".
    auto show = [&](std::string title, const std::vector<const pf::endpoint_status*>& list, bool always) {
      if (list.empty() && !always) return;
      if (list.size() == 1) title.insert(5, title[0] == 'S' ? "S" : "s");
      std::printf("  %zu %s%s\n", list.size(), title.c_str(), list.empty() ? "" : ":");
      for (std::size_t i = 0; i < list.size() && i < shown_max; ++i) {
        const pf::endpoint_status& e = *list[i];
        std::string what = e.serves == pf::generation_none ? "never written" : "serves g" + std::to_string(e.serves.value());
        if (e.serves != e.stored.gen && e.stored.gen != pf::generation_none) {
          what += " (stamp g" + std::to_string(e.stored.gen.value()) + ", applied mark)";
        }
        if (e.stored.gen != pf::generation_none) what += ", fence " + std::to_string(e.stored.fence.value());
        what += ", " + std::to_string(e.records) + " record" + (e.records == 1 ? "" : "s");
        if (!e.in_store) what += ", the store has no place for it";
        if (e.plan_missing) what += ", PLAN GONE";
        std::printf("    %-44s %s\n", e.name.c_str(), what.c_str());
      }
      if (list.size() > shown_max) std::printf("    ... and %zu more (--json lists all)\n", list.size() - shown_max);
    };
    if (survey->history_known) {
      std::printf("  %zu serve%s the newest generation, %llu\n", at_newest.size(), at_newest.size() == 1 ? "s" : "",
                  static_cast<unsigned long long>(survey->newest.value()));
      show("serve an older generation", older, true);
      show("serve a generation newer than the history's newest", newer, false);
    }
    show("SERVE NO RECORDS", nothing, true);
    if (survey->history_known) show("serve a generation whose plan the history no longer has", missing, true);
    if (survey->interrupted) {
      std::printf("Interrupted by %s after %zu endpoints were read; the rest were not.\n", signal_name(),
                  survey->endpoints.size() + survey->unmanaged.size());
      return interrupted_status();
    }
    if (healthy) {
      std::printf("Healthy: every endpoint serves records%s.\n",
                  survey->history_known ? " of a plan the history retains" : "");
    } else {
      std::printf("NOT HEALTHY: %zu endpoint%s serve%s no records, %zu serve%s a plan the history no longer has.\n"
                  "Next: docs/runbook.md (diff against the newest generation, then override).\n",
                  nothing.size(), nothing.size() == 1 ? "" : "s", nothing.size() == 1 ? "s" : "", missing.size(),
                  missing.size() == 1 ? "s" : "");
    }
    if (holder_hold || hold.floor_hold) {
      std::printf("An operator hold is in place: automation stays out until 'planfence-ctl release'.\n");
    }
  }
  if (survey->interrupted) return interrupted_status();
  return healthy ? exit_ok : exit_found;
}

int run_rehearse(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  arguments with_generation = args;
  if (!with_generation.has("--generation")) with_generation.values.emplace("--generation", "latest");
  auto newest = pin_generation(c, with_generation, *history);
  const auto retained = history->retained();
  pf::generation old_gen = retained.front();
  if (args.has("--stamp")) {
    const auto number = parse_number(args.get("--stamp"));
    if (!number || *number == 0 || *number > pf::generation_max.value()) {
      usage_error(&c, "--stamp: expected a generation number, got '" + args.get("--stamp") + "'");
    }
    old_gen = pf::generation{*number};
  }
  if (old_gen >= newest->gen()) usage_error(&c, "the history needs a generation older than " + std::to_string(newest->gen().value()));
  const std::string zone = *canonical_or_usage(c, "--zone", args.get("--zone"));
  const std::string emptied = *canonical_or_usage(c, "--endpoint", args.get("--endpoint"));
  if (newest->find(emptied) == nullptr) usage_error(&c, "--endpoint: generation " + std::to_string(newest->gen().value()) + " has no endpoint " + emptied);
  pf::any_store store = open_store(c, args, newest.get());
  auto* files = store.get_if<pf::zonefile_store>();
  if (files == nullptr) usage_error(&c, "--store: rehearse only writes zone-file stores (zonefile:///dir)");
  auto names = store.endpoint_names();
  if (!names) return report_error(c, store.description(), names.error());
  for (const std::string& name : *names) {
    auto h = store.resolve(name);
    if (!h) return report_error(c, name, h.error());
    auto seen = store.read_stamp(*h);
    if (!seen) return report_error(c, name, seen.error());
    if (seen->gen != pf::generation_none) {
      std::fprintf(stderr, "planfence-ctl rehearse: %s already serves plans (%s): rehearse only fresh stores\n",
                   store.description().c_str(), name.c_str());
      return exit_usage;
    }
  }
  const auto zones = files->zones();
  if (std::find(zones.begin(), zones.end(), zone) == zones.end()) {
    if (auto created = files->create_zone(zone); !created) return report_error(c, "create zone " + zone, created.error());
  }
  const pf::fence_token fence{1};
  for (const auto& e : newest->endpoints()) {
    if (interrupted()) {
      std::printf("Interrupted by %s: the store holds part of the rehearsal state; delete it and start again.\n",
                  signal_name());
      return interrupted_status();
    }
    auto h = store.resolve(e->name);
    if (!h) return report_error(c, e->name, h.error());
    auto seen = store.read_stamp(*h);
    if (!seen) return report_error(c, e->name, seen.error());
    const bool empty_it = e->name == emptied;
    const pf::stamp desired{empty_it ? old_gen : newest->gen(), fence, 0};
    auto written = store.commit(*h, *seen, desired, empty_it ? pf::record_set{} : e->records);
    if (!written) return report_error(c, e->name, written.error());
    std::printf("  %-44s %s\n", e->name.c_str(),
                empty_it ? ("EMPTIED, stamped generation " + std::to_string(old_gen.value())).c_str()
                         : ("serves generation " + std::to_string(newest->gen().value())).c_str());
  }
  std::printf("%s now holds the 2025 state: %s serves no records. Recover it with docs/runbook.md.\n",
              store.description().c_str(), emptied.c_str());
  return exit_ok;
}

int run_command(std::string_view name, const command_spec& c, const arguments& args, const output_origin& origin) {
  if (name == "history") return run_history(c, args);
  if (name == "show") return run_show(c, args, origin);
  if (name == "export") return run_export(c, args, origin);
  if (name == "diff") return run_diff(c, args);
  if (name == "apply") return run_apply(c, args);
  if (name == "override") return run_override(c, args);
  if (name == "rehearse") return run_rehearse(c, args);
  if (name == "status") return run_status(c, args);
  return run_release(c, args);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_main_help();
    return exit_usage;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_main_help();
    return std::fflush(stdout) == 0 && !std::ferror(stdout) ? exit_ok : exit_output;
  }
  const command_spec* c = find_command(name);
  if (c == nullptr) usage_error(nullptr, "unknown command '" + std::string(name) + "'");
  const arguments args = parse_arguments(*c, argc - 2, argv + 2);
  install_stop_handlers();
  const output_origin origin = stdout_origin();
  const int status = run_command(name, *c, args, origin);
  // The report is part of what the command promises: one that could not be written is an error.
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "planfence-ctl %s: cannot write the report to standard output: %s (the command itself %s)\n",
                 std::string(c->name).c_str(), std::strerror(errno),
                 status == exit_ok ? "succeeded" : ("ended with status " + std::to_string(status)).c_str());
    return status == exit_ok ? exit_output : status;
  }
  return status;
}
