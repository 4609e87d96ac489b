/// @file
/// Configuration switches and the three tiers of checking used throughout regula.
///
/// - `REGULA_EXPECTS(cond, who, parts...)` checks user input at the API boundary, always, and
///   throws `regula::invalid_argument` whose message is `who: parts...` (for example
///   `regula::Dropout: p must be in [0, 1], got 1.5`).
/// - `REGULA_ASSERT(cond)` checks internal invariants in debug builds only.
/// - Kernels are `noexcept` and unchecked: their callers validated the arguments.
///
/// Override `REGULA_THROW(exception)` to route errors elsewhere; without exceptions
/// (`-fno-exceptions`) the default prints the message and calls `std::abort()`.
#ifndef REGULA_CONFIG_HPP
#define REGULA_CONFIG_HPP

#include <cassert>

#include "regula/version.hpp"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define REGULA_HAS_EXCEPTIONS 1
#else
/// 0 where the compiler runs without exceptions (-fno-exceptions); REGULA_THROW then aborts.
#define REGULA_HAS_EXCEPTIONS 0
#endif

#ifndef REGULA_THROW
#if REGULA_HAS_EXCEPTIONS
#define REGULA_THROW(exception) throw exception
#else
#include <cstdio>
#include <cstdlib>
/// Throws `exception` (an invalid_argument); without exceptions, prints its message and aborts.
/// Override before including regula to change that.
#define REGULA_THROW(exception)                       \
  do {                                                \
    std::fprintf(stderr, "%s\n", (exception).what()); \
    std::abort();                                     \
  } while (false)
#endif
#endif

#ifndef REGULA_ASSERT
/// Internal consistency check (assert): never a user-input check, which throw.
#define REGULA_ASSERT(cond) assert(cond)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define REGULA_LIKELY(x) __builtin_expect(!!(x), 1)
#define REGULA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define REGULA_ALWAYS_INLINE inline __attribute__((always_inline))
#define REGULA_NOINLINE __attribute__((noinline))
#else
/// Branch hint: x is usually true.
#define REGULA_LIKELY(x) (x)
/// Branch hint: x is usually false.
#define REGULA_UNLIKELY(x) (x)
/// Forces inlining of the kernels' inner steps where the compiler supports it.
#define REGULA_ALWAYS_INLINE inline
/// Keeps a rare path (a repair, a fallback) out of its caller's hot loop, whose registers it
/// would otherwise take.
#define REGULA_NOINLINE
#endif

#endif  // REGULA_CONFIG_HPP
