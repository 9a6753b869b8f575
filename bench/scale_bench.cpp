// bench/scale_bench.cpp: what planfence costs at the scale of a regional plan, as counters.
//
//  - BM_Scale_StoreBytesPerEndpoint: heap bytes of a memory store of 1,000,000 endpoints, per
//    endpoint (target: at most 16 bytes of *stamp* state per endpoint; the store's names, hashes
//    and index are reported beside it, because they are real memory too).
//  - BM_Scale_RetainedGenerations: heap bytes of 100 retained generations of a 100,000-endpoint
//    plan in which 1% of the endpoints change per generation, divided by the heap bytes of one
//    generation (target: at most 3).
//  - BM_Scale_PublishApply: seconds to build, publish and fully apply (with the fixed enactor,
//    digest check included) a 1,000,000-endpoint plan.
//
// Memory is measured, not computed: this binary replaces the global operator new and delete
// with versions that count malloc_usable_size() of every block (what the allocator really
// reserved for it, chunk headers aside), and mallinfo2() is reported beside it as a cross-check
// that includes the allocator's own overhead. The counting costs one relaxed atomic add per
// allocation, which is why the timing benchmarks live in another binary (apply_bench).
//
// Each benchmark runs exactly one iteration (->Iterations(1)): building a million-endpoint store
// or plan is the measurement, not something to repeat millions of times. Repetitions come from
// --benchmark_repetitions.
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "bench_fixtures.hpp"
#include "planfence/planfence.hpp"

// ---------------------------------------------------------------------------------------------
// Counting allocator. Aligned new/delete are not replaced: the library's only over-aligned
// allocation (the epoch domain) is made once and never freed, and the default aligned versions
// do not route through these.

