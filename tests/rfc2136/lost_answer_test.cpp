// The RFC 2136 store's batches with apply marks (marks_batch_store) on a real knotd when the answer
// to one of their UPDATEs is lost: the message reached knotd and was applied, but the connection
// was cut before its answer came back (tests/support/fault_proxy.hpp sits between the store and
// knotd, DNS over TCP: the store is opened with tcp=1, and drops that answer). With at most 5
// endpoints a message, a batch of 12 is three UPDATEs: the begin in the first, the finish in the
// last.
//  - the answer to the first UPDATE (with the begin) or to the last (with the finish) is lost: the
//    store sends the message again (its transport retry on a fresh connection), knotd refuses
//    it (the stamps and the marks it expects moved: the first attempt landed), the store reads
//    back exactly what the message writes and takes it as its own: the call succeeds, began and
//    finished, every item written, the marks {2, 2}, every stamp at generation 2;
//  - the answer to that UPDATE and to the copy sent again are both lost (attempts=1): the call
//    fails with store_unavailable, neither begin_refused nor finished; knotd holds that message
//    whole (its endpoints and its marks) and nothing of the messages after it;
//  - the batch sent again after that (as the enactor does, stamps read again, the same begin):
//    its first message, now of other endpoints, is refused for the marks, which read back as it
//    would write them: began, its endpoints sent again without the marks and written, finished;
//  - the message with the begin landed, its answer was lost, and another writer changed one of
//    its endpoints before the resend: the store reports the begin as made (began, not
//    begin_refused), that endpoint stale, the others written, and goes on with the batch (the
//    finish included): what knotd holds (docs/rfc2136.md, "A lost answer");
//  - an enactor whose batch lost the answer with the begin or with the finish converges, whether
//    the store recognised its copy or reported store_unavailable.
#include <catch2/catch.hpp>

#include <planfence/planfence.hpp>

#include <atomic>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "../support/fault_proxy.hpp"
#include "../support/marks_fold.hpp"
#include "knot_fixture.hpp"
#include "refusal_checks.hpp"

using namespace planfence;
using planfence_test::fault_proxy;
using planfence_test::fold;

namespace {

const std::string zone = "example.test.";

stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }
endpoint_handle h(std::uint32_t i) { return endpoint_handle{i}; }
bool same_gens(const apply_marks& m, std::uint64_t begun, std::uint64_t applied) {
  return m.begun == generation{begun} && m.applied == generation{applied};
}

std::vector<std::string> names_of(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("e" + std::to_string(i) + ".example.test.");
  return out;
}

/// An UPDATE (opcode 5) that carries the apply marks: their owner _apply._planfence.<zone>, whose
/// first label is written out in the message (compression can only shorten what follows it).
bool update_with_marks(std::string_view message) {
  if (message.size() < 12 || ((static_cast<unsigned char>(message[2]) >> 3) & 0x0f) != 5) return false;
  return message.find(std::string_view("\x06_apply\x0a_planfence", 18)) != std::string_view::npos;
}

/// knotd, a store talking to it through `proxy` (TCP only, at most `per_message` endpoints an
/// UPDATE) and one talking to it directly.
struct through_proxy {
  planfence_example::knot_server knot = planfence_test::start_knot();
  fault_proxy proxy{knot.port(), fault_proxy::framing::dns_tcp};
  std::size_t n;
  rfc2136_store store;
  rfc2136_store direct;

  through_proxy(std::size_t endpoints, std::size_t per_message, unsigned attempts = 3)
      : n(endpoints), store(open_proxied(per_message, attempts)), direct(open_uri(knot.uri(zone))) {}

  [[nodiscard]] rfc2136_store open_proxied(std::size_t per_message, unsigned attempts) const {
    std::string uri = knot.uri(zone);
    const std::string server = "127.0.0.1:" + std::to_string(knot.port()) + "/";
    const std::size_t at_server = uri.find(server);
    REQUIRE(at_server != std::string::npos);
    uri.replace(at_server, server.size(), "127.0.0.1:" + std::to_string(proxy.port()) + "/");
    auto options = rfc2136_store::parse_uri(uri + "&tcp=1&attempts=" + std::to_string(attempts));
    REQUIRE(options);
    options->update_endpoints_max = per_message;
    auto opened = rfc2136_store::open(*options, names_of(n));
    if (!opened) FAIL("rfc2136_store: " << opened.error().message());
    return std::move(*opened);
  }

