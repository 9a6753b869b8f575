// examples/planfence_ctl.cpp: planfence-ctl, the operator's tool for manual recovery.
//
// What it is for: the path nobody practised in 2025. Every plan the planner publishes is kept in a
// durable history directory (include/planfence/history.hpp); this program reads it, exports any
// retained generation as a zone file, compares a store with a plan, applies a plan through the
// fixed enactor's own commit rules, and lets an operator fence automation out and hand control
// back (include/planfence/recovery.hpp). docs/runbook.md walks through the 2025 situation with it;
// docs/planfence-ctl.md lists every command and option. Run `planfence-ctl --help`, or
// `planfence-ctl COMMAND --help`.
//
// Exit status: 0 success (diff: the store agrees with the plan); 1 the operation ran and found or
// left something wrong (diff: drift; apply: an endpoint not applied; history: a file that does not
// load); 2 bad usage or an error before anything was done. Nothing is half-written: export builds
// the whole zone before it prints anything, and every store write is one atomic commit per endpoint,
// listed in the report.
#include <planfence/etcd/registry.hpp>
#include <planfence/history.hpp>
#include <planfence/plan.hpp>
#include <planfence/recovery.hpp>
#include <planfence/store/any_store.hpp>
#include <planfence/store/open_store.hpp>
#include <planfence/zonefile.hpp>

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
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

