// bench/rfc2136_bench.cpp: UPDATE throughput of the RFC 2136 store against knotd on loopback,
// with knsupdate sending the same updates to the same server in the same run as the baseline.
//
// Four benchmarks, items per second where an item is one endpoint committed:
//   BM_Rfc2136Commit/1      one endpoint per UPDATE: rfc2136_store::commit
//   BM_Rfc2136Commit/100    100 endpoints per UPDATE: rfc2136_store::commit_batch
//   BM_KnsupdateCommit/1    the same UPDATEs (same prerequisites: the stamp and the floor; same
//   BM_KnsupdateCommit/100  deletes and adds) written as a knsupdate script, one knsupdate
//                           process per 20 messages (its start-up is part of its cost, as it is
//                           for anyone who drives knsupdate from a control plane)
// Both sign with the same TSIG key and wait for each answer before sending the next message, so
// the ratio compares the clients, not the server's parallelism. Knot 3.2.6 itself needs about
// 10 ms to apply one UPDATE on this machine (the floor under both), so single-endpoint rates are
// bounded by it and batches are what change the picture. docs/rfc2136.md records the ratios.
//
// Needs knotd and knsupdate at run time (not at build time): without them every benchmark is
// skipped with a message (SkipWithError), so the bench-smoke test still passes cleanly.
#include <benchmark/benchmark.h>

#include <planfence/rfc2136/store.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "examples/support/knot_server.hpp"

namespace {

using namespace planfence;

constexpr std::size_t endpoints = 100;
constexpr int knsupdate_messages_per_process = 20;

planfence_example::knot_server* server() {
  static std::unique_ptr<planfence_example::knot_server> knot = [] {
    std::unique_ptr<planfence_example::knot_server> out;
    if (!planfence_example::knot_server::available() || std::system("command -v knsupdate >/dev/null 2>&1") != 0) return out;
    auto started = planfence_example::knot_server::start({{"example.test.", ""}});
    if (started) out = std::make_unique<planfence_example::knot_server>(std::move(*started));
    else std::fprintf(stderr, "rfc2136_bench: %s\n", started.error().message().c_str());
    return out;
  }();
  return knot.get();
}

std::vector<std::string> names(const std::string& prefix) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < endpoints; ++i) out.push_back(prefix + std::to_string(i) + ".example.test.");
  return out;
}

record_set records_of(std::uint64_t gen) {
  auto r = record_set::make({make_record(record_type::a, 60, "10.1." + std::to_string(gen / 256 % 256) + "." + std::to_string(gen % 256)).value(),
                             make_record(record_type::a, 60, "10.2.0.1").value()});
  return std::move(*r);
}

