/// @file
/// Raw-pointer kernels of nested dropout: keep a prefix of a column, zero the rest, and the
/// inverse-CDF draw of a truncation index. Each with a scalar reference twin.
#ifndef REGULA_KERNELS_NESTED_DROPOUT_HPP
#define REGULA_KERNELS_NESTED_DROPOUT_HPP

#include <cstddef>
#include <cstring>

#include "regula/core/simd.hpp"

namespace regula::kernels {

/// y[j] = x[j] for j < keep, y[j] = 0·x[j] for keep ≤ j < n (so a dropped NaN or ±inf gives NaN,
/// as `feature * mask` does in PyTorch). y may equal x.
/// @pre keep ≤ n
template <class T, class A = default_arch>
void prefix_keep(const T* x, std::size_t n, std::size_t keep, T* y) noexcept {
  if (y != x && keep > 0) std::memcpy(y, x, keep * sizeof(T));
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B zero(T(0));
  std::size_t j = keep;
  for (; j + W <= n; j += W) (B::load_unaligned(x + j) * zero).store_unaligned(y + j);
  for (; j < n; ++j) y[j] = x[j] * T(0);
}

/// Scalar reference of prefix_keep.
template <class T>
void prefix_keep_reference(const T* x, std::size_t n, std::size_t keep, T* y) noexcept {
  for (std::size_t j = 0; j < n; ++j) y[j] = j < keep ? x[j] : x[j] * T(0);
}

/// The smallest b in 1..n with u < cdf[b − 1] (inverse CDF by binary search), where cdf[k] is
/// P(index ≤ k + 1), nondecreasing, cdf[n − 1] = 1 and 0 ≤ u < 1.
inline std::size_t inverse_cdf(const double* cdf, std::size_t n, double u) noexcept {
  std::size_t lo = 0;
  std::size_t hi = n - 1;  // cdf[n - 1] = 1 > u
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (u < cdf[mid]) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo + 1;
}

/// Scalar reference of inverse_cdf: a linear scan.
inline std::size_t inverse_cdf_reference(const double* cdf, std::size_t n, double u) noexcept {
  for (std::size_t k = 0; k < n; ++k) {
    if (u < cdf[k]) return k + 1;
  }
  return n;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_NESTED_DROPOUT_HPP
