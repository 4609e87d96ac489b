/// @file
/// The symmetric cross-entropy (Wang, Ma, Chen, Luo, Yi, Bailey, "Symmetric Cross Entropy for
/// Robust Learning with Noisy Labels", ICCV 2019, arXiv 1908.06112): cross-entropy plus the
/// reverse cross-entropy, robust to label noise. With α = 0 and A = −1 it is MAE (1 − p).
#ifndef REGULA_LOSSES_SYMMETRIC_CROSS_ENTROPY_HPP
#define REGULA_LOSSES_SYMMETRIC_CROSS_ENTROPY_HPP

#include <cmath>
#include <cstddef>

#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/reduction.hpp"
#include "regula/kernels/symmetric_cross_entropy.hpp"
#include "regula/losses/label_probability.hpp"

namespace regula {

/// Options of the symmetric cross-entropy: α, β, the log-0 clamp A, and the reduction and
/// ignore_index of every loss over labels (detail::LabelLossOptions).
struct SymmetricCrossEntropyOptions : detail::LabelLossOptions<SymmetricCrossEntropyOptions> {
  /// α ≥ 0, the weight of cross-entropy (the authors' CIFAR-10 setting, 0.1; CIFAR-100: 6).
  double alpha = 0.1;
  /// β ≥ 0, the weight of the reverse cross-entropy (CIFAR-10: 1.0; CIFAR-100: 0.1).
  double beta = 1.0;
  /// A < 0, the value log 0 is clamped to in the reverse cross-entropy. Default log 1e-4
  /// (≈ −9.21): both authors' implementations clip the one-hot target at 1e-4 (the paper's text
  /// gives A = −4).
  double A = -9.210340371976182;
  /// Sets `alpha` (chainable).
  SymmetricCrossEntropyOptions& with_alpha(double v) noexcept {
    return detail::set(*this, alpha, v);
  }
  /// Sets `beta` (chainable).
  SymmetricCrossEntropyOptions& with_beta(double v) noexcept { return detail::set(*this, beta, v); }
  /// Sets `A` (chainable).
  SymmetricCrossEntropyOptions& with_A(double v) noexcept { return detail::set(*this, A, v); }
};

namespace detail {

/// The binding of symmetric_cross_entropy to run_label_probability.
struct Sce {
  using Options = SymmetricCrossEntropyOptions;
  static constexpr const char* name = "regula::symmetric_cross_entropy";
  static constexpr const char* per_sample_name = "regula::symmetric_cross_entropy_per_sample";

  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const LabelsCRef& labels,
               const Options& opt, VectorRef<T>* losses, MatrixRef<T>* dlogits, bool per_sample) {
    REGULA_EXPECTS(std::isfinite(opt.alpha) && opt.alpha >= 0.0, who,
                   "alpha must be finite and >= 0, got ", opt.alpha);
    REGULA_EXPECTS(std::isfinite(opt.beta) && opt.beta >= 0.0, who,
                   "beta must be finite and >= 0, got ", opt.beta);
    REGULA_EXPECTS(std::isfinite(opt.A) && opt.A < 0.0, who, "A must be finite and < 0, got ",
                   opt.A);
    kernels::SceTerms terms;
    terms.alpha = opt.alpha;
    terms.beta = opt.beta;
    terms.A = opt.A;
    return run_label_probability<T>(
        who, opt, z, labels, losses, dlogits, per_sample,
        [terms](const T* zj, std::size_t n, std::size_t y, T g, T* dz) noexcept {
          return kernels::sce_column(zj, n, y, terms, g, dz);
        });
  }
};

}  // namespace detail

/// The symmetric cross-entropy over softmax. Per sample, with p = softmax(z)_y:
///
///   ℓ = α·(−log p) + β·(−A)·(1 − p),   ∂ℓ/∂z = (α − β·A·p)·(softmax(z) − e_y),
///
/// where (−A)·(1 − p) is the reverse cross-entropy −Σ_k p_k·log q_k of the one-hot target with
/// log 0 clamped to A. Reductions as cross_entropy (`mean` over non-ignored samples, `sum`,
/// `batchmean`). Numerics: kernels/symmetric_cross_entropy.hpp; finite logits of any magnitude
/// give finite values, NaN gives NaN. No allocation.
///
/// Calls (detail::LabelLoss): `symmetric_cross_entropy(logits, labels, options = {})` and
/// `symmetric_cross_entropy(logits, labels, dlogits, options = {})`.
/// @throws regula::invalid_argument on an empty batch, bad labels or shapes, α or β negative or
///         not finite, A ≥ 0 or not finite, reduction none, or an output overlapping an input.
inline constexpr detail::LabelLoss<detail::Sce> symmetric_cross_entropy{};

/// Per-sample symmetric cross-entropies (ignored samples get 0), and with `dlogits` each
/// sample's own gradient (detail::LabelLossPerSample).
inline constexpr detail::LabelLossPerSample<detail::Sce> symmetric_cross_entropy_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_SYMMETRIC_CROSS_ENTROPY_HPP
