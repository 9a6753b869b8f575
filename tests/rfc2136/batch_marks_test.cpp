// Proves rfc2136_store as a marks_batch_store (store.hpp) on each real server installed here:
// Knot, BIND and PowerDNS (servers.hpp). commit_batch(items, marks) folds the apply marks into the
// batch's UPDATEs: the begin into the first message (a prerequisite on the marks exactly as
// expected, and their replacement), the finish into the last.
//  - begin, items and finish that fit one message are ONE UPDATE; the marks read back (kdig) are
//    {target, target} and every stamp is written;
//  - a begin whose marks moved (another begin_apply) is refused by the server: conflict,
//    begin_refused, no stamp written, every item pending;
//  - a begin below the floor another store raised is refused by the server: fenced, nothing
//    written (and, once the floor is known, nothing sent);
//  - a stale item in the first message: that item stale, the others written with the begin (and
//    the finish: stale items do not keep it out);
//  - a batch split over several messages: the begin in the first, the finish in the last (one
//    UPDATE per message); a conflicting item in an earlier message keeps the finish out;
//  - a batch that fills one message to the octet is split in two once the marks ride along (room
//    is kept for them), and both messages are accepted (knotd);
//  - a finish (alone, or with the begin) in a message the server refuses for a conflicting item is
//    dropped from the message sent again;
//  - a resent message that had landed (its answer lost) is recognised: begun, items written;
//  - the enactor, through the store and through any_store (as planfence-ctl uses it), applies a
//    plan changing a few endpoints with ONE UPDATE.
#include <catch2/catch.hpp>

#include <map>
#include <span>

#include <planfence/planfence.hpp>
#include <planfence/store/any_store.hpp>

#include "../support/marks_fold.hpp"
#include "refusal_checks.hpp"
#include "servers.hpp"

using namespace planfence;
using planfence_test::fold;
using planfence_rfc2136_test::contains;
using planfence_rfc2136_test::txt_at;

namespace {

const std::string zone = "example.test.";
const std::string owner = dns::marks_owner(zone);

apply_marks marks(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 1}; }
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }
endpoint_handle h(std::uint32_t i) { return endpoint_handle{i}; }

std::vector<std::string> names_of(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("e" + std::to_string(i) + ".example.test.");
  return out;
}

rfc2136_store open(const std::string& uri, const std::vector<std::string>& names) {
  auto store = rfc2136_store::open_uri(uri, names);
  if (!store) FAIL("rfc2136_store: " << store.error().message());
  return std::move(*store);
}

/// The stamps the server has for endpoints 0..n-1.
std::vector<stamp> stamps_of(const rfc2136_store& store, std::size_t n) {
  std::vector<endpoint_handle> handles;
  for (std::uint32_t i = 0; i < n; ++i) handles.push_back(h(i));
  std::vector<stamp> out(n);
  auto read = store.read_stamps(handles, out);
  if (!read) FAIL(read.error().message());
  return out;
}

/// Endpoints 0..n-1 written at generation 1 (fence 1) and the marks at {1, 1}: a zone after g1.
void applied_g1(rfc2136_store& store, std::size_t n, const record_set& records) {
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), stamp{}, at(1, 1), &records});
  REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
  REQUIRE(store.commit_batch(items));
  for (const commit_item& item : items) REQUIRE(item.outcome == commit_outcome::written);
  REQUIRE(store.finish_apply(generation{1}, fence_token{1}).value() == marks(1, 1));
}

/// Items writing `records` at (gen, fence) to endpoints 0..n-1, expecting at(1, 1).
std::vector<commit_item> items_from_g1(std::size_t n, std::uint64_t gen, std::uint64_t fence, const record_set& records) {
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), at(1, 1), at(gen, fence), &records});
  return items;
}

stamp stamp_now(const rfc2136_store& store, std::uint32_t i) { return store.read_stamp(h(i)).value(); }

