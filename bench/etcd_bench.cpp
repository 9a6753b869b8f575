// etcd_bench: what planfence's etcd client costs on top of the transaction itself.
//
// Each benchmark commits a new generation to one endpoint per thread, against a local etcd
// started here (tests/support/etcd_server.hpp), in two ways, in the same run:
//  - BM_EtcdStoreCommit: etcd_store::commit (build the value and the JSON, POST over the client's
//    kept-alive connection, parse the JSON answer);
//  - BM_RawHttpTxn (the baseline): the same transaction body, built by string concatenation and
//    written to a kept-alive socket by hand, the answer read by Content-Length and searched for
//    "succeeded":true, with no JSON parser at all.
// Each runs with 1 and 4 threads (one connection each). The claim is the ratio of the two times
// per commit, which docs/etcd.md records; both are dominated by etcd's raft commit and fsync, so
// the difference is the client.
//
// BM_EtcdBatchVsRaw writes 10,000 endpoints per iteration (300 under PLANFENCE_BENCH_SMOKE=1)
// with etcd_store::commit_batch, and the same transactions (max-txn-ops - 3 endpoints each, 125 at
// etcd's default 128, read from the store's limits(): a compare, a put and a failure range per
// endpoint, the floor compares once) written by hand to one kept-alive socket, alternating which
// goes first; its counters store_ms, raw_ms and ratio (store/raw, the claim: at most 1.5) are what
// docs/etcd.md records. Without an etcd binary the program prints a notice and exits 0 (so the
// bench-smoke test passes where etcd-server is not installed).
//
// BM_EtcdEnactorChange/N: the enactor at its default batch (the store's preferred_batch_max:
// max-txn-ops - 4 = 124 endpoints at etcd's default 128, one transaction each, the apply marks
// folded into the first and the last) applying a plan that changes all N endpoints of a fresh
// prefix, then one that changes 1% of them (bench/change_fixture.hpp); counters full_ms,
// change_ms, the store writes of each, the ratios change/full (targets: at most 2% of the writes
// and 5% of the time), batch (the enactor's batch_max), and raw_ms: the full plan's key writes as
// raw transactions of that same number of endpoints on one kept-alive socket, measured in the
// same iteration, with full_over_raw (the target: at most 1.5). N is 10,000 and 100,000 (300
// under PLANFENCE_BENCH_SMOKE=1).
#include <benchmark/benchmark.h>

#include <planfence/etcd/json.hpp>
#include <planfence/detail/socket.hpp>
#include <planfence/etcd/store.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../tests/support/etcd_server.hpp"
#include "../tests/support/fixtures.hpp"
#include "change_fixture.hpp"

namespace {

std::unique_ptr<planfence_test::etcd_member> server;

std::string endpoint_name(int thread) { return "bench" + std::to_string(thread) + ".example."; }

void BM_EtcdStoreCommit(benchmark::State& state) {
  const std::string prefix = "/bench/store-" + std::to_string(state.threads()) + "-" + std::to_string(state.thread_index());
  auto store = planfence::etcd_store::make(server->config(), prefix, {endpoint_name(state.thread_index())},
                                                 planfence::etcd::fence_mode::floor_only)
                   .value();
  const auto h = store.resolve(endpoint_name(state.thread_index())).value();
  const planfence::record_set records = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  planfence::stamp seen = store.read_stamp(h).value();
  std::uint64_t gen = seen.gen.value();
  for (auto _ : state) {
    auto done = store.commit(h, seen, planfence::stamp{planfence::generation{++gen}, planfence::fence_token{1}, 0}, records);
    if (!done) {
      state.SkipWithError(done.error().message().c_str());
      break;
    }
    seen = *done;
  }
  state.SetItemsProcessed(state.iterations());
}

/// One kept-alive socket and a hand-written HTTP exchange: the baseline.
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port) {
    fd_ = planfence::detail::tcp_connect("127.0.0.1", port, planfence::detail::deadline_after(std::chrono::seconds{2})).value();
    port_ = port;
  }
  /// POSTs `body` to /v3/kv/txn; returns the response body.
  std::string txn(const std::string& body) {
    std::string request = "POST /v3/kv/txn HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    const auto deadline = planfence::detail::deadline_after(std::chrono::seconds{5});
    if (!planfence::detail::send_all(fd_.get(), {reinterpret_cast<const std::uint8_t*>(request.data()), request.size()}, deadline)) {
      return {};
    }
    std::string in;
    std::array<std::uint8_t, 16384> buffer{};
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    bool chunked = false;
    for (;;) {
      auto got = planfence::detail::receive_some(fd_.get(), buffer, deadline);
      if (!got || *got == 0) return {};
      in.append(reinterpret_cast<const char*>(buffer.data()), *got);
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        const std::size_t at = in.find("Content-Length: ");
        chunked = at == std::string::npos || at > header_end;
        length = chunked ? 0 : std::stoul(in.substr(at + 16));
      }
      if (!chunked && in.size() >= header_end + 4 + length) return in.substr(header_end + 4, length);
      // Larger answers come chunked (Go's server): done at the last chunk, then joined.
      if (chunked && in.size() >= header_end + 9 && in.compare(in.size() - 5, 5, "0\r\n\r\n") == 0) {
        std::string joined;
        for (std::size_t at = header_end + 4;;) {
          const std::size_t size = std::stoul(in.substr(at), nullptr, 16);
          if (size == 0) return joined;
          at = in.find("\r\n", at) + 2;
          joined.append(in, at, size);
          at += size + 2;
        }
      }
    }
  }

 private:
  planfence::detail::unique_fd fd_;
  std::uint16_t port_ = 0;
};

