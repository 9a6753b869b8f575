// planfence/store/rfc2136_store.hpp: a record store on an authoritative DNS server, written
// with RFC 2136 UPDATE messages signed with TSIG (RFC 8945), compare-and-swap by prerequisite.
//
// What it is. The store for control planes that drive a real DNS server (Knot, BIND, PowerDNS):
// endpoints are names in one zone of the primary; their records are the server's A, AAAA, CNAME
// and TXT RRsets; each endpoint's stamp is the TXT RRset `_planfence.<endpoint>` holding one
// string "gen=G fence=F"; the store's fence floor is the TXT RRset `_planfence-floor.<zone>`
// holding "floor=F" (absent: no floor). A commit is ONE UPDATE message whose prerequisites are
// the exact stamp read (a value-dependent "RRset exists" on the TXT rdata, or "RRset does not
// exist" for a first commit) and the exact floor read, and whose updates delete the endpoint's
// RRsets, add its new records and replace its stamp. The server checks the prerequisites and
// applies the updates as one atomic step (RFC 2136 section 3.2 and 3.4): that is the
// compare-and-swap. docs/rfc2136.md gives the exact messages.
//
//   auto store = planfence::rfc2136_store::open_uri(
//       "rfc2136://192.0.2.53:53/example.test.?tsig-file=/etc/planfence/key",
//       {"www.example.test.", "db.example.test."}).value();
//   auto www = store.resolve("www.example.test.").value();
//   auto seen = store.read_stamp(www).value();                     // one signed TXT query
//   auto applied = store.commit(www, seen, {gen, fence}, records); // one signed UPDATE
//
// Outcomes of commit (docs/concepts.md): success; errc::stale, errc::fenced, errc::conflict
// (decided from the expected stamp and, when the server's prerequisite fails, from the stamp and
// floor read again right after); errc::store_unavailable (no answer in time, SERVFAIL, a
// malformed answer: nothing was written, or the commit landed and a retry sees it as stale);
// errc::authentication_failed (the server refused our TSIG key, REFUSED or NOTAUTH, or its
// answer was unsigned or badly signed); errc::capacity_exceeded (the message would exceed 64 KiB,
// or records DNS cannot hold: several CNAMEs); errc::invalid_rdata.
//
// raise_fence(token) replaces the floor RRset by "floor=token" with a prerequisite on the
// floor read, so it never lowers it. Every commit pins the floor it believes in, so a commit
// whose UPDATE reaches the server after the raise fails its prerequisite and is then refused as
// fenced: no commit with a smaller token lands after raise_fence returns (S2), including one
// already in flight. Endpoint stamps are never touched by raise_fence.
//
// Batches: commit_batch sends several endpoints in one UPDATE, each with its own prerequisite,
// plus the floor once. The server applies all of it or nothing: when any prerequisite fails,
// no endpoint is written, and each item says its own outcome (stale, fenced, conflict or none).
//
// Costs (loopback, Knot 3.2: bench/rfc2136_bench.cpp, docs/rfc2136.md): read_stamp is one UDP
// round trip; commit one TCP round trip on a pooled connection, plus one read of the stamp and
// floor when the prerequisite fails. Each message costs two HMAC-SHA256 (a few microseconds).
// Blocking: every operation does network I/O, bounded by the per-attempt timeout times the
// attempts. Allocates. Not for resolvers: they ask the DNS server.
//
// Thread safety: every member but the move operations may be called concurrently (connections
// are pooled under a mutex; no other shared mutable state but atomics).
//
// Limits: one zone per store; endpoints are the names given at open (endpoint_names() lists
// them; the store does not discover others); record weights are not representable in DNS and are
// not stored (served() returns unweighted records); at most one CNAME per endpoint; no EDNS, so
// UDP answers are at most 512 octets and larger ones are fetched again over TCP; no IPv6 scope
// ids; only hmac-sha256.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../detail/dns_wire.hpp"
#include "../detail/socket.hpp"
#include "../detail/tsig.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"