  [[nodiscard]] rfc2136_store open_uri(const std::string& uri) const {
    auto opened = rfc2136_store::open_uri(uri, names_of(n));
    if (!opened) FAIL("rfc2136_store: " << opened.error().message());
    return std::move(*opened);
  }

  [[nodiscard]] std::vector<stamp> stamps() const {
    std::vector<endpoint_handle> handles;
    for (std::uint32_t i = 0; i < n; ++i) handles.push_back(h(i));
    std::vector<stamp> out(n);
    REQUIRE(direct.read_stamps(handles, out));
    return out;
  }
};

/// Endpoints 0..n-1 at(1, 1) with `records` and the marks {1, 1}, written directly.
void apply_g1(rfc2136_store& store, std::size_t n, const record_set& records) {
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), stamp{}, at(1, 1), &records});
  REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
  REQUIRE(store.commit_batch(items));
  for (const commit_item& item : items) REQUIRE(item.outcome == commit_outcome::written);
  REQUIRE(same_gens(store.finish_apply(generation{1}, fence_token{1}).value(), 1, 1));
}

}  // namespace

TEST_CASE("rfc2136 lost answer: an UPDATE with the marks that landed but lost its answer is sent again and recognised",
          "[batch][marks][lost][knotd]") {
  constexpr std::size_t n = 12;
  const std::size_t nth = GENERATE(1, 2);  // the UPDATE with the begin, the one with the finish
  INFO((nth == 1 ? "the begin's answer lost" : "the finish's answer lost"));
  through_proxy z(n, 5);
  const record_set v1 = planfence_test::a_records({"10.0.0.1"});
  const record_set v2 = planfence_test::a_records({"10.0.0.2"});
  apply_g1(z.direct, n, v1);
  const apply_marks g1 = z.direct.read_marks().value();
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), at(1, 1), at(2, 1), &v2});
  batch_marks m = fold(&g1, true, 2, 1);
  z.proxy.cut_answer(nth, update_with_marks);
  const std::uint64_t messages = z.store.updates_sent();
  auto done = z.store.commit_batch(items, m);
  REQUIRE(z.proxy.cuts() == 1);
  if (!done) FAIL(done.error().message());
  CHECK(z.store.updates_sent() - messages == 3);  // each message once, however many attempts
  CHECK(z.proxy.matched() == 3);                  // the message whose answer was lost went twice
  CHECK(m.began);
  CHECK_FALSE(m.begin_refused);
  CHECK(m.finished);
  CHECK(same_gens(m.marks, 2, 2));
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  CHECK(same_gens(z.direct.read_marks().value(), 2, 2));
  for (const stamp& st : z.stamps()) CHECK(st == at(2, 1));
  CHECK(planfence_test::served_addresses(z.direct, h(11)) == std::vector<std::string>{"10.0.0.2"});
}

