// metrics.hpp: the exposition format's escaping and layout, the values each event leaves in an
// enactor's metrics, a real enactor's metrics against its own counters, the store scan in a
// healthy store, in the 2025 state (a live plan collected) and under an operator hold, and the
// registry's stats. Values are checked, not only the format (promtool checks the format in
// tests/metrics/).
#include <catch2/catch.hpp>

#include <planfence/metrics.hpp>
#include <planfence/recovery.hpp>

#include <sstream>

#include "../support/fixtures.hpp"

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::generation_plan;
using planfence_test::make_plan;

static_assert(detail::metrics_operator_fence_stride == operator_fence_stride,
              "metrics.hpp's operator hold must be recovery.hpp's operator fence");

namespace {

event make_event(event_kind kind, std::uint64_t gen = 0, std::uint64_t fence = 0, std::chrono::nanoseconds time = 0ns) {
  return event{kind, generation{gen}, fence_token{fence}, "a.example.", time, "az1", {}};
}

/// The lines of an exposition.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  const auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

TEST_CASE("metrics escape label values and help text as the exposition format says", "[metrics]") {
  CHECK(escape_label_value("plain-az1") == "plain-az1");
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(escape_help("one\\two\nthree \"quoted\"") == "one\\\\two\\nthree \"quoted\"");

  std::string out;
  exposition_writer w(out);
  w.family("x_total", "help with \\ and\nnewline", metric_type::counter);
  w.sample("x_total", {{"enactor", "we\"ird\\name\n"}, {"reason", "stale"}}, std::uint64_t{7});
  w.sample("x_total", {}, 0.25);
  CHECK(out ==
        "# HELP x_total help with \\\\ and\\nnewline\n"
        "# TYPE x_total counter\n"
        "x_total{enactor=\"we\\\"ird\\\\name\\n\",reason=\"stale\"} 7\n"
        "x_total 0.25\n");
}

TEST_CASE("metrics histograms are written cumulative with count equal to the inf bucket", "[metrics]") {
  std::string out;
  exposition_writer w(out);
  const std::array<double, 2> bounds{0.5, 1.0};
  const std::array<std::uint64_t, 3> counts{2, 0, 3};
  w.histogram("d_seconds", {{"enactor", "az1"}}, std::span<const double>(bounds), std::span<const std::uint64_t>(counts), 7.5);
  CHECK(out ==
        "d_seconds_bucket{enactor=\"az1\",le=\"0.5\"} 2\n"
        "d_seconds_bucket{enactor=\"az1\",le=\"1\"} 2\n"
        "d_seconds_bucket{enactor=\"az1\",le=\"+Inf\"} 5\n"
        "d_seconds_sum{enactor=\"az1\"} 7.5\n"
        "d_seconds_count{enactor=\"az1\"} 5\n");
}

TEST_CASE("metrics count each event kind where it belongs", "[metrics]") {
  enactor_metrics m("az1");
  m.record(make_event(event_kind::lease_gained, 0, 5));
  m.record(make_event(event_kind::plan_pinned, 3, 5, 1'000'000'000ns));
  {
    const auto v = m.read();
    CHECK(v.lease_held);
    CHECK(v.fence == fence_token{5});
    CHECK(v.applying == generation{3});
    CHECK(v.applied == generation_none);
    CHECK(v.leases_gained == 1);
  }
  m.record(make_event(event_kind::applied, 3, 5));
  m.record(make_event(event_kind::applied, 3, 5));
  m.record(make_event(event_kind::stale, 3, 5));
  m.record(make_event(event_kind::fenced, 3, 5));
  m.record(make_event(event_kind::fenced, 3, 5));
  m.record(make_event(event_kind::conflict, 3, 5));
  m.record(make_event(event_kind::refused_blast_radius, 3, 5));
  m.record(make_event(event_kind::plan_invalid, 4, 5));
  m.record(make_event(event_kind::store_error, 3, 5));
  m.record(make_event(event_kind::unknown_endpoint, 3, 5));
  m.record(make_event(event_kind::collected, 1, 5));
  m.record(make_event(event_kind::protected_from_collection, 2, 5));
  m.record(make_event(event_kind::plan_applied, 3, 5, 1'020'000'000ns));  // 20 ms after the pin
  auto v = m.read();
  CHECK(v.applied == generation{3});
  CHECK(v.applying == generation_none);  // the run ended
  CHECK(v.endpoints_written == 2);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::stale)] == 1);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::fenced)] == 2);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::conflict)] == 1);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::blast_radius)] == 1);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::digest)] == 1);
  CHECK(v.store_errors == 1);
  CHECK(v.unknown_endpoints == 1);
  CHECK(v.plans_collected == 1);
  CHECK(v.plans_protected == 1);
  CHECK(v.runs_complete == 1);
  CHECK(v.runs_abandoned == 0);
  // 0.02 s lands in the 0.025 bucket; 2 endpoints in the "10" bucket.
  const auto duration_bucket = static_cast<std::size_t>(
      std::find(apply_duration_bounds_seconds.begin(), apply_duration_bounds_seconds.end(), 0.025) - apply_duration_bounds_seconds.begin());
  for (std::size_t i = 0; i < v.duration_buckets.size(); ++i) CHECK(v.duration_buckets[i] == (i == duration_bucket ? 1u : 0u));
  CHECK(v.duration_sum_seconds == Approx(0.02));
  const auto endpoints_bucket = static_cast<std::size_t>(
      std::find(run_endpoints_bounds.begin(), run_endpoints_bounds.end(), 10u) - run_endpoints_bounds.begin());
  for (std::size_t i = 0; i < v.endpoints_buckets.size(); ++i) CHECK(v.endpoints_buckets[i] == (i == endpoints_bucket ? 1u : 0u));
  CHECK(v.endpoints_sum == 2);

  // A run cut short by a lost lease is abandoned and observed in no histogram; the lease is gone
  // but its token is kept.
  m.record(make_event(event_kind::plan_pinned, 4, 5, 2'000'000'000ns));
  m.record(make_event(event_kind::lease_lost, 4, 5, 3'000'000'000ns));
  v = m.read();
  CHECK_FALSE(v.lease_held);
  CHECK(v.fence == fence_token{5});
  CHECK(v.applying == generation_none);
  CHECK(v.applied == generation{3});
  CHECK(v.runs_abandoned == 1);
  CHECK(v.leases_lost == 1);
  std::uint64_t observed = 0;
  for (auto n : v.duration_buckets) observed += n;
  CHECK(observed == 1);

  // A newer pin while a run is open abandons it; an older plan_applied never lowers applied.
  m.record(make_event(event_kind::lease_gained, 0, 9));
  m.record(make_event(event_kind::plan_pinned, 6, 9));
  m.record(make_event(event_kind::plan_pinned, 7, 9));
  m.record(make_event(event_kind::plan_applied, 2, 9));
  v = m.read();
  CHECK(v.fence == fence_token{9});
  CHECK(v.runs_abandoned == 2);
  CHECK(v.applied == generation{3});
  m.lease_released();
  CHECK_FALSE(m.read().lease_held);
}

TEST_CASE("metrics render every enactor family with its values and escaped names", "[metrics]") {
  plan_registry registry;
  registry.publish(generation_plan(1, {"a.example."})).value().reset();
  registry.publish(generation_plan(2, {"a.example."})).value().reset();
  metrics_collector metrics;
  enactor_metrics& weird = metrics.add_enactor("we\"ird\\name\n", registry);
  enactor_metrics& quiet = metrics.add_enactor("quiet");
  weird.record(make_event(event_kind::lease_gained, 0, 17));
  weird.record(make_event(event_kind::plan_pinned, 1, 17, 0ns));
  weird.record(make_event(event_kind::applied, 1, 17));
  weird.record(make_event(event_kind::plan_applied, 1, 17, 3'000'000ns));
  weird.record(make_event(event_kind::fenced, 2, 17));
  static_cast<void>(quiet);
  const std::string text = metrics.render();
  const std::string w = "enactor=\"we\\\"ird\\\\name\\n\"";
  CHECK(has_line(text, "# TYPE planfence_enactor_lease_held gauge"));
  CHECK(has_line(text, "planfence_enactor_lease_held{" + w + "} 1"));
  CHECK(has_line(text, "planfence_enactor_lease_held{enactor=\"quiet\"} 0"));
  CHECK(has_line(text, "planfence_enactor_fence_token{" + w + "} 17"));
  CHECK(has_line(text, "planfence_enactor_applied_generation{" + w + "} 1"));
  CHECK(has_line(text, "planfence_enactor_published_generation{" + w + "} 2"));
  // Only enactors added with a registry have a published generation.
  CHECK(text.find("planfence_enactor_published_generation{enactor=\"quiet\"}") == std::string::npos);
  CHECK(has_line(text, "# TYPE planfence_enactor_refusals_total counter"));
  CHECK(has_line(text, "planfence_enactor_refusals_total{" + w + ",reason=\"fenced\"} 1"));
  CHECK(has_line(text, "planfence_enactor_refusals_total{" + w + ",reason=\"stale\"} 0"));
  CHECK(has_line(text, "planfence_enactor_refusals_total{enactor=\"quiet\",reason=\"digest\"} 0"));
  CHECK(has_line(text, "planfence_enactor_endpoints_written_total{" + w + "} 1"));
  CHECK(has_line(text, "planfence_enactor_runs_total{" + w + ",outcome=\"complete\"} 1"));
  CHECK(has_line(text, "# TYPE planfence_enactor_apply_duration_seconds histogram"));
  CHECK(has_line(text, "planfence_enactor_apply_duration_seconds_bucket{" + w + ",le=\"0.0025\"} 0"));
  CHECK(has_line(text, "planfence_enactor_apply_duration_seconds_bucket{" + w + ",le=\"0.005\"} 1"));
  CHECK(has_line(text, "planfence_enactor_apply_duration_seconds_bucket{" + w + ",le=\"+Inf\"} 1"));
  CHECK(has_line(text, "planfence_enactor_apply_duration_seconds_sum{" + w + "} 0.003"));
  CHECK(has_line(text, "planfence_enactor_apply_duration_seconds_count{" + w + "} 1"));
  CHECK(has_line(text, "planfence_enactor_run_endpoints_written_bucket{" + w + ",le=\"1\"} 1"));
  CHECK(has_line(text, "planfence_enactor_run_endpoints_written_bucket{" + w + ",le=\"0\"} 0"));
  // Every family's samples follow its own header, before the next one's.
  std::string family;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line.rfind("# ", 0) != 0) {
      INFO(line);
      CHECK(line.rfind(family, 0) == 0);
    }
  }
}

TEST_CASE("metrics of a real enactor agree with its own counters", "[metrics]") {
  const std::vector<std::string> names = {"a.example.", "b.example.", "c.example."};
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  memory_store store = memory_store::make(registry, names).value();
  metrics_collector metrics;
  enactor_metrics& m = metrics.add_enactor("az1", registry);
  enactor<memory_store, local_lease_authority<manual_clock>, plan_registry, manual_clock, metrics_sink<>> zone{
      store, authority, registry, clock, {.name = "az1", .zone_change_share_max = 1.0}, metrics_sink<>{&m}};
  for (std::uint64_t g = 1; g <= 3; ++g) {
    registry.publish(generation_plan(g, names)).value().reset();
    for (int i = 0; i < 100 && zone.applied_generation() < generation{g}; ++i) static_cast<void>(zone.step());
    REQUIRE(zone.applied_generation() == generation{g});
  }
  const auto v = m.read();
  CHECK(v.lease_held);
  CHECK(v.fence == zone.current_lease()->fence);
  CHECK(v.applied == generation{3});
  CHECK(v.endpoints_written == zone.counters()[event_kind::applied]);
  CHECK(v.endpoints_written == 9);
  CHECK(v.runs_complete == zone.counters()[event_kind::plan_applied]);
  CHECK(v.refusals[static_cast<std::size_t>(refusal_reason::stale)] == zone.counters()[event_kind::stale]);
  const std::string text = metrics.render();
  CHECK(has_line(text, "planfence_enactor_published_generation{enactor=\"az1\"} 3"));
  CHECK(has_line(text, "planfence_enactor_applied_generation{enactor=\"az1\"} 3"));
  CHECK(has_line(text, "planfence_enactor_run_endpoints_written_count{enactor=\"az1\"} 3"));
  CHECK(has_line(text, "planfence_enactor_run_endpoints_written_sum{enactor=\"az1\"} 9"));
  // A takeover: az1's lease lapses, az2 takes over with a larger token, az1 learns it lost.
  enactor_metrics& m2 = metrics.add_enactor("az2", registry);
  enactor<memory_store, local_lease_authority<manual_clock>, plan_registry, manual_clock, metrics_sink<>> zone2{
      store, authority, registry, clock, {.name = "az2", .zone_change_share_max = 1.0}, metrics_sink<>{&m2}};
  clock.advance(std::chrono::milliseconds(20'000));
  for (int i = 0; i < 10 && !zone2.current_lease(); ++i) static_cast<void>(zone2.step());
  static_cast<void>(zone.step());
  CHECK_FALSE(m.read().lease_held);
  CHECK(m2.read().lease_held);
  CHECK(m2.read().fence > m.read().fence);
}

TEST_CASE("metrics scan a store healthy then in the 2025 state then under an operator hold", "[metrics]") {
  const std::vector<std::string> names = {"a.example.", "b.example.", "c.example.", "d.example."};
  plan_registry registry;
  memory_store store = memory_store::make(registry, names).value();
  // d.example. is never written; c.example. is emptied on purpose in generation 2.
  registry.publish(make_plan(1, {{"a.example.", {"10.0.0.1"}}, {"b.example.", {"10.0.0.2"}}, {"c.example.", {"10.0.0.3"}}}))
      .value()
      .reset();
  plan_builder second{generation{2}, 1};
  REQUIRE(second.set("a.example.", planfence_test::a_records({"10.0.0.1"})));
  REQUIRE(second.set("b.example.", planfence_test::a_records({"10.0.0.2"})));
  REQUIRE(second.set("c.example.", record_set::make({}, /*intended_empty=*/true).value()));
  registry.publish(std::move(second).build().value()).value().reset();
  REQUIRE(store.raise_fence(fence_token{3}));
  {
    pinned_plan first = registry.pin(generation{1}).value();
    for (const char* name : {"a.example.", "b.example."}) {
      const endpoint_handle h = store.resolve(name).value();
      REQUIRE(store.commit(h, *store.read_stamp(h), stamp{generation{1}, fence_token{3}, 0}, first->find(name)->records));
    }
  }
  {
    pinned_plan two = registry.pin(generation{2}).value();
    const endpoint_handle c = store.resolve("c.example.").value();
    REQUIRE(store.commit(c, *store.read_stamp(c), stamp{generation{2}, fence_token{3}, 0}, two->find("c.example.")->records));
  }

  store_health h = scan_store(store, registry, {.per_endpoint = true}).value();
  CHECK(h.endpoints == 4);
  CHECK(h.endpoints_empty == 0);  // c.example. is empty as its plan means it to be
  CHECK(h.endpoints_plan_missing == 0);
  CHECK(h.endpoints_unwritten == 1);
  CHECK(h.fence_floor == fence_token{3});
  CHECK_FALSE(h.operator_hold);
  REQUIRE(h.per_endpoint.size() == 4);
  CHECK(h.per_endpoint[0].name == "a.example.");
  CHECK(h.per_endpoint[0].effective == generation{1});
  CHECK(h.per_endpoint[2].effective == generation{2});

  // The 2025 state: the plan a.example. and b.example. serve is collected under a live set that
  // lies (as the 2025 clean-up did). Both now serve nothing.
  REQUIRE(registry.collect_one(generation{1}, [] { return std::vector<generation>{}; }));
  planfence_test::reclaim_all();
  h = scan_store(store, registry, {.per_endpoint = true}).value();
  CHECK(h.endpoints_empty == 2);
  CHECK(h.endpoints_plan_missing == 2);
  CHECK(h.per_endpoint[0].empty);
  CHECK(h.per_endpoint[1].empty);
  CHECK_FALSE(h.per_endpoint[2].empty);

  metrics_collector metrics;
  metrics.add_store("main \"zone\"", store, registry, {.per_endpoint = true});
  metrics.add_registry("main", registry);
  std::string text = metrics.render();
  CHECK(has_line(text, "planfence_store_scan_success{store=\"main \\\"zone\\\"\"} 1"));
  CHECK(has_line(text, "planfence_store_endpoints_empty{store=\"main \\\"zone\\\"\"} 2"));
  CHECK(has_line(text, "planfence_store_endpoints_plan_missing{store=\"main \\\"zone\\\"\"} 2"));
  CHECK(has_line(text, "planfence_store_operator_hold{store=\"main \\\"zone\\\"\"} 0"));
  CHECK(has_line(text, "planfence_endpoint_empty{store=\"main \\\"zone\\\"\",endpoint=\"a.example.\"} 1"));
  CHECK(has_line(text, "planfence_endpoint_empty{store=\"main \\\"zone\\\"\",endpoint=\"c.example.\"} 0"));
  CHECK(has_line(text, "planfence_registry_plans_collected_total{registry=\"main\"} 1"));
  CHECK(has_line(text, "planfence_registry_plans_retained{registry=\"main\"} 1"));

  // An operator hold: the floor raised to an operator fence, then handed back.
  REQUIRE(store.raise_fence(next_operator_fence(fence_token{3}).value()));
  h = scan_store(store, registry).value();
  CHECK(h.fence_floor == fence_token{1024});
  CHECK(h.operator_hold);
  CHECK(h.per_endpoint.empty());  // not asked for
  text = metrics.render();
  CHECK(has_line(text, "planfence_store_operator_hold{store=\"main \\\"zone\\\"\"} 1"));
  CHECK(has_line(text, "planfence_store_fence_floor{store=\"main \\\"zone\\\"\"} 1024"));
  REQUIRE(store.raise_fence(fence_token{1025}));
  CHECK_FALSE(scan_store(store, registry).value().operator_hold);
}

TEST_CASE("metrics scan counts only the endpoint labels asked for", "[metrics]") {
  const auto names = planfence_test::endpoint_names(10);
  plan_registry registry;
  memory_store store = memory_store::make(registry, names).value();
  const store_health h = scan_store(store, registry, {.per_endpoint = true, .endpoint_labels_max = 3}).value();
  CHECK(h.endpoints == 10);
  CHECK(h.endpoints_unwritten == 10);
  CHECK(h.per_endpoint.size() == 3);
}

TEST_CASE("registry stats count retained pinned and collected plans", "[metrics][registry]") {
  plan_registry registry;
  CHECK(registry.stats().retained == 0);
  CHECK(registry.stats().latest == generation_none);
  for (std::uint64_t g = 1; g <= 4; ++g) registry.publish(generation_plan(g, {"a.example."})).value().reset();
  pinned_plan held = registry.pin(generation{2}).value();
  registry_stats s = registry.stats();
  CHECK(s.retained == 4);
  CHECK(s.pinned == 1);
  CHECK(s.collected == 0);
  CHECK(s.latest == generation{4});
  const collection_report report = registry.collect({.keep_newest = 1}, 0, [] { return std::vector<generation>{}; });
  CHECK(report.collected.size() == 2);  // 1 and 3; 2 is pinned
  s = registry.stats();
  CHECK(s.retained == 2);
  CHECK(s.pinned == 1);
  CHECK(s.collected == 2);
  held.reset();
  CHECK(registry.stats().pinned == 0);
}
