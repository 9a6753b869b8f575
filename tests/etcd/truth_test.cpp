// What the etcd store and plan history tell a recovery tool must be true, and reading must not
// write. Against a real etcd member on loopback, this proves that:
//  - opening a store or a history and calling every read-only member leaves the cluster's
//    revision unchanged (read from a response header), on a used prefix and on a mistyped one,
//    and a read-only open can tell a mistyped prefix (exists(), open_options::must_exist);
//  - the keys that used to be created at open (P/fence-floor, P/plans-collected) are created by the
//    first write that needs them, in its own transaction, and fencing still holds when another
//    store object created or raised the floor meanwhile;
//  - a corrupt floor, collected mark, plan key, sequence or stamp is refused with the key and the
//    value named, never overwritten or read as 0; a floor beyond the operator fences (2^24 - 1)
//    reaches store_fence_floor, so next_operator_fence refuses instead of "taking control";
//  - no URI parse error echoes a password, token or unknown option (a known secret is searched for);
//  - failures carry the server's own words (HTTP status, body, etcd's message), from a fake
//    HTTP member that answers with errors;
//  - a holder-key commit refused because no holder key carries its token says so, and names
//    ?fence=floor.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/sequencer.hpp>
#include <planfence/recovery.hpp>
#include <planfence/etcd/store.hpp>
#include <planfence/store/open_store.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "../support/fixtures.hpp"
#include "etcd_support.hpp"

using namespace planfence;
using planfence_test::a_records;
using planfence_test::generation_plan;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

namespace {

/// The cluster's revision now, from the header of a range on a key nobody writes.
std::int64_t cluster_revision(etcd::client& c) { return c.range("/no-such-key").value().revision; }

/// How many keys exist under `prefix` + "/".
std::size_t keys_under(etcd::client& c, const std::string& prefix) {
  const std::string from = prefix + "/";
  return c.range(from, etcd::range_options{.range_end = etcd::prefix_end(from), .keys_only = true}).value().kvs.size();
}

const std::vector<std::string> names = {"db.example.test.", "www.example.test."};

/// Every read-only member of a store opened at `uri`, twice over (both fence modes).
void read_everything_from_store(const std::string& uri) {
  for (const std::string& suffix : {std::string(), std::string("?fence=floor")}) {
    auto store = etcd_store::open_uri(uri + suffix);
    REQUIRE(store);
    CHECK(store->exists());
    for (const std::string& n : names) {
      const auto h = store->resolve(n).value();
      CHECK(store->read_stamp(h));
      CHECK(store->served(h));
    }
    CHECK(store->endpoint_names());
    CHECK(store->fence_floor());
    CHECK(store->live_generations());
    CHECK(store->read_all());
    auto any = open_store(uri + suffix, known_store_schemes(), {});
    REQUIRE(any);
    CHECK(store_fence_floor(*any));
  }
}

/// Every read-only member of a history opened at `uri`.
void read_everything_from_history(const std::string& uri) {
  auto history = etcd::etcd_plan_registry::open_uri(uri);
  REQUIRE(history);
  CHECK(history->exists());
  CHECK(history->latest_generation());
  auto retained = history->retained();
  REQUIRE(retained);
  for (generation g : *retained) CHECK(history->lookup(g));
  static_cast<void>(history->latest());
  static_cast<void>(history->lookup(generation{99}));
}

/// Puts `value` at `key` directly, as an operator's etcdctl would.
void put_raw(etcd::client& c, const std::string& key, const std::string& value) { REQUIRE(c.put(key, value)); }

bool mentions(const error& e, const std::string& text) { return e.message().find(text) != std::string::npos; }

/// A fake etcd member: accepts connections on loopback and answers every request with `response`.
class fake_member {
 public:
  explicit fake_member(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~fake_member() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  [[nodiscard]] etcd::client_config config() const {
    etcd::client_config out;
    out.members.push_back(etcd::member_address{"127.0.0.1", port_});
    out.request_timeout = std::chrono::milliseconds{2000};
    return out;
  }

 private:
  void serve() {
    while (!stop_) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buffer[4096];
      // Read the head and the Content-Length body (requests are small).
      for (;;) {
        const ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        request.append(buffer, static_cast<std::size_t>(got));
        const std::size_t head_end = request.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        const std::size_t length_at = request.find("Content-Length: ");
        const std::size_t length = length_at == std::string::npos ? 0 : std::stoul(request.substr(length_at + 16));
        if (request.size() >= head_end + 4 + length) break;
      }
      static_cast<void>(::send(client, response_.data(), response_.size(), MSG_NOSIGNAL));
      ::close(client);
    }
  }

