// examples/embedded_control_plane.cpp: planfence embedded in a control plane, in one process.
//
// A planner thread publishes a new plan every few milliseconds (weighted A records for a
// regional database endpoint and a few others), three enactor threads, one per "availability
// zone", apply them through one shared in-memory store under leases that change hands, and
// resolver threads answer queries from the store the whole time. One zone stalls now and then
// past its lease, as the delayed 2025 enactor did. Then a scripted act: az1 holds the lease,
// stalls past it while az2 takes over with a larger fence token, and wakes to find its lease
// gone; an operator holds the store (an operator fence, as `planfence-ctl override` raises) and
// automation stays out; the operator releases it and automation finishes the newest plan. Each
// thread says what it did; the program ends with a check of S1 to S4 (and S6) on everything the
// resolvers saw, and exits 1 if any check failed.
//
// With --serve-metrics PORT it serves Prometheus metrics (planfence/metrics.hpp, docs/metrics.md)
// at http://127.0.0.1:PORT/metrics the whole time (PORT 0: any free port; the program prints
// which), and --hold-seconds N holds each scripted act N seconds, so that a scraper sees each
// state (tests/metrics/prometheus_test.py runs a real Prometheus against it).
//
//   build/examples/embedded_control_plane [--seconds N] [--quiet] [--serve-metrics PORT] [--hold-seconds N]
#include <planfence/detail/socket.hpp>
#include <planfence/metrics.hpp>
#include <planfence/planfence.hpp>
#include <planfence/recovery.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = planfence::steady_clock;
using inner_authority_type = planfence::local_lease_authority<clock_type>;

/// The store's fence floor, read at each lease acquire: automation stays out while an operator
/// holds the store, and its tokens stay above the floor (recovery.hpp, fence_floor_authority).
struct store_floor {
  const planfence::memory_store* store;
  planfence::result<planfence::fence_token> operator()() const { return planfence::store_fence_floor(*store); }
};
using authority_type = planfence::fence_floor_authority<inner_authority_type, store_floor>;

std::mutex print_mutex;
bool quiet = false;

void say(const char* who, const std::string& what) {
  if (quiet) return;
  std::lock_guard lock(print_mutex);
  std::printf("%-10s %s\n", who, what.c_str());
}

