// bench/apply_bench.cpp: the apply and read paths against the baselines they must beat, all in
// one binary and one run, so that every claim in docs/benchmarks.md is a ratio of two numbers
// measured side by side on the same machine (docs/benchmarks.md).
//
// The benchmark names below are a contract (docs/benchmarks.md, "Targets"): the report script (bench/report.py) and
// anyone recomputing the ratios from Google Benchmark's JSON look them up by name. Every
// benchmark reports items per second; an item is one operation of the kind its name says (one
// load, one commit, one snapshot read, one plan published and collected). The multi-threaded
// ones run with ->UseRealTime() at 1 and 2 threads, and at more where the machine has them
// (powers of two, then its CPU count: machine_threads below; PLANFENCE_BENCH_MAX_THREADS=N
// sets the top instead), and their items per second is the aggregate over all threads divided
// by wall-clock time.
//
// Rules kept throughout, so that the numbers flatter nobody:
//  - a baseline does the same useful work as the planfence benchmark it is compared with, written
//    the obvious way, and nothing more (no artificial slowness);
//  - every result is consumed (benchmark::DoNotOptimize) and every outcome is checked inside the
//    timed loop: a commit that should succeed and does not, or a refusal that is not the one
//    expected, stops the benchmark with an error instead of being counted;
//  - shared state is built before the timed loop (Google Benchmark's start barrier orders thread
//    0's set-up before every thread's first iteration) and never rebuilt inside it, except where
//    said (BM_RetireReclaim builds plans with the timer paused).
//
// Build: part of the CMake build (bench/CMakeLists.txt); by hand:
//   g++ -std=c++20 -O2 -I include bench/apply_bench.cpp -lbenchmark -lpthread
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_fixtures.hpp"
#include "change_fixture.hpp"
#include "planfence/planfence.hpp"

namespace {

namespace pf = planfence;

// ---------------------------------------------------------------------------------------------
// Shared fixtures.

/// Endpoints in the by-name benchmarks: enough that lookups leave L1 (a regional plan has
/// hundreds of thousands), few enough that both designs' tables fit in L2/L3 on small machines.
constexpr std::size_t by_name_endpoints = 16384;

using planfence_bench::endpoint_name;
using planfence_bench::weighted_records;

/// A registry holding generation 1 for `count` endpoints, and a memory store whose endpoints
/// all serve it under fence token 1.
struct store_world {
  explicit store_world(std::size_t count) : names(make_names(count)), store(pf::memory_store::make(registry, names).value()) {
    pf::plan_builder builder{pf::generation{1}, 1'761'200'000'000};
    for (std::size_t i = 0; i < count; ++i) builder.set(names[i], weighted_records(i, 0)).value();
    pf::pinned_plan pinned = registry.publish(std::move(builder).build().value()).value();
    store.raise_fence(fence).value();
    handles.reserve(count);
    for (const std::string& name : names) {
      const pf::endpoint_handle h = store.resolve(name).value();
      const pf::endpoint_entry* entry = pinned->find(name);
      // Against the stamp read after raise_fence, which raises every endpoint's fence too.
      const pf::stamp seen = store.read_stamp(h).value();
      static_cast<void>(store.commit(h, seen, pf::stamp{pf::generation{1}, fence, 0}, entry->records).value());
      handles.push_back(h);
    }
    records = &pinned->find(names[0])->records;
  }

  static std::vector<std::string> make_names(std::size_t count) {
    std::vector<std::string> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back(endpoint_name(i));
    return out;
  }

  static constexpr pf::fence_token fence{1};
  pf::plan_registry registry;
  std::vector<std::string> names;
  pf::memory_store store;
  std::vector<pf::endpoint_handle> handles;
  const pf::record_set* records = nullptr;  // generation 1's records of endpoint 0 (retained)
};

/// One world per benchmark family, built once per process on first use (thread-safe static
/// initialisation), so that every thread may take a reference before the timed loop.
store_world& hot_world() {
  static store_world world{1};
  return world;
}
store_world& stale_world() {
  static store_world world{1};
  return world;
}
store_world& by_name_world() {
  static store_world world{by_name_endpoints};
  return world;
}
/// As many endpoints as by_name_world, never committed to after construction, so that every
/// endpoint keeps serving generation 1 (by_name_world's endpoints name generations no plan has).
store_world& read_world() {
  static store_world world{by_name_endpoints};
  return world;
}

/// The obvious design the store replaces: a mutex around a map from endpoint name to state.
struct mutex_map_world {
  struct endpoint_state {
    std::uint64_t gen = 0;
    std::uint64_t fence = 0;
  };
  explicit mutex_map_world(std::size_t count) : names(store_world::make_names(count)) {
    map.reserve(count);
    for (const std::string& name : names) map.emplace(name, endpoint_state{1, 1});
  }