/// A zone on `Server` after generation 1: endpoints e0..e(n-1) serve 10.0.0.1 at at(1, 1), the
/// marks are {1, 1}. `store` writes (at most `per_message` endpoints per UPDATE when not 0);
/// `other` is another writer.
template <class Server>
struct after_g1 {
  Server server;
  std::size_t n;
  record_set v1 = planfence_test::a_records({"10.0.0.1"});
  record_set v2 = planfence_test::a_records({"10.0.0.2"});
  rfc2136_store store;
  rfc2136_store other;

  explicit after_g1(std::size_t endpoints, std::size_t per_message = 0)
      : n(endpoints), store(open_split(server.uri(), per_message)), other(open(server.uri(), names_of(n))) {
    applied_g1(store, n, v1);
  }

  [[nodiscard]] rfc2136_store open_split(const std::string& uri, std::size_t per_message) const {
    auto options = rfc2136_store::parse_uri(uri).value();
    options.update_endpoints_max = per_message;
    auto opened = rfc2136_store::open(options, names_of(n));
    if (!opened) FAIL("rfc2136_store: " << opened.error().message());
    return std::move(*opened);
  }

  /// Checks a batch whose begin was refused with `code`: nothing of it written (every item
  /// pending, every stamp still at(1, 1)), the marks on the server `marks_text`. Its message.
  std::string begin_refused(const result<void>& done, const batch_marks& m, std::span<const commit_item> items, errc code,
                            const std::string& marks_text) {
    REQUIRE(!done);
    INFO(done.error().message());
    CHECK(done.error().code == code);
    CHECK(m.begin_refused);
    CHECK(!m.began);
    CHECK(!m.finished);
    for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::pending);
    for (const stamp& st : stamps_of(store, n)) CHECK(st == at(1, 1));
    CHECK(planfence_test::served_addresses(store, h(0)) == std::vector<std::string>{"10.0.0.1"});
    CHECK(txt_at(server, owner) == std::vector<std::string>{marks_text});
    return done.error().message();
  }
};

}  // namespace

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: begin and items and finish that fit one message are one UPDATE",
                        "[batch][marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(5);
  rfc2136_store& store = z.store;
  const record_set& v1 = z.v1;
  auto items = items_from_g1(5, 2, 1, z.v2);
  const apply_marks expected = marks(1, 1);
  batch_marks m = fold(&expected, true, 2, 1);
  const std::uint64_t sent = store.updates_sent();
  auto done = store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(store.updates_sent() - sent == 1);
  CHECK(m.began);
  CHECK(m.finished);
  CHECK(!m.begin_refused);
  CHECK(m.marks == marks(2, 2));
  CHECK(store.read_marks().value() == marks(2, 2));
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=2 applied=2"});
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  for (const stamp& s : stamps_of(store, 5)) CHECK(s == at(2, 1));
  CHECK(planfence_test::served_addresses(store, h(3)) == std::vector<std::string>{"10.0.0.2"});

  // The begin alone with the items (no finish): one UPDATE, B raised, A left.
  const auto v3 = planfence_test::a_records({"10.0.0.3"});
  std::vector<commit_item> next;
  for (std::uint32_t i = 0; i < 5; ++i) next.push_back({h(i), at(2, 1), at(3, 1), &v3});
  const apply_marks now = marks(2, 2);
  batch_marks begin_only = fold(&now, false, 3, 1);
  const std::uint64_t before = store.updates_sent();
  REQUIRE(store.commit_batch(next, begin_only));
  CHECK(store.updates_sent() - before == 1);
  CHECK(begin_only.began);
  CHECK(!begin_only.finished);
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=3 applied=2"});
  // Then the finish alone with the last items (read_marks first): one UPDATE.
  std::vector<commit_item> last = {{h(0), at(3, 1), at(4, 1), &v1}};
  batch_marks finish_only = fold(nullptr, true, 3, 1);
  const std::uint64_t before_finish = store.updates_sent();
  REQUIRE(store.commit_batch(last, finish_only));
  CHECK(store.updates_sent() - before_finish == 1);
  CHECK(finish_only.finished);
  CHECK(finish_only.marks == marks(3, 3));
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=3 applied=3"});
  CHECK(last[0].outcome == commit_outcome::written);
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: a begin whose marks moved is refused by the server and writes nothing",
                        "[batch][marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(4);
  // Another enactor begins generation 3 after we read the marks {1, 1}.
  REQUIRE(z.other.begin_apply(marks(1, 1), generation{3}, fence_token{1}).value() == marks(3, 1));

  auto items = items_from_g1(4, 2, 1, z.v2);
  items[3].expected = at(2, 1);  // decided stale without sending; pending again once the begin is refused
  const apply_marks expected = marks(1, 1);
  batch_marks m = fold(&expected, true, 2, 1);
  const std::uint64_t sent = z.store.updates_sent();
  auto done = z.store.commit_batch(items, m);
  CHECK(z.store.updates_sent() - sent == 1);  // the server refused it
  CHECK(contains(z.begin_refused(done, m, items, errc::conflict, "begun=3 applied=1"), "\"begun=3 applied=1\""));
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: a begin below the fence floor is fenced and writes nothing",
                        "[batch][marks][knotd][bind][pdns][S2]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(4);
  REQUIRE(z.other.raise_fence(fence_token{5}));  // a newer holder; `z.store` still pins no floor

  const apply_marks expected = marks(1, 1);
  for (const bool floor_known : {false, true}) {
    INFO("floor known: " << floor_known);
    auto items = items_from_g1(4, 2, 4, z.v2);
    batch_marks m = fold(&expected, true, 2, 4);
    const std::uint64_t sent = z.store.updates_sent();
    auto done = z.store.commit_batch(items, m);
    // Sent against the old floor: the server refused it. Then the store knows: nothing sent.
    CHECK(z.store.updates_sent() - sent == (floor_known ? 0u : 1u));
    CHECK(contains(z.begin_refused(done, m, items, errc::fenced, "begun=1 applied=1"), "floor of example.test. is 5"));
  }
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: a stale item in the message with the begin is stale and the others are written",
                        "[batch][marks][knotd][bind][pdns][S1]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(4);
  rfc2136_store& store = z.store;
  const auto v9 = planfence_test::a_records({"10.0.0.9"});
  // e1 moves past our generation behind our back.
  REQUIRE(z.other.commit(h(1), at(1, 1), at(7, 1), v9));

  auto items = items_from_g1(4, 2, 1, z.v2);
  const apply_marks expected = marks(1, 1);
  batch_marks m = fold(&expected, true, 2, 1);
  const std::uint64_t sent = store.updates_sent();
  auto done = store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  // The first message refused (e1's prerequisite), the rest sent again with the marks.
  CHECK(store.updates_sent() - sent == 2);
  CHECK(m.began);
  CHECK(m.finished);  // a stale item does not keep the finish out
  CHECK(items[0].outcome == commit_outcome::written);
  CHECK(items[1].outcome == commit_outcome::stale);
  CHECK(items[1].now.gen == generation{7});
  CHECK(items[2].outcome == commit_outcome::written);
  CHECK(items[3].outcome == commit_outcome::written);
  const auto now = stamps_of(store, 4);
  CHECK(now[0] == at(2, 1));
  CHECK(now[1] == at(7, 1));
  CHECK(now[2] == at(2, 1));
  CHECK(now[3] == at(2, 1));
  CHECK(planfence_test::served_addresses(store, h(1)) == std::vector<std::string>{"10.0.0.9"});
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=2 applied=2"});
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: split over several messages the begin goes first and the finish last",
                        "[batch][marks][knotd][bind][pdns][S1]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(5, /*per_message=*/2);
  rfc2136_store& store = z.store;
  const record_set& v2 = z.v2;
  const auto v3 = planfence_test::a_records({"10.0.0.3"});

  // Five items in three messages (2, 2, 1): the begin in the first, the finish in the last.
  auto items = items_from_g1(5, 2, 1, v2);
  CHECK(store.preview_update(items).value().size() == 3);
  const apply_marks expected = marks(1, 1);
  batch_marks m = fold(&expected, true, 2, 1);
  std::uint64_t sent = store.updates_sent();
  auto done = store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(store.updates_sent() - sent == 3);
  CHECK(m.began);
  CHECK(m.finished);
  CHECK(m.marks == marks(2, 2));
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=2 applied=2"});
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);

  // e0 (in the first message) moved by another writer, not past our generation: a conflict. The
  // begin still goes (with e1), the finish does not: A stays at 2.
  REQUIRE(z.other.commit(h(0), at(2, 1), at(3, 1), v3));
  std::vector<commit_item> next;
  for (std::uint32_t i = 0; i < 5; ++i) next.push_back({h(i), at(2, 1), at(4, 1), &v2});
  const apply_marks now = marks(2, 2);
  batch_marks n = fold(&now, true, 4, 1);
  sent = store.updates_sent();
  done = store.commit_batch(next, n);
  if (!done) FAIL(done.error().message());
  CHECK(store.updates_sent() - sent == 4);  // the first message twice, then two
  CHECK(n.began);
  CHECK(!n.finished);
  CHECK(n.marks == marks(4, 2));
  CHECK(next[0].outcome == commit_outcome::conflict);
  for (std::uint32_t i = 1; i < 5; ++i) CHECK(next[i].outcome == commit_outcome::written);
  CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=4 applied=2"});
  CHECK(stamps_of(store, 5)[0] == at(3, 1));
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: a finish in a message refused for a conflicting item is dropped",
                        "[batch][marks][knotd][bind][pdns][S1]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  for (const bool with_begin : {false, true}) {
    INFO("the begin in the same message: " << with_begin);
    after_g1<TestType> z(3);
    rfc2136_store& store = z.store;
    // Without the begin, our apply of 3 began in an earlier batch and this last one finishes.
    const apply_marks g1 = marks(1, 1);
    if (!with_begin) REQUIRE(store.begin_apply(g1, generation{3}, fence_token{1}).value() == marks(3, 1));
    REQUIRE(z.other.commit(h(2), at(1, 1), at(2, 1), z.v1));  // e2 moved, not past 3: a conflict
    auto items = items_from_g1(3, 3, 1, z.v2);
    batch_marks m = fold(with_begin ? &g1 : nullptr, true, 3, 1);
    const std::uint64_t sent = store.updates_sent();
    auto done = store.commit_batch(items, m);
    if (!done) FAIL(done.error().message());
    CHECK(store.updates_sent() - sent == 2);  // refused, then the rest without the finish
    CHECK(m.began == with_begin);
    CHECK(!m.finished);  // the conflict keeps the finish out
    CHECK(items[0].outcome == commit_outcome::written);
    CHECK(items[1].outcome == commit_outcome::written);
    CHECK(items[2].outcome == commit_outcome::conflict);
    CHECK(txt_at(z.server, owner) == std::vector<std::string>{"begun=3 applied=1"});
  }
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: a message that landed but whose answer was lost is recognised as ours",
                        "[batch][marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  INFO(TestType::name);
  after_g1<TestType> z(3);
  rfc2136_store& store = z.store;
  rfc2136_store& earlier = z.other;  // stands for the attempt whose answer was lost
  const record_set& v2 = z.v2;
  for (const bool finish : {true, false}) {
    INFO("finish: " << finish);
    const std::uint64_t target = finish ? 2 : 3;
    std::vector<commit_item> landed;
    for (std::uint32_t i = 0; i < 3; ++i) landed.push_back({h(i), stamp_now(store, i), at(target, 1), &v2});
    const apply_marks before = store.read_marks().value();
    batch_marks first = fold(&before, finish, target, 1);
    REQUIRE(earlier.commit_batch(landed, first));
    REQUIRE(first.began);
    // The same message again, as a resend would be: the server refuses it (stamps and marks
    // moved), and what it reads back is exactly what the message writes.
    std::vector<commit_item> again;
    for (const commit_item& item : landed) again.push_back({item.endpoint, item.expected, item.desired, &v2});
    batch_marks m = fold(&before, finish, target, 1);
    auto done = store.commit_batch(again, m);
    if (!done) FAIL(done.error().message());
    CHECK(m.began);
    CHECK(!m.begin_refused);
    CHECK(m.finished == finish);
    CHECK(m.marks == (finish ? marks(2, 2) : marks(3, 2)));
    for (const commit_item& item : again) CHECK(item.outcome == commit_outcome::written);
    CHECK(store.read_marks().value() == m.marks);
  }
}

