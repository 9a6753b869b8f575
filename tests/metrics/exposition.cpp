// tests/metrics/exposition.cpp: prints the metrics of a small control plane in many states, for
// `promtool check metrics` (tests/metrics/CMakeLists.txt): an enactor holding the lease after
// complete runs, one whose lease was taken over and whose writes were fenced, one that never ran,
// one whose name needs escaping (a quote, a backslash, a line feed); a store in the 2025 state
// (a live plan collected) with per-endpoint labels, one under an operator hold, one whose scan
// fails; and the registry. Exits 1 if the exposition lacks what it should show (so that an empty
// or truncated output never passes the check by saying nothing).
#include <planfence/metrics.hpp>
#include <planfence/planfence.hpp>

#include <cstdio>
#include <string>
#include <vector>

using namespace planfence;
using namespace std::chrono_literals;

namespace {

plan simple_plan(std::uint64_t gen, const std::vector<std::string>& names) {
  plan_builder builder{generation{gen}, 1'761'200'000'000 + gen};
  for (const std::string& name : names) {
    auto r = make_record(record_type::a, 60, "10.0.0." + std::to_string(gen % 250 + 1)).value();
    if (!builder.set(name, record_set::make({r}).value())) std::abort();
  }
  builder.intend_bulk_change();
  return std::move(builder).build().value();
}

/// A store whose scan always fails (an unreachable remote store).
struct unreachable_store {
  result<endpoint_handle> resolve(std::string_view) const { return fail(errc::store_unavailable, "unreachable"); }
  result<stamp> read_stamp(endpoint_handle) const { return fail(errc::store_unavailable, "unreachable"); }
  result<stamp> commit(endpoint_handle, const stamp&, const stamp&, const record_set&) {
    return fail(errc::store_unavailable, "unreachable");
  }
  result<void> raise_fence(fence_token) { return fail(errc::store_unavailable, "unreachable"); }
  std::vector<generation> live_generations() const { return {}; }
  result<std::vector<record>> served(endpoint_handle) const { return fail(errc::store_unavailable, "unreachable"); }
  result<std::vector<std::string>> endpoint_names() const { return fail(errc::store_unavailable, "connection refused"); }
};
static_assert(inspectable_store<unreachable_store>);

}  // namespace

int main() {
  const std::vector<std::string> names = {"a.example.", "b.example.", "c.example."};
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  memory_store store = memory_store::make(registry, names).value();
  memory_store held = memory_store::make(registry, names).value();
  unreachable_store unreachable;

  metrics_collector metrics;
  metrics.add_store("main", store, registry, {.per_endpoint = true});
  metrics.add_store("held \"by\" operator\\n", held, registry);
  metrics.add_store("unreachable", unreachable, registry);
  metrics.add_registry("main", registry);
  enactor_metrics& m1 = metrics.add_enactor("az1", registry);
  enactor_metrics& m2 = metrics.add_enactor("az2", registry);
  static_cast<void>(metrics.add_enactor("never-ran", registry));
  enactor_metrics& weird = metrics.add_enactor("zone \"b\"\\west\nline two");

  using enactor_type = enactor<memory_store, local_lease_authority<manual_clock>, plan_registry, manual_clock, metrics_sink<>>;
  enactor_type az1{store, authority, registry, clock, {.name = "az1"}, metrics_sink<>{&m1}};
  enactor_type az2{store, authority, registry, clock, {.name = "az2"}, metrics_sink<>{&m2}};
  for (std::uint64_t g = 1; g <= 3; ++g) {
    registry.publish(simple_plan(g, names)).value().reset();
    for (int i = 0; i < 100 && az1.applied_generation() < generation{g}; ++i) {
      static_cast<void>(az1.step());
      clock.advance(1ms);
    }
  }
  // az2 takes over after az1's lease lapses; az1 wakes and loses it.
  clock.advance(30s);
  registry.publish(simple_plan(4, names)).value().reset();
  for (int i = 0; i < 100 && az2.applied_generation() < generation{4}; ++i) static_cast<void>(az2.step());
  static_cast<void>(az1.step());
  // Then the takeover's other half: az2 is fenced out by a larger token at the store.
  if (!store.raise_fence(fence_token{50})) return 1;
  registry.publish(simple_plan(5, names)).value().reset();
  for (int i = 0; i < 20 && az2.current_lease(); ++i) static_cast<void>(az2.step());
  weird.record(event{event_kind::lease_gained, generation{}, fence_token{7}, {}, 0ns, "weird", {}});
  weird.record(event{event_kind::refused_blast_radius, generation{5}, fence_token{7}, {}, 0ns, "weird", {}});

  // The 2025 state in the main store: generation 4, which every endpoint serves, collected under
  // a live set that lies. The held store: an operator fence.
  if (!registry.collect_one(generation{4}, [] { return std::vector<generation>{}; })) return 1;
  if (!held.raise_fence(fence_token{2048})) return 1;

  const std::string text = metrics.render();
  std::fwrite(text.data(), 1, text.size(), stdout);
  for (const std::string& expected : std::initializer_list<std::string>
       {"planfence_enactor_lease_held{enactor=\"az1\"} 0", "planfence_enactor_refusals_total{enactor=\"az2\",reason=\"fenced\"} 1",
        "planfence_enactor_lease_held{enactor=\"zone \\\"b\\\"\\\\west\\nline two\"} 1",
        "planfence_store_endpoints_empty{store=\"main\"} 3", "planfence_store_operator_hold{store=\"held \\\"by\\\" operator\\\\n\"} 1",
        "planfence_store_scan_success{store=\"unreachable\"} 0", "planfence_endpoint_empty{store=\"main\",endpoint=\"a.example.\"} 1",
        "planfence_registry_plans_retained{registry=\"main\"} " + std::to_string(registry.stats().retained)}) {
    if (text.find(expected + "\n") == std::string::npos) {
      std::fprintf(stderr, "exposition: missing line: %s\n", expected.c_str());
      return 1;
    }
  }
  return 0;
}
