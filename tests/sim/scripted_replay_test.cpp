// Proves that the scripted replay of the October 2025 interleaving ends as the incident did with
// the naive enactor (the regional endpoint serves nothing, stuck, S1 and S3 broken) and ends
// safely with the fixed planfence::enactor (the endpoint serves the newest plan, no guarantee
// broken). Both runs execute the same script of actor steps (sim/scripted.hpp); the outcome is
// read from the store and the oracle, not from the script. Checked with 2, 3 and 5 enactors.
#include <catch2/catch.hpp>

#include <string>

#include <planfence/sim/sim.hpp>
#include <planfence/plan_text.hpp>

using namespace planfence;
using namespace planfence::sim;

namespace {
// Every step of the script reached the state it waits for (else the outcome proves nothing).
bool script_followed(const scripted_outcome& o) {
  for (const timeline::entry& e : o.lines.entries) {
    if (e.text.find("did not reach") != std::string::npos) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("scripted 2025 replay, naive enactor: the regional endpoint is emptied and stays empty", "[sim][scripted]") {
  const std::uint32_t enactors = GENERATE(2u, 3u, 5u);
  CAPTURE(enactors);
  const scripted_outcome naive = replay_2025(variant::naive, enactors);
  REQUIRE(script_followed(naive));

  CHECK(naive.endpoint == "dynamodb.us-east-1.amazonaws.com.");
  CHECK(naive.endpoint_records == 0);
  CHECK(naive.endpoint_plan_missing);
  CHECK(naive.endpoint_gen == generation{2});  // the delayed enactor's old plan, since deleted
  CHECK(naive.stuck);
  CHECK_FALSE(naive.report.converged);
  // The exact breaches: the overwrite (S1), the deleted live plan (S3), the blackout it causes
  // (S4) and the automation that never recovers (S6). Nothing else.
  CHECK(naive.report.mask() == (bit(guarantee::s1) | bit(guarantee::s3) | bit(guarantee::s4) | bit(guarantee::s6)));
  REQUIRE_FALSE(naive.report.violations.empty());
  CHECK(naive.report.violations.front().id == guarantee::s1);
  CHECK(naive.report.violations.front().actor == "az1");
  CHECK(naive.report.violations.front().detail == "regional went from g8 back to g2");
  CHECK(naive.report.enactors_stopped >= 1);
  CHECK(naive.explanation.find("serves 0 records") != std::string::npos);
}

TEST_CASE("scripted 2025 replay, fixed enactor: the endpoint serves the newest plan and nothing breaks", "[sim][scripted]") {
  const std::uint32_t enactors = GENERATE(2u, 3u, 5u);
  CAPTURE(enactors);
  const scripted_outcome fixed = replay_2025(variant::fixed, enactors);

  INFO(fixed.lines.render());
  REQUIRE(script_followed(fixed));
  CHECK_FALSE(fixed.report.failed());
  CHECK(fixed.report.violations.empty());
  CHECK_FALSE(fixed.stuck);
  CHECK(fixed.report.converged);
  CHECK(fixed.endpoint_gen == fixed.newest);
  CHECK(fixed.newest == generation{10});
  CHECK(fixed.endpoint_records > 0);
  CHECK_FALSE(fixed.endpoint_plan_missing);
  for (const endpoint_outcome& e : fixed.report.endpoints) {
    CHECK(e.gen == fixed.newest);
    CHECK(e.records > 0);
  }
}

TEST_CASE("scripted replay: the delayed commit is refused by the store's fence, not by luck", "[sim][scripted][S2]") {
  const scripted_outcome fixed = replay_2025(variant::fixed);
  // The timeline records az2 raising the store's fence floor, then az1's refused commit.
  std::size_t raised = 0;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < fixed.lines.entries.size(); ++i) {
    const timeline::entry& e = fixed.lines.entries[i];
    if (e.text == "store fence >= f2" && e.lane == 2) raised = i;                      // az2's lane
    if (e.text == "g2 -> regional REFUSED: fenced (f1)" && e.lane == 1) refused = i;  // az1's lane
  }
  CHECK(raised != 0);
  CHECK(refused != 0);
  CHECK(raised < refused);
  CHECK(fixed.report.endpoints[2].gen == generation{10});
}

TEST_CASE("scripted replay: the plan history holds every generation in the text form", "[sim][scripted]") {
  const scripted_outcome naive = replay_2025(variant::naive, 3, true);
  REQUIRE(naive.history.size() == 10);
  for (std::size_t i = 0; i < naive.history.size(); ++i) {
    const auto& [gen, text] = naive.history[i];
    CHECK(gen == generation{i + 1});
    auto parsed = parse_plan(text);
    REQUIRE(parsed.has_value());
    CHECK(parsed->gen() == gen);
    CHECK(format_plan(*parsed) == text);  // round-trips exactly
  }
}

TEST_CASE("scripted replay: a broken core under the fixed enactor loses the endpoint again", "[sim][scripted][S1]") {
  // The same script with the store's conditional commit replaced by an unconditional write: the
  // enactor's own checks are not enough, the store must refuse (S1, S2).
  const scripted_outcome broken = replay_2025(variant::unconditional);
  CHECK(broken.report.broke(guarantee::s1));
  CHECK(broken.report.broke(guarantee::s2));
}
