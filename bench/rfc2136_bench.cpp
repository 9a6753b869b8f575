// bench/rfc2136_bench.cpp: UPDATE throughput of the RFC 2136 store against real servers on
// loopback (Knot, BIND, PowerDNS), with knsupdate sending the same updates to the same server in
// the same run as the baseline.
//
// Benchmarks, items per second where an item is one endpoint:
//   BM_Rfc2136Commit/knot        one endpoint per UPDATE: rfc2136_store::commit
//   BM_KnsupdateCommit/knot      the same UPDATEs as a knsupdate script (same prerequisites: the
//                                stamp and both floor owners; same deletes and adds), one
//                                knsupdate process per 20 messages (its start-up is part of its
//                                cost, as it is for anyone who drives knsupdate from a control
//                                plane)
//   BM_Rfc2136Plan/SERVER        a plan of 10,000 endpoints (two A records each) committed with
//                                ONE commit_batch, split into UPDATEs of 100 endpoints
//                                (rfc2136_options::update_endpoints_max): 100 UPDATEs per plan
//   BM_KnsupdatePlan/SERVER      the same 100 UPDATEs of 100 endpoints through knsupdate -v
//                                (TCP, as the store), one process per 20 messages. (100 endpoints of this shape are about
//                                33 KB; 200 would pass the 64 KiB a DNS message can hold.)
//   BM_Rfc2136ReadStamps/SERVER  read_stamps of the 10,000 stamps (pipelined TXT queries)
//   BM_EnactorChange/SERVER      the enactor at its default batch (the store's preferred 500
//                                endpoints), UPDATEs of up to 100,
//                                after knsupdate sent the same records to the same names without
//                                prerequisites (knsupdate_ms; full_vs_knsupdate: target 1.5x)
//                                applying a plan that changes every one of the 10,000 endpoints
//                                (the records of BM_KnsupdatePlan: full_ms compares with it),
//                                then one that changes 1% of them (bench/change_fixture.hpp):
//                                counters full_ms, change_ms, the store writes of each and the
//                                ratios change/full (targets: at most 2% of the writes, 5% of the
//                                time), and the UPDATEs each sent
//   BM_EnactorChange100k/knot    the same with 100,000 endpoints, one iteration (time reported)
// PowerDNS (SQLite backend) replaces records slowly in a zone of 10,000 names: its plans are
// 1,000 endpoints, one iteration.
// SERVER is knot, bind or pdns; a server not installed here is skipped with a message. Both
// clients sign with the same TSIG key and wait for each UPDATE's answer before sending the next,
// so the ratio compares the clients, not the server's parallelism. docs/rfc2136.md records the
// numbers and the command.
//
// PLANFENCE_BENCH_SMOKE=1 (the bench-smoke test) uses 300 endpoints and one iteration, so that
// the test stays short. Needs the servers and knsupdate at run time (not at build time): without
// them the benchmarks are skipped with a message (SkipWithError), so bench-smoke still passes.
#include <benchmark/benchmark.h>

#include <planfence/rfc2136/store.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "examples/support/bind_server.hpp"
#include "examples/support/knot_server.hpp"
#include "examples/support/pdns_server.hpp"
#include "bench/change_fixture.hpp"

