/// @file
/// Raw-pointer kernel of the pass\@N coverage loss over one column of logits (Direct Coverage
/// Optimisation, Chen et al., NeurIPS 2025, arXiv 2502.07154), with a scalar reference twin.
///
/// With p = softmax(z)_y: ℓ = −log(1 − (1 − p)^N) and ∂ℓ/∂z = F·(softmax(z) − e_y),
/// F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N). Evaluated stably in double from log p and
/// log(1 − p) (kernels/label_probability.hpp); ℓ = −log(−expm1(N·log(1 − p))), or −log1p(−(1 −
/// p)^N) when (1 − p)^N < 1/2. When N·p < 1e−17, ℓ = −log N − log p and F = 1 (the error, below
/// N·p/2, is under one rounding of a double), so logits of any magnitude give a finite loss. N = 1
/// is cross-entropy exactly.
#ifndef REGULA_KERNELS_COVERAGE_HPP
#define REGULA_KERNELS_COVERAGE_HPP

#include <cmath>
#include <cstddef>
#include <limits>

#include "regula/kernels/label_probability.hpp"

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

/// Coverage loss of one column with label y (kernels/label_probability.hpp with
/// detail::coverage_terms); writes g·F·(softmax(z) − e_y) to dz when it is not null (dz must not
/// overlap z). Returns ℓ. NaN in the column gives NaN.
template <class T, class A = default_arch>
double coverage_column(const T* z, std::size_t n, std::size_t y, double N, T g, T* dz) noexcept {
  return label_probability_column<T, A>(
      z, n, y,
      [N](double log_p, double log1mp, double& loss, double& F) noexcept {
        detail::coverage_terms(log_p, log1mp, N, loss, F);
      },
      g, dz);
}

/// Scalar reference of coverage_column, wholly in double.
template <class T>
double coverage_column_reference(const T* z, std::size_t n, std::size_t y, double N, T g,
                                 T* dz) noexcept {
  return label_probability_column_reference(
      z, n, y,
      [N](double log_p, double log1mp, double& loss, double& F) noexcept {
        detail::coverage_terms(log_p, log1mp, N, loss, F);
      },
      g, dz);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_COVERAGE_HPP
