// planfence/etcd/sequencer.hpp: generations issued by etcd, unique across planners and hosts.
//
// What it is: the counter P/sequence (the last generation issued, in decimal) advanced by a
// transaction: read it at mod revision m, then "if mod_revision(P/sequence) == m, put n + 1". Two
// planners that read the same m cannot both succeed, so no generation is ever issued twice, on
// any host, across restarts (the counter is the persisted high-water mark). A planner that loses
// the race reads again (bounded).
//
//     auto seq = planfence::etcd::etcd_sequencer::open_uri("etcd://127.0.0.1:2379/planfence/prod").value();
//     planfence::generation g = seq.next().value();
//
// When not to use it: in one process (planfence::sequencer is a fetch-add).
//
// Cost: a range and a transaction per generation (two round trips, one raft commit); under
// contention one more pair per lost race. Blocking; allocates. Thread safety: every member may
// be called concurrently.
//
// Limits: generations up to generation_max (2^40 - 1), then errc::capacity_exceeded; at most
// `attempts_max` lost races per call, then errc::conflict.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "../generation.hpp"
#include "../ids.hpp"
#include "../result.hpp"
#include "client.hpp"
#include "layout.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

class etcd_sequencer {
 public:
  static constexpr int attempts_max = 64;

  [[nodiscard]] static result<etcd_sequencer> make(client_config config, std::string prefix) {
    if (config.key_prefix.empty()) config.key_prefix = prefix;  // named by a refused permission
    return etcd_sequencer(std::make_unique<client>(std::move(config)), layout{std::move(prefix)});
  }
  [[nodiscard]] static result<etcd_sequencer> open_uri(std::string_view uri) {
    auto where = parse_uri(uri);
    if (!where) return unexpected_error(where.error());
    return make(std::move(where->config), std::move(where->prefix));
  }

  /// The next generation. Errors: errc::conflict (lost attempts_max races in a row),
  /// errc::capacity_exceeded, errc::store_unavailable (then the counter may or may not have
  /// moved: a generation is never issued twice either way, but one may be skipped).
  [[nodiscard]] result<generation> next() {
    for (int attempt = 0; attempt < attempts_max; ++attempt) {
      auto now = read();
      if (!now) return unexpected_error(now.error());
      const auto [last, revision] = *now;
      if (last >= generation_max.value()) return fail(errc::capacity_exceeded, "generation space (2^40 - 1) exhausted");
      auto moved = client_->txn({unchanged(revision)}, {op::put(keys_.sequence(), std::to_string(last + 1))}, {});
      if (!moved) return etcd_failure("advancing " + keys_.sequence(), moved.error());
      if (moved->succeeded) return generation{last + 1};
    }
    return fail(errc::conflict, "lost 64 races for the sequence counter in a row");
  }

  /// The last generation issued (generation_none before the first).
  [[nodiscard]] result<generation> last_issued() {
    auto now = read();
    if (!now) return unexpected_error(now.error());
    return generation{now->first};
  }

  /// Moves the counter up to `seen` if it is behind (a generation published by other means).
  /// Never moves it back.
  [[nodiscard]] result<void> observe(generation seen) {
    PLANFENCE_ASSERT(seen <= generation_max);
    for (int attempt = 0; attempt < attempts_max; ++attempt) {
      auto now = read();
      if (!now) return unexpected_error(now.error());
      if (now->first >= seen.value()) return ok();
      auto moved = client_->txn({unchanged(now->second)}, {op::put(keys_.sequence(), std::to_string(seen.value()))}, {});
      if (!moved) return etcd_failure("advancing " + keys_.sequence(), moved.error());
      if (moved->succeeded) return ok();
    }
    return fail(errc::conflict, "lost 64 races for the sequence counter in a row");
  }

  [[nodiscard]] const layout& keys() const noexcept { return keys_; }

 private:
  etcd_sequencer(std::unique_ptr<client> c, layout keys) : client_(std::move(c)), keys_(std::move(keys)) {}

  /// (last issued, mod revision of the counter; 0 when it does not exist yet).
  result<std::pair<std::uint64_t, std::int64_t>> read() {
    auto got = client_->range(keys_.sequence());
    if (!got) return etcd_failure("reading " + keys_.sequence(), got.error());
    if (got->kvs.empty()) return std::pair<std::uint64_t, std::int64_t>{0, 0};
    auto last = read_decimal(got->kvs[0].value);
    if (!last || *last > generation_max.value()) {
      return fail(errc::store_unavailable, "corrupt value: " + keys_.sequence() + " holds " +
                                               describe_value(got->kvs[0].value) + ", not a generation from 0 to " +
                                               std::to_string(generation_max.value()) +
                                               "; repair it with etcdctl (to the newest generation issued)");
    }
    return std::pair<std::uint64_t, std::int64_t>{*last, got->kvs[0].mod_revision};
  }
  compare unchanged(std::int64_t revision) const {
    return revision == 0 ? compare::create_revision(keys_.sequence(), 0) : compare::mod_revision(keys_.sequence(), revision);
  }

  std::unique_ptr<client> client_;
  layout keys_;
};

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