  /// find, check generation and fence, update: the whole commit under one lock.
  /// Returns false when the commit is refused (stale or fenced).
  bool apply(const std::string& name, std::uint64_t desired_gen, std::uint64_t desired_fence) {
    std::lock_guard lock(mutex);
    const auto it = map.find(name);
    if (it == map.end()) return false;
    if (desired_fence < fence_floor) return false;
    endpoint_state& s = it->second;
    if (s.gen >= desired_gen) return false;  // stale
    if (s.fence > desired_fence) return false;  // fenced
    s.gen = desired_gen;
    s.fence = desired_fence;
    return true;
  }

  /// The hot variant: newer than whatever the endpoint serves, decided under the lock.
  bool apply_next(const std::string& name, std::uint64_t desired_fence) {
    std::lock_guard lock(mutex);
    const auto it = map.find(name);
    if (it == map.end()) return false;
    if (desired_fence < fence_floor) return false;
    endpoint_state& s = it->second;
    const std::uint64_t desired_gen = s.gen + 1;
    if (s.gen >= desired_gen) return false;
    if (s.fence > desired_fence) return false;
    s.gen = desired_gen;
    s.fence = desired_fence;
    return true;
  }

  std::uint64_t current_gen(const std::string& name) {
    std::lock_guard lock(mutex);
    return map.at(name).gen;
  }

