/// @file
/// The pass\@N coverage loss (Direct Coverage Optimisation; Chen, Raventós, Cheng, Ganguli,
/// Druckmann, NeurIPS 2025, https://arxiv.org/abs/2502.07154): a cross-entropy variant that
/// stops pushing samples the model already gets right with high probability.
#ifndef REGULA_LOSSES_COVERAGE_HPP
#define REGULA_LOSSES_COVERAGE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/reduction.hpp"
#include "regula/kernels/coverage.hpp"
#include "regula/losses/label_probability.hpp"

namespace regula {

/// Options of the coverage loss: N, and the reduction and ignore_index of every loss over
/// labels (detail::LabelLossOptions; `mean` over the samples that are not ignored).
struct CoverageLossOptions : detail::LabelLossOptions<CoverageLossOptions> {
  /// N ≥ 1: the number of attempts of pass\@N. N = 1 is cross-entropy.
  double N = 1.0;
  /// Sets `N` (chainable).
  CoverageLossOptions& with_N(double v) noexcept { return detail::set(*this, N, v); }
};

namespace detail {

template <class T>
T run_coverage(const char* who, const CoverageLossOptions& opt, const MatrixCRef<T>& z,
               const LabelsCRef& labels, VectorRef<T>* losses, MatrixRef<T>* dlogits,
               bool per_sample) {
  REGULA_EXPECTS(opt.N >= 1.0 && std::isfinite(opt.N), who, "N must be finite and >= 1, got ",
                 opt.N);
  const double N = opt.N;
  return run_label_probability<T>(
      who, opt, z, labels, losses, dlogits, per_sample,
      [N](const T* zj, std::size_t n, std::size_t y, T g, T* dz) noexcept {
        return kernels::coverage_column(zj, n, y, N, g, dz);
      });
}

}  // namespace detail

/// The reduced pass\@N coverage loss over softmax. Per sample, with p = softmax(z)_y:
///
///   ℓ = −log(1 − (1 − p)^N),   ∂ℓ/∂z = F·(softmax(z) − e_y),
///   F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N) ∈ (0, 1],
///
/// so the gradient is cross-entropy's scaled by F: F → 1 as p → 0 and F → 0 as p → 1 (N > 1),
/// which limits over-confidence. N = 1 is cross-entropy exactly. Reductions as cross_entropy
/// (mean over non-ignored samples). Numerics: see kernels/coverage.hpp; finite logits of any
/// magnitude give finite values, NaN gives NaN. No allocation.
/// @throws regula::invalid_argument on an empty batch, bad labels or shapes, N < 1 or not
///         finite, or reduction none.
template <class D>
[[nodiscard]] typename D::Scalar coverage_loss(const Eigen::MatrixBase<D>& logits,
                                               const LabelsCRef& labels,
                                               const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::run_coverage<T>("regula::coverage_loss", options, z, labels, nullptr, nullptr,
                                 false);
}

/// The reduced coverage loss and, fused, its gradient with respect to the logits.
template <class D>
typename D::Scalar coverage_loss(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                                 MatrixRef<typename D::Scalar> dlogits,
                                 const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::run_coverage<T>("regula::coverage_loss", options, z, labels, nullptr, &dlogits,
                                 false);
}

/// Per-sample coverage losses (ignored samples get 0); options.reduction is not used.
template <class D>
void coverage_loss_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::run_coverage<T>("regula::coverage_loss_per_sample", options, z, labels, &losses,
                                nullptr, true);
}

/// Per-sample coverage losses and dlogits.col(i) = ∂ℓ_i/∂z_i, each sample's own gradient.
template <class D>
void coverage_loss_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              MatrixRef<typename D::Scalar> dlogits,
                              const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::run_coverage<T>("regula::coverage_loss_per_sample", options, z, labels, &losses,
                                &dlogits, true);
}

}  // namespace regula

#endif  // REGULA_LOSSES_COVERAGE_HPP