void BM_RawHttpTxn(benchmark::State& state) {
  const std::string prefix = "/bench/raw-" + std::to_string(state.threads()) + "-" + std::to_string(state.thread_index());
  const std::string key = prefix + "/endpoints/" + endpoint_name(state.thread_index());
  const std::string floor = prefix + "/fence-floor";
  raw_connection c{server->client_port()};
  using planfence::detail::base64_encode;
  // The same floor key and first value as the store's; then the same compares and put.
  c.txn(R"({"compare":[],"success":[{"request_put":{"key":")" + base64_encode(floor) + R"(","value":")" +
        base64_encode(planfence::etcd::padded(0)) + R"("}}],"failure":[]})");
  const planfence::record_set records = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  // Setup, not timed: the key may exist from an earlier run of this benchmark.
  planfence::etcd::client setup{server->config()};
  std::int64_t revision = 0;
  if (auto got = setup.range(key); got && !got->kvs.empty()) revision = got->kvs[0].mod_revision;
  std::uint64_t gen = 0;
  const std::string key64 = base64_encode(key);
  const std::string floor64 = base64_encode(floor);
  const std::string fence_bound64 = base64_encode(planfence::etcd::padded(2));
  for (auto _ : state) {
    const std::string value = planfence::etcd::format_endpoint_value(endpoint_name(state.thread_index()), planfence::generation{++gen},
                                                                     planfence::fence_token{1}, records);
    const std::string first_compare = revision == 0 ? R"({"key":")" + key64 + R"(","target":"CREATE","result":"EQUAL","create_revision":"0"})"
                                                    : R"({"key":")" + key64 + R"(","target":"MOD","result":"EQUAL","mod_revision":")" +
                                                          std::to_string(revision) + R"("})";
    const std::string body = R"({"compare":[)" + first_compare + R"(,{"key":")" + floor64 +
                             R"(","target":"VALUE","result":"LESS","value":")" + fence_bound64 +
                             R"("}],"success":[{"request_put":{"key":")" + key64 + R"(","value":")" + base64_encode(value) +
                             R"("}}],"failure":[{"request_range":{"key":")" + key64 + R"("}},{"request_range":{"key":")" + floor64 +
                             R"("}}]})";
    const std::string answer = c.txn(body);
    if (answer.find("\"succeeded\":true") == std::string::npos) {
      state.SkipWithError("raw transaction failed");
      break;
    }
    const std::size_t at = answer.find("\"revision\":\"");
    revision = std::stoll(answer.substr(at + 12));
  }
  state.SetItemsProcessed(state.iterations());
}

/// Endpoints per iteration of BM_EtcdBatchVsRaw: 10,000, or 300 in the smoke run.
std::size_t batch_endpoints() {
  const char* smoke = std::getenv("PLANFENCE_BENCH_SMOKE");
  return smoke != nullptr && std::string_view(smoke) == "1" ? 300 : 10000;
}

