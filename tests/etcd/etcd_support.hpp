// tests/etcd/etcd_support.hpp: what the etcd test files share: one etcd member per test process
// (started on first use, stopped at exit) and a fresh key prefix per use, so test cases never see
// each other's keys.
#pragma once

#include <unistd.h>

#include <atomic>
#include <string>

#include "../support/etcd_server.hpp"
#include "../support/fixtures.hpp"

namespace planfence_test {

/// The test process's etcd member, started on first use.
inline etcd_member& shared_etcd() {
  static etcd_member member;
  return member;
}

/// "/t/<pid>-<n>": a prefix no other test case uses.
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  return "/t/" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace planfence_test