  std::string response_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string http_response(int status, const std::string& reason, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("etcd read paths: opening and reading a store and a history leave the revision unchanged",
          "[etcd][readonly]") {
  etcd::client c(shared_etcd().config());
  const std::string base = "etcd://" + shared_etcd().client_address();

  SECTION("a prefix never used (a mistyped one): nothing is created, and a read-only open says so") {
    const std::string prefix = unique_prefix();
    const std::int64_t before = cluster_revision(c);
    read_everything_from_store(base + prefix);
    read_everything_from_history(base + prefix);
    CHECK(cluster_revision(c) == before);
    CHECK(keys_under(c, prefix) == 0);
    CHECK_FALSE(etcd_store::open_uri(base + prefix)->exists().value());
    CHECK_FALSE(etcd::etcd_plan_registry::open_uri(base + prefix)->exists().value());
    auto must = etcd::etcd_plan_registry::open_uri(base + prefix, {.must_exist = true});
    REQUIRE_FALSE(must);
    CHECK(must.error().code == errc::not_found);
    CHECK(mentions(must.error(), "nothing under " + prefix + " at etcd " + shared_etcd().client_address()));
    auto must_store = etcd_store::open_uri(base + prefix + "?fence=floor", {.must_exist = true});
    REQUIRE_FALSE(must_store);
    CHECK(must_store.error().code == errc::not_found);
    CHECK(cluster_revision(c) == before);
  }

  SECTION("a used prefix: every read-only member, in both fence modes") {
    const std::string prefix = unique_prefix();
    {
      auto history = etcd::etcd_plan_registry::open_uri(base + prefix).value();
      REQUIRE(history.publish(generation_plan(1, names)));
      REQUIRE(history.publish(generation_plan(2, names)));
      auto store = etcd_store::open_uri(base + prefix + "?fence=floor").value();
      const auto www = store.resolve("www.example.test.").value();
      REQUIRE(store.commit(www, stamp{}, stamp{generation{2}, fence_token{3}, 0}, a_records({"192.0.2.2"})));
    }
    const std::int64_t before = cluster_revision(c);
    read_everything_from_store(base + prefix);
    read_everything_from_history(base + prefix);
    CHECK(etcd::etcd_plan_registry::open_uri(base + prefix, {.must_exist = true}));
    CHECK(etcd_store::open_uri(base + prefix, {.must_exist = true}));
    // A parent or a sibling of the prefix is not taken for it.
    CHECK_FALSE(etcd::etcd_plan_registry::open_uri(base + prefix + "x", {.must_exist = true}));
    CHECK_FALSE(etcd::etcd_plan_registry::open_uri(base + prefix.substr(0, prefix.rfind('/')), {.must_exist = true}));
    CHECK(cluster_revision(c) == before);
  }
}

TEST_CASE("etcd writes create the floor and the collected mark in their own transaction, and fencing holds",
          "[etcd][readonly][S2][S5]") {
  etcd::client c(shared_etcd().config());
  const std::string prefix = unique_prefix();
  const etcd::layout keys{prefix};
  auto early = etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only).value();
  auto other = etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only).value();
  const auto db = early.resolve("db.example.test.").value();

  // The first commit creates the floor (as 0) in its own transaction: one revision for both keys.
  auto first = early.commit(db, stamp{}, stamp{generation{1}, fence_token{3}, 0}, a_records({"192.0.2.1"}));
  REQUIRE(first);
  auto floor_key = c.range(keys.fence_floor()).value();
  REQUIRE(floor_key.kvs.size() == 1);
  CHECK(floor_key.kvs[0].value == etcd::padded(0));
  CHECK(static_cast<std::uint64_t>(floor_key.kvs[0].create_revision) == first->version);

