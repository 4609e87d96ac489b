/// @file
/// Dual-head distillation (DHKD; Yang et al., arXiv 2411.08937, 2024): the student's shared
/// features feed two heads; cross-entropy (or any loss) trains head 1 only, a logit-level
/// distillation loss (DHKD: BinaryKL-Norm) trains head 2 only, and both gradients meet in the
/// shared features. Evaluation uses head 1.
///
///   L = γ·L₁(z⁽¹⁾) + α·L₂(z⁽²⁾),   ∂L/∂f = γ·J₁ᵀ ∂L₁/∂z⁽¹⁾ + α·J₂ᵀ ∂L₂/∂z⁽²⁾
///
/// DualHeadKD::forward_backward runs the two losses (any callables with the shape of a regula
/// fused loss) and writes each head's logit gradient, already weighted; you backpropagate each
/// through its own head, then DualHeadKD::combine sums what reaches the shared features.
///
/// Gradient alignment (DHKD's `--ga`, PCGrad-style, helper/optimizer.py): with g₁ the
/// gradient of the first objective (CE) and g₂ the second's, if ⟨g₂, g₁⟩ < 0 then
/// g₂ ← g₂ − (⟨g₂, g₁⟩/‖g₁‖²)·g₁; the result is g₁ + g₂. DHKD applies it to the flattened
/// gradient of all student parameters (backbone and both heads); `gradient_alignment` does
/// exactly that on any flattened vectors you pass, and `combine` applies it to the feature
/// gradients when `align(true)` (the cheap variant: one projection on ∂L/∂f instead of two full
/// backward passes). Note that on the full parameter vector the projection also moves head 1's
/// parameters (g₁ is non-zero there), as in the official code.
///
/// Defaults (DHKD README, CIFAR-100): γ = 1, α = 1, BinaryKL-Norm at T = 2, alignment on.
#ifndef REGULA_LOSSES_DUAL_HEAD_HPP
#define REGULA_LOSSES_DUAL_HEAD_HPP

#include <cmath>
#include <type_traits>
#include <utility>

#include "regula/core/checks.hpp"
#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"

namespace regula {

/// Options of DualHeadKD, a plain struct with chainable `with_*` setters.
struct DualHeadOptions {
  /// γ, the weight of loss 1; finite in the scalar type.
  double weight1 = 1.0;
  /// α, the weight of loss 2; finite in the scalar type.
  double weight2 = 1.0;
  /// Project head 2's feature gradient off head 1's where they conflict (see combine).
  bool align = false;

  /// Sets `weight1` (chainable).
  DualHeadOptions& with_weight1(double g) noexcept { return detail::set(*this, weight1, g); }
  /// Sets `weight2` (chainable).
  DualHeadOptions& with_weight2(double a) noexcept { return detail::set(*this, weight2, a); }
  /// Sets `align` (chainable).
  DualHeadOptions& with_align(bool on) noexcept { return detail::set(*this, align, on); }
};

/// The losses of one dual-head step: total = γ·loss1 + α·loss2.
template <class T>
struct DualHeadLosses {
  /// weight1·loss1 + weight2·loss2.
  T total;
  /// The first head's loss.
  T loss1;
  /// The second head's loss.
  T loss2;
};

/// PCGrad-style alignment of DHKD: out = g₁ + g₂', g₂' = g₂ − (⟨g₂, g₁⟩/‖g₁‖²)·g₁ when
/// ⟨g₂, g₁⟩ < 0, else g₂. Any shapes (flattened parameter vectors, or `features × batch`
/// gradients), all three the same shape; out may alias either input. Returns ⟨g₂, g₁⟩ (in
/// double). Dot products in double; no allocation.
/// @throws regula::invalid_argument if the shapes differ or out partly overlaps g1 or g2.
template <class T>
double gradient_alignment(const MatrixCRef<T>& g1, const MatrixCRef<T>& g2, MatrixRef<T> out) {
  constexpr const char* who = "regula::gradient_alignment";
  detail::check_same_shape(who, "g2", g2, "g1", g1);
  // Elementwise: out may be g1 or g2 itself, never a partial overlap of either.
  detail::check_output(who, "g1", g1, "out", out);
  detail::check_output(who, "g2", g2, "out", out);
  double dot = 0.0, nn = 0.0;
  for (Index j = 0; j < g1.cols(); ++j) {
    for (Index i = 0; i < g1.rows(); ++i) {
      const double a = static_cast<double>(g1(i, j));
      dot += static_cast<double>(g2(i, j)) * a;
      nn += a * a;
    }
  }
  const double c = (dot < 0.0 && nn > 0.0) ? dot / nn : 0.0;
  const T s1 = static_cast<T>(1.0 - c);
  for (Index j = 0; j < g1.cols(); ++j) {
    for (Index i = 0; i < g1.rows(); ++i) out(i, j) = s1 * g1(i, j) + g2(i, j);
  }
  return dot;
}

/// The dual-head step. `Loss1`/`Loss2` are callables `T(const MatrixCRef<T>& z, MatrixRef<T> dz)`
/// returning a reduced loss and writing its gradient, e.g.
///
/// ```cpp
/// auto ce = [&](const regula::MatrixCRef<float>& z, regula::MatrixRef<float> dz) {
///   return regula::cross_entropy(z, labels, dz);
/// };
/// auto bkln = [&](const regula::MatrixCRef<float>& z, regula::MatrixRef<float> dz) {
///   return regula::binary_kl_norm(z, teacher, dz, regula::KDLossOptions{}.with_temperature(2.0));
/// };
/// regula::DualHeadKD<float> dh(regula::DualHeadOptions{}.with_align(true));
/// auto l = dh.forward_backward(z1, z2, ce, bkln, dz1, dz2);
/// // backprop dz1 through head 1 -> df1, dz2 through head 2 -> df2, then:
/// dh.combine(df1, df2, df);
/// ```
template <class T>
class DualHeadKD {
  static_assert(is_scalar_v<T>, "regula::DualHeadKD<T>: T must be float or double");

