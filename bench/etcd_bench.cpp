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
// the difference is the client. Without an etcd binary the program prints a notice and exits 0
// (so the bench-smoke test passes where etcd-server is not installed).
#include <benchmark/benchmark.h>

#include <planfence/etcd/json.hpp>
#include <planfence/detail/socket.hpp>
#include <planfence/etcd/store.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "../tests/support/etcd_server.hpp"
#include "../tests/support/fixtures.hpp"

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
    for (;;) {
      auto got = planfence::detail::receive_some(fd_.get(), buffer, deadline);
      if (!got || *got == 0) return {};
      in.append(reinterpret_cast<const char*>(buffer.data()), *got);
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        const std::size_t at = in.find("Content-Length: ");
        length = at == std::string::npos ? 0 : std::stoul(in.substr(at + 16));
      }
      if (in.size() >= header_end + 4 + length) return in.substr(header_end + 4, length);
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

BENCHMARK(BM_RawHttpTxn)->Threads(1)->Threads(4)->UseRealTime();
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