namespace {

using namespace planfence;

constexpr std::size_t single_endpoints = 100;
constexpr std::size_t endpoints_per_update = 100;
constexpr int knsupdate_messages_per_process = 20;

bool smoke() { return std::getenv("PLANFENCE_BENCH_SMOKE") != nullptr; }
/// PowerDNS with its SQLite backend writes a first 10,000-endpoint plan in about a second, but
/// then replaces about 20 endpoints a second in a zone of that size (seen in its log, whoever
/// sends the UPDATEs): its plan is 1,000 endpoints (and one iteration), so that the run ends.
std::size_t plan_endpoints(const std::string& server_name) {
  if (smoke()) return 300;
  return server_name == "pdns" ? 1'000 : 10'000;
}

/// One running server: where it listens and its key; its directory for scripts.
struct target {
  std::string uri;
  std::uint16_t port = 0;
  std::string key_argument;
  std::string directory;
  std::function<void()> keep;  // holds the server
};

bool have_knsupdate() { return std::system("command -v knsupdate >/dev/null 2>&1") == 0; }

template <class Server>
std::shared_ptr<Server> started(planfence::result<Server> server, const char* who) {
  if (!server) {
    std::fprintf(stderr, "rfc2136_bench: %s: %s\n", who, server.error().message().c_str());
    return nullptr;
  }
  return std::make_shared<Server>(std::move(*server));
}

/// The server `name` (knot, bind, pdns), started once; null when it cannot run here.
const target* server(const std::string& name) {
  static std::map<std::string, std::unique_ptr<target>> running;
  if (auto it = running.find(name); it != running.end()) return it->second.get();
  std::unique_ptr<target> out;
  if (have_knsupdate()) {
    if (name == "knot" && planfence_example::knot_server::available()) {
      if (auto s = started(planfence_example::knot_server::start({{"example.test.", ""}}), "knotd")) {
        out = std::make_unique<target>(target{s->uri("example.test."), s->port(), s->key_argument(), s->directory().string(), [s] {}});
      }
    } else if (name == "bind" && planfence_example::bind_server::available()) {
      if (auto s = started(planfence_example::bind_server::start("example.test."), "named")) {
        out = std::make_unique<target>(target{s->uri(), s->port(), s->key_argument(), s->directory().string(), [s] {}});
      }
    } else if (name == "pdns" && planfence_example::pdns_server::available()) {
      if (auto s = started(planfence_example::pdns_server::start("example.test."), "pdns_server")) {
        out = std::make_unique<target>(target{s->uri(), s->port(), s->key_argument(), s->directory().string(), [s] {}});
      }
    }
  }
  // A long per-attempt timeout: PowerDNS's SQLite backend takes seconds for an UPDATE of 100
  // endpoints, and a timed-out attempt would be sent again. knsupdate gets the same (-t).
  if (out) out->uri += "&timeout-ms=60000";
  return (running[name] = std::move(out)).get();
}

std::vector<std::string> names(const std::string& prefix, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i) + ".example.test.");
  return out;
}

record_set records_of(std::uint64_t gen) {
  auto r = record_set::make({make_record(record_type::a, 60, "10.1." + std::to_string(gen / 256 % 256) + "." + std::to_string(gen % 256)).value(),
                             make_record(record_type::a, 60, "10.2.0.1").value()});
  return std::move(*r);
}

/// The knsupdate lines of one UPDATE for `chosen` endpoints of `all`, from `current` to `gen`
/// (the store's UPDATE, as text).
/// `prerequisites` false: the same deletes and adds with no prerequisite at all (the baseline the
/// enactor's full plan is held to: what an unfenced tool sends).
std::string knsupdate_message(const std::vector<std::string>& all, const std::vector<std::size_t>& chosen,
                              std::vector<std::uint64_t>& current, std::uint64_t gen, bool prerequisites = true) {
  std::string script = prerequisites ? "prereq nxrrset _fence._planfence.example.test. TXT\nprereq nxrrset _planfence-floor.example.test. TXT\n" : "";
  for (std::size_t i : chosen) {
    if (!prerequisites) break;
    const std::string stamp_name = "_planfence." + all[i];
    if (current[i] == 0) script += "prereq nxrrset " + stamp_name + " TXT\n";
    else script += "prereq yxrrset " + stamp_name + " TXT \"gen=" + std::to_string(current[i]) + " fence=1\"\n";
  }
  const record_set records = records_of(gen);
  for (std::size_t i : chosen) {
    for (const char* type : {"A", "AAAA", "CNAME", "TXT"}) script += "update delete " + all[i] + " " + type + "\n";
    for (const record& r : records.records()) script += "update add " + all[i] + " 60 A " + r.rdata + "\n";
    script += "update delete _weight._planfence." + all[i] + " TXT\n";
    script += "update delete _planfence." + all[i] + " TXT\n";
    script += "update add _planfence." + all[i] + " 0 TXT \"gen=" + std::to_string(gen) + " fence=1\"\n";
    current[i] = gen;
  }
  return script + "send\n";
}