namespace planfence {
inline namespace v1 {

/// How to reach the primary and what to sign with.
struct rfc2136_options {
  std::string host;                 ///< IPv4 or IPv6 literal (a name is resolved once, at open)
  std::uint16_t port = 53;
  std::string zone;                 ///< the zone the endpoints are in, e.g. "example.test."
  std::optional<detail::tsig_key> key{};  ///< sign every request and verify every answer
  std::chrono::milliseconds timeout{2000};  ///< per attempt
  unsigned attempts = 3;            ///< per request (UDP retries, TCP reconnects)
  std::uint32_t ttl_stamp = 0;      ///< TTL of the stamp and floor TXT records (0: not cached)
  bool udp_queries = true;          ///< queries over UDP first (TCP on truncation); else TCP only
  std::uint16_t tsig_fudge_seconds = detail::tsig_fudge_default_seconds;
  /// BROKEN ON PURPOSE, for tests only: send UPDATEs without prerequisites, as the popular
  /// RFC 2136 tools do (the 2025 time-of-check to time-of-use hole). The race test sets it to
  /// show that it would catch the store losing its compare-and-swap. Never set it otherwise.
  bool broken_omit_prerequisites = false;
};

/// The RFC 2136 store. See the header comment.
class rfc2136_store {
 public:
  static constexpr std::size_t endpoints_max = std::size_t{1} << 20;
  static constexpr unsigned attempts_max = 10;
  static constexpr unsigned floor_retries_max = 4;  // commits retried when only the floor moved
  static constexpr std::size_t connections_idle_max = 8;
  static constexpr std::string_view stamp_label = "_planfence.";
  static constexpr std::string_view floor_label = "_planfence-floor.";

  /// One endpoint of a batch. `refused` is set by commit_batch when the batch fails: the reason
  /// this endpoint would be refused (stale, fenced or conflict), or empty when its own
  /// prerequisite held and another endpoint's failed.
  struct batch_item {
    endpoint_handle endpoint;
    stamp expected{};
    stamp desired{};
    const record_set* records = nullptr;
    std::optional<errc> refused{};
    std::optional<stamp> found{};  ///< the stamp read back after the server refused the batch
  };

  /// A store over `endpoints` (names in `options.zone`). Reads the fence floor once. Errors:
  /// errc::invalid_name (a name outside the zone, too long for its stamp name, or reserved),
  /// errc::invalid_plan (a name given twice), errc::io_error (host), and whatever reading the
  /// floor reports (errc::store_unavailable, errc::authentication_failed).
  [[nodiscard]] static result<rfc2136_store> open(rfc2136_options options, const std::vector<std::string>& endpoints) {
    if (options.attempts == 0 || options.attempts > attempts_max) {
      return fail(errc::capacity_exceeded, "attempts must be 1 to 10");
    }
    if (endpoints.size() > endpoints_max) return fail(errc::capacity_exceeded, "more than 2^20 endpoints");
    auto zone = canonical_name(options.zone);
    if (!zone) return fail(errc::invalid_name, "zone '" + options.zone + "': " + zone.error().detail);
    options.zone = *zone;
    auto address = detail::resolve_address(options.host, options.port);
    if (!address) return unexpected_error(address.error());
    auto shared = std::make_unique<state>();
    shared->options = std::move(options);
    shared->server = std::move(*address);
    shared->floor_name = std::string(floor_label) + shared->options.zone;
    if (shared->floor_name.size() > name_text_length_max + 1) return fail(errc::invalid_name, "zone name too long for the floor record");
    shared->names.reserve(endpoints.size());
    for (const std::string& raw : endpoints) {
      auto name = canonical_name(raw);
      if (!name) return fail(errc::invalid_name, "endpoint '" + raw + "': " + name.error().detail);
      if (!in_zone(*name, shared->options.zone)) {
        return fail(errc::invalid_name, "endpoint " + *name + " is not in zone " + shared->options.zone);
      }
      if (name->starts_with("_planfence")) return fail(errc::invalid_name, "endpoint " + *name + ": _planfence names are reserved");
      if (name->size() + stamp_label.size() > name_text_length_max + 1) {
        return fail(errc::invalid_name, "endpoint " + *name + " is too long for its stamp name _planfence." + *name);
      }
      const auto index = static_cast<std::uint32_t>(shared->names.size());
      if (!shared->index.emplace(*name, index).second) return fail(errc::invalid_plan, "endpoint " + *name + " given twice");
      shared->names.push_back(*name);
    }
    rfc2136_store out(std::move(shared));
    if (auto floor = out.read_floor(); !floor) return unexpected_error(floor.error());
    return out;
  }

  /// A store from `rfc2136://HOST[:PORT]/ZONE[?PARAMETERS]` (docs/rfc2136.md), parameters:
  ///   tsig=hmac-sha256:KEYNAME:BASE64SECRET   the key inline (visible in process lists)
  ///   tsig-file=PATH                          a file holding ALGORITHM:KEYNAME:BASE64SECRET
  ///   tsig-env=VARIABLE                       an environment variable holding the same
  ///   timeout-ms=N, attempts=N, tcp=1         per-attempt timeout, attempts, TCP-only queries
  /// Errors: errc::parse_error with what is wrong, then whatever open() reports.
  [[nodiscard]] static result<rfc2136_store> open_uri(std::string_view uri, const std::vector<std::string>& endpoints = {}) {
    auto options = parse_uri(uri);
    if (!options) return unexpected_error(options.error());
    return open(std::move(*options), endpoints);
  }

  /// The options a URI stands for (open_uri without connecting).
  [[nodiscard]] static result<rfc2136_options> parse_uri(std::string_view uri) {
    auto bad = [&](std::string why) {
      return fail(errc::parse_error, "rfc2136 URI '" + redact(uri) + "': " + std::move(why));
    };
    constexpr std::string_view scheme = "rfc2136://";
    if (!uri.starts_with(scheme)) return bad("must start with rfc2136://");
    std::string_view rest = uri.substr(scheme.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return bad("missing /ZONE after the host");
    std::string_view authority = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
    std::string_view query;
    if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    rfc2136_options options;
    if (authority.starts_with('[')) {
      const std::size_t close = authority.find(']');
      if (close == std::string_view::npos) return bad("unclosed [ in the host");
      options.host = std::string(authority.substr(1, close - 1));
      authority = authority.substr(close + 1);
      if (!authority.empty() && authority.front() != ':') return bad("expected :PORT after ]");
      if (!authority.empty()) authority.remove_prefix(1);
      else authority = {};
      if (!authority.empty() && !parse_port(authority, options.port)) return bad("bad port");
    } else {
      const std::size_t colon = authority.rfind(':');
      options.host = std::string(authority.substr(0, colon));
      if (colon != std::string_view::npos && !parse_port(authority.substr(colon + 1), options.port)) {
        return bad("bad port (1 to 65535)");
      }
    }
    if (options.host.empty()) return bad("missing host");
    auto zone = percent_decode(rest);
    if (!zone || zone->empty()) return bad("missing or badly escaped zone");
    options.zone = *zone;
    int key_sources = 0;
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      const std::size_t eq = pair.find('=');
      if (eq == std::string_view::npos) return bad("parameter without '=': " + std::string(pair));
      const std::string_view name = pair.substr(0, eq);
      auto value = percent_decode(pair.substr(eq + 1));
      if (!value) return bad("badly escaped value of " + std::string(name));
      std::string spec;
      if (name == "tsig") {
        spec = *value;
      } else if (name == "tsig-file") {
        std::ifstream file(*value);
        if (!file) return bad("cannot read tsig-file " + *value);
        std::getline(file, spec);
      } else if (name == "tsig-env") {
        const char* text = std::getenv(value->c_str());
        if (text == nullptr) return bad("environment variable " + *value + " (tsig-env) is not set");
        spec = text;
      } else if (name == "timeout-ms") {
        unsigned ms = 0;
        if (!parse_unsigned(*value, ms) || ms == 0 || ms > 600'000) return bad("timeout-ms must be 1 to 600000");
        options.timeout = std::chrono::milliseconds(ms);
        continue;
      } else if (name == "attempts") {
        if (!parse_unsigned(*value, options.attempts) || options.attempts == 0 || options.attempts > attempts_max) {
          return bad("attempts must be 1 to 10");
        }
        continue;
      } else if (name == "tcp") {
        options.udp_queries = *value != "1" && *value != "true";
        continue;
      } else {
        return bad("unknown parameter " + std::string(name));
      }
      if (++key_sources > 1) return bad("give the key once (tsig, tsig-file or tsig-env)");
      while (!spec.empty() && (spec.back() == '\n' || spec.back() == '\r' || spec.back() == ' ')) spec.pop_back();
      auto key = detail::parse_tsig_key(spec);
      if (!key) return bad(std::string(name) + ": " + key.error().detail);
      options.key = std::move(*key);
    }
    return options;
  }

  rfc2136_store(rfc2136_store&&) noexcept = default;
  rfc2136_store& operator=(rfc2136_store&&) noexcept = default;

  /// The handle of a canonical endpoint name. O(1) expected, allocates nothing but the hash.
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const {
    const auto it = state_->index.find(std::string(name));
    if (it == state_->index.end()) return fail(errc::unknown_endpoint);
    return endpoint_handle{it->second};
  }

  /// The endpoint's stamp, queried from the primary now (one signed TXT query). Errors:
  /// errc::store_unavailable, errc::authentication_failed.
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    auto answer = query(stamp_name(h), detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    return parse_stamp(*answer, stamp_name(h));
  }

  /// One UPDATE: if the endpoint's stamp is still `expected` (and the floor is what this store
  /// last read), serve `records` and carry `desired`. See the header comment for outcomes.
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records) {
    batch_item item{h, expected, desired, &records, std::nullopt};
    auto done = commit_batch(std::span<batch_item>(&item, 1));
    if (!done) return unexpected_error(done.error());  // the item's own reason when it has one
    return stamp{desired.gen, desired.fence, 0};
  }

  /// Several endpoints in ONE UPDATE, all or nothing (header comment). On failure, items that
  /// would be refused have `refused` set, and the result's error is the first item's reason
  /// (naming the endpoint) or the transport's. An endpoint may appear once per batch.
  [[nodiscard]] result<void> commit_batch(std::span<batch_item> items) {
    if (items.empty()) return ok();
    for (batch_item& item : items) {
      PLANFENCE_ASSERT(item.endpoint.index() < state_->names.size());
      PLANFENCE_ASSERT(item.records != nullptr);
      PLANFENCE_ASSERT(item.desired.gen != generation_none);
      item.refused.reset();
      item.found.reset();
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (std::size_t j = i + 1; j < items.size(); ++j) {
        if (items[i].endpoint == items[j].endpoint) return fail(errc::invalid_plan, "endpoint twice in one batch");
      }
    }
    // Refusals the expected stamps and the known floor already decide: nothing is sent.
    const std::optional<std::uint64_t> floor_known = cached_floor();
    bool refused_locally = false;
    for (batch_item& item : items) {
      item.refused = decide(item.expected, item.desired, floor_known.value_or(0), std::nullopt);
      refused_locally = refused_locally || item.refused.has_value();
    }
    if (refused_locally) return first_refusal(items);

    bool sent_before = false;  // a retry may find its own earlier attempt applied
    std::string server_said;
    std::uint64_t last_floor = 0;
    for (unsigned round = 0;; ++round) {
      auto request = build_update(items, cached_floor());
      if (!request) return unexpected_error(request.error());
      // UDP when it fits (as knsupdate does; Knot answers it sooner), TCP otherwise.
      auto answer = exchange(std::move(*request), /*use_tcp=*/!state_->options.udp_queries, &sent_before);
      if (!answer) return unexpected_error(answer.error());
      const std::uint16_t rcode = answer->rcode();
      if (rcode == detail::dns_rcode::noerror) return ok();
      if (rcode != detail::dns_rcode::nxrrset && rcode != detail::dns_rcode::yxrrset) return update_failure(rcode);
      // A prerequisite failed: read the floor and the stamps again and decide from them.
      auto floor = read_floor();
      if (!floor) return unexpected_error(floor.error());
      bool all_ours = true, floor_only = true;
      for (batch_item& item : items) {
        auto now = read_stamp(item.endpoint);
        if (!now) return unexpected_error(now.error());
        all_ours = all_ours && now->gen == item.desired.gen && now->fence == item.desired.fence;
        item.refused = decide(item.expected, item.desired, floor->value_or(0), *now);
        item.found = *now;
        floor_only = floor_only && !item.refused.has_value();
      }
      // Our own earlier attempt landed (its answer was lost): the same generation under the
      // same fence is the same plan (S5), so the records are ours too.
      if (sent_before && all_ours) {
        for (batch_item& item : items) item.refused.reset();
        return ok();
      }
      last_floor = floor->value_or(0);
      server_said = std::string(detail::rcode_name(rcode));
      if (!floor_only) return first_refusal(items, server_said, last_floor);
      if (round + 1 >= floor_retries_max) {
        for (batch_item& item : items) item.refused = errc::conflict;
        return first_refusal(items, server_said, last_floor);
      }
      // Only the floor moved, and not above our tokens: send again against the new one.
    }
  }

  /// After this returns, every commit with a smaller token is refused (header comment). One
  /// read of the floor and, when it must rise, one UPDATE (retried if the floor moved
  /// meanwhile). Errors: errc::store_unavailable, errc::authentication_failed, errc::conflict
  /// (the floor kept moving: try again).
  [[nodiscard]] result<void> raise_fence(fence_token token) {
    for (unsigned round = 0; round < floor_retries_max; ++round) {
      auto floor = read_floor();
      if (!floor) return unexpected_error(floor.error());
      if (floor->has_value() && **floor >= token.value()) return ok();
      detail::dns_message_builder b(next_id(), detail::dns_opcode::update);
      b.question(state_->options.zone, detail::dns_type::soa);
      pin_floor(b, *floor);
      b.update_delete_rrset(state_->floor_name, detail::dns_type::txt);
      b.update_add(state_->floor_name, detail::dns_type::txt, state_->options.ttl_stamp,
                   detail::txt_rdata("floor=" + std::to_string(token.value())));
      auto answer = exchange(std::move(b).finish(), /*use_tcp=*/true, nullptr);
      if (!answer) return unexpected_error(answer.error());
      if (answer->rcode() == detail::dns_rcode::noerror) {
        store_floor(token.value());
        return ok();
      }
      if (answer->rcode() != detail::dns_rcode::nxrrset && answer->rcode() != detail::dns_rcode::yxrrset) {
        return update_failure(answer->rcode());
      }
    }
    return fail(errc::conflict, "the fence floor kept moving");
  }

  /// The floor as the server has it now (empty when never raised). Errors as read_stamp.
  [[nodiscard]] result<std::optional<std::uint64_t>> read_floor() const {
    auto answer = query(state_->floor_name, detail::dns_type::txt);
    if (!answer) return unexpected_error(answer.error());
    std::optional<std::string> text;
    for (const detail::dns_record& rr : answer->answers) {
      if (rr.name != state_->floor_name || rr.type != detail::dns_type::txt) continue;
      if (text) return fail(errc::store_unavailable, "malformed fence floor: several TXT records at " + state_->floor_name);
      auto strings = detail::decode_txt_strings(rr.rdata);
      if (!strings || strings->size() != 1) return fail(errc::store_unavailable, "malformed fence floor at " + state_->floor_name);
      text = (*strings)[0];
    }
    if (!text) {
      store_floor(std::nullopt);
      return std::optional<std::uint64_t>{};
    }
    std::uint64_t value = 0;
    if (!text->starts_with("floor=") || !parse_u64(std::string_view(*text).substr(6), value)) {
      return fail(errc::store_unavailable, "malformed fence floor \"" + *text + "\" at " + state_->floor_name);
    }
    store_floor(value);
    return std::optional<std::uint64_t>{value};
  }

  /// Distinct generations the endpoints serve, ascending: one stamp query per endpoint, read at
  /// the call. Errors: errc::store_unavailable (naming the endpoint) when any query fails: a live
  /// set with a guess in it could name too few plans, and the registry then collects nothing
  /// (collection_report::live_unavailable, S3). Allocates.
  [[nodiscard]] result<std::vector<generation>> live_generations() const {
    std::vector<generation> out;
    for (std::uint32_t i = 0; i < state_->names.size(); ++i) {
      auto s = read_stamp(endpoint_handle{i});
      if (!s) {
        return fail(errc::store_unavailable, "live set: " + state_->names[i] + ": " + s.error().message());
      }
      if (s->gen != generation_none) out.push_back(s->gen);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  /// What the server answers for the endpoint now: its A, AAAA, CNAME and TXT records (four
  /// signed queries), sorted, without weights. Empty for an endpoint never written.
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    const std::string& name = state_->names[h.index()];
    std::vector<record> out;
    for (std::uint16_t type : {detail::dns_type::a, detail::dns_type::aaaa, detail::dns_type::cname, detail::dns_type::txt}) {
      auto answer = query(name, type);
      if (!answer) return unexpected_error(answer.error());
      for (const detail::dns_record& rr : answer->answers) {
        if (rr.name != name || rr.type != type || rr.klass != detail::dns_class::in) continue;
        auto r = detail::decode_record(rr);
        if (!r) return fail(errc::store_unavailable, "server answered a record planfence cannot read: " + r.error().detail);
        out.push_back(std::move(*r));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  /// The endpoints given at open, in the order of their handles.
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const { return state_->names; }

  [[nodiscard]] std::size_t size() const noexcept { return state_->names.size(); }
  [[nodiscard]] std::string_view name(endpoint_handle h) const noexcept {
    PLANFENCE_ASSERT(h.index() < state_->names.size());
    return state_->names[h.index()];
  }
  [[nodiscard]] const rfc2136_options& options() const noexcept { return state_->options; }

  /// The UPDATE commit_batch would send (unsigned), for docs, tests and dry runs.
  [[nodiscard]] result<std::vector<std::uint8_t>> preview_update(std::span<const batch_item> items) const {
    return build_update(items, cached_floor());
  }

 private:
  struct state {
    rfc2136_options options;
    detail::socket_address server;
    std::string floor_name;
    std::vector<std::string> names;
    std::unordered_map<std::string, std::uint32_t> index;
    std::atomic<std::uint64_t> floor_cache{0};           // 0: absent; else floor + 1
    std::mutex pool_mutex;
    std::vector<detail::unique_fd> idle;                  // pooled TCP connections
  };

  explicit rfc2136_store(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}

  // ---- names, stamps, decisions --------------------------------------------------------------

  [[nodiscard]] static bool in_zone(std::string_view name, std::string_view zone) {
    if (zone == ".") return true;
    return name.size() > zone.size() && name.ends_with(zone) && name[name.size() - zone.size() - 1] == '.';
  }
  [[nodiscard]] std::string stamp_name(endpoint_handle h) const {
    return std::string(stamp_label) + state_->names[h.index()];
  }
  [[nodiscard]] static std::string stamp_text(const stamp& s) {
    return "gen=" + std::to_string(s.gen.value()) + " fence=" + std::to_string(s.fence.value());
  }
  [[nodiscard]] static bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
  }
  template <class Unsigned>
  [[nodiscard]] static bool parse_unsigned(std::string_view text, Unsigned& out) {
    std::uint64_t v = 0;
    if (!parse_u64(text, v) || v > static_cast<std::uint64_t>(static_cast<Unsigned>(~Unsigned{0}))) return false;
    out = static_cast<Unsigned>(v);
    return true;
  }
  [[nodiscard]] static bool parse_port(std::string_view text, std::uint16_t& port) {
    unsigned v = 0;
    if (!parse_unsigned(text, v) || v == 0 || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
  }
  [[nodiscard]] static result<std::string> percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '%') {
        out += text[i];
        continue;
      }
      if (i + 2 >= text.size()) return fail(errc::parse_error, "cut % escape");
      unsigned v = 0;
      const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
      if (ec != std::errc{} || end != text.data() + i + 3) return fail(errc::parse_error, "bad % escape");
      out += static_cast<char>(v);
      i += 2;
    }
    return out;
  }
  /// The URI with any inline secret replaced, for error messages.
  [[nodiscard]] static std::string redact(std::string_view uri) {
    std::string out(uri);
    const std::size_t at = out.find("tsig=");
    if (at == std::string::npos) return out;
    const std::size_t last_colon = out.find(':', out.find(':', at) + 1);
    const std::size_t end = out.find('&', at);
    if (last_colon == std::string::npos || (end != std::string::npos && last_colon > end)) return out;
    out.replace(last_colon + 1, (end == std::string::npos ? out.size() : end) - last_colon - 1, "(secret)");
    return out;
  }

  [[nodiscard]] result<stamp> parse_stamp(const detail::dns_message& answer, const std::string& owner) const {
    std::optional<stamp> found;
    for (const detail::dns_record& rr : answer.answers) {
      if (rr.name != owner || rr.type != detail::dns_type::txt) continue;
      if (found) return fail(errc::store_unavailable, "malformed stamp: several TXT records at " + owner);
      auto strings = detail::decode_txt_strings(rr.rdata);
      if (!strings || strings->size() != 1) return fail(errc::store_unavailable, "malformed stamp at " + owner);
      const std::string& text = (*strings)[0];
      const std::size_t space = text.find(' ');
      std::uint64_t gen = 0, fence = 0;
      if (!text.starts_with("gen=") || space == std::string::npos ||
          !parse_u64(std::string_view(text).substr(4, space - 4), gen) ||
          !std::string_view(text).substr(space + 1).starts_with("fence=") ||
          !parse_u64(std::string_view(text).substr(space + 7), fence) || gen == 0) {
        return fail(errc::store_unavailable, "malformed stamp \"" + text + "\" at " + owner);
      }
      found = stamp{generation{gen}, fence_token{fence}, 0};
    }
    return found.value_or(stamp{});
  }

  /// The concept's decision for one endpoint, from its stamp `now` when known (else from
  /// `expected`) and the floor. Empty: no refusal (the commit may go ahead).
  [[nodiscard]] static std::optional<errc> decide(const stamp& expected, const stamp& desired, std::uint64_t floor,
                                                  std::optional<stamp> now) {
    const stamp& current = now ? *now : expected;
    if (current.gen >= desired.gen) return errc::stale;
    if (current.fence > desired.fence || floor > desired.fence.value()) return errc::fenced;
    if (now && (now->gen != expected.gen || now->fence != expected.fence)) return errc::conflict;
    return std::nullopt;
  }

  /// The first refused item's reason, naming the endpoint and, when the server refused the
  /// prerequisite, what it answered and what the stamp and floor were read back as.
  [[nodiscard]] result<void> first_refusal(std::span<const batch_item> items, const std::string& server_said = {},
                                           std::uint64_t floor = 0) const {
    for (const batch_item& item : items) {
      if (!item.refused) continue;
      std::string why = state_->names[item.endpoint.index()];
      if (server_said.empty()) {
        why += ": decided from the expected stamp gen " + std::to_string(item.expected.gen.value()) + " fence " +
               std::to_string(item.expected.fence.value()) + ", nothing sent";
      } else {
        why += ": the server refused the prerequisite (" + server_said + ")";
        if (item.found) {
          why += "; it serves gen " + std::to_string(item.found->gen.value()) + " fence " +
                 std::to_string(item.found->fence.value());
        }
        why += ", floor " + std::to_string(floor);
      }
      return fail(*item.refused, std::move(why));
    }
    PLANFENCE_ASSERT(false);
    return fail(errc::conflict);
  }

  [[nodiscard]] result<void> update_failure(std::uint16_t rcode) const {
    const std::string code(detail::rcode_name(rcode));
    const std::string key = state_->options.key ? "key " + state_->options.key->name : "no TSIG key";
    switch (rcode) {
      case detail::dns_rcode::refused:
      case detail::dns_rcode::notauth:
        return fail(errc::authentication_failed, "server refused the update (" + code + "): is " + key +
                                                     " allowed to update zone " + state_->options.zone + "?");
      case detail::dns_rcode::notzone:
        return fail(errc::store_unavailable, "server answered NOTZONE: it is not primary for " + state_->options.zone);
      default:
        return fail(errc::store_unavailable, "server answered " + code + " to the update");
    }
  }

  [[nodiscard]] std::optional<std::uint64_t> cached_floor() const noexcept {
    const std::uint64_t v = state_->floor_cache.load(std::memory_order_acquire);
    return v == 0 ? std::nullopt : std::optional<std::uint64_t>(v - 1);
  }
  void store_floor(std::optional<std::uint64_t> floor) const noexcept {
    state_->floor_cache.store(floor ? *floor + 1 : 0, std::memory_order_release);
  }

  void pin_floor(detail::dns_message_builder& b, std::optional<std::uint64_t> floor) const {
    if (floor) {
      b.prerequisite_rrset_equals(state_->floor_name, detail::dns_type::txt,
                                  detail::txt_rdata("floor=" + std::to_string(*floor)));
    } else {
      b.prerequisite_rrset_absent(state_->floor_name, detail::dns_type::txt);
    }
  }

  [[nodiscard]] result<std::vector<std::uint8_t>> build_update(std::span<const batch_item> items,
                                                               std::optional<std::uint64_t> floor) const {
    detail::dns_message_builder b(next_id(), detail::dns_opcode::update);
    b.question(state_->options.zone, detail::dns_type::soa);
    if (!state_->options.broken_omit_prerequisites) pin_floor(b, floor);
    for (const batch_item& item : items) {
      if (state_->options.broken_omit_prerequisites) break;
      if (item.expected.gen == generation_none) {
        b.prerequisite_rrset_absent(stamp_name(item.endpoint), detail::dns_type::txt);
      } else {
        b.prerequisite_rrset_equals(stamp_name(item.endpoint), detail::dns_type::txt, detail::txt_rdata(stamp_text(item.expected)));
      }
    }
    for (const batch_item& item : items) {
      const std::string& name = state_->names[item.endpoint.index()];
      std::size_t cnames = 0;
      for (const record& r : item.records->records()) cnames += r.type == record_type::cname ? 1 : 0;
      if (cnames > 1) return fail(errc::capacity_exceeded, name + ": DNS cannot hold several CNAMEs (weighted CNAMEs)");
      for (std::uint16_t type : {detail::dns_type::a, detail::dns_type::aaaa, detail::dns_type::cname, detail::dns_type::txt}) {
        b.update_delete_rrset(name, type);
      }
      for (const record& r : item.records->records()) {
        auto rdata = detail::encode_rdata(r);
        if (!rdata) return unexpected_error(rdata.error());
        b.update_add(name, wire_type(r.type), r.ttl, *rdata);
      }
      b.update_delete_rrset(stamp_name(item.endpoint), detail::dns_type::txt);
      b.update_add(stamp_name(item.endpoint), detail::dns_type::txt, state_->options.ttl_stamp,
                   detail::txt_rdata(stamp_text(item.desired)));
      // Leave room for TSIG (about 100 octets) under the 64 KiB bound.
      if (b.size() > detail::dns_message_size_max - 256) {
        return fail(errc::capacity_exceeded, "the UPDATE would exceed 64 KiB: split the batch");
      }
    }
    return std::move(b).finish();
  }

  // ---- transport -------------------------------------------------------------------------------

  [[nodiscard]] static std::uint16_t next_id() {
    thread_local std::mt19937 generator{std::random_device{}()};
    return static_cast<std::uint16_t>(generator() & 0xffff);
  }

  [[nodiscard]] result<detail::dns_message> query(const std::string& name, std::uint16_t type) const {
    auto answer = exchange(detail::make_query(next_id(), name, type), !state_->options.udp_queries, nullptr);
    if (!answer) return answer;
    if (answer->questions.size() != 1 || answer->questions[0].name != name || answer->questions[0].type != type) {
      return fail(errc::store_unavailable, "answer does not echo the question for " + name);
    }
    const std::uint16_t rcode = answer->rcode();
    if (rcode == detail::dns_rcode::refused || rcode == detail::dns_rcode::notauth) {
      return fail(errc::authentication_failed, "server refused the query for " + name + " (" +
                                                   std::string(detail::rcode_name(rcode)) + ")");
    }
    if (rcode != detail::dns_rcode::noerror && rcode != detail::dns_rcode::nxdomain) {
      return fail(errc::store_unavailable, "server answered " + std::string(detail::rcode_name(rcode)) + " for " + name);
    }
    if (!answer->authoritative()) {
      return fail(errc::store_unavailable, "answer for " + name + " is not authoritative: is this the primary for " +
                                               state_->options.zone + "?");
    }
    return answer;
  }

  /// Signs `request` (when a key is configured), sends it (UDP first unless `use_tcp`, TCP on
  /// truncation), verifies and decodes the answer; retries up to `attempts` on transport
  /// failures. `sent` is set once a request may have reached the server.
  [[nodiscard]] result<detail::dns_message> exchange(std::vector<std::uint8_t> request, bool use_tcp, bool* sent) const {
    const rfc2136_options& o = state_->options;
    error last{errc::store_unavailable, 0, 0, "no attempt made"};
    for (unsigned attempt = 0; attempt < o.attempts; ++attempt) {
      detail::hmac_sha256_mac request_mac{};
      std::vector<std::uint8_t> wire =
          o.key ? detail::tsig_sign(request, *o.key, detail::unix_seconds_now(), request_mac, o.tsig_fudge_seconds) : request;
      const detail::socket_deadline deadline = detail::deadline_after(o.timeout);
      result<std::vector<std::uint8_t>> raw = fail(errc::io_error);
      bool tcp = use_tcp || wire.size() > detail::dns_udp_payload_max;
      if (!tcp) {
        if (sent != nullptr) *sent = true;
        raw = detail::exchange_udp(state_->server, wire, deadline);
        if (raw) {
          auto head = detail::decode_message(*raw);
          if (head && head->truncated()) tcp = true;  // RFC 1035 section 4.2.1: ask again over TCP
        }
      }
      if (tcp) raw = exchange_pooled(wire, deadline, sent);
      if (!raw) {
        last = error{errc::store_unavailable, 0, 0, o.host + ":" + std::to_string(o.port) + ": " + raw.error().message()};
        continue;
      }
      auto decoded = detail::decode_message(*raw);
      if (!decoded) return fail(errc::store_unavailable, "malformed answer: " + decoded.error().detail);
      if (!decoded->is_response()) return fail(errc::store_unavailable, "answer is not a response");
      if (o.key) {
        auto verified = detail::tsig_verify_response(*raw, *decoded, *o.key, request_mac, detail::unix_seconds_now(),
                                                     o.tsig_fudge_seconds);
        if (!verified) return unexpected_error(verified.error());
        decoded->additional.pop_back();  // the TSIG record, verified
      }
      return decoded;
    }
    return unexpected_error(std::move(last));
  }

  [[nodiscard]] result<std::vector<std::uint8_t>> exchange_pooled(std::span<const std::uint8_t> wire,
                                                                  detail::socket_deadline deadline, bool* sent) const {
    detail::unique_fd fd;
    {
      std::lock_guard lock(state_->pool_mutex);
      if (!state_->idle.empty()) {
        fd = std::move(state_->idle.back());
        state_->idle.pop_back();
      }
    }
    bool reused = fd.valid();
    for (;;) {
      if (!fd.valid()) {
        auto connected = detail::tcp_connect(state_->server, deadline);
        if (!connected) return unexpected_error(connected.error());
        fd = std::move(*connected);
      }
      if (sent != nullptr) *sent = true;
      auto raw = detail::exchange_tcp(fd.get(), wire, deadline);
      if (!raw) {
        fd.reset();
        // A pooled connection the server closed while idle fails at once: one fresh try.
        if (reused) {
          reused = false;
          continue;
        }
        return raw;
      }
      std::lock_guard lock(state_->pool_mutex);
      if (state_->idle.size() < connections_idle_max) state_->idle.push_back(std::move(fd));
      return raw;
    }
  }

  std::unique_ptr<state> state_;
};

static_assert(record_store<rfc2136_store>);
static_assert(inspectable_store<rfc2136_store>);

}  // namespace v1
}  // namespace planfence
