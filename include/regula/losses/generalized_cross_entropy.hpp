/// @file
/// The generalized cross-entropy L_q (Zhang & Sabuncu, "Generalized Cross Entropy Loss for
/// Training Deep Neural Networks with Noisy Labels", NeurIPS 2018, arXiv 1805.07836), a loss
/// between cross-entropy (q → 0) and MAE (q = 1) that is robust to label noise, with its
/// truncated form.
#ifndef REGULA_LOSSES_GENERALIZED_CROSS_ENTROPY_HPP
#define REGULA_LOSSES_GENERALIZED_CROSS_ENTROPY_HPP

#include <cmath>
#include <cstddef>

#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/reduction.hpp"
#include "regula/kernels/generalized_cross_entropy.hpp"
#include "regula/losses/label_probability.hpp"

namespace regula {

/// Options of the generalized cross-entropy: q, the truncation k, and the reduction and
/// ignore_index of every loss over labels (detail::LabelLossOptions).
struct GeneralizedCrossEntropyOptions : detail::LabelLossOptions<GeneralizedCrossEntropyOptions> {
  /// q ∈ (0, 1]: q → 0 is cross-entropy, q = 1 MAE (1 − p). The paper's default, 0.7.
  double q = 0.7;
  /// k ∈ [0, 1): samples with p ≤ k get the constant loss (1 − k^q)/q and no gradient (the
  /// paper's truncated L_q; 0, the default, truncates nothing).
  double truncation = 0.0;
  /// Sets `q` (chainable).
  GeneralizedCrossEntropyOptions& with_q(double v) noexcept { return detail::set(*this, q, v); }
  /// Sets `truncation` (chainable).
  GeneralizedCrossEntropyOptions& with_truncation(double v) noexcept {
    return detail::set(*this, truncation, v);
  }
};

namespace detail {

/// The binding of generalized_cross_entropy to run_label_probability.
struct Gce {
  using Options = GeneralizedCrossEntropyOptions;
  static constexpr const char* name = "regula::generalized_cross_entropy";
  static constexpr const char* per_sample_name = "regula::generalized_cross_entropy_per_sample";

  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const LabelsCRef& labels,
               const Options& opt, VectorRef<T>* losses, MatrixRef<T>* dlogits, bool per_sample) {
    REGULA_EXPECTS(std::isfinite(opt.q) && opt.q > 0.0 && opt.q <= 1.0, who,
                   "q must be in (0, 1], got ", opt.q);
    REGULA_EXPECTS(opt.truncation >= 0.0 && opt.truncation < 1.0, who,
                   "truncation must be in [0, 1), got ", opt.truncation);
    kernels::GceTerms terms;
    terms.q = opt.q;
    terms.log_k = std::log(opt.truncation);  // −inf for 0
    return run_label_probability<T>(
        who, opt, z, labels, losses, dlogits, per_sample,
        [terms](const T* zj, std::size_t n, std::size_t y, T g, T* dz) noexcept {
          return kernels::gce_column(zj, n, y, terms, g, dz);
        });
  }
};

}  // namespace detail

/// The generalized cross-entropy over softmax. Per sample, with p = softmax(z)_y:
///
///   ℓ = (1 − p^q)/q,   ∂ℓ/∂z = p^q·(softmax(z) − e_y),
///
/// so the gradient is cross-entropy's weighted by p^q: samples the model finds unlikely (often
/// the mislabeled ones) are pushed less. Truncated (k > 0): ℓ = (1 − k^q)/q and no gradient where
/// p ≤ k. Reductions as cross_entropy (`mean` over non-ignored samples, `sum`, `batchmean`).
/// Numerics: kernels/generalized_cross_entropy.hpp; finite logits of any magnitude give finite
/// values, NaN gives NaN. No allocation.
///
/// Calls (detail::LabelLoss): `generalized_cross_entropy(logits, labels, options = {})` and
/// `generalized_cross_entropy(logits, labels, dlogits, options = {})`.
/// @throws regula::invalid_argument on an empty batch, bad labels or shapes, q outside (0, 1],
///         a truncation outside [0, 1), reduction none, or an output overlapping an input.
inline constexpr detail::LabelLoss<detail::Gce> generalized_cross_entropy{};

/// Per-sample generalized cross-entropies (ignored samples get 0), and with `dlogits` each
/// sample's own gradient (detail::LabelLossPerSample): the losses the small-loss selectors take.
inline constexpr detail::LabelLossPerSample<detail::Gce> generalized_cross_entropy_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_GENERALIZED_CROSS_ENTROPY_HPP