/// Runs knsupdate over `script`; empty on success, else its last line. `tcp`: knsupdate -v, as
/// the store sends a message over 512 octets (knsupdate would send a 33 KB UPDATE as one UDP
/// datagram, which PowerDNS does not take).
std::string run_knsupdate(const target& t, const std::string& script, const std::string& path, bool tcp = false) {
  std::ofstream(path) << "server 127.0.0.1 " << t.port << "\nzone example.test.\n" << script;
  const std::string command = "knsupdate -t 60 " + std::string(tcp ? "-v " : "") + "-y " + t.key_argument + " " + path + " >" + path + ".log 2>&1";
  if (std::system(command.c_str()) == 0) return {};
  std::ifstream log(path + ".log");
  std::string line, last;
  while (std::getline(log, line)) last = line;
  return "knsupdate failed: " + last;
}

/// Sends records_of(gen) and the stamp gen=`gen` for every endpoint of `all` through knsupdate -v,
/// in UPDATEs of endpoints_per_update endpoints, one process per knsupdate_messages_per_process
/// messages. Returns the seconds it took (scripts are written before the clock starts), or a
/// negative value with `why` set.
double knsupdate_plan_seconds(const target& t, const std::vector<std::string>& all, std::uint64_t gen,
                              bool prerequisites, std::vector<std::uint64_t>& current, std::string& why) {
  std::vector<std::string> scripts(1);
  int in_script = 0;
  for (std::size_t first = 0; first < all.size(); first += endpoints_per_update) {
    std::vector<std::size_t> chosen;
    for (std::size_t i = first; i < std::min(all.size(), first + endpoints_per_update); ++i) chosen.push_back(i);
    if (in_script == knsupdate_messages_per_process) {
      scripts.emplace_back();
      in_script = 0;
    }
    scripts.back() += knsupdate_message(all, chosen, current, gen, prerequisites);
    ++in_script;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t s = 0; s < scripts.size(); ++s) {
    const std::string path = t.directory + "/knsupdate-plan-" + std::to_string(s) + ".txt";
    if (why = run_knsupdate(t, scripts[s], path, /*tcp=*/true); !why.empty()) return -1;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_Rfc2136Commit(benchmark::State& state, std::string server_name) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  auto store = rfc2136_store::open_uri(t->uri, names("p1-", single_endpoints)).value();
  std::vector<stamp> current(single_endpoints);
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < single_endpoints; ++i) all.push_back(endpoint_handle{i});
  if (auto read = store.read_stamps(all, current); !read) return state.SkipWithError(read.error().message().c_str());
  std::uint64_t gen = 1;
  for (const stamp& s : current) gen = std::max(gen, s.gen.value() + 1);
  std::size_t next = 0;
  for (auto _ : state) {
    const record_set records = records_of(gen);
    const auto i = static_cast<std::uint32_t>(next++ % single_endpoints);
    auto done = store.commit(endpoint_handle{i}, current[i], stamp{generation{gen}, fence_token{1}, 0}, records);
    if (!done) return state.SkipWithError(done.error().message().c_str());
    current[i] = *done;
    ++gen;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_KnsupdateCommit(benchmark::State& state, std::string server_name) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  const auto all = names("k1-", single_endpoints);
  // Google Benchmark calls this function several times: the stamps written before are kept.
  static std::map<std::string, std::vector<std::uint64_t>> stamps;
  static std::map<std::string, std::uint64_t> gens;
  std::vector<std::uint64_t>& current = stamps.try_emplace(server_name, single_endpoints, 0).first->second;
  std::uint64_t& gen = gens.try_emplace(server_name, 1).first->second;
  std::size_t next = 0;
  std::int64_t items = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string script;
    for (int m = 0; m < knsupdate_messages_per_process; ++m, ++gen) script += knsupdate_message(all, {next++ % single_endpoints}, current, gen);
    state.ResumeTiming();
    if (auto why = run_knsupdate(*t, script, t->directory + "/knsupdate-1.txt"); !why.empty()) return state.SkipWithError(why.c_str());
    items += knsupdate_messages_per_process;
  }
  state.SetItemsProcessed(items);
}

