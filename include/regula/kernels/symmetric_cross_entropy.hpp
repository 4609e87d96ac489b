/// @file
/// Raw-pointer kernel of the symmetric cross-entropy (Wang, Ma, Chen, Luo, Yi, Bailey, ICCV 2019,
/// arXiv 1908.06112) over one column of logits, with a scalar reference twin.
///
/// With p = softmax(z)_y: ℓ = α·CE + β·RCE, CE = −log p, and the reverse cross-entropy
/// RCE = −Σ_k p_k·log q_k of the one-hot target q with log 0 clamped to A < 0, that is
/// RCE = −A·(1 − p). ∂ℓ/∂z = (α − β·A·p)·(softmax(z) − e_y). Evaluated in double from log p and
/// log(1 − p) (kernels/label_probability.hpp): 1 − p = exp(log(1 − p)) never cancels.
#ifndef REGULA_KERNELS_SYMMETRIC_CROSS_ENTROPY_HPP
#define REGULA_KERNELS_SYMMETRIC_CROSS_ENTROPY_HPP

#include <cmath>
#include <cstddef>

#include "regula/kernels/label_probability.hpp"

namespace regula::kernels {

/// ℓ and F of the symmetric cross-entropy from log p and log(1 − p), for α, β ≥ 0 and A < 0.
/// NaN gives NaN.
struct SceTerms {
  /// α ≥ 0, the weight of cross-entropy.
  double alpha = 0.1;
  /// β ≥ 0, the weight of the reverse cross-entropy.
  double beta = 1.0;
  /// A < 0, log 0's clamp (default log 1e-4).
  double A = -9.210340371976182;
  /// ℓ = α·(−log p) + β·(−A)·(1 − p) and F = α − β·A·p.
  void operator()(double log_p, double log1mp, double& loss, double& F) const noexcept {
    // α·(−log p) + β·(−A)·(1 − p): two non-negative terms. α = 0 (MAE, RCE alone) drops the
    // first, which is +inf where p underflows even the double range (a column spanning more
    // than the largest double).
    loss = (alpha != 0.0 ? alpha * -log_p : 0.0) + beta * -A * std::exp(log1mp);
    F = alpha + beta * -A * std::exp(log_p);
  }
};

/// Symmetric cross-entropy of one column with label y; writes g·(α − β·A·p)·(softmax(z) − e_y)
/// to dz when it is not null (dz must not overlap z). Returns ℓ.
template <class T, class A = default_arch>
double sce_column(const T* z, std::size_t n, std::size_t y, const SceTerms& terms, T g,
                  T* dz) noexcept {
  return label_probability_column<T, A>(z, n, y, terms, g, dz);
}

/// Scalar reference of sce_column, wholly in double.
template <class T>
double sce_column_reference(const T* z, std::size_t n, std::size_t y, const SceTerms& terms, T g,
                            T* dz) noexcept {
  return label_probability_column_reference(z, n, y, terms, g, dz);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_SYMMETRIC_CROSS_ENTROPY_HPP