  std::vector<std::string> names;
  std::mutex mutex;
  std::unordered_map<std::string, endpoint_state> map;
  std::uint64_t fence_floor = 1;
};

mutex_map_world& mutex_map_by_name_world() {
  static mutex_map_world world{by_name_endpoints};
  return world;
}
mutex_map_world& mutex_map_hot_world() {
  static mutex_map_world world{1};
  return world;
}

/// The slice of `total` endpoints that thread `index` of `threads` owns (disjoint slices).
std::pair<std::size_t, std::size_t> thread_slice(const benchmark::State& state, std::size_t total) {
  const auto threads = static_cast<std::size_t>(state.threads());
  const auto index = static_cast<std::size_t>(state.thread_index());
  return {total * index / threads, total * (index + 1) / threads};
}

/// The thread counts of a multi-threaded benchmark: 1 and 2 everywhere, and more where the
/// machine has them (planfence_bench::thread_counts, up to planfence_bench::max_threads).
void machine_threads(benchmark::internal::Benchmark* b) {
  const unsigned machine = std::thread::hardware_concurrency();
  for (const int n : planfence_bench::thread_counts(planfence_bench::max_threads(machine))) b->Threads(n);
}

pf::stamp next_stamp(const pf::stamp& s) {
  return pf::stamp{pf::generation{s.gen.value() + 1}, store_world::fence, 0};
}

// Cache-line aligned words for the baselines, so that nothing else shares their line.
struct alignas(64) padded_word {
  std::atomic<std::uint64_t> value{0};
};
padded_word baseline_load_word;
padded_word baseline_cas_word;

// ---------------------------------------------------------------------------------------------
// Baselines (docs/benchmarks.md).

/// One acquire load of a 64-bit atomic: the floor for every read-only path.
void BM_Baseline_AtomicLoadAcquire(benchmark::State& state) {
  std::atomic<std::uint64_t>& word = baseline_load_word.value;
  for (auto _ : state) {
    benchmark::DoNotOptimize(word.load(std::memory_order_acquire));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_AtomicLoadAcquire)->Apply(machine_threads)->UseRealTime();

/// One successful, uncontended 64-bit compare-and-swap (acq_rel, as the store's commit). The
/// expected value comes from a counter, not from the previous CAS, so that consecutive CASes do
/// not wait for each other's result (the fastest honest form; BM_ApplyCommit does the same).
void BM_Baseline_Cas64(benchmark::State& state) {
  std::atomic<std::uint64_t>& word = baseline_cas_word.value;
  std::uint64_t current = word.load(std::memory_order_relaxed);
  std::uint64_t failures = 0;
  for (auto _ : state) {
    std::uint64_t expected = current;
    const bool swapped = word.compare_exchange_strong(expected, current + 1, std::memory_order_acq_rel,
                                                      std::memory_order_acquire);
    benchmark::DoNotOptimize(swapped);
    failures += swapped ? 0 : 1;
    ++current;
  }
  if (failures != 0) state.SkipWithError("an uncontended CAS failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_Cas64);

/// std::mutex lock and unlock, uncontended.
void BM_Baseline_MutexLockUnlock(benchmark::State& state) {
  static std::mutex mutex;
  for (auto _ : state) {
    mutex.lock();
    benchmark::ClobberMemory();
    mutex.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_MutexLockUnlock);

/// The obvious design: a mutex around std::unordered_map<std::string, state>; find, check
/// generation and fence, update. Threads work on disjoint endpoints (as BM_ApplyByName).
void BM_Baseline_MutexMapApply(benchmark::State& state) {
  mutex_map_world& world = mutex_map_by_name_world();
  const auto [begin, end] = thread_slice(state, world.names.size());
  std::vector<std::uint64_t> gens;
  for (std::size_t i = begin; i < end; ++i) gens.push_back(world.current_gen(world.names[i]));
  std::size_t i = begin;
  for (auto _ : state) {
    std::uint64_t& gen = gens[i - begin];
    const bool applied = world.apply(world.names[i], gen + 1, store_world::fence.value());
    benchmark::DoNotOptimize(applied);
    if (!applied) {
      state.SkipWithError("the mutex map refused a newer plan");
      break;
    }
    ++gen;
    if (++i == end) i = begin;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["endpoints"] = static_cast<double>(world.names.size());
}
BENCHMARK(BM_Baseline_MutexMapApply)->Apply(machine_threads)->UseRealTime();

/// The same design with every thread committing newer plans to one endpoint.
void BM_Baseline_MutexMapApplyHot(benchmark::State& state) {
  mutex_map_world& world = mutex_map_hot_world();
  const std::string& name = world.names[0];
  for (auto _ : state) {
    const bool applied = world.apply_next(name, store_world::fence.value());
    benchmark::DoNotOptimize(applied);
    if (!applied) {
      state.SkipWithError("the mutex map refused a newer plan");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_MutexMapApplyHot)->Apply(machine_threads)->UseRealTime();

/// What docs/benchmarks.md warns against on read paths: std::atomic<std::shared_ptr> (a lock in
/// libstdc++ 12) loaded by every reader, then one field of the records read.
void BM_Baseline_AtomicSharedPtrRead(benchmark::State& state) {
  static std::atomic<std::shared_ptr<const pf::record_set>> current{
      std::make_shared<const pf::record_set>(weighted_records(0, 0))};
  for (auto _ : state) {
    const std::shared_ptr<const pf::record_set> records = current.load(std::memory_order_acquire);
    const std::span<const pf::record> view = records->records();
    if (view.empty()) {
      state.SkipWithError("no records");
      break;
    }
    benchmark::DoNotOptimize(view[0].ttl);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_AtomicSharedPtrRead)->Apply(machine_threads)->UseRealTime();

/// Allocate and free an object the size of a small plan (a registry node holding a plan).
void BM_Baseline_NewDelete(benchmark::State& state) {
  constexpr std::size_t bytes = sizeof(pf::detail::plan_node);
  for (auto _ : state) {
    void* object = ::operator new(bytes);
    benchmark::DoNotOptimize(object);
    ::operator delete(object);  // unsized, as the registry frees nodes (clang before 19 has no sized delete by default)
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Baseline_NewDelete);

// ---------------------------------------------------------------------------------------------
// planfence.

/// The memory store refusing a stale plan through a pre-resolved handle: the desired generation
/// is not newer than the one the endpoint serves. Read-only (the fence floor and the stamp are
/// two acquire loads, no read-modify-write), so threads on the same endpoint scale.
void BM_RejectStale(benchmark::State& state) {
  store_world& world = stale_world();
  pf::memory_store& store = world.store;
  const pf::endpoint_handle h = world.handles[0];
  const pf::stamp seen = store.read_stamp(h).value();
  const pf::stamp desired{seen.gen, store_world::fence, 0};  // not newer: stale
  for (auto _ : state) {
    bool stale = false;
    {  // the result ends before DoNotOptimize's memory clobber, as a caller's would before its
       // next call: otherwise GCC keeps it on the stack to destroy it after the clobber
       // (stores and reloads a refusal does not make)
      const pf::result<pf::stamp> r = store.commit(h, seen, desired, *world.records);
      stale = !r.has_value() && r.error().code == pf::errc::stale;
    }
    if (!stale) {  // checked where it happens, before DoNotOptimize makes it opaque: the stale path folds it away
      state.SkipWithError("a stale commit was not refused as stale");
      break;
    }
    benchmark::DoNotOptimize(stale);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RejectStale)->Apply(machine_threads)->UseRealTime();

/// The stamp an endpoint has after generation `gen` was committed under the benchmarks' fence.
pf::stamp stamp_of(std::uint64_t gen) { return pf::stamp{pf::generation{gen}, store_world::fence, 0}; }

/// A successful commit through a pre-resolved handle, uncontended: each iteration commits the
/// next generation, expecting the stamp of the one it committed before. (The caller tracks the
/// generation as an integer, as an enactor knows the plan it applies; copying the returned
/// stamp struct instead made GCC reload it with a wider load than the stores that wrote it, a
/// store-forwarding stall of about 10 ns that belongs to the caller's code, not to the commit.)
void BM_ApplyCommit(benchmark::State& state) {
  store_world& world = hot_world();
  pf::memory_store& store = world.store;
  const pf::endpoint_handle h = world.handles[0];
  std::uint64_t gen = store.read_stamp(h).value().gen.value();
  for (auto _ : state) {
    const pf::result<pf::stamp> r = store.commit(h, stamp_of(gen), stamp_of(gen + 1), *world.records);
    if (!r.has_value()) {
      state.SkipWithError("an uncontended commit failed");
      break;
    }
    benchmark::DoNotOptimize(r->version);
    ++gen;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyCommit);

/// A commit looked up by endpoint name (resolve, then commit), threads on disjoint endpoints:
/// what BM_Baseline_MutexMapApply does, through the store.
void BM_ApplyByName(benchmark::State& state) {
  store_world& world = by_name_world();
  pf::memory_store& store = world.store;
  const auto [begin, end] = thread_slice(state, world.names.size());
  std::vector<std::uint64_t> gens;  // as BM_Baseline_MutexMapApply: the generation each endpoint has
  for (std::size_t i = begin; i < end; ++i) gens.push_back(store.read_stamp(world.handles[i]).value().gen.value());
  std::size_t i = begin;
  for (auto _ : state) {
    const pf::result<pf::endpoint_handle> h = store.resolve(world.names[i]);
    if (!h.has_value()) {
      state.SkipWithError("unknown endpoint");
      break;
    }
    std::uint64_t& gen = gens[i - begin];
    const pf::result<pf::stamp> r = store.commit(*h, stamp_of(gen), stamp_of(gen + 1), *world.records);
    if (!r.has_value()) {
      state.SkipWithError("a commit on a disjoint endpoint failed");
      break;
    }
    benchmark::DoNotOptimize(r->version);
    ++gen;
    if (++i == end) i = begin;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["endpoints"] = static_cast<double>(world.names.size());
}
BENCHMARK(BM_ApplyByName)->Apply(machine_threads)->UseRealTime();


/// Every thread commits newer plans to one endpoint, as an enactor does: read the stamp, commit
/// the next generation, and on a lost race (conflict, or stale when the other thread already
/// committed that generation) read again and decide again. An item is one applied commit;
/// `retries_per_commit` counts the lost races. `ByName`: the endpoint is looked up by name
/// before every attempt, the same work per commit as BM_Baseline_MutexMapApplyHot (which finds
/// the name in its map each time); otherwise through a pre-resolved handle.
template <bool ByName>
void apply_hot_endpoint(benchmark::State& state) {
  store_world& world = hot_world();
  pf::memory_store& store = world.store;
  const std::string& name = world.names[0];
  std::uint64_t retries = 0;
  for (auto _ : state) {
    for (;;) {
      const pf::endpoint_handle h = ByName ? store.resolve(name).value() : world.handles[0];
      const pf::stamp seen = store.read_stamp(h).value();
      const pf::result<pf::stamp> r = store.commit(h, seen, next_stamp(seen), *world.records);
      if (r.has_value()) {
        benchmark::DoNotOptimize(r);
        break;
      }
      if (r.error().code != pf::errc::conflict && r.error().code != pf::errc::stale) {
        state.SkipWithError("unexpected refusal on the hot endpoint");
        break;
      }
      ++retries;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["retries_per_commit"] =
      benchmark::Counter(static_cast<double>(retries), benchmark::Counter::kAvgIterations);
}
void BM_ApplyHotEndpoint(benchmark::State& state) { apply_hot_endpoint<false>(state); }
BENCHMARK(BM_ApplyHotEndpoint)->Apply(machine_threads)->UseRealTime();

/// A reader getting an endpoint's current records and reading one: epoch guard (two plain stores
/// with membarrier, detail/epoch.hpp; one exchange in the fallback), stamp load, the thread's
/// read cache entry checked against the registry's slot (after the first read), then one field
/// of the first record. Every thread reads the same endpoint.
void BM_SnapshotRead(benchmark::State& state) {
  store_world& world = stale_world();
  const pf::memory_store& store = world.store;
  const pf::endpoint_handle h = world.handles[0];
  for (auto _ : state) {
    std::uint32_t ttl = 0;
    bool served = false;
    {  // the snapshot (its guard) ends before DoNotOptimize's memory clobber, as BM_RejectStale's result
      const pf::endpoint_snapshot snapshot = store.read(h);
      const std::span<const pf::record> view = snapshot.records();
      served = !view.empty();
      if (served) ttl = view[0].ttl;
    }
    if (!served) {
      state.SkipWithError("the endpoint serves nothing");
      break;
    }
    benchmark::DoNotOptimize(ttl);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SnapshotRead)->Apply(machine_threads)->UseRealTime();

/// BM_SnapshotRead without the read cache's help: each read is of the next of 16,384 endpoints
/// (threads on disjoint slices), so the thread's 64-entry cache never holds the one asked for and
/// every read probes the plan's index (a 16,384-endpoint plan: root table and trie) and refills
/// an entry. What a resolver pays for a name it has not answered since 64 others were answered.
void BM_SnapshotReadManyEndpoints(benchmark::State& state) {
  store_world& world = read_world();
  const pf::memory_store& store = world.store;
  const std::size_t slice = world.handles.size() / static_cast<std::size_t>(state.threads());
  const std::size_t begin = slice * static_cast<std::size_t>(state.thread_index());
  std::size_t i = 0;
  for (auto _ : state) {
    const pf::endpoint_snapshot snapshot = store.read(world.handles[begin + i]);
    const std::span<const pf::record> view = snapshot.records();
    if (view.empty()) {
      state.SkipWithError("an endpoint serves nothing");
      break;
    }
    benchmark::DoNotOptimize(view[0].ttl);
    if (++i == slice) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SnapshotReadManyEndpoints)->Apply(machine_threads)->UseRealTime();

/// Builds `count` small plans (one endpoint, shared with `base`) for generations
/// first, first + 1, ..., in reverse order so that pop_back yields them in publication order.
std::vector<pf::plan> build_small_plans(const pf::plan& base, std::uint64_t first, std::size_t count) {
  std::vector<pf::plan> out;
  out.reserve(count);
  for (std::size_t k = count; k-- > 0;) {
    out.push_back(pf::plan_builder::based_on(base, pf::generation{first + k}, 1'761'200'000'000).build().value());
  }
  return out;
}

/// One cycle of plan retention, amortized per plan: publish a new plan, make the endpoint serve
/// it, and collect the plan that falls out of the retention window (keep_newest = 4), with its
/// memory reclaimed through the epoch domain. Plans are built (SHA-256 digest and all) in
/// batches with the timer paused: building is the planner's cost, not the registry's. The
/// endpoint is looked up with its precomputed name hash and the live set is read into the
/// registry's buffer, as the enactor does (enactor.hpp: entries carry their hash, and
/// step_collect uses the store's filling live_generations).
/// `backlog_max_observed` is the largest number of collected-but-unreclaimed plans seen.
void retire_reclaim(benchmark::State& state, std::uint64_t collect_every) {
  constexpr std::size_t batch = 1024;
  pf::plan_registry registry;
  const std::string name = endpoint_name(0);
  // Hashed once, as the memory store and the enactor do (they keep each endpoint's hash).
  const std::uint64_t name_hash = pf::endpoint_name_hash(name);
  auto store = pf::memory_store::make(registry, {name}).value();
  const pf::endpoint_handle h = store.resolve(name).value();
  store.raise_fence(store_world::fence).value();
  pf::plan_builder first{pf::generation{1}, 1'761'200'000'000};
  first.set(name, weighted_records(0, 0)).value();
  const pf::plan base = std::move(first).build().value();

  std::uint64_t next_gen = 1;
  std::vector<pf::plan> pending;
  std::size_t backlog_max_observed = 0;
  std::size_t stopped_at_backlog = 0;
  std::size_t collected = 0;
  const pf::retention_policy policy{.keep_newest = 4};
  for (auto _ : state) {
    if (pending.empty()) {
      state.PauseTiming();
      pending = build_small_plans(base, next_gen, batch);
      state.ResumeTiming();
    }
    const std::uint64_t gen = next_gen++;
    {
      pf::result<pf::pinned_plan> pinned = registry.publish(std::move(pending.back()));
      pending.pop_back();
      if (!pinned.has_value()) {
        state.SkipWithError("publish failed");
        break;
      }
      const pf::endpoint_entry* entry = (*pinned)->find(name, name_hash);
      const pf::stamp seen = store.read_stamp(h).value();
      if (!store.commit(h, seen, pf::stamp{pf::generation{gen}, store_world::fence, 0}, entry->records)) {
        state.SkipWithError("commit failed");
        break;
      }
    }  // unpinned here
    if (gen % collect_every == 0) {
      const pf::collection_report report =
          registry.collect(policy, 1'761'200'000'000,
                           [&](std::vector<pf::generation>& out) { store.live_generations(out); });
      collected += report.collected.size();
      stopped_at_backlog += report.stopped_at_backlog ? 1 : 0;
      backlog_max_observed = std::max(backlog_max_observed, registry.backlog());
    }
  }
  // Reaching the bound is the bound working (collection waits), not an error: it is reported as
  // counters for bench/report.py to judge. (Never SkipWithError for what one repetition of several
  // may meet: Google Benchmark 1.7.1 then reads an unset statistics pointer when it aggregates
  // the repetitions, google/benchmark#1406, and crashes.)
  state.SetItemsProcessed(state.iterations());
  state.counters["backlog_max_observed"] = static_cast<double>(backlog_max_observed);
  state.counters["collections_stopped_at_backlog"] = static_cast<double>(stopped_at_backlog);
  state.counters["collected_per_plan"] =
      benchmark::Counter(static_cast<double>(collected), benchmark::Counter::kAvgIterations);
}
void BM_RetireReclaim(benchmark::State& state) { retire_reclaim(state, 1); }
BENCHMARK(BM_RetireReclaim);

/// BM_RetireReclaim collecting after every 64th plan instead of after each (as an enactor that
/// collects after a complete run does). Beside the contract, to split the cost: what it saves is
/// the per-call part of collect (its mutex, the report); what remains is paid per plan.
void BM_RetireReclaimBatched(benchmark::State& state) { retire_reclaim(state, 64); }
BENCHMARK(BM_RetireReclaimBatched);

// ---------------------------------------------------------------------------------------------
// Beside the contract: the pieces, to explain the ratios above.

/// read_stamp through a pre-resolved handle: one acquire load behind the API.
void BM_ReadStamp(benchmark::State& state) {
  store_world& world = stale_world();
  const pf::memory_store& store = world.store;
  const pf::endpoint_handle h = world.handles[0];
  for (auto _ : state) {
    const pf::result<pf::stamp> s = store.read_stamp(h);
    benchmark::DoNotOptimize(s->gen);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadStamp)->Apply(machine_threads)->UseRealTime();

/// resolve(name) alone: the name hash and one probe, what BM_ApplyByName adds to a commit.
void BM_ResolveName(benchmark::State& state) {
  store_world& world = by_name_world();
  const pf::memory_store& store = world.store;
  std::size_t i = 0;
  for (auto _ : state) {
    const pf::result<pf::endpoint_handle> h = store.resolve(world.names[i]);
    benchmark::DoNotOptimize(h->index());
    if (++i == world.names.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ResolveName);

/// An acquire load, a compare, then a successful CAS of the same word: the least a commit can do
/// while keeping refusals read-only (it must look before it swaps). BM_ApplyCommit against this
/// shows what the store adds beyond that pattern; against BM_Baseline_Cas64, what the pattern
/// itself costs (the load cannot start before the previous iteration's locked CAS completes).
void BM_Baseline_LoadThenCas64(benchmark::State& state) {
  std::atomic<std::uint64_t>& word = baseline_cas_word.value;
  std::uint64_t failures = 0;
  for (auto _ : state) {
    std::uint64_t current = word.load(std::memory_order_acquire);
    bool swapped = false;
    if ((current >> 24) < (std::uint64_t{1} << 40) - 1) {
      swapped = word.compare_exchange_strong(current, current + (std::uint64_t{1} << 24), std::memory_order_acq_rel,
                                             std::memory_order_acquire);
    }
    benchmark::DoNotOptimize(swapped);
    failures += swapped ? 0 : 1;
  }
  if (failures != 0) state.SkipWithError("an uncontended CAS failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_LoadThenCas64);

/// An epoch guard entered and left, nothing else: the read path's fixed cost.
void BM_EpochGuard(benchmark::State& state) {
  for (auto _ : state) {
    pf::detail::epoch_guard guard = pf::detail::epoch_domain::pin();
    benchmark::DoNotOptimize(guard);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EpochGuard)->Apply(machine_threads)->UseRealTime();

/// BM_ApplyHotEndpoint with a name lookup before every attempt (apply_hot_endpoint).
void BM_ApplyHotEndpointByName(benchmark::State& state) { apply_hot_endpoint<true>(state); }
BENCHMARK(BM_ApplyHotEndpointByName)->Apply(machine_threads)->UseRealTime();


/// BM_RetireReclaim while another thread reads snapshots of the endpoint without pause, so that
/// reclamation must wait for its guards: the backlog must stay bounded all the same.
void BM_RetireReclaimWithReader(benchmark::State& state) {
  constexpr std::size_t batch = 1024;
  pf::plan_registry registry;
  const std::string name = endpoint_name(0);
  // Hashed once, as the memory store and the enactor do (they keep each endpoint's hash).
  const std::uint64_t name_hash = pf::endpoint_name_hash(name);
  auto store = pf::memory_store::make(registry, {name}).value();
  const pf::endpoint_handle h = store.resolve(name).value();
  store.raise_fence(store_world::fence).value();
  pf::plan_builder first{pf::generation{1}, 1'761'200'000'000};
  first.set(name, weighted_records(0, 0)).value();
  const pf::plan base = std::move(first).build().value();

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0};
  std::thread reader([&] {
    std::uint64_t local = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const pf::endpoint_snapshot snapshot = store.read(h);
      benchmark::DoNotOptimize(snapshot.records().size());
      ++local;
    }
    reads.store(local, std::memory_order_relaxed);
  });

  std::uint64_t next_gen = 1;
  std::vector<pf::plan> pending;
  std::size_t stopped_at_backlog = 0;
  std::size_t backlog_max_observed = 0;
  const pf::retention_policy policy{.keep_newest = 4};
  for (auto _ : state) {
    if (pending.empty()) {
      state.PauseTiming();
      pending = build_small_plans(base, next_gen, batch);
      state.ResumeTiming();
    }
    const std::uint64_t gen = next_gen++;
    {
      pf::result<pf::pinned_plan> pinned = registry.publish(std::move(pending.back()));
      pending.pop_back();
      if (!pinned.has_value()) {
        state.SkipWithError("publish failed");
        break;
      }
      const pf::endpoint_entry* entry = (*pinned)->find(name, name_hash);
      const pf::stamp seen = store.read_stamp(h).value();
      if (!store.commit(h, seen, pf::stamp{pf::generation{gen}, store_world::fence, 0}, entry->records)) {
        state.SkipWithError("commit failed");
        break;
      }
    }
    const pf::collection_report report =
        registry.collect(policy, 1'761'200'000'000,
                           [&](std::vector<pf::generation>& out) { store.live_generations(out); });
    benchmark::DoNotOptimize(report.collected.size());
    stopped_at_backlog += report.stopped_at_backlog ? 1 : 0;
    backlog_max_observed = std::max(backlog_max_observed, registry.backlog());
  }
  stop.store(true, std::memory_order_relaxed);
  reader.join();
  // A reader preempted inside its guard holds the epoch for its whole time slice; collection then
  // stops at backlog_max and resumes once it moves (counted, not an error: see retire_reclaim).
  state.SetItemsProcessed(state.iterations());
  state.counters["backlog_max_observed"] = static_cast<double>(backlog_max_observed);
  state.counters["collections_stopped_at_backlog"] = static_cast<double>(stopped_at_backlog);
  state.counters["reader_reads"] = static_cast<double>(reads.load(std::memory_order_relaxed));
}
BENCHMARK(BM_RetireReclaimWithReader)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Plan diff: what an enactor pays to find the endpoints a new plan changes (for_each_difference),
// against walking every endpoint of the plan, the least any O(n) way of finding them costs.

/// A plan of `count` endpoints (two weighted A records each) and its based_on successor with 1%
/// of them (every hundredth) given new records. Built once per size, before any timed loop.
struct diff_world {
  explicit diff_world(std::size_t count) : changed((count + 99) / 100) {
    pf::plan_builder builder{pf::generation{1}, 1'761'200'000'000};
    for (std::size_t i = 0; i < count; ++i) builder.set(endpoint_name(i), weighted_records(i, 0)).value();
    before.emplace(std::move(builder).build().value());
    auto next = pf::plan_builder::based_on(*before, pf::generation{2}, 1'761'200'000'001);
    for (std::size_t i = 0; i < count; i += 100) next.set(endpoint_name(i), weighted_records(i, 1)).value();
    after.emplace(std::move(next).build().value());
  }
  std::size_t changed;
  std::optional<pf::plan> before;
  std::optional<pf::plan> after;
};

diff_world& diff_world_of(std::int64_t count) {
  if (count == 10'000) {
    static diff_world world{10'000};
    return world;
  }
  static diff_world world{100'000};
  return world;
}

/// for_each_difference of the plan and its successor; an item is one diff of the whole plan.
/// The number of differences reported is checked every iteration.
void BM_PlanDiff_OnePercent(benchmark::State& state) {
  const diff_world& world = diff_world_of(state.range(0));
  for (auto _ : state) {
    std::size_t found = 0;
    pf::for_each_difference(*world.before, *world.after,
                            [&](const pf::endpoint_entry*, const pf::endpoint_entry*) noexcept { ++found; });
    if (found != world.changed) {
      state.SkipWithError("the diff did not report exactly the changed endpoints");
      break;
    }
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["endpoints"] = static_cast<double>(world.after->size());
  state.counters["changed"] = static_cast<double>(world.changed);
}
BENCHMARK(BM_PlanDiff_OnePercent)->Arg(10'000)->Arg(100'000);

/// Iterating every endpoint of the successor and touching its records; an item is one walk of
/// the whole plan (the baseline BM_PlanDiff_OnePercent is compared with, at the same size).
void BM_Baseline_PlanIterate(benchmark::State& state) {
  const diff_world& world = diff_world_of(state.range(0));
  for (auto _ : state) {
    std::size_t records = 0;
    for (const pf::endpoint_entry* e : world.after->endpoints()) records += e->records.size();
    if (records != 2 * world.after->size()) {
      state.SkipWithError("the walk did not see every endpoint's two records");
      break;
    }
    benchmark::DoNotOptimize(records);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_PlanIterate)->Arg(10'000)->Arg(100'000);

/// The obvious diff: every endpoint of the successor looked up in the plan (by its precomputed
/// hash), records compared unless the entry is shared, then every endpoint of the plan looked
/// up in the successor for removals. An item is one diff of the whole plan.
void BM_Baseline_PlanDiffByLookup(benchmark::State& state) {
  const diff_world& world = diff_world_of(state.range(0));
  for (auto _ : state) {
    std::size_t found = 0;
    for (const pf::endpoint_entry* e : world.after->endpoints()) {
      const pf::endpoint_entry* old = world.before->find(e->name, e->name_hash);
      if (old == nullptr || (old != e && !(old->records == e->records))) ++found;
    }
    for (const pf::endpoint_entry* e : world.before->endpoints()) {
      if (world.after->find(e->name, e->name_hash) == nullptr) ++found;
    }
    if (found != world.changed) {
      state.SkipWithError("the lookup diff did not find exactly the changed endpoints");
      break;
    }
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_PlanDiffByLookup)->Arg(10'000)->Arg(100'000);

/// The change-following apply on the memory store: the enactor applies a plan that changes all of
/// N endpoints, then one that changes 1% of them (change_fixture.hpp), at its default batch (the
/// memory store's preferred 64). Counters: the time of each
/// (full_ms, change_ms), the store writes of each, and the ratios change/full (the targets: at most
/// 2% of the writes and 5% of the time).
void BM_EnactorChange_Memory(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back(planfence_bench::endpoint_name(i));
  planfence_bench::change_totals totals;
  std::uint32_t variant = 0;
  for (auto _ : state) {
    state.PauseTiming();
    pf::plan_registry unused;
    auto store = pf::memory_store::make(unused, names).value();
    state.ResumeTiming();
    // The enactor's own registry is the fixture's; the store only needs one to read from, which
    // this benchmark never does.
    const planfence_bench::change_costs c = planfence_bench::measure_change(store, names, 1, variant += 2, 0, state.range(1) != 0);
    if (!c.error.empty() || !c.followed) {
      state.SkipWithError(c.error.empty() ? "the 1% plan was not applied as a change" : c.error.c_str());
      return;
    }
    totals.add(c);
  }
  totals.report(state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnactorChange_Memory)->ArgNames({"endpoints", "verify"})->Args({10'000, 1})->Args({10'000, 0})->Unit(benchmark::kMillisecond);

}  // namespace

// BENCHMARK_MAIN(), after one thread was started and joined. glibc and libstdc++ skip atomic
// instructions while a process has never started a thread (__libc_single_threaded): mutex lock
// and unlock lose their locked instructions, shared_ptr its atomic counts. planfence runs in
// multi-threaded processes (enactors, resolvers), and a baseline measured on the single-threaded
// shortcut would be faster than any real use of it. Without this, which path a benchmark took
// would depend on whether --benchmark_filter let a multi-threaded benchmark run before it.
int main(int argc, char** argv) {
  std::thread([] {}).join();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