void BM_Rfc2136Plan(benchmark::State& state, std::string server_name) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  const std::size_t n = plan_endpoints(server_name);
  auto options = rfc2136_store::parse_uri(t->uri).value();
  options.update_endpoints_max = endpoints_per_update;
  auto store = rfc2136_store::open(options, names("p-", n)).value();
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < n; ++i) all.push_back(endpoint_handle{i});
  std::vector<stamp> current(n);
  if (auto read = store.read_stamps(all, current); !read) return state.SkipWithError(read.error().message().c_str());
  std::uint64_t gen = 1;
  for (const stamp& s : current) gen = std::max(gen, s.gen.value() + 1);
  std::vector<commit_item> items(n);
  const std::uint64_t sent_before = store.updates_sent();
  for (auto _ : state) {
    state.PauseTiming();
    const record_set records = records_of(gen);
    for (std::uint32_t i = 0; i < n; ++i) items[i] = commit_item{all[i], current[i], stamp{generation{gen}, fence_token{1}, 0}, &records};
    state.ResumeTiming();
    if (auto done = store.commit_batch(items); !done) return state.SkipWithError(done.error().message().c_str());
    for (std::uint32_t i = 0; i < n; ++i) {
      if (items[i].outcome != commit_outcome::written) return state.SkipWithError("an endpoint of the plan was not written");
      current[i] = items[i].now;
    }
    ++gen;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.counters["updates_per_plan"] =
      static_cast<double>(store.updates_sent() - sent_before) / static_cast<double>(state.iterations());
}

void BM_KnsupdatePlan(benchmark::State& state, std::string server_name) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  const std::size_t n = plan_endpoints(server_name);
  const auto all = names("k-", n);
  static std::map<std::string, std::vector<std::uint64_t>> stamps;
  static std::map<std::string, std::uint64_t> gens;
  std::vector<std::uint64_t>& current = stamps.try_emplace(server_name, n, 0).first->second;
  std::uint64_t& gen = gens.try_emplace(server_name, 1).first->second;
  std::int64_t items = 0;
  for (auto _ : state) {
    std::string why;
    const double seconds = knsupdate_plan_seconds(*t, all, gen++, true, current, why);
    if (seconds < 0) return state.SkipWithError(why.c_str());
    state.SetIterationTime(seconds);
    items += static_cast<std::int64_t>(n);
  }
  state.SetItemsProcessed(items);
}