/// Prints the decisions that matter to a person watching (not every applied endpoint). The
/// enactor's metrics count every event first (metrics_sink, in front of this one).
struct printing_sink {
  std::atomic<std::uint64_t>* applied;
  void operator()(const planfence::event& e) const {
    using planfence::event_kind;
    if (e.kind == event_kind::applied) {
      applied->fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (quiet) return;  // the rest only prints (and would allocate for nothing)
    const std::string holder(e.holder);
    switch (e.kind) {
      case event_kind::lease_gained:
        say(holder.c_str(), "gained the lease with fence token " + std::to_string(e.fence.value()));
        return;
      case event_kind::lease_lost:
        say(holder.c_str(), "lost the lease (fence " + std::to_string(e.fence.value()) + "): stops writing");
        return;
      case event_kind::fenced:
        say(holder.c_str(), "fenced out at " + (e.endpoint.empty() ? std::string("the apply marks") : std::string(e.endpoint)) +
                                  ": a newer lease holder, or an operator, raised the fence (S2)");
        return;
      case event_kind::plan_applied:  // one line in fifty: the rest looks the same
        if (e.gen.value() % 50 == 0) say(holder.c_str(), "applied generation " + std::to_string(e.gen.value()) + " to every endpoint");
        return;
      case event_kind::collected:
        if (e.gen.value() % 50 == 0) say(holder.c_str(), "collected plan " + std::to_string(e.gen.value()) + " (and others, quietly)");
        return;
      case event_kind::protected_from_collection:
        say(holder.c_str(), "kept plan " + std::to_string(e.gen.value()) + ": still live or in use (S3)");
        return;
      case event_kind::refused_blast_radius:
        say(holder.c_str(), "refused generation " + std::to_string(e.gen.value()) + " by the blast-radius guard (S4)");
        return;
      default: return;
    }
  }
};

planfence::record_set weighted_pool(std::uint64_t gen, int size) {
  std::vector<planfence::record> records;
  for (int i = 0; i < size; ++i) {
    const std::string address = "10." + std::to_string(i + 1) + "." + std::to_string(gen / 256 % 256) + "." + std::to_string(gen % 256);
    records.push_back(planfence::make_record(planfence::record_type::a, 5, address, static_cast<std::uint8_t>(10 + i)).value());
  }
  return planfence::record_set::make(std::move(records)).value();
}

/// A tiny HTTP server for Prometheus: GET /metrics on 127.0.0.1, one connection at a time,
/// requests of at most 8 KiB read within 2 s, every answer closes its connection.
class metrics_server {
 public:
  static planfence::result<std::unique_ptr<metrics_server>> start(std::uint16_t port, const planfence::metrics_collector& metrics) {
    auto address = planfence::detail::resolve_address("127.0.0.1", port);
    if (!address) return planfence::unexpected_error(address.error());
    auto listener = planfence::detail::bind_socket(*address, SOCK_STREAM);
    if (!listener) return planfence::unexpected_error(listener.error());
    auto bound = planfence::detail::local_port(listener->get());
    if (!bound) return planfence::unexpected_error(bound.error());
    return std::unique_ptr<metrics_server>(new metrics_server(std::move(*listener), *bound, metrics));
  }
  ~metrics_server() {
    stop_ = true;
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

 private:
  metrics_server(planfence::detail::unique_fd listener, std::uint16_t port, const planfence::metrics_collector& metrics)
      : listener_(std::move(listener)), port_(port), metrics_(&metrics), thread_([this] { serve(); }) {}

  void serve() {
    while (!stop_.load(std::memory_order_acquire)) {
      auto connection = planfence::detail::accept_connection(listener_.get(), planfence::detail::deadline_after(200ms));
      if (!connection) continue;  // a timeout (look at stop_ again) or a failed accept
      answer(connection->get());
    }
  }

  void answer(int fd) const {
    constexpr std::size_t request_max = 8192;
    std::string request;
    std::array<std::uint8_t, 1024> buffer{};
    const auto deadline = planfence::detail::deadline_after(2000ms);
    while (request.find("\r\n\r\n") == std::string::npos) {
      if (request.size() >= request_max) return reply(fd, "431 Request Header Fields Too Large", "text/plain", "request too large\n");
      auto got = planfence::detail::receive_some(fd, buffer, deadline);
      if (!got || *got == 0) return;  // timed out or closed: nothing to answer
      request.append(reinterpret_cast<const char*>(buffer.data()), *got);
    }
    const std::string_view line = std::string_view(request).substr(0, request.find("\r\n"));
    if (line.rfind("GET ", 0) != 0) return reply(fd, "405 Method Not Allowed", "text/plain", "only GET\n");
    const std::string_view target = line.substr(4, line.find(' ', 4) == std::string_view::npos ? std::string_view::npos : line.find(' ', 4) - 4);
    if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) return reply(fd, "404 Not Found", "text/plain", "try /metrics\n");
    reply(fd, "200 OK", planfence::metrics_content_type, metrics_->render());
  }

  static void reply(int fd, std::string_view status, std::string_view type, const std::string& body) {
    std::string response = "HTTP/1.1 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
                           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    const auto bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(response.data()), response.size());
    static_cast<void>(planfence::detail::send_all(fd, bytes, planfence::detail::deadline_after(2000ms)));
  }