TEST_CASE("rfc2136 batch marks: a batch that exactly fills one message leaves room for the marks", "[batch][marks][knotd]") {
  auto knot = planfence_test::start_knot();
  constexpr std::size_t n = 400;
  auto store = open(knot.uri(zone), names_of(n));
  std::map<std::size_t, record_set> texts;  // one TXT string of each length used
  auto text = [&](std::size_t length) -> const record_set* {
    auto it = texts.find(length);
    if (it == texts.end()) {
      auto r = make_record(record_type::txt, 60, "\"" + std::string(length, 'x') + "\"").value();
      it = texts.emplace(length, record_set::make({r}).value()).first;
    }
    return &it->second;
  };
  // k endpoints never written, their TXT strings 200 octets and `extra` more spread over them.
  auto batch = [&](std::size_t k, std::size_t extra) {
    std::vector<commit_item> items;
    for (std::uint32_t i = 0; i < k; ++i) items.push_back({h(i), stamp{}, at(1, 1), text(200 + extra / k + (i < extra % k ? 1 : 0))});
    return items;
  };
  auto messages = [&](const std::vector<commit_item>& items) { return store.preview_update(items).value().size(); };
  // The most endpoints of 200 octets one message holds, then the most octets more it holds: the
  // message is then full to the octet (one more and it splits).
  std::size_t lo = 1, hi = n;
  while (lo < hi) {
    const std::size_t mid = (lo + hi + 1) / 2;
    if (messages(batch(mid, 0)) == 1) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const std::size_t k = lo;
  REQUIRE(k < n);
  std::size_t e_lo = 0, e_hi = 55 * k;
  while (e_lo < e_hi) {
    const std::size_t mid = (e_lo + e_hi + 1) / 2;
    if (messages(batch(k, mid)) == 1) {
      e_lo = mid;
    } else {
      e_hi = mid - 1;
    }
  }
  REQUIRE(e_lo < 55 * k);
  CHECK(messages(batch(k, e_lo)) == 1);
  CHECK(messages(batch(k, e_lo + 1)) == 2);
  // With the marks (begin and finish), the same batch no longer fits one message: two UPDATEs,
  // each within 64 KiB, both accepted; the begin in the first, the finish in the second.
  auto items = batch(k, e_lo);
  const apply_marks none{};
  batch_marks m = fold(&none, true, 1, 1);
  const std::uint64_t sent = store.updates_sent();
  auto done = store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(store.updates_sent() - sent == 2);
  CHECK(m.began);
  CHECK(m.finished);
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  CHECK(store.read_marks().value() == marks(1, 1));
  CHECK(store.read_stamp(h(static_cast<std::uint32_t>(k - 1))).value() == at(1, 1));
}

namespace {

using manual_enactor_store = enactor<rfc2136_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;
using manual_enactor_any = enactor<any_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("rfc2136 batch marks: the enactor applies a small change with one UPDATE",
                        "[batch][marks][enactor][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  const auto names = names_of(20);
  SECTION("through the store") {
    auto store = open(server.uri(), names);
    planfence_test::apply_small_change<manual_enactor_store>(store, store, names, 1024, [&] { return store.updates_sent(); });
  }
  SECTION("through any_store as planfence-ctl opens it") {
    auto owned = std::make_unique<rfc2136_store>(open(server.uri(), names));
    const rfc2136_store& counter = *owned;
    any_store store(std::move(owned), "rfc2136 (test)");
    planfence_test::apply_small_change<manual_enactor_any>(store, counter, names, 1024, [&] { return counter.updates_sent(); });
  }
}