namespace {
std::atomic<std::int64_t> heap_bytes{0};

void* counted_allocate(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  heap_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  heap_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) { return counted_allocate(size); }
void* operator new[](std::size_t size) { return counted_allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace {

namespace pf = planfence;

/// Heap in use now: counted operator new bytes, and malloc's own view (in-use chunks, headers
/// included, plus mmapped blocks) as a cross-check.
struct heap_sample {
  std::int64_t counted = 0;
  std::int64_t malloc_in_use = 0;
  static heap_sample now() {
    const struct mallinfo2 info = mallinfo2();
    return heap_sample{heap_bytes.load(std::memory_order_relaxed),
                       static_cast<std::int64_t>(info.uordblks + info.hblkhd)};
  }
  heap_sample operator-(const heap_sample& other) const {
    return heap_sample{counted - other.counted, malloc_in_use - other.malloc_in_use};
  }
};

using planfence_bench::endpoint_name;
using planfence_bench::weighted_records;

std::vector<std::string> endpoint_names(std::size_t count) {
  std::vector<std::string> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.push_back(endpoint_name(i));
  return out;
}

pf::plan full_plan(const std::vector<std::string>& names, std::uint64_t gen) {
  pf::plan_builder builder{pf::generation{gen}, 1'761'200'000'000};
  for (std::size_t i = 0; i < names.size(); ++i) builder.set(names[i], weighted_records(i, 0)).value();
  return std::move(builder).build().value();
}

/// `full`, or a hundredth of it (at least 1,000) when PLANFENCE_BENCH_SMOKE is set: the CTest
/// smoke run (bench/CMakeLists.txt) only proves that the benchmarks run, and these have a fixed
/// size rather than a timed one. Read at static initialisation, when the benchmarks register.
std::int64_t scaled(std::int64_t full) {
  const char* smoke = std::getenv("PLANFENCE_BENCH_SMOKE");
  const bool shrink = smoke != nullptr && smoke[0] != '\0' && smoke[0] != '0';
  return shrink ? std::max<std::int64_t>(full / 100, 1'000) : full;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Heap bytes of a memory store of state.range(0) endpoints, per endpoint.
void BM_Scale_StoreBytesPerEndpoint(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const std::vector<std::string> names = endpoint_names(count);
  pf::plan_registry registry;
  heap_sample used{};
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const heap_sample before = heap_sample::now();
    std::optional<pf::memory_store> store{pf::memory_store::make(registry, names).value()};
    used = heap_sample::now() - before;
    state.SetIterationTime(seconds_since(start));
    benchmark::DoNotOptimize(store->size());
  }
  const auto n = static_cast<double>(count);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["endpoints"] = n;
  state.counters["stamp_bytes_per_endpoint"] = static_cast<double>(pf::memory_store::stamp_bytes_per_endpoint);
  state.counters["store_bytes_per_endpoint"] = static_cast<double>(used.counted) / n;
  state.counters["store_malloc_bytes_per_endpoint"] = static_cast<double>(used.malloc_in_use) / n;
}
BENCHMARK(BM_Scale_StoreBytesPerEndpoint)->Arg(scaled(1'000'000))->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

/// 100 retained generations of a 100,000-endpoint plan, 1% of the endpoints changed per
/// generation (a different 1% each time), each generation built with plan_builder::based_on and
/// published into one registry; the registry's heap divided by the heap of generation 1 alone.
/// The (manual) time is building and publishing all 100.
void BM_Scale_RetainedGenerations(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t generations = 100;
  const std::size_t changed_per_generation = count / 100;
  const std::vector<std::string> names = endpoint_names(count);
  heap_sample one{};
  heap_sample all{};
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const heap_sample before = heap_sample::now();
    {
      pf::plan_registry registry;
      pf::pinned_plan previous = registry.publish(full_plan(names, 1)).value();
      one = heap_sample::now() - before;
      for (std::uint64_t gen = 2; gen <= generations; ++gen) {
        auto builder = pf::plan_builder::based_on(*previous, pf::generation{gen}, 1'761'200'000'000 + gen);
        // A different 1% each generation: endpoints gen, gen + 100, gen + 200, ... (mod count).
        for (std::size_t k = 0; k < changed_per_generation; ++k) {
          const std::size_t i = (gen + k * 100) % count;
          builder.set(names[i], weighted_records(i, static_cast<std::uint32_t>(gen))).value();
        }
        pf::plan next = std::move(builder).build().value();
        previous = registry.publish(std::move(next)).value();
      }
      previous.reset();
      if (registry.retained().size() != generations) state.SkipWithError("the registry did not retain 100 plans");
      all = heap_sample::now() - before;
      state.SetIterationTime(seconds_since(start));
    }
  }
  const double one_generation = static_cast<double>(one.counted);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(generations));
  state.counters["endpoints"] = static_cast<double>(count);
  state.counters["one_generation_bytes"] = one_generation;
  state.counters["retained_100_bytes"] = static_cast<double>(all.counted);
  state.counters["memory_ratio_100_over_1"] = static_cast<double>(all.counted) / one_generation;
  state.counters["bytes_per_extra_generation"] = static_cast<double>(all.counted - one.counted) / (generations - 1);
  state.counters["malloc_memory_ratio_100_over_1"] =
      static_cast<double>(all.malloc_in_use) / static_cast<double>(one.malloc_in_use);
}
BENCHMARK(BM_Scale_RetainedGenerations)->Arg(scaled(100'000))->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

/// Build, publish and fully apply a plan of state.range(0) endpoints to an empty memory store
/// with the fixed enactor (lease, fence raise, pin, digest check (S7), read and commit of every
/// endpoint, collection). The benchmark's own (manual) time is the digest check + publish +
/// apply; building the plan is the planner's work, reported as a counter. The digest check (S7)
/// runs once per plan: plan_registry::publish makes it and the enactor's check at pin time reuses
/// the answer; here it is made just before publish so that it can be timed alone.
void BM_Scale_PublishApply(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const std::vector<std::string> names = endpoint_names(count);
  double build_seconds = 0;
  double publish_seconds = 0;
  double apply_seconds = 0;
  double verify_seconds = 0;
  std::uint64_t applied = 0;
  for (auto _ : state) {
    pf::plan_registry registry;
    auto store = pf::memory_store::make(registry, names).value();
    pf::steady_clock clock;
    pf::local_lease_authority<pf::steady_clock> authority{clock};
    pf::enactor<pf::memory_store, pf::local_lease_authority<pf::steady_clock>, pf::plan_registry, pf::steady_clock>
        enactor{store, authority, registry, clock, {.name = "bench"}};
    auto start = std::chrono::steady_clock::now();
    pf::plan plan = full_plan(names, 1);
    build_seconds = seconds_since(start);
    // The digest check (S7), once per plan (publish would make it; the plan remembers the
    // answer), timed alone and counted in the benchmark's time.
    start = std::chrono::steady_clock::now();
    if (!plan.verify()) state.SkipWithError("the plan does not match its digest");
    verify_seconds = seconds_since(start);

    start = std::chrono::steady_clock::now();
    static_cast<void>(registry.publish(std::move(plan)).value());  // the pin ends at once
    publish_seconds = seconds_since(start);
    start = std::chrono::steady_clock::now();
    while (enactor.applied_generation() != pf::generation{1}) static_cast<void>(enactor.step());
    apply_seconds = seconds_since(start);
    applied = enactor.counters()[pf::event_kind::applied];
    state.SetIterationTime(verify_seconds + publish_seconds + apply_seconds);
    enactor.release();
  }
  if (applied != count) state.SkipWithError("not every endpoint was applied");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.counters["endpoints"] = static_cast<double>(count);
  state.counters["build_seconds"] = build_seconds;
  state.counters["publish_seconds"] = publish_seconds;
  state.counters["apply_seconds"] = apply_seconds;
  state.counters["verify_seconds"] = verify_seconds;
  state.counters["publish_apply_seconds"] = verify_seconds + publish_seconds + apply_seconds;
}
BENCHMARK(BM_Scale_PublishApply)->Arg(scaled(1'000'000))->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