  planfence::detail::unique_fd listener_;
  std::uint16_t port_;
  const planfence::metrics_collector* metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A scripted act's marker line, always printed (a test driver waits for them): the act's name
/// and the Unix time it began.
void act(const char* name, const std::string& what) {
  std::lock_guard lock(print_mutex);
  std::printf("act %s at %.3f: %s\n", name,
              std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(), what.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 2;
  int hold_seconds = 0;
  std::optional<std::uint16_t> metrics_port;
  auto number = [&](int& i, int low, int high, const char* flag) -> std::optional<int> {
    char* end = nullptr;
    const long value = i + 1 < argc ? std::strtol(argv[i + 1], &end, 10) : -1;
    if (i + 1 >= argc || end == argv[i + 1] || *end != '\0' || value < low || value > high) {
      std::fprintf(stderr, "embedded_control_plane: %s takes %d..%d\n", flag, low, high);
      return std::nullopt;
    }
    ++i;
    return static_cast<int>(value);
  };
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else if (std::strcmp(argv[i], "--seconds") == 0) {
      auto n = number(i, 1, 3600, "--seconds");
      if (!n) return 2;
      seconds = *n;
    } else if (std::strcmp(argv[i], "--hold-seconds") == 0) {
      auto n = number(i, 0, 3600, "--hold-seconds");
      if (!n) return 2;
      hold_seconds = *n;
    } else if (std::strcmp(argv[i], "--serve-metrics") == 0) {
      auto n = number(i, 0, 65535, "--serve-metrics");
      if (!n) return 2;
      metrics_port = static_cast<std::uint16_t>(*n);
    } else {
      std::fprintf(stderr, "usage: embedded_control_plane [--seconds N] [--quiet] [--serve-metrics PORT] [--hold-seconds N]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }

  const std::vector<std::string> endpoints = {"dynamodb.us-east-1.example.", "sqs.us-east-1.example.",
                                              "sts.us-east-1.example.", "iam.us-east-1.example.",
                                              "ec2.us-east-1.example.", "lambda.us-east-1.example."};
  clock_type clock;
  inner_authority_type leases{clock};
  planfence::plan_registry registry;
  auto store = planfence::memory_store::make(registry, endpoints).value();
  authority_type authority{leases, store_floor{&store}};
  planfence::sequencer sequencer;

  // Metrics: every enactor's events, the store scanned for endpoints that serve nothing, the
  // registry; served over HTTP when asked.
  planfence::metrics_collector metrics;
  metrics.add_store("memory", store, registry);
  metrics.add_registry("main", registry);
  std::vector<planfence::enactor_metrics*> zone_metrics;
  for (int z = 1; z <= 3; ++z) zone_metrics.push_back(&metrics.add_enactor("az" + std::to_string(z), registry));
  std::unique_ptr<metrics_server> server;
  if (metrics_port) {
    auto started = metrics_server::start(*metrics_port, metrics);
    if (!started) {
      std::fprintf(stderr, "embedded_control_plane: cannot serve metrics: %s\n", started.error().message().c_str());
      return 2;
    }
    server = std::move(*started);
    std::printf("metrics at http://127.0.0.1:%u/metrics\n", static_cast<unsigned>(server->port()));
    std::fflush(stdout);
  }

  std::atomic<bool> stop{false};            // the planner and the zones' threads
  std::atomic<bool> stop_resolvers{false};  // the resolvers, after the script
  std::atomic<std::uint64_t> published{0};

  // The planner: every 5 ms, a plan that changes one endpoint's pool (within the S4 guard).
  std::uint64_t round = 0;  // the planner's, then the script's
  // The script's plans are marked bulk-change: an enactor that sat out several of the planner's
  // plans may compare it with an older plan and find more than half of the zone changed (S4).
  auto publish_next = [&](bool bulk = false) {
    const planfence::generation gen = sequencer.next().value();
    auto latest = registry.pin_latest();
    auto builder = latest ? planfence::plan_builder::based_on(*latest, gen, 0) : planfence::plan_builder{gen, 0};
    latest.reset();
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      if (gen.value() == 1 || i == round % endpoints.size()) {
        if (!builder.set(endpoints[i], weighted_pool(gen.value(), 3))) std::abort();
      }
    }
    ++round;
    if (bulk) builder.intend_bulk_change();
    auto pinned = registry.publish(std::move(builder).build().value());
    if (!pinned) {
      say("planner", "could not publish: " + pinned.error().message());
    } else {
      published.fetch_add(1, std::memory_order_relaxed);
      if (gen.value() % 50 == 1) say("planner", "published generation " + std::to_string(gen.value()));
    }
    return gen;
  };
  std::thread planner([&] {
    while (!stop.load(std::memory_order_acquire)) {
      publish_next();
      std::this_thread::sleep_for(5ms);
    }
  });

  // Three zones.
  using sink_type = planfence::metrics_sink<printing_sink>;
  using enactor_type = planfence::enactor<planfence::memory_store, authority_type, planfence::plan_registry, clock_type, sink_type>;
  std::atomic<std::uint64_t> applied{0};
  std::vector<std::unique_ptr<enactor_type>> zones;
  for (int z = 1; z <= 3; ++z) {
    zones.push_back(std::make_unique<enactor_type>(
        store, authority, registry, clock,
        planfence::enactor_config{.name = "az" + std::to_string(z), .lease_ttl = 200ms, .renew_margin = 150ms,
                                  .poll_interval = 2ms, .retention = {.keep_newest = 3}},
        sink_type{zone_metrics[static_cast<std::size_t>(z - 1)], printing_sink{&applied}}));
  }
  std::vector<std::thread> zone_threads;
  for (std::size_t z = 0; z < zones.size(); ++z) {
    zone_threads.emplace_back([&, z] {
      auto& e = *zones[z];
      auto next_stall = std::chrono::steady_clock::now() + std::chrono::milliseconds(400 + 300 * static_cast<int>(z));
      while (!stop.load(std::memory_order_acquire)) {
        const planfence::step_result r = e.step();
        if (!r.progressed) std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(r.wait, 2ms));
        if (std::chrono::steady_clock::now() >= next_stall) {
          // The delayed enactor: a stall longer than the lease, with whatever it holds.
          say(e.config().name.c_str(), "stalls for 300 ms holding generation " + std::to_string(e.applying_generation().value()));
          std::this_thread::sleep_for(300ms);
          next_stall = std::chrono::steady_clock::now() + 900ms;
        }
      }
      e.release();
      zone_metrics[z]->lease_released();
    });
  }

  // Resolvers: answer queries and check each answer (S1: never older than the last seen;
  // S2: never written under a smaller fence than the last seen; S3: never from a vanished plan;
  // S4: never empty once written).
  struct resolver_tally {
    std::uint64_t answers = 0, regressions = 0, fence_regressions = 0, vanished = 0, empty = 0;
  };
  std::vector<resolver_tally> tallies(2);
  std::vector<std::thread> resolvers;
  for (std::size_t r = 0; r < tallies.size(); ++r) {
    resolvers.emplace_back([&, r] {
      std::vector<planfence::endpoint_handle> handles;
      for (const auto& n : endpoints) handles.push_back(store.resolve(n).value());
      std::vector<planfence::generation> last(endpoints.size());
      std::vector<planfence::fence_token> last_fence(endpoints.size());
      resolver_tally& t = tallies[r];
      std::size_t i = r;
      while (!stop_resolvers.load(std::memory_order_acquire)) {
        i = (i + 1) % endpoints.size();
        auto answer = store.read(handles[i]);
        ++t.answers;
        if (answer.gen() < last[i]) ++t.regressions;
        if (answer.fence() < last_fence[i]) ++t.fence_regressions;
        last_fence[i] = answer.fence();
        if (answer.plan_missing()) ++t.vanished;
        else if (answer.gen() != planfence::generation_none && answer.records().empty()) ++t.empty;
        last[i] = answer.gen();
        // During the script (held for scrapers), a pause now and then leaves the machine's CPUs
        // to the enactors and to whoever scrapes the metrics.
        if (t.answers % 1024 == 0 && stop.load(std::memory_order_relaxed)) std::this_thread::sleep_for(1ms);
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  planner.join();
  for (auto& t : zone_threads) t.join();

  // The script, on this thread, while the resolvers keep checking every answer.
  auto& az1 = *zones[0];
  auto& az2 = *zones[1];
  auto& az3 = *zones[2];
  // Steps the enactors given, each in turn, for `how_long` (or until `done`), as their threads did.
  auto drive = [](std::initializer_list<enactor_type*> which, std::chrono::milliseconds how_long, auto&& done) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until && !done()) {
      for (enactor_type* e : which) static_cast<void>(e->step());
      std::this_thread::sleep_for(1ms);
    }
    return done();
  };
  auto never = [] { return false; };
  const auto hold = std::chrono::milliseconds(1000 * hold_seconds);
  bool script_ok = true;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) std::printf("script: FAIL %s\n", what.c_str());
    script_ok = script_ok && ok;
  };

  // Act 1: az1 takes the lease and applies the newest plan; it holds the lease.
  planfence::generation newest = publish_next(true);
  expect(drive({&az1}, 5000ms, [&] { return az1.applied_generation() >= newest; }), "az1 applies the newest plan");
  act("holding", "az1 holds the lease with fence " + std::to_string(az1.current_lease() ? az1.current_lease()->fence.value() : 0));
  drive({&az1, &az2, &az3}, hold, never);
  expect(az1.current_lease().has_value(), "az1 keeps its lease while it runs");
  const planfence::fence_token az1_fence = az1.current_lease() ? az1.current_lease()->fence : planfence::fence_token{};

  // Act 2: az1 stalls past its lease (it is not stepped); az2 takes over with a larger token and
  // applies a newer plan; az1 wakes, sees its lease gone and stops writing.
  say("az1", "stalls holding the lease, as the delayed 2025 enactor did");
  newest = publish_next(true);
  expect(drive({&az2}, 5000ms, [&] { return az2.current_lease().has_value() && az2.applied_generation() >= newest; }),
         "az2 takes over and applies the newest plan");
  const planfence::fence_token az2_fence = az2.current_lease() ? az2.current_lease()->fence : planfence::fence_token{};
  expect(az2_fence > az1_fence, "the new holder's fence token is larger");
  static_cast<void>(az1.step());
  expect(!az1.current_lease().has_value(), "az1 knows it lost the lease");
  act("takeover", "az2 holds the lease with fence " + std::to_string(az2_fence.value()) + ", az1 lost fence " +
                      std::to_string(az1_fence.value()));
  drive({&az1, &az2, &az3}, hold, never);

  // Act 3: an operator holds the store (an operator fence, as planfence-ctl override raises):
  // az2's next write is refused, and no enactor gets a lease while the hold lasts.
  const planfence::fence_token held_at = planfence::next_operator_fence(store.fence_floor()).value();
  expect(store.raise_fence(held_at).has_value(), "the operator fence is raised");
  newest = publish_next(true);
  drive({&az1, &az2, &az3}, 5000ms, [&] { return !az2.current_lease().has_value(); });
  expect(!az1.current_lease() && !az2.current_lease() && !az3.current_lease(), "no enactor holds a lease under the hold");
  act("operator-hold", "the store's fence floor is the operator fence " + std::to_string(held_at.value()));
  drive({&az1, &az2, &az3}, hold, never);
  expect(!az1.current_lease() && !az2.current_lease() && !az3.current_lease(), "automation stays out while held");

  // Act 4: the operator hands control back (the fence + 1, as planfence-ctl release does), and
  // automation applies the newest plan.
  expect(store.raise_fence(planfence::fence_token{held_at.value() + 1}).has_value(), "the hold is released");
  const bool finished = drive({&az1, &az2, &az3}, 5000ms, [&] {
    return az1.applied_generation() >= newest || az2.applied_generation() >= newest || az3.applied_generation() >= newest;
  });
  expect(finished, "automation applies the newest plan after the release");
  act("released", "automation is back: the newest generation " + std::to_string(newest.value()) + " is applied");
  drive({&az1, &az2, &az3}, hold, never);
  act("done", "the script is over");
  for (std::size_t z = 0; z < zones.size(); ++z) {
    zones[z]->release();
    zone_metrics[z]->lease_released();
  }
  stop_resolvers = true;
  for (auto& t : resolvers) t.join();

  resolver_tally total;
  for (const auto& t : tallies) {
    total.answers += t.answers;
    total.regressions += t.regressions;
    total.fence_regressions += t.fence_regressions;
    total.vanished += t.vanished;
    total.empty += t.empty;
  }
  std::uint64_t fenced = 0, lost = 0;
  for (const auto& z : zones) {
    fenced += z->counters()[planfence::event_kind::fenced];
    lost += z->counters()[planfence::event_kind::lease_lost];
  }
  // What each endpoint serves: its stamp's generation, or the store's applied mark when that is
  // newer (the enactors write only what each plan changes; the others serve the applied plan).
  const planfence::apply_marks marks = *store.read_marks();
  bool converged = true;
  for (const auto& n : endpoints) {
    converged = converged && planfence::effective_generation(store.read(store.resolve(n).value()).gen(), marks) == newest;
  }

  std::printf("\n%llu plans published, %llu endpoint commits, %llu answers served, %llu leases lost, %llu fenced writes refused\n",
              static_cast<unsigned long long>(published.load()), static_cast<unsigned long long>(applied.load()),
              static_cast<unsigned long long>(total.answers), static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(fenced));
  auto verdict = [](bool ok, const char* id, const std::string& what) {
    std::printf("  %s %s  %s\n", ok ? "ok  " : "FAIL", id, what.c_str());
    return ok;
  };
  bool ok = true;
  ok &= verdict(total.regressions == 0, "S1", "no answer went back in generation (" + std::to_string(total.regressions) + " regressions)");
  ok &= verdict(total.fence_regressions == 0, "S2",
                "no endpoint was written under a smaller fence than one it had accepted (" +
                    std::to_string(total.fence_regressions) + "); store fence floor " +
                    std::to_string(store.fence_floor().value()));
  ok &= verdict(total.vanished == 0, "S3", "no answer came from a collected plan (" + std::to_string(total.vanished) + ")");
  ok &= verdict(total.empty == 0, "S4", "no endpoint answered empty (" + std::to_string(total.empty) + ")");
  ok &= verdict(converged, "S6", "every endpoint serves the newest generation " + std::to_string(newest.value()));
  ok &= verdict(script_ok, "  ", "the scripted stall, takeover and operator hold went as described");
  const planfence::store_health health = planfence::scan_store(store, registry).value();
  ok &= verdict(health.endpoints_empty == 0, "  ",
                "no endpoint serves nothing or a plan that is gone (the 2025 alarm, planfence_store_endpoints_empty: " +
                    std::to_string(health.endpoints_empty) + ")");
  return ok ? 0 : 1;
}