const option_spec dir_option{"--dir", "DIR", "the plan history directory (one NNNNNNNNNN.plan file per generation), or etcd://HOST:PORT[,...]/PREFIX (read only)"};
const option_spec generation_option{"--generation", "N", "a retained generation, or 'latest'"};
const option_spec store_option{"--store", "URI", "the record store, e.g. zonefile:///var/lib/planfence/zones"};

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> all = {
      {"history", "list the retained generations: times, digests, endpoint counts",
       "planfence-ctl history --dir DIR",
       {dir_option},
       "Lists every plan file of the history, oldest first, and every file that does not load\n"
       "(file, line, column, what is wrong). A file that does not load is never applied (S7).\n"
       "Exit status 1 when such a file exists. Reads only."},
      {"show", "print one generation in the plan text form", "planfence-ctl show --dir DIR --generation N",
       {dir_option, generation_option},
       "Prints the plan exactly as stored (format_plan; its digest line is checked on load). Reads only."},
      {"export", "print one generation as an RFC 1035 zone file",
       "planfence-ctl export --dir DIR --generation N --zone ZONE [--skip-outside] [--name-server NAME]",
       {dir_option, generation_option, {"--zone", "ZONE", "the zone's name, e.g. us-east-1.example."},
        {"--skip-outside", "", "leave out endpoints outside ZONE (default: refuse them)"},
        {"--name-server", "NAME", "an NS name for the SOA and NS records (default ns1.ZONE, glue 127.0.0.1)"}},
       "Writes a complete zone (SOA with the serial derived from the generation, NS, every endpoint's\n"
       "records, the _planfence stamps, weights in _weight._planfence TXT records) to standard output,\n"
       "only once all of it is built. Load it with any authoritative server (knotd, named, nsd)."},
      {"diff", "compare what a store serves with a generation",
       "planfence-ctl diff --dir DIR --generation N --store URI",
       {dir_option, generation_option, store_option},
       "For every endpoint the store holds or the plan names: the records the plan has that the store\n"
       "does not serve ('missing', marked -), and the records the store serves that the plan does not\n"
       "('extra', marked +), with the store's stamp. Exit status 0 only when they agree. Reads only."},
      {"apply", "apply one generation through the enactor's commit rules",
       "planfence-ctl apply --dir DIR --generation N --store URI [--fence F]",
       {dir_option, generation_option, store_option,
        {"--fence", "F", "the fence token to commit with (default: the store's current fence floor)"}},
       "Runs the fixed enactor once, for generation N only: raises the store's fence to F, then for each\n"
       "endpoint reads its stamp and commits conditionally (S1: an endpoint serving N or newer is left\n"
       "alone; S2: a larger fence refuses the whole apply; S4: an endpoint is never emptied unless the\n"
       "plan says intent=empty; S7: the digest is checked). Does not keep automation out: see override."},
      {"override", "fence automation out with an operator fence, then apply a generation",
       "planfence-ctl override --dir DIR --generation N --store URI",
       {dir_option, generation_option, store_option},
       "Raises the store's fence to an operator fence (the next multiple of 1024 above the store's\n"
       "floor), so that every commit automation makes with its older token is refused (S2), then\n"
       "applies N as apply does. Automation stays out until release: its lease authority, wrapped in\n"
       "fence_floor_authority, refuses to grant while the floor is an operator fence."},
      {"release", "hand control back to automation after override", "planfence-ctl release --store URI",
       {store_option},
       "Raises the store's fence once more, to the operator fence + 1: automation (fence_floor_authority)\n"
       "then grants tokens above it and resumes. The operator's own fence is refused from then on.\n"
       "Exit status 1 when there is no operator hold to release."},
      {"rehearse", "REHEARSAL ONLY: put a fresh zone-file store into the 2025 state",
       "planfence-ctl rehearse --dir DIR --store URI --zone ZONE --endpoint NAME [--generation N] [--stamp G]",
       {dir_option, {"--generation", "N", "the generation the other endpoints serve (default: latest)"}, store_option,
        {"--zone", "ZONE", "the zone to create in the store, e.g. us-east-1.amazonaws.com."},
        {"--endpoint", "NAME", "the endpoint to leave empty, as the 2025 enactors left it"},
        {"--stamp", "G", "the generation the emptied endpoint's stamp names (default: the oldest retained)"}},
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
      "\nExit status: 0 success (diff: agreement); 1 something found or not applied; 2 usage or error.\n");
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

/// Prints a library error as "planfence-ctl CMD: what" and returns exit_usage.
int report_error(const command_spec& c, const std::string& context, const pf::error& e) {
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

// What --dir names, for messages: the directory, or the etcd URI a snapshot was taken from.
std::string history_label;

// A plan history kept in etcd (--dir etcd://HOST:PORT/PREFIX, docs/etcd.md) is read into a
// private temporary directory, one plan file per retained generation, and opened from there like
// any other history: every plan is digest-checked on the way in (S7), and nothing is written to
// etcd. The snapshot is removed when the program exits.
struct etcd_history_snapshot {
  std::filesystem::path directory;
  ~etcd_history_snapshot() {
    std::error_code ec;
    if (!directory.empty()) std::filesystem::remove_all(directory, ec);
  }
};

std::string snapshot_etcd_history(const command_spec& c, const std::string& uri) {
  static etcd_history_snapshot snapshot;
  auto registry = pf::etcd::etcd_plan_registry::open_uri(uri);
  if (!registry) std::exit(report_error(c, "--dir " + uri, registry.error()));
  auto retained = registry->retained();
  if (!retained) std::exit(report_error(c, "--dir " + uri, retained.error()));
  std::string pattern = (std::filesystem::temp_directory_path() / "planfence-ctl-etcd-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::exit(report_error(c, "--dir " + uri, pf::error{pf::errc::io_error, 0, 0, "cannot make a temporary directory"}));
  }
  snapshot.directory = pattern;
  auto history = pf::durable_history::open(snapshot.directory);
  if (!history) std::exit(report_error(c, "--dir " + uri, history.error()));
  for (pf::generation g : *retained) {
    auto p = registry->lookup(g);
    if (!p) {
      if (p.error().code == pf::errc::not_found) continue;  // collected while we listed
      std::fprintf(stderr, "planfence-ctl %s: warning: %s generation %llu: %s (not loaded, never applied)\n",
                   std::string(c.name).c_str(), uri.c_str(), static_cast<unsigned long long>(g.value()),
                   p.error().message().c_str());
      continue;
    }
    auto published = (*history)->publish(std::move(*p));
    if (!published) std::exit(report_error(c, "--dir " + uri, published.error()));
  }
  return pattern;
}

std::unique_ptr<pf::durable_history> open_history(const command_spec& c, const arguments& args, bool warn = true) {
  const std::string& given = args.get("--dir");
  history_label = given;
  const std::string dir = given.starts_with("etcd://") ? snapshot_etcd_history(c, given) : given;
  auto history = pf::durable_history::open(dir, {.read_only = true});
  if (!history) std::exit(report_error(c, "--dir " + dir, history.error()));
  for (const pf::history_problem& p : warn ? (*history)->problems() : std::vector<pf::history_problem>{}) {
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
    if (!number || *number == 0) usage_error(&c, "--generation: expected a generation number or 'latest', got '" + text + "'");
    gen = pf::generation{*number};
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

/// Opens --store; `p` (when given) names the endpoints for stores that cannot list their own.
pf::any_store open_store(const command_spec& c, const arguments& args, const pf::plan* p = nullptr) {
  const std::string& uri = args.get("--store");
  std::vector<std::string> names;
  if (p != nullptr) {
    for (const auto& e : p->endpoints()) names.push_back(e->name);
  }
  auto store = pf::open_store(uri, pf::known_store_schemes(), names);
  if (!store) std::exit(report_error(c, "--store " + uri, store.error()));
  return std::move(*store);
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

std::string_view describe_outcome(pf::event_kind kind) {
  switch (kind) {
    case pf::event_kind::applied: return "applied";
    case pf::event_kind::stale: return "left alone: already serves this generation or a newer one (S1)";
    case pf::event_kind::refused_blast_radius: return "REFUSED: would empty the endpoint or change too much (S4)";
    case pf::event_kind::unknown_endpoint: return "REFUSED: the store has no such endpoint";
    case pf::event_kind::conflict: return "NOT APPLIED: its stamp kept moving (another writer); run again";
    case pf::event_kind::store_error: return "NOT APPLIED: the store failed; run again";
    default: return pf::to_string(kind);
  }
}

/// Prints an apply report and returns the exit status.
int print_apply_report(const pf::apply_report& report, const pf::any_store& store) {
  std::printf("Applying generation %llu to %s with fence %llu:\n", static_cast<unsigned long long>(report.gen.value()),
              store.description().c_str(), static_cast<unsigned long long>(report.fence.value()));
  for (const pf::endpoint_outcome& o : report.endpoints) {
    std::printf("  %-44s %s\n", o.name.c_str(), std::string(describe_outcome(o.outcome)).c_str());
  }
  if (report.invalid) {
    std::printf("Not applied: the plan does not match its digest (S7).\n");
    return exit_found;
  }
  if (report.fenced) {
    std::printf("Stopped: the store has accepted a fence larger than %llu (S2): someone else holds control.\n",
                static_cast<unsigned long long>(report.fence.value()));
    return exit_found;
  }
  if (!report.complete) {
    std::printf("Incomplete: some endpoints do not serve generation %llu or newer (see above).\n",
                static_cast<unsigned long long>(report.gen.value()));
    return exit_found;
  }
  std::printf("Every endpoint serves generation %llu or newer.\n", static_cast<unsigned long long>(report.gen.value()));
  return exit_ok;
}

std::optional<std::string> canonical_or_usage(const command_spec& c, std::string_view option, const std::string& name) {
  auto canonical = pf::canonical_name(name);
  if (!canonical) usage_error(&c, std::string(option) + ": " + canonical.error().message());
  return *canonical;
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
  const auto problems = history->problems();
  if (!problems.empty()) {
    std::printf("\n%zu file%s not load and %s never applied (S7):\n", problems.size(),
                problems.size() == 1 ? " does" : "s do", problems.size() == 1 ? "is" : "are");
    for (const pf::history_problem& p : problems) std::printf("  %s\n", describe_problem(p).c_str());
    return exit_found;
  }
  return exit_ok;
}

int run_show(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  auto p = pin_generation(c, args, *history);
  const std::string text = pf::format_plan(*p);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return exit_ok;
}

int run_export(const command_spec& c, const arguments& args) {
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
  std::fwrite(zone->data(), 1, zone->size(), stdout);
  return std::fflush(stdout) == 0 ? exit_ok : exit_usage;
}

int run_diff(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  auto p = pin_generation(c, args, *history);
  pf::any_store store = open_store(c, args, p.get());
  auto drift = pf::diff_store(store, *p);
  if (!drift) return report_error(c, store.description(), drift.error());
  for (const pf::endpoint_drift& d : drift->drifted) {
    const pf::endpoint_entry* planned = p->find(d.name);
    const std::size_t served = (planned ? planned->records.size() : 0) - d.missing.size() + d.extra.size();
    std::printf("%s (store: %s%s%s)\n", d.name.c_str(), describe_stamp(d.served_stamp).c_str(),
                served == 0 ? ", SERVES NO RECORDS" : "", d.in_plan ? "" : "; the plan does not name it");
    for (const pf::record& r : d.missing) std::printf("  - %s   (in the plan, not served)\n", describe_record(r).c_str());
    for (const pf::record& r : d.extra) std::printf("  + %s   (served, not in the plan)\n", describe_record(r).c_str());
  }
  if (!drift->unmanaged.empty()) {
    std::string names;
    for (const std::string& n : drift->unmanaged) names += " " + n;
    std::printf("Not managed by planfence (no stamp, not in the plan), not compared:%s\n", names.c_str());
  }
  std::printf("%s %s generation %llu: %zu endpoint%s agree, %zu differ.\n", store.description().c_str(),
              drift->agrees() ? "agrees with" : "differs from", static_cast<unsigned long long>(p->gen().value()),
              drift->endpoints_agreeing, drift->endpoints_agreeing == 1 ? "" : "s", drift->drifted.size());
  return drift->agrees() ? exit_ok : exit_found;
}

int run_apply(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  const pf::pinned_plan chosen = pin_generation(c, args, *history);
  const pf::generation gen = chosen->gen();
  pf::any_store store = open_store(c, args, chosen.get());
  pf::fence_token fence{};
  if (args.has("--fence")) {
    const auto number = parse_number(args.get("--fence"));
    if (!number || *number == 0 || *number > pf::fence_max.value()) {
      usage_error(&c, "--fence: expected a token from 1 to 16777215, got '" + args.get("--fence") + "'");
    }
    fence = pf::fence_token{*number};
  } else {
    auto floor = pf::store_fence_floor(store);
    if (!floor) return report_error(c, store.description(), floor.error());
    fence = pf::fence_token{std::max<std::uint64_t>(floor->value(), 1)};
  }
  auto report = pf::apply_plan(store, *history, gen, fence);
  if (!report) return report_error(c, store.description(), report.error());
  return print_apply_report(*report, store);
}

int run_override(const command_spec& c, const arguments& args) {
  auto history = open_history(c, args);
  const pf::pinned_plan chosen = pin_generation(c, args, *history);
  const pf::generation gen = chosen->gen();
  pf::any_store store = open_store(c, args, chosen.get());
  auto floor = pf::store_fence_floor(store);
  if (!floor) return report_error(c, store.description(), floor.error());
  auto fence = pf::next_operator_fence(*floor);
  if (!fence) return report_error(c, store.description(), fence.error());
  std::printf("Operator fence %llu (the store's floor was %llu%s): from now on the store refuses every commit\n"
              "carrying an older token, so automation is fenced out until 'planfence-ctl release'.\n",
              static_cast<unsigned long long>(fence->value()), static_cast<unsigned long long>(floor->value()),
              pf::is_operator_fence(*floor) ? ", already an operator fence" : "");
  auto report = pf::apply_plan(store, *history, gen, *fence);
  if (!report) return report_error(c, store.description(), report.error());
  return print_apply_report(*report, store);
}

int run_release(const command_spec& c, const arguments& args) {
  pf::any_store store = open_store(c, args);
  auto floor = pf::store_fence_floor(store);
  if (!floor) return report_error(c, store.description(), floor.error());
  if (!pf::is_operator_fence(*floor)) {
    std::printf("No operator hold on %s (its fence floor %llu is not an operator fence): nothing to release.\n",
                store.description().c_str(), static_cast<unsigned long long>(floor->value()));
    return exit_found;
  }
  const pf::fence_token released{floor->value() + 1};
  if (auto raised = store.raise_fence(released); !raised) return report_error(c, store.description(), raised.error());
  std::printf("Released the operator hold at fence %llu on %s: its floor is now %llu.\n"
              "Automation whose lease authority is wrapped in fence_floor_authority acquires its next lease\n"
              "above %llu and resumes; the operator fence %llu is refused from now on.\n",
              static_cast<unsigned long long>(floor->value()), store.description().c_str(),
              static_cast<unsigned long long>(released.value()), static_cast<unsigned long long>(released.value()),
              static_cast<unsigned long long>(floor->value()));
  return exit_ok;
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
    if (!number || *number == 0) usage_error(&c, "--stamp: expected a generation number, got '" + args.get("--stamp") + "'");
    old_gen = pf::generation{*number};
  }
  if (old_gen >= newest->gen()) usage_error(&c, "the history needs a generation older than " + std::to_string(newest->gen().value()));
  const std::string zone = *canonical_or_usage(c, "--zone", args.get("--zone"));
  const std::string emptied = *canonical_or_usage(c, "--endpoint", args.get("--endpoint"));
  if (newest->find(emptied) == nullptr) usage_error(&c, "--endpoint: generation " + std::to_string(newest->gen().value()) + " has no endpoint " + emptied);
  pf::any_store store = open_store(c, args, newest.get());
  auto* files = store.get_if<pf::zonefile_store>();
  if (files == nullptr) usage_error(&c, "--store: rehearse only writes zone-file stores (zonefile:///dir)");
  if (auto names = store.endpoint_names(); names) {
    for (const std::string& name : *names) {
      auto h = store.resolve(name);
      if (h && store.read_stamp(*h) && store.read_stamp(*h)->gen != pf::generation_none) {
        std::fprintf(stderr, "planfence-ctl rehearse: %s already serves plans (%s): rehearse only fresh stores\n",
                     store.description().c_str(), name.c_str());
        return exit_usage;
      }
    }
  }
  const auto zones = files->zones();
  if (std::find(zones.begin(), zones.end(), zone) == zones.end()) {
    if (auto created = files->create_zone(zone); !created) return report_error(c, "create zone " + zone, created.error());
  }
  const pf::fence_token fence{1};
  for (const auto& e : newest->endpoints()) {
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_main_help();
    return exit_usage;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_main_help();
    return exit_ok;
  }
  const command_spec* c = find_command(name);
  if (c == nullptr) usage_error(nullptr, "unknown command '" + std::string(name) + "'");
  const arguments args = parse_arguments(*c, argc - 2, argv + 2);
  if (name == "history") return run_history(*c, args);
  if (name == "show") return run_show(*c, args);
  if (name == "export") return run_export(*c, args);
  if (name == "diff") return run_diff(*c, args);
  if (name == "apply") return run_apply(*c, args);
  if (name == "override") return run_override(*c, args);
  if (name == "rehearse") return run_rehearse(*c, args);
  return run_release(*c, args);
}