  // Another store object, opened before the floor existed, raises it; `early`'s older token is
  // fenced, and the refusal names the floor; a newer token passes.
  SECTION("a floor created and raised by another writer fences an older token") {
    REQUIRE(c.delete_range(keys.fence_floor()).value() == 1);  // back to "no floor key"
    auto fresh = etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only).value();
    const auto www = fresh.resolve("www.example.test.").value();
    REQUIRE(other.raise_fence(fence_token{10}));
    auto refused = fresh.commit(www, stamp{}, stamp{generation{1}, fence_token{4}, 0}, a_records({"192.0.2.1"}));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::fenced);
    CHECK(mentions(refused.error(), keys.fence_floor() + " is 10, above the commit's token 4"));
    CHECK(fresh.commit(www, stamp{}, stamp{generation{1}, fence_token{10}, 0}, a_records({"192.0.2.1"})));
    CHECK(fresh.fence_floor().value() == fence_token{10});
  }
  SECTION("a floor key deleted under a store that saw it is recreated by the next commit") {
    const stamp now = early.read_stamp(db).value();
    REQUIRE(c.delete_range(keys.fence_floor()).value() == 1);
    REQUIRE(early.commit(db, now, stamp{generation{2}, fence_token{3}, 0}, a_records({"192.0.2.2"})));
    CHECK(c.range(keys.fence_floor()).value().kvs.at(0).value == etcd::padded(0));
  }

  SECTION("publish creates the collected mark with the plan; collect works without one") {
    auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
    auto second = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
    REQUIRE(history.publish(generation_plan(1, names)));
    auto mark = c.range(keys.plans_collected()).value();
    REQUIRE(mark.kvs.size() == 1);
    CHECK(mark.kvs[0].create_revision == c.range(keys.plan(1)).value().kvs.at(0).create_revision);
    REQUIRE(history.publish(generation_plan(2, names)));
    REQUIRE(history.publish(generation_plan(3, names)));
    REQUIRE(c.delete_range(keys.plans_collected()).value() == 1);
    auto report = history.collect(retention_policy{.keep_newest = 1}, 0, other);
    REQUIRE(report);
    CHECK(report->protected_live == std::vector<generation>{generation{1}});  // db serves it
    CHECK(report->collected == std::vector<generation>{generation{2}});
    CHECK(c.range(keys.plans_collected()).value().kvs.at(0).value == etcd::padded(2));
    // `second` saw a mark when it opened; a collected generation still cannot come back.
    auto again = second.publish(generation_plan(2, names));
    REQUIRE_FALSE(again);
    CHECK(again.error().code == errc::collected);
  }
}