void BM_Rfc2136ReadStamps(benchmark::State& state, std::string server_name) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  const std::size_t n = plan_endpoints(server_name);
  auto store = rfc2136_store::open_uri(t->uri, names("p-", n)).value();
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < n; ++i) all.push_back(endpoint_handle{i});
  std::vector<stamp> out(n);
  for (auto _ : state) {
    if (auto read = store.read_stamps(all, out); !read) return state.SkipWithError(read.error().message().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

/// The enactor applying a full plan, then a 1% plan, to `n` endpoints of `server_name`.
void enactor_change(benchmark::State& state, const std::string& server_name, std::size_t n) {
  const target* t = server(server_name);
  if (t == nullptr) return state.SkipWithError((server_name + " or knsupdate not available: skipped").c_str());
  auto options = rfc2136_store::parse_uri(t->uri).value();
  options.update_endpoints_max = endpoints_per_update;
  const std::vector<std::string> all = names("c" + std::to_string(n) + "-", n);
  auto store = rfc2136_store::open(options, all).value();
  planfence_bench::change_totals totals;
  double full_updates = 0, change_updates = 0;
  static std::uint32_t variant = 0;
  std::vector<std::uint64_t> knsupdate_current(n, 0);
  double knsupdate_seconds = 0;
  {
    // The names written once, untimed, before the timed passes: else the first iteration's
    // baseline only adds records (its deletes find nothing) while the enactor replaces the records
    // the baseline just wrote. With one iteration (the 100,000-endpoint case) that made the ratio
    // about 1.9x where a baseline that replaces, as the enactor does, gave about 1.1x. Other
    // records and stamps than the timed pass's (gen + 2: an UPDATE that changes nothing costs
    // the server almost nothing); the timed pass then puts every stamp below the enactor's.
    auto marks = store.read_marks();
    if (!marks) return state.SkipWithError(marks.error().message().c_str());
    std::string why;
    if (knsupdate_plan_seconds(*t, all, marks->begun.value() + 3, false, knsupdate_current, why) < 0) {
      return state.SkipWithError(why.c_str());
    }
  }
  for (auto _ : state) {
    auto marks = store.read_marks();
    if (!marks) return state.SkipWithError(marks.error().message().c_str());
    // The baseline, in the same zone, of the same size, just before: knsupdate sending the same
    // deletes and adds for every endpoint, in UPDATEs of the same size, without prerequisites
    // (Knot's time for an UPDATE grows with the zone, so a baseline taken on another set of names
    // or at another point of the run would compare zones, not clients). Its stamps are one
    // generation below the enactor's plan.
    std::string why;
    const double baseline = knsupdate_plan_seconds(*t, all, marks->begun.value() + 1, false, knsupdate_current, why);
    if (baseline < 0) return state.SkipWithError(why.c_str());
    knsupdate_seconds += baseline;
    const std::uint64_t sent = store.updates_sent();
    std::uint64_t sent_between = sent;
    const planfence_bench::change_costs c = planfence_bench::measure_change(
        store, all, marks->begun.value() + 2, variant += 2, 0 /* the store's batch */, true, [&] { sent_between = store.updates_sent(); },
        [](std::size_t, std::uint32_t v) { return records_of(v); });  // the shape BM_KnsupdatePlan sends
    if (!c.error.empty() || !c.followed) return state.SkipWithError(c.error.empty() ? "the 1% plan was not followed" : c.error.c_str());
    totals.add(c);
    full_updates += static_cast<double>(sent_between - sent);
    change_updates += static_cast<double>(store.updates_sent() - sent_between);
  }
  const double iterations = static_cast<double>(state.iterations());
  totals.report(state);
  state.counters["endpoints"] = static_cast<double>(n);
  state.counters["full_updates"] = full_updates / iterations;  // the marks' UPDATEs included
  state.counters["change_updates"] = change_updates / iterations;
  state.counters["knsupdate_ms"] = knsupdate_seconds * 1e3 / iterations;
  // The target: the enactor's full plan at most 1.5x this same-zone knsupdate baseline.
  state.counters["full_vs_knsupdate"] = totals.full_seconds / knsupdate_seconds;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_EnactorChange(benchmark::State& state, std::string server_name) {
  enactor_change(state, server_name, plan_endpoints(server_name));
}
void BM_EnactorChange100k(benchmark::State& state, std::string server_name) {
  enactor_change(state, server_name, smoke() ? 300 : 100'000);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = smoke() ? 1 : 3;
  benchmark::RegisterBenchmark("BM_Rfc2136Commit/knot", BM_Rfc2136Commit, std::string("knot"))
      ->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_KnsupdateCommit/knot", BM_KnsupdateCommit, std::string("knot"))
      ->Unit(benchmark::kMillisecond)->UseRealTime();
  for (const char* name : {"knot", "bind", "pdns"}) {
    const int plan_iterations = std::string(name) == "pdns" ? 1 : iterations;
    benchmark::RegisterBenchmark((std::string("BM_Rfc2136Plan/") + name).c_str(), BM_Rfc2136Plan, std::string(name))
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(plan_iterations);
    benchmark::RegisterBenchmark((std::string("BM_KnsupdatePlan/") + name).c_str(), BM_KnsupdatePlan, std::string(name))
        ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(plan_iterations);
    benchmark::RegisterBenchmark((std::string("BM_Rfc2136ReadStamps/") + name).c_str(), BM_Rfc2136ReadStamps,
                                 std::string(name))
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(plan_iterations);
    benchmark::RegisterBenchmark((std::string("BM_EnactorChange/") + name).c_str(), BM_EnactorChange, std::string(name))
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(plan_iterations);
  }
  benchmark::RegisterBenchmark("BM_EnactorChange100k/knot", BM_EnactorChange100k, std::string("knot"))
      ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
