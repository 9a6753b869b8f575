// examples/embedded_control_plane.cpp: planfence embedded in a control plane, in one process.
//
// A planner thread publishes a new plan every few milliseconds (weighted A records for a
// regional database endpoint and a few others), three enactor threads, one per "availability
// zone", apply them through one shared in-memory store under leases that change hands, and
// resolver threads answer queries from the store the whole time. One zone stalls now and then
// past its lease, as the delayed 2025 enactor did. Each thread says what it did; the program ends
// with a check of S1 to S4 on everything the resolvers saw, and exits 1 if any check failed.
//
//   build/examples/embedded_control_plane [--seconds N] [--quiet]
#include <planfence/planfence.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = planfence::steady_clock;
using authority_type = planfence::local_lease_authority<clock_type>;

std::mutex print_mutex;
bool quiet = false;

void say(const char* who, const std::string& what) {
  if (quiet) return;
  std::lock_guard lock(print_mutex);
  std::printf("%-10s %s\n", who, what.c_str());
}

/// Prints the decisions that matter to a person watching (not every applied endpoint).
struct printing_sink {
  std::atomic<std::uint64_t>* applied;
  void operator()(const planfence::event& e) const {
    using planfence::event_kind;
    const std::string holder(e.holder);
    switch (e.kind) {
      case event_kind::applied: applied->fetch_add(1, std::memory_order_relaxed); return;
      case event_kind::lease_gained:
        say(holder.c_str(), "gained the lease with fence token " + std::to_string(e.fence.value()));
        return;
      case event_kind::lease_lost:
        say(holder.c_str(), "lost the lease (fence " + std::to_string(e.fence.value()) + "): stops writing");
        return;
      case event_kind::fenced:
        say(holder.c_str(), "fenced out at " + std::string(e.endpoint) + ": a newer lease holder wrote there (S2)");
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

}  // namespace

int main(int argc, char** argv) {
  int seconds = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atoi(argv[++i]);
      if (seconds < 1 || seconds > 3600) {
        std::fprintf(stderr, "embedded_control_plane: --seconds takes 1..3600\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: embedded_control_plane [--seconds N] [--quiet]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }

  const std::vector<std::string> endpoints = {"dynamodb.us-east-1.example.", "sqs.us-east-1.example.",
                                              "sts.us-east-1.example.", "iam.us-east-1.example.",
                                              "ec2.us-east-1.example.", "lambda.us-east-1.example."};
  clock_type clock;
  authority_type authority{clock};
  planfence::plan_registry registry;
  auto store = planfence::memory_store::make(registry, endpoints).value();
  planfence::sequencer sequencer;

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> published{0};

  // The planner: every 5 ms, a plan that changes one endpoint's pool (within the S4 guard).
  std::thread planner([&] {
    std::uint64_t round = 0;
    while (!stop.load(std::memory_order_acquire)) {
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
      auto pinned = registry.publish(std::move(builder).build().value());
      if (!pinned) {
        say("planner", "could not publish: " + pinned.error().message());
      } else {
        published.fetch_add(1, std::memory_order_relaxed);
        if (gen.value() % 50 == 1) say("planner", "published generation " + std::to_string(gen.value()));
      }
      std::this_thread::sleep_for(5ms);
    }
  });

  // Three zones.
  using enactor_type = planfence::enactor<planfence::memory_store, authority_type, planfence::plan_registry, clock_type, printing_sink>;
  std::atomic<std::uint64_t> applied{0};
  std::vector<std::unique_ptr<enactor_type>> zones;
  for (int z = 1; z <= 3; ++z) {
    zones.push_back(std::make_unique<enactor_type>(
        store, authority, registry, clock,
        planfence::enactor_config{.name = "az" + std::to_string(z), .lease_ttl = 60ms, .renew_margin = 30ms,
                                  .poll_interval = 2ms, .retention = {.keep_newest = 3}},
        printing_sink{&applied}));
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
          say(e.config().name.c_str(), "stalls for 150 ms holding generation " + std::to_string(e.applying_generation().value()));
          std::this_thread::sleep_for(150ms);
          next_stall = std::chrono::steady_clock::now() + 900ms;
        }
      }
      e.release();
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
      while (!stop.load(std::memory_order_acquire)) {
        i = (i + 1) % endpoints.size();
        auto answer = store.read(handles[i]);
        ++t.answers;
        if (answer.gen() < last[i]) ++t.regressions;
        if (answer.fence() < last_fence[i]) ++t.fence_regressions;
        last_fence[i] = answer.fence();
        if (answer.plan_missing()) ++t.vanished;
        else if (answer.gen() != planfence::generation_none && answer.records().empty()) ++t.empty;
        last[i] = answer.gen();
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  planner.join();
  for (auto& t : zone_threads) t.join();
  for (auto& t : resolvers) t.join();

  // Let the automation finish the newest plan, as it would once the planner pauses.
  const planfence::generation newest = registry.latest();
  {
    enactor_type finisher{store, authority, registry, clock, {.name = "az1", .lease_ttl = 60ms, .renew_margin = 30ms},
                          printing_sink{&applied}};
    for (int i = 0; i < 200 && finisher.applied_generation() < newest; ++i) static_cast<void>(finisher.step());
    finisher.release();
  }

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
  return ok ? 0 : 1;
}