TEST_CASE("etcd values that are not what planfence writes are refused, naming the key and the value",
          "[etcd][readonly][corrupt]") {
  etcd::client c(shared_etcd().config());
  const std::string prefix = unique_prefix();
  const etcd::layout keys{prefix};
  auto store = etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only).value();
  const auto db = store.resolve("db.example.test.").value();

  for (const char* raw : {"banana", "5", "99999999999999999999", "09223372036854775807", "-0000000000000000001"}) {
    const std::string garbage = raw;
    DYNAMIC_SECTION("fence floor '" << garbage << "'") {
      put_raw(c, keys.fence_floor(), garbage);
      auto raised = store.raise_fence(fence_token{1024});
      REQUIRE_FALSE(raised);
      CHECK(mentions(raised.error(), keys.fence_floor() + " holds '" + garbage + "'"));
      CHECK(c.range(keys.fence_floor()).value().kvs.at(0).value == garbage);  // not overwritten
      auto floor = store.fence_floor();
      REQUIRE_FALSE(floor);
      CHECK(mentions(floor.error(), keys.fence_floor() + " holds '" + garbage + "'"));
      auto committed = store.commit(db, stamp{}, stamp{generation{1}, fence_token{7}, 0}, a_records({"192.0.2.1"}));
      REQUIRE_FALSE(committed);
      CHECK(mentions(committed.error(), keys.fence_floor()));
      auto any = open_store("etcd://" + shared_etcd().client_address() + prefix + "?fence=floor", known_store_schemes(), {});
      REQUIRE(any);
      CHECK_FALSE(store_fence_floor(*any));
    }
  }

  SECTION("a floor beyond 2^24 - 1 is the store's floor: no operator fence is left, rather than a hold that is not one") {
    put_raw(c, keys.fence_floor(), etcd::padded(fence_max.value() + 1));
    CHECK(store.fence_floor().value() == fence_token{fence_max.value() + 1});
    auto any = open_store("etcd://" + shared_etcd().client_address() + prefix + "?fence=floor", known_store_schemes(), {});
    REQUIRE(any);
    auto floor = store_fence_floor(*any);
    REQUIRE(floor);
    CHECK(*floor == fence_token{fence_max.value() + 1});
    auto operator_fence = next_operator_fence(*floor);
    REQUIRE_FALSE(operator_fence);
    CHECK(operator_fence.error().code == errc::capacity_exceeded);
  }

  SECTION("an endpoint stamp out of range, or the block of another endpoint") {
    put_raw(c, keys.endpoint("db.example.test."),
            "planfence-endpoint 1\ngeneration 1\nfence 9223372036854775807\nendpoint db.example.test.\n  A 60 192.0.2.1\n");
    auto seen = store.read_stamp(db);
    REQUIRE_FALSE(seen);
    CHECK(mentions(seen.error(), keys.endpoint("db.example.test.")));
    CHECK(mentions(seen.error(), "fence 9223372036854775807 out of range"));
    put_raw(c, keys.endpoint("db.example.test."),
            "planfence-endpoint 1\ngeneration 1\nfence 1\nendpoint www.example.test.\n  A 60 192.0.2.1\n");
    auto other = store.served(db);
    REQUIRE_FALSE(other);
    CHECK(mentions(other.error(), "holds the block of endpoint www.example.test."));
    CHECK_FALSE(store.live_generations());
  }

  SECTION("the collected mark, a plan key, the sequence") {
    auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
    REQUIRE(history.publish(generation_plan(1, names)));
    put_raw(c, keys.plans_collected(), "banana");
    auto published = history.publish(generation_plan(2, names));
    REQUIRE_FALSE(published);
    CHECK(mentions(published.error(), keys.plans_collected() + " holds 'banana'"));
    auto collected = history.collect(retention_policy{.keep_newest = 1}, 0, store);
    static_cast<void>(collected);  // one plan only: nothing to collect, nothing read
    put_raw(c, keys.plans() + "banana", "x");
    auto retained = history.retained();
    REQUIRE_FALSE(retained);
    CHECK(mentions(retained.error(), "unexpected key '" + keys.plans() + "banana'"));
    CHECK_FALSE(history.latest_generation());
    put_raw(c, keys.sequence(), "banana");
    auto sequencer = etcd::etcd_sequencer::make(shared_etcd().config(), prefix).value();
    auto next = sequencer.next();
    REQUIRE_FALSE(next);
    CHECK(mentions(next.error(), keys.sequence() + " holds 'banana'"));
  }
}

TEST_CASE("etcd URI errors never show a password, token or unknown option", "[etcd][uri][secrets]") {
  const std::string secret = "s3cr3t-Pa55";
  const std::vector<std::string> uris = {
      "etcd://user:" + secret + "@127.0.0.1:2379/p",
      "etcd://user:" + secret + "@127.0.0.1:2379/p?fence=floor",
      "etcd://127.0.0.1:2379/p?password=" + secret,
      "etcd://127.0.0.1:2379/p?" + secret,
      "etcd://127.0.0.1:2379/p?fence=floor&token=" + secret,
      "etcd://127.0.0.1:2379?password=" + secret,
      "etcd://127.0.0.1:2379?password=" + secret + "/p",
      "etcd://127.0.0.1:2379/p#" + secret,
      "etcd://user:" + secret + "@/p",
  };
  steady_clock clock;
  for (const std::string& uri : uris) {
    INFO(detail::redact_uri(uri));
    std::vector<error> errors;
    if (auto s = etcd_store::open_uri(uri); !s) errors.push_back(s.error());
    if (auto r = etcd::etcd_plan_registry::open_uri(uri); !r) errors.push_back(r.error());
    if (auto a = etcd::etcd_lease_authority<>::open_uri(uri, clock); !a) errors.push_back(a.error());
    if (auto q = etcd::etcd_sequencer::open_uri(uri); !q) errors.push_back(q.error());
    if (auto l = etcd::parse_uri(uri); !l) errors.push_back(l.error());
    CHECK(errors.size() == 5);  // every parser refuses it
    for (const error& e : errors) {
      INFO(e.message());
      CHECK(e.code == errc::parse_error);
      CHECK(e.message().find(secret) == std::string::npos);
    }
  }
  auto userinfo = etcd::parse_uri("etcd://user:" + secret + "@127.0.0.1:2379/p");
  REQUIRE_FALSE(userinfo);
  CHECK(mentions(userinfo.error(), "user=NAME with password-file=PATH or password-env=VAR"));
  CHECK(mentions(userinfo.error(), "etcd://user:(redacted)@127.0.0.1:2379/p"));
}