/// The raw side of BM_EtcdBatchVsRaw: the transactions commit_batch sends (a compare, a put and a
/// range per endpoint; the two floor compares and the floor range once), written by hand to one
/// kept-alive socket in units of `per_txn` endpoints. Returns false when one was refused.
bool raw_batch(raw_connection& c, const std::string& prefix, const planfence::record_set& records, std::uint64_t gen,
               std::vector<std::int64_t>& revisions, std::size_t per_txn) {
  using planfence::detail::base64_encode;
  const std::string floor64 = base64_encode(prefix + "/fence-floor");
  const std::string floor_tail = R"(,{"key":")" + floor64 + R"(","target":"VALUE","result":"LESS","value":")" +
                                 base64_encode(planfence::etcd::padded(2)) + R"("},{"key":")" + floor64 +
                                 R"(","target":"VALUE","result":"GREATER","value":")" +
                                 base64_encode(std::string(planfence::etcd::padded_digits - 1, '0')) + R"("})";
  for (std::size_t begin = 0; begin < revisions.size(); begin += per_txn) {
    const std::size_t end = std::min(revisions.size(), begin + per_txn);
    std::string compares;
    std::string puts;
    std::string ranges;
    for (std::size_t i = begin; i < end; ++i) {
      const std::string name = "b" + std::to_string(i) + ".example.";
      const std::string key64 = base64_encode(prefix + "/endpoints/" + name);
      const char* comma = i == begin ? "" : ",";
      compares += comma;
      compares += revisions[i] == 0 ? R"({"key":")" + key64 + R"(","target":"CREATE","result":"EQUAL","create_revision":"0"})"
                                    : R"({"key":")" + key64 + R"(","target":"MOD","result":"EQUAL","mod_revision":")" +
                                          std::to_string(revisions[i]) + R"("})";
      puts += comma;
      puts += R"({"request_put":{"key":")" + key64 + R"(","value":")" +
              base64_encode(planfence::etcd::format_endpoint_value(name, planfence::generation{gen}, planfence::fence_token{1}, records)) +
              R"("}})";
      ranges += comma;
      ranges += R"({"request_range":{"key":")" + key64 + R"("}})";
    }
    const std::string answer = c.txn(R"({"compare":[)" + compares + floor_tail + R"(],"success":[)" + puts + R"(],"failure":[)" +
                                     ranges + R"(,{"request_range":{"key":")" + floor64 + R"("}}]})");
    if (answer.find("\"succeeded\":true") == std::string::npos) return false;
    const std::int64_t revision = std::stoll(answer.substr(answer.find("\"revision\":\"") + 12));
    for (std::size_t i = begin; i < end; ++i) revisions[i] = revision;
  }
  return true;
}

/// N endpoints written per iteration by etcd_store::commit_batch and by the same transactions
/// sent raw (raw_batch), alternating which goes first. Counters: the milliseconds of each per
/// iteration and their ratio store/raw (the claim: at most 1.5).
void BM_EtcdBatchVsRaw(benchmark::State& state) {
  const std::size_t n = batch_endpoints();
  const std::string store_prefix = "/bench/batch-store";
  const std::string raw_prefix = "/bench/batch-raw";
  auto store = planfence::etcd_store::make(server->config(), store_prefix, {}, planfence::etcd::fence_mode::floor_only).value();
  // commit_batch's unit: max-txn-ops less the floor's 3 (125 at etcd's default 128).
  const std::size_t per_txn = store.limits().max_txn_ops - 3;
  std::vector<planfence::endpoint_handle> handles;
  for (std::size_t i = 0; i < n; ++i) handles.push_back(store.resolve("b" + std::to_string(i) + ".example.").value());
  std::vector<planfence::stamp> seen(n);
  if (!store.read_stamps(handles, seen)) {
    state.SkipWithError("read_stamps failed");
    return;
  }
  const planfence::record_set records = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  raw_connection c{server->client_port()};
  // Setup, not timed: the floor key, and the raw keys' revisions from an earlier run.
  planfence::etcd::client setup{server->config()};
  if (!setup.put(raw_prefix + "/fence-floor", planfence::etcd::padded(0))) {
    state.SkipWithError("setup failed");
    return;
  }
  std::vector<std::int64_t> revisions(n, 0);
  std::uint64_t gen = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto got = setup.range(raw_prefix + "/endpoints/b" + std::to_string(i) + ".example.");
    if (got && !got->kvs.empty()) revisions[i] = got->kvs[0].mod_revision;
    gen = std::max(gen, seen[i].gen.value());
  }
  gen += 1000;  // above what earlier runs left in either prefix
  double store_seconds = 0;
  double raw_seconds = 0;
  std::vector<planfence::commit_item> items(n);
  for (auto _ : state) {
    ++gen;
    for (int pass = 0; pass < 2; ++pass) {
      const auto began = std::chrono::steady_clock::now();
      if ((pass == 0) == (state.iterations() % 2 == 0)) {
        for (std::size_t i = 0; i < n; ++i) {
          items[i] = planfence::commit_item{handles[i], seen[i], {planfence::generation{gen}, planfence::fence_token{1}, 0}, &records};
        }
        auto done = store.commit_batch(items);
        if (!done || items.back().outcome != planfence::commit_outcome::written) {
          state.SkipWithError(done ? "an item was not written" : done.error().message().c_str());
          return;
        }
        for (std::size_t i = 0; i < n; ++i) seen[i] = items[i].now;
        store_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      } else {
        if (!raw_batch(c, raw_prefix, records, gen, revisions, per_txn)) {
          state.SkipWithError("raw transaction failed");
          return;
        }
        raw_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      }
    }
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["endpoints"] = static_cast<double>(n);
  state.counters["store_ms"] = 1000 * store_seconds / iterations;
  state.counters["raw_ms"] = 1000 * raw_seconds / iterations;
  state.counters["ratio"] = raw_seconds > 0 ? store_seconds / raw_seconds : 0;
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(2 * n));
}

