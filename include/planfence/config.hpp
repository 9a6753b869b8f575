// planfence/config.hpp: version, namespaces and the assertion macro.
//
// planfence distinguishes three kinds of failure and never mixes them:
//  - a programmer error (a broken precondition or invariant) stops the program through
//    PLANFENCE_ASSERT;
//  - an expected outcome (a stale plan, a fenced writer, a conflict, bad input) is a value of
//    planfence::result<T> (result.hpp);
//  - nothing on the apply or read path throws.
//
// PLANFENCE_ASSERT is on in every build unless PLANFENCE_DISABLE_ASSERTS is defined: the checks
// are cheap and guard invariants whose violation would corrupt DNS state. Define
// PLANFENCE_ASSERT_HANDLER(expr, file, line) before including any planfence header to route
// failures to your own handler (it must not return).
#pragma once

#include <cstdio>
#include <cstdlib>

#define PLANFENCE_VERSION_MAJOR 0
#define PLANFENCE_VERSION_MINOR 1
#define PLANFENCE_VERSION_PATCH 0

#if !defined(PLANFENCE_ASSERT_HANDLER)
namespace planfence { inline namespace v1 { namespace detail {
[[noreturn]] inline void assertion_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "planfence: assertion failed: %s (%s:%d)\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail
}  // namespace v1
}  // namespace planfence
#define PLANFENCE_ASSERT_HANDLER(expr, file, line) \
  ::planfence::detail::assertion_failed(expr, file, line)
#endif

/// Forces inlining of the few hot-path functions whose callers pay for a call they cannot see
/// through (memory_store::commit): inlined, a refusal's unused error text folds away.
#if defined(__GNUC__) || defined(__clang__)
#define PLANFENCE_ALWAYS_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define PLANFENCE_ALWAYS_INLINE __forceinline
#else
#define PLANFENCE_ALWAYS_INLINE inline
#endif

/// Marks a function that runs rarely and must stay out of line, so that its call does not make
/// the hot caller keep its loop's values on the stack (result.hpp: freeing an error's text).
#if defined(__GNUC__) || defined(__clang__)
#define PLANFENCE_COLD [[gnu::cold, gnu::noinline]]
#elif defined(_MSC_VER)
#define PLANFENCE_COLD __declspec(noinline)
#else
#define PLANFENCE_COLD
#endif

/// Keeps a function out of line that is not rare but must not be inlined into a hot path, so
/// that the path stays one straight run (memory_store::read's cache miss).
#if defined(__GNUC__) || defined(__clang__)
#define PLANFENCE_NOINLINE [[gnu::noinline]]
#elif defined(_MSC_VER)
#define PLANFENCE_NOINLINE __declspec(noinline)
#else
#define PLANFENCE_NOINLINE
#endif

#if defined(PLANFENCE_DISABLE_ASSERTS)
#define PLANFENCE_ASSERTS_ENABLED 0
// Unevaluated: the expression is not run, but the names in it count as used, so disabling
// assertions never turns a -Werror build red with unused-variable warnings.
#define PLANFENCE_ASSERT(expr) static_cast<void>(sizeof(!(expr)))
#else
#define PLANFENCE_ASSERTS_ENABLED 1
/// Stops the program when `expr` is false. For programmer errors only, never for input.
#define PLANFENCE_ASSERT(expr)                                     \
  ((expr) ? static_cast<void>(0)                                   \
          : PLANFENCE_ASSERT_HANDLER(#expr, __FILE__, __LINE__))
#endif