TEST_CASE("etcd failures carry the server's own words", "[etcd][errors]") {
  SECTION("an HTTP error whose body is not JSON: the status and the body") {
    fake_member member(http_response(503, "Service Unavailable", "text/plain", "upstream connect error"));
    auto store = etcd_store::make(member.config(), "/p");
    REQUIRE_FALSE(store);
    CHECK(mentions(store.error(), "HTTP 503"));
    CHECK(mentions(store.error(), "upstream connect error"));
  }
  SECTION("a gRPC error with only an error field: etcd's text and code") {
    fake_member member(http_response(500, "Internal Server Error", "application/json",
                                     R"({"error":"etcdserver: mvcc: database space exceeded","code":8})"));
    auto history = etcd::etcd_plan_registry::make(member.config(), "/p");
    REQUIRE_FALSE(history);
    CHECK(mentions(history.error(), "HTTP 500"));
    CHECK(mentions(history.error(), "etcdserver: mvcc: database space exceeded"));
    CHECK(mentions(history.error(), "gRPC code 8"));
  }
  SECTION("a request etcd refuses: its message, through the history") {
    auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), unique_prefix()).value();
    REQUIRE(history.publish(generation_plan(1, names)));
    auto pinned = history.pin(generation{1}, "az1", 0x7eadbeef);  // a lease etcd never granted
    REQUIRE_FALSE(pinned);
    CHECK(pinned.error().code == errc::store_unavailable);
    CHECK(mentions(pinned.error(), "pinning " + history.keys().plan(1)));
    CHECK(mentions(pinned.error(), "etcd says \"etcdserver: requested lease not found\""));
  }
}

TEST_CASE("etcd holder-key mode: a commit without a live holder key says why, and names ?fence=floor",
          "[etcd][S2][errors]") {
  const std::string prefix = unique_prefix();
  auto store = etcd_store::open_uri("etcd://" + shared_etcd().client_address() + prefix).value();
  REQUIRE(store.mode() == etcd::fence_mode::holder_key);
  const auto db = store.resolve("db.example.test.").value();
  auto refused = store.commit(db, stamp{}, stamp{generation{1}, fence_token{1024}, 0}, a_records({"192.0.2.1"}));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::fenced);
  CHECK(mentions(refused.error(),
                 "holder-key mode: the commit's token 1024 is not the create revision of a live holder key under " + prefix));
  CHECK(mentions(refused.error(), prefix + "/holder does not exist"));
  CHECK(mentions(refused.error(), "?fence=floor"));
  CHECK(refused.error().message().find("someone else") == std::string::npos);

  // A tool can tell the mode before it opens anything, and refuse it up front.
  CHECK(etcd_store::mode_of_uri("etcd://127.0.0.1:2379/p").value() == etcd::fence_mode::holder_key);
  CHECK(etcd_store::mode_of_uri("etcd://127.0.0.1:2379/p?fence=holder").value() == etcd::fence_mode::holder_key);
  CHECK(etcd_store::mode_of_uri("etcd://127.0.0.1:2379/p?fence=floor").value() == etcd::fence_mode::floor_only);
  auto unknown = etcd_store::mode_of_uri("etcd://127.0.0.1:2379/p?token=s3cr3t-Pa55");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message().find("s3cr3t-Pa55") == std::string::npos);
}
