/// @file
/// Raw-pointer kernel of the generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018,
/// arXiv 1805.07836) over one column of logits, with a scalar reference twin.
///
/// With p = softmax(z)_y and q ∈ (0, 1]: ℓ = (1 − p^q)/q and ∂ℓ/∂z = p^q·(softmax(z) − e_y).
/// The truncated loss with threshold k ∈ [0, 1) is ℓ = (1 − k^q)/q, a constant with zero
/// gradient, where p ≤ k. Evaluated in double from log p (kernels/label_probability.hpp) as
/// ℓ = −expm1(q·log p)/q, which keeps a confident sample's small loss (≈ Σ_{j≠y} p_j) to full
/// relative precision where 1 − p^q would round to 0.
#ifndef REGULA_KERNELS_GENERALIZED_CROSS_ENTROPY_HPP
#define REGULA_KERNELS_GENERALIZED_CROSS_ENTROPY_HPP

#include <cmath>
#include <cstddef>

#include "regula/kernels/label_probability.hpp"

namespace regula::kernels {

/// ℓ and F of the generalized cross-entropy from log p, for q ∈ (0, 1] and the truncation's
/// log k (−inf for none). NaN log p gives NaN.
struct GceTerms {
  /// q ∈ (0, 1].
  double q = 0.7;
  /// log k of the truncation k (−inf: none).
  double log_k = -HUGE_VAL;
  /// ℓ = −expm1(q·log p)/q and F = p^q, or (1 − k^q)/q and 0 where log p ≤ log k.
  void operator()(double log_p, double /*log1mp*/, double& loss, double& F) const noexcept {
    if (log_p <= log_k) {
      loss = -std::expm1(q * log_k) / q;
      F = 0.0;
      return;
    }
    loss = -std::expm1(q * log_p) / q;
    F = std::exp(q * log_p);
  }
};

/// Generalized cross-entropy of one column with label y; writes g·p^q·(softmax(z) − e_y) to dz
/// when it is not null (dz must not overlap z). Returns ℓ.
template <class T, class A = default_arch>
double gce_column(const T* z, std::size_t n, std::size_t y, const GceTerms& terms, T g,
                  T* dz) noexcept {
  return label_probability_column<T, A>(z, n, y, terms, g, dz);
}

/// Scalar reference of gce_column, wholly in double.
template <class T>
double gce_column_reference(const T* z, std::size_t n, std::size_t y, const GceTerms& terms, T g,
                            T* dz) noexcept {
  return label_probability_column_reference(z, n, y, terms, g, dz);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_GENERALIZED_CROSS_ENTROPY_HPP