TEST_CASE("rfc2136 lost answer: an UPDATE with the marks whose every copy lost its answer is all or nothing",
          "[batch][marks][lost][knotd]") {
  // attempts=1: the store sends a message once more only on a fresh connection when its pooled
  // one was cut, and the proxy cuts that copy's answer too: the call fails.
  constexpr std::size_t n = 12;
  const std::size_t nth = GENERATE(1, 2);  // the UPDATE with the begin, the one with the finish
  INFO((nth == 1 ? "the begin's answers lost" : "the finish's answers lost"));
  through_proxy z(n, 5, 1);
  const record_set v1 = planfence_test::a_records({"10.0.0.1"});
  const record_set v2 = planfence_test::a_records({"10.0.0.2"});
  apply_g1(z.direct, n, v1);
  const apply_marks g1 = z.direct.read_marks().value();
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), at(1, 1), at(2, 1), &v2});
  batch_marks m = fold(&g1, true, 2, 1);
  REQUIRE(z.store.read_marks());  // a pooled connection: the first UPDATE goes on it
  z.proxy.cut_answer(nth, update_with_marks, {}, 2);
  auto done = z.store.commit_batch(items, m);
  CHECK(z.proxy.cuts() == 2);  // the message and its one copy on a fresh connection
  REQUIRE_FALSE(done);
  INFO(done.error().message());
  CHECK(done.error().code == errc::store_unavailable);
  CHECK_FALSE(m.begin_refused);
  CHECK_FALSE(m.finished);
  CHECK(m.began == (nth == 2));  // the begin's message answered, or not known
  // knotd applied the message whole: its endpoints and its marks; nothing of the messages after it.
  const std::vector<stamp> now = z.stamps();
  const std::size_t lost_from = nth == 1 ? 0 : 10;
  const std::size_t lost_to = nth == 1 ? 5 : 12;
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(items[i].outcome == (i < lost_from ? commit_outcome::written : commit_outcome::pending));
    CHECK(now[i] == (i < lost_to ? at(2, 1) : at(1, 1)));
  }
  CHECK(same_gens(z.direct.read_marks().value(), 2, nth == 1 ? 1 : 2));
}

TEST_CASE("rfc2136 lost answer: a batch sent again after store_unavailable finds its begin made and writes the rest",
          "[batch][marks][lost][knotd]") {
  // What the enactor does after the call above failed: it reads the stamps again and sends the
  // batch again with the same begin (it cannot know that the begin landed). The first message
  // now holds other endpoints (those the lost message wrote are stale before sending); knotd
  // refuses it for the marks, which read back as this message would write them: began (B is
  // at the target), and its endpoints, still at their expected stamps, go again WITHOUT the
  // marks, and are written; the finish goes with the last message.
  constexpr std::size_t n = 12;
  through_proxy z(n, 5, 1);
  const record_set v1 = planfence_test::a_records({"10.0.0.1"});
  const record_set v2 = planfence_test::a_records({"10.0.0.2"});
  apply_g1(z.direct, n, v1);
  const apply_marks g1 = z.direct.read_marks().value();
  {
    std::vector<commit_item> items;
    for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), at(1, 1), at(2, 1), &v2});
    batch_marks m = fold(&g1, true, 2, 1);
    REQUIRE(z.store.read_marks());
    z.proxy.cut_answer(1, update_with_marks, {}, 2);
    REQUIRE_FALSE(z.store.commit_batch(items, m));
    REQUIRE(z.proxy.cuts() == 2);
    REQUIRE(same_gens(z.direct.read_marks().value(), 2, 1));  // the first message landed
  }
  const std::vector<stamp> before = z.stamps();
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), before[i], at(2, 1), &v2});
  batch_marks m = fold(&g1, true, 2, 1);
  const std::uint64_t messages = z.store.updates_sent();
  auto done = z.store.commit_batch(items, m);
  if (!done) FAIL(done.error().message() << (m.begin_refused ? " (begin_refused)" : ""));
  CHECK(m.began);
  CHECK_FALSE(m.begin_refused);
  CHECK(m.finished);
  CHECK(same_gens(m.marks, 2, 2));
  // Refused for the marks, sent again without them, then the last message with the finish.
  CHECK(z.store.updates_sent() - messages == 3);
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(items[i].outcome == (i < 5 ? commit_outcome::stale : commit_outcome::written));
  }
  CHECK(same_gens(z.direct.read_marks().value(), 2, 2));
  for (const stamp& st : z.stamps()) CHECK(st == at(2, 1));
  CHECK(planfence_test::served_addresses(z.direct, h(7)) == std::vector<std::string>{"10.0.0.2"});
}