void BM_Rfc2136Commit(benchmark::State& state) {
  auto* knot = server();
  if (knot == nullptr) {
    state.SkipWithError("knotd or knsupdate not found: skipped");
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  auto store = rfc2136_store::open_uri(knot->uri("example.test."), names("p" + std::to_string(batch) + "-")).value();
  std::vector<stamp> current(endpoints);
  for (std::uint32_t i = 0; i < endpoints; ++i) current[i] = store.read_stamp(endpoint_handle{i}).value();
  std::uint64_t gen = 1;
  for (const stamp& s : current) gen = std::max(gen, s.gen.value() + 1);
  std::size_t next = 0;
  std::int64_t items = 0;
  for (auto _ : state) {
    const record_set records = records_of(gen);
    std::vector<rfc2136_store::batch_item> items_now;
    for (std::size_t k = 0; k < batch; ++k) {
      const auto i = static_cast<std::uint32_t>(next++ % endpoints);
      items_now.push_back({endpoint_handle{i}, current[i], stamp{generation{gen}, fence_token{1}, 0}, &records});
    }
    if (batch == 1) {
      auto done = store.commit(items_now[0].endpoint, items_now[0].expected, items_now[0].desired, records);
      if (!done) {
        state.SkipWithError(done.error().message().c_str());
        return;
      }
    } else if (auto done = store.commit_batch(items_now); !done) {
      state.SkipWithError(done.error().message().c_str());
      return;
    }
    for (const auto& item : items_now) current[item.endpoint.index()] = stamp{item.desired.gen, item.desired.fence, 0};
    ++gen;
    items += static_cast<std::int64_t>(batch);
  }
  state.SetItemsProcessed(items);
}

void BM_KnsupdateCommit(benchmark::State& state) {
  auto* knot = server();
  if (knot == nullptr) {
    state.SkipWithError("knotd or knsupdate not found: skipped");
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  const auto all = names("k" + std::to_string(batch) + "-");
  // Google Benchmark calls this function several times (to pick the iteration count): the stamps
  // written by earlier calls are kept here, as the store reads them back in BM_Rfc2136Commit.
  static std::vector<std::uint64_t> stamps_by_batch[2] = {std::vector<std::uint64_t>(endpoints, 0),
                                                          std::vector<std::uint64_t>(endpoints, 0)};
  static std::uint64_t gen_by_batch[2] = {1, 1};
  std::vector<std::uint64_t>& current = stamps_by_batch[batch == 1 ? 0 : 1];
  std::uint64_t& gen = gen_by_batch[batch == 1 ? 0 : 1];
  const std::string script_path = knot->directory().string() + "/knsupdate-" + std::to_string(batch) + ".txt";
  std::size_t next = 0;
  std::int64_t items = 0;
  for (auto _ : state) {
    // Each iteration is one knsupdate process sending knsupdate_messages_per_process UPDATEs.
    state.PauseTiming();
    std::string script = "server 127.0.0.1 " + std::to_string(knot->port()) + "\nzone example.test.\n";
    for (int m = 0; m < knsupdate_messages_per_process; ++m, ++gen) {
      script += "prereq nxrrset _fence._planfence.example.test. TXT\nprereq nxrrset _planfence-floor.example.test. TXT\n";
      std::vector<std::size_t> chosen;
      for (std::size_t k = 0; k < batch; ++k) chosen.push_back(next++ % endpoints);
      for (std::size_t i : chosen) {
        const std::string stamp_name = "_planfence." + all[i];
        if (current[i] == 0) script += "prereq nxrrset " + stamp_name + " TXT\n";
        else script += "prereq yxrrset " + stamp_name + " TXT \"gen=" + std::to_string(current[i]) + " fence=1\"\n";
      }
      for (std::size_t i : chosen) {
        for (const char* type : {"A", "AAAA", "CNAME", "TXT"}) script += "update delete " + all[i] + " " + type + "\n";
        for (const record& r : records_of(gen).records()) script += "update add " + all[i] + " 60 A " + r.rdata + "\n";
        script += "update delete _weight._planfence." + all[i] + " TXT\n";
        script += "update delete _planfence." + all[i] + " TXT\n";
        script += "update add _planfence." + all[i] + " 0 TXT \"gen=" + std::to_string(gen) + " fence=1\"\n";
        current[i] = gen;
      }
      script += "send\n";
    }
    std::ofstream(script_path) << script;
    const std::string command = "knsupdate -y " + knot->key_argument() + " " + script_path + " >" + script_path + ".log 2>&1";
    state.ResumeTiming();
    if (std::system(command.c_str()) != 0) {
      std::ifstream log(script_path + ".log");
      std::string line, last;
      while (std::getline(log, line)) last = line;
      const std::string why = "knsupdate failed: " + last;
      state.SkipWithError(why.c_str());
      return;
    }
    items += static_cast<std::int64_t>(batch) * knsupdate_messages_per_process;
  }
  state.SetItemsProcessed(items);
}

BENCHMARK(BM_Rfc2136Commit)->Arg(1)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_KnsupdateCommit)->Arg(1)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
