/// @file
/// Deterministic parallel loops: OpenMP when the translation unit is compiled with it
/// (`-fopenmp`, or CMake's OpenMP::OpenMP_CXX), serial otherwise.
///
/// Work is cut into chunks whose boundaries depend only on the problem size and the chunk
/// size, never on the number of threads; each chunk's result depends only on its own items.
/// Combined with counter-based randomness, results are bitwise identical for any thread count.
/// Reductions write one partial per chunk and add the partials in chunk order afterwards.
#ifndef REGULA_CORE_PARALLEL_HPP
#define REGULA_CORE_PARALLEL_HPP

#include <cstddef>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace regula {

/// The number of threads a parallel loop may use: `omp_get_max_threads()` with OpenMP, else 1.
[[nodiscard]] inline int max_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls `f(chunk_index, begin, end)` for the chunks [0, chunk), [chunk, 2·chunk), … of [0, n),
/// the last one possibly shorter, in parallel when more than one chunk exists and no parallel
/// region is active. `f` must not throw (an exception cannot cross an OpenMP region).
/// @pre chunk > 0
template <class F>
void parallel_for_chunks(std::size_t n, std::size_t chunk, F&& f) noexcept {
  if (n == 0) return;
  const std::size_t chunks = (n + chunk - 1) / chunk;
#if defined(_OPENMP)
  if (chunks > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
    const auto count = static_cast<std::int64_t>(chunks);
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < count; ++c) {
      const auto cu = static_cast<std::size_t>(c);
      const std::size_t begin = cu * chunk;
      const std::size_t end = begin + chunk < n ? begin + chunk : n;
      f(cu, begin, end);
    }
    return;
  }
#endif
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * chunk;
    const std::size_t end = begin + chunk < n ? begin + chunk : n;
    f(c, begin, end);
  }
}

/// The most chunks parallel_sum_chunks cuts a range into (its partials live on the stack).
inline constexpr std::size_t max_sum_chunks = 256;

/// The deterministic parallel sum Σ f(begin, end) over chunks of [0, n): chunks of `chunk`
/// items, lengthened so that there are at most max_sum_chunks, each chunk's value computed by
/// `f(begin, end) → double` (in parallel, as parallel_for_chunks) and the values added in chunk
/// order. The chunking depends only on n and chunk, so the sum is bitwise the same for any
/// thread count. `f` must not throw. No allocation.
/// @pre chunk > 0
template <class F>
[[nodiscard]] double parallel_sum_chunks(std::size_t n, std::size_t chunk, F&& f) noexcept {
  if ((n + chunk - 1) / chunk > max_sum_chunks) chunk = (n + max_sum_chunks - 1) / max_sum_chunks;
  double partial[max_sum_chunks] = {};
  parallel_for_chunks(n, chunk, [&](std::size_t k, std::size_t begin, std::size_t end) noexcept {
    partial[k] = f(begin, end);
  });
  double total = 0.0;
  const std::size_t chunks = (n + chunk - 1) / chunk;
  for (std::size_t k = 0; k < chunks; ++k) total += partial[k];
  return total;
}

}  // namespace regula

#endif  // REGULA_CORE_PARALLEL_HPP