TEST_CASE("rfc2136 lost answer: the begin landed and another writer moved a stamp before the resend: began and that item stale",
          "[batch][marks][lost][knotd]") {
  constexpr std::size_t n = 12;
  const std::size_t per_message = GENERATE(5, 0);  // three messages, or one with both marks
  INFO(per_message << " endpoints a message (0: no bound)");
  through_proxy z(n, per_message);
  const record_set v1 = planfence_test::a_records({"10.0.0.1"});
  const record_set v2 = planfence_test::a_records({"10.0.0.2"});
  const record_set v3 = planfence_test::a_records({"10.0.0.3"});
  apply_g1(z.direct, n, v1);
  const apply_marks g1 = z.direct.read_marks().value();
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), at(1, 1), at(2, 1), &v2});
  batch_marks m = fold(&g1, true, 2, 1);
  // While the store waits for the answer the proxy dropped, another writer rewrites e1 at
  // generation 3 over what the landed message wrote.
  rfc2136_store other = z.open_uri(z.knot.uri(zone));
  std::atomic<bool> other_wrote{false};
  z.proxy.cut_answer(1, update_with_marks, [&] { other_wrote = other.commit(h(1), at(2, 1), at(3, 1), v3).has_value(); });
  auto done = z.store.commit_batch(items, m);
  REQUIRE(z.proxy.cuts() == 1);
  REQUIRE(other_wrote);
  if (!done) FAIL(done.error().message() << (m.begin_refused ? " (begin_refused)" : ""));
  CHECK(m.began);
  CHECK_FALSE(m.begin_refused);
  CHECK(m.finished);  // e1 is stale, the others written: the finish goes with the last message
  CHECK(same_gens(m.marks, 2, 2));
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(items[i].outcome == (i == 1 ? commit_outcome::stale : commit_outcome::written));
  }
  CHECK(same_gens(z.direct.read_marks().value(), 2, 2));
  const std::vector<stamp> now = z.stamps();
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(now[i] == (i == 1 ? at(3, 1) : at(2, 1)));
  }
  CHECK(planfence_test::served_addresses(z.direct, h(1)) == std::vector<std::string>{"10.0.0.3"});
}

namespace {

using lost_enactor = enactor<rfc2136_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;

}  // namespace

TEST_CASE("rfc2136 lost answer: an enactor whose batch lost the answer with the begin or the finish converges",
          "[batch][marks][lost][enactor][knotd]") {
  constexpr std::size_t n = 30;
  const std::size_t nth = GENERATE(1, 2);
  // 1: the store sends the message again and recognises it; 2: attempts=1 and the copy's answer
  // is lost too, so the store reports store_unavailable and the enactor tries again.
  const std::size_t times = GENERATE(1, 2);
  INFO((nth == 1 ? "the begin's answer lost" : "the finish's answer lost") << ", " << times << " time(s)");
  through_proxy z(n, 10, times == 1 ? 3 : 1);  // one batch of 30: three UPDATEs
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  lost_enactor e{z.store, authority, registry, clock,
                 {.name = "lost", .batch_max = 1000, .zone_change_share_max = 1.0, .collect = false}};
  std::map<std::string, std::vector<std::string>> first;
  std::map<std::string, std::vector<std::string>> second;
  const std::vector<std::string> names = names_of(n);
  for (std::size_t i = 0; i < n; ++i) {
    first[names[i]] = {"10.1.0." + std::to_string(i + 1)};
    second[names[i]] = {"10.2.0." + std::to_string(i + 1)};
  }
  REQUIRE(registry.publish(planfence_test::make_plan(1, first)));
  planfence_test::apply_until(e, generation{1});
  REQUIRE(same_gens(z.direct.read_marks().value(), 1, 1));

  REQUIRE(registry.publish(planfence_test::make_plan(2, second)));
  z.proxy.cut_answer(nth, update_with_marks, {}, times);
  planfence_test::apply_until(e, generation{2});
  CHECK(z.proxy.cuts() == times);
  CHECK(same_gens(z.direct.read_marks().value(), 2, 2));
  const std::vector<stamp> now = z.stamps();
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO(names[i]);
    CHECK(now[i].gen == generation{2});
    CHECK(planfence_test::served_addresses(z.direct, h(i)) == std::vector<std::string>{"10.2.0." + std::to_string(i + 1)});
  }
}
