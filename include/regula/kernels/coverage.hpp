/// @file
/// Raw-pointer kernel of the pass\@N coverage loss over one column of logits (Direct Coverage
/// Optimisation, Chen et al., NeurIPS 2025, arXiv 2502.07154), with a scalar reference twin.
///
/// With p = softmax(z)_y: ℓ = −log(1 − (1 − p)^N) and ∂ℓ/∂z = F·(softmax(z) − e_y),
/// F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N). Evaluated stably in double from log p and
/// log(1 − p): log1p(−p) when p < 1/2, else log Σ_{j≠y} e^{z_j−m} − log Σ_j e^{z_j−m};
/// ℓ = −log(−expm1(N·log(1 − p))), or −log1p(−(1 − p)^N) when (1 − p)^N < 1/2. When
/// N·p < 1e−17, ℓ = −log N − log p and F = 1 (the error, below N·p/2, is under one rounding of a
/// double), so logits of any magnitude give a finite loss. N = 1 is cross-entropy exactly.
#ifndef REGULA_KERNELS_COVERAGE_HPP
#define REGULA_KERNELS_COVERAGE_HPP

#include <cmath>
#include <cstddef>
#include <limits>

#include "regula/core/simd.hpp"
#include "regula/kernels/softmax.hpp"

namespace regula::kernels {

namespace detail {

/// ℓ and F from log p, log(1 − p) and N (all in double).
inline void coverage_terms(double log_p, double log1mp, double N, double& loss,
                           double& F) noexcept {
  if (N == 1.0) {
    loss = -log_p;
    F = 1.0;
    return;
  }
  const double p = std::exp(log_p);
  if (N * p < 1e-17) {
    loss = -(std::log(N) + log_p);
    F = 1.0;
    return;
  }
  const double a = N * log1mp;
  const double denom = -std::expm1(a);  // 1 − (1 − p)^N
  // −log(1 − e^a) without cancellation on either side: log1p(−e^a) while e^a < 1/2 (a
  // confident sample, whose loss ≈ (1 − p)^N is tiny), log(−expm1(a)) otherwise.
  loss = a < -0.6931471805599453 ? -std::log1p(-std::exp(a)) : -std::log(denom);
  F = N * p * std::exp((N - 1.0) * log1mp) / denom;
}

}  // namespace detail

/// Coverage loss of one column with label y; writes g·F·(softmax(z) − e_y) to dz when it is not
/// null (dz must not overlap z). Returns ℓ. NaN in the column gives NaN.
template <class T, class A = default_arch>
double coverage_column(const T* z, std::size_t n, std::size_t y, double N, T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const T S = sum_exp<T, A>(z, n, m, dz);
  double Sd = static_cast<double>(S);
  double log_s = std::log(Sd);
  double log_p = (static_cast<double>(z[y]) - static_cast<double>(m)) - log_s;
  double log1mp;
  double other;  // Σ_{j≠y} exp(z_j − m)
  if (std::exp(log_p) < 0.5) {
    log1mp = std::log1p(-std::exp(log_p));
    other = Sd - std::exp(static_cast<double>(z[y]) - static_cast<double>(m));
  } else {
    // p ≥ 1/2: y is the maximum up to a factor 2, and S − e_y and log S − (z_y − m) would
    // cancel. Both are formed from the directly summed complement instead.
    other = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
      if (j != y) other += std::exp(static_cast<double>(z[j]) - static_cast<double>(m));
    }
    const double ey = std::exp(static_cast<double>(z[y]) - static_cast<double>(m));
    Sd = ey + other;
    log_s = std::log(Sd);
    log_p = -std::log1p(other / ey);
    log1mp = std::log(other) - log_s;
  }
  double loss = 0.0;
  double F = 0.0;
  detail::coverage_terms(log_p, log1mp, N, loss, F);
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * F / Sd);
    const B sb(scale);
    std::size_t i = 0;
    for (; i + W <= n; i += W) (sb * B::load_unaligned(dz + i)).store_unaligned(dz + i);
    for (; i < n; ++i) dz[i] *= scale;
    // g·F·(p_y − 1) = −g·F·Σ_{j≠y} e_j / S, without the cancellation of p_y − 1.
    dz[y] = static_cast<T>(-static_cast<double>(g) * F * other / Sd);
  }
  return loss;
}

/// Scalar reference of coverage_column, wholly in double.
template <class T>
double coverage_column_reference(const T* z, std::size_t n, std::size_t y, double N, T g,
                                 T* dz) noexcept {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < n; ++j)
    m = static_cast<double>(z[j]) > m ? static_cast<double>(z[j]) : m;
  double S = 0.0;
  double other = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double e = std::exp(static_cast<double>(z[j]) - m);
    S += e;
    if (j != y) other += e;
  }
  const double ey = std::exp(static_cast<double>(z[y]) - m);
  const double log_p =
      ey >= other ? -std::log1p(other / ey) : (static_cast<double>(z[y]) - m) - std::log(S);
  const double log1mp = std::log(other) - std::log(S);
  double loss = 0.0;
  double F = 0.0;
  detail::coverage_terms(log_p, log1mp, N, loss, F);
  if (dz != nullptr) {
    for (std::size_t j = 0; j < n; ++j) {
      const double p = std::exp(static_cast<double>(z[j]) - m) / S;
      dz[j] = static_cast<T>(static_cast<double>(g) * F * (j == y ? -other / S : p));
    }
  }
  return loss;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_COVERAGE_HPP