 public:
  /// @throws regula::invalid_argument if a weight is not finite.
  explicit DualHeadKD(DualHeadOptions options = {}) : options_(options) {
    detail::check_finite_in<T>("regula::DualHeadKD", "weight1", options_.weight1);
    detail::check_finite_in<T>("regula::DualHeadKD", "weight2", options_.weight2);
  }

  /// The options it was built with.
  [[nodiscard]] const DualHeadOptions& options() const noexcept { return options_; }

  /// Runs loss1 on head 1's logits and loss2 on head 2's, writes γ·∂L₁/∂z⁽¹⁾ to dhead1 and
  /// α·∂L₂/∂z⁽²⁾ to dhead2, and returns the losses (unweighted) and the weighted total.
  template <class Loss1, class Loss2>
  DualHeadLosses<T> forward_backward(const MatrixCRef<T>& head1, const MatrixCRef<T>& head2,
                                     Loss1&& loss1, Loss2&& loss2, MatrixRef<T> dhead1,
                                     MatrixRef<T> dhead2) const {
    const T l1 = std::forward<Loss1>(loss1)(head1, dhead1);
    const T l2 = std::forward<Loss2>(loss2)(head2, dhead2);
    const T w1 = static_cast<T>(options_.weight1);
    const T w2 = static_cast<T>(options_.weight2);
    if (w1 != T(1)) dhead1 *= w1;
    if (w2 != T(1)) dhead2 *= w2;
    return {w1 * l1 + w2 * l2, l1, l2};
  }

  /// The gradient reaching the shared features: dfeatures = dfeat1 + dfeat2, with dfeat2
  /// projected off dfeat1 first when `align()` and they conflict (see gradient_alignment).
  void combine(const MatrixCRef<T>& dfeat1, const MatrixCRef<T>& dfeat2,
               MatrixRef<T> dfeatures) const {
    if (options_.align) {
      (void)gradient_alignment<T>(dfeat1, dfeat2, dfeatures);
      return;
    }
    constexpr const char* who = "regula::DualHeadKD::combine";
    detail::check_same_shape(who, "dfeat2", dfeat2, "dfeat1", dfeat1);
    detail::check_output(who, "dfeat1", dfeat1, "dfeatures", dfeatures);
    detail::check_output(who, "dfeat2", dfeat2, "dfeatures", dfeatures);
    dfeatures = dfeat1 + dfeat2;
  }

 private:
  DualHeadOptions options_;
};

}  // namespace regula

#endif  // REGULA_LOSSES_DUAL_HEAD_HPP
