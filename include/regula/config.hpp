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
#define REGULA_HAS_EXCEPTIONS 0
#endif

#ifndef REGULA_THROW
#if REGULA_HAS_EXCEPTIONS
#define REGULA_THROW(exception) throw exception
#else
#include <cstdio>
#include <cstdlib>
#define REGULA_THROW(exception)                       \
  do {                                                \
    std::fprintf(stderr, "%s\n", (exception).what()); \
    std::abort();                                     \
  } while (false)
#endif
#endif

#ifndef REGULA_ASSERT
#define REGULA_ASSERT(cond) assert(cond)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define REGULA_LIKELY(x) __builtin_expect(!!(x), 1)
#define REGULA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define REGULA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define REGULA_LIKELY(x) (x)
#define REGULA_UNLIKELY(x) (x)
#define REGULA_ALWAYS_INLINE inline
#endif

#endif  // REGULA_CONFIG_HPP