/// The enactor's full and 1% plans on a fresh prefix, and the full plan's writes sent raw.
void BM_EtcdEnactorChange(benchmark::State& state) {
  const std::size_t n = std::getenv("PLANFENCE_BENCH_SMOKE") != nullptr ? 300 : static_cast<std::size_t>(state.range(0));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back(planfence_bench::endpoint_name(i));
  planfence_bench::change_totals totals;
  double raw = 0;
  std::uint32_t batch = 0;
  static int prefixes = 0;
  static std::uint32_t variant = 0;
  const planfence::record_set records = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  for (auto _ : state) {
    const std::string prefix = "/bench/change-" + std::to_string(n) + "-" + std::to_string(++prefixes);
    auto store = planfence::etcd_store::make(server->config(), prefix, {}, planfence::etcd::fence_mode::floor_only).value();
    // The enactor at its default batch: the store's preferred_batch_max (124 at max-txn-ops 128).
    const planfence_bench::change_costs c = planfence_bench::measure_change(store, names, 1, variant += 2);
    if (!c.error.empty() || !c.followed) {
      state.SkipWithError(c.error.empty() ? "the 1% plan was not followed" : c.error.c_str());
      return;
    }
    // The baseline: the same number of key writes, raw, in transactions of the enactor's batch
    // (c.batch_max, read from the enactor), on a fresh prefix.
    batch = c.batch_max;
    raw_connection conn{server->client_port()};
    planfence::etcd::client setup{server->config()};
    const std::string raw_prefix = prefix + "-raw";
    if (!setup.put(raw_prefix + "/fence-floor", planfence::etcd::padded(0))) {
      state.SkipWithError("setup failed");
      return;
    }
    std::vector<std::int64_t> revisions(n, 0);
    const auto began = std::chrono::steady_clock::now();
    if (!raw_batch(conn, raw_prefix, records, 1, revisions, c.batch_max)) {
      state.SkipWithError("raw transaction failed");
      return;
    }
    raw += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    totals.add(c);
  }
  totals.report(state);
  state.counters["endpoints"] = static_cast<double>(n);
  state.counters["batch"] = static_cast<double>(batch);
  state.counters["raw_ms"] = 1000 * raw / static_cast<double>(state.iterations());
  state.counters["full_over_raw"] = totals.full_seconds / raw;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

BENCHMARK(BM_RawHttpTxn)->Threads(1)->Threads(4)->UseRealTime();
BENCHMARK(BM_EtcdEnactorChange)->Arg(10'000)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EtcdEnactorChange)->Arg(100'000)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EtcdBatchVsRaw)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EtcdStoreCommit)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (!planfence_test::etcd_available()) {
    std::printf("etcd_bench: no etcd binary (install etcd-server or set PLANFENCE_ETCD): skipped\n");
    return 0;
  }
  server = std::make_unique<planfence_test::etcd_member>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  server.reset();
  return 0;
}
