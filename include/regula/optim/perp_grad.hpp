/// @file
/// ⊥Grad, the perpendicular gradient (Prieto, Barsbey, Mediano, Birdal, "Grokking at the Edge of
/// Numerical Stability", ICLR 2025, https://arxiv.org/abs/2501.04697; official `orthograd.py`):
/// before the base optimizer's step, remove from each parameter tensor's gradient its component
/// along the weights (the direction that only scales the logits up, "naïve loss minimisation").
#ifndef REGULA_OPTIM_PERP_GRAD_HPP
#define REGULA_OPTIM_PERP_GRAD_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/kernels/perp_grad.hpp"

namespace regula {

/// Options of perp_grad.
struct PerpGradOptions {
  /// Rescale g⊥ to the norm of g, as the official code does (the paper's formula is the bare
  /// projection: set false for it).
  bool preserve_norm = true;
  /// The official epsilon in ⟨w, w⟩ + eps and ‖g⊥‖ + eps.
  double eps = 1e-30;
  /// g is treated as parallel to w when ‖g⊥‖ ≤ max(parallel_tol, 16·ε_T)·‖g‖ (ε_T the machine
  /// epsilon of the scalar type: below that, g⊥ is the rounding noise of g itself); g⊥ is then
  /// set to 0 instead of being rescaled (the official code would blow the noise up to ‖g‖).
  double parallel_tol = 1e-12;
  /// Sets `preserve_norm` (chainable).
  PerpGradOptions& with_preserve_norm(bool v) noexcept {
    return detail::set(*this, preserve_norm, v);
  }
  /// Sets `eps` (chainable).
  PerpGradOptions& with_eps(double v) noexcept { return detail::set(*this, eps, v); }
  /// Sets `parallel_tol` (chainable).
  PerpGradOptions& with_parallel_tol(double v) noexcept {
    return detail::set(*this, parallel_tol, v);
  }
};

/// What perp_grad did to one tensor (for logging).
struct PerpGradResult {
  double coefficient = 0.0;  ///< c = ⟨w, g⟩ / (⟨w, w⟩ + eps), the removed multiple of w
  double norm_before = 0.0;  ///< ‖g‖
  double norm_after = 0.0;   ///< ‖g'‖ after projection (and rescale)
  bool parallel = false;     ///< the g ∥ w guard fired and g was set to 0
};

/// ⊥Grad of one parameter tensor, in place on its gradient:
///
///   g⊥ = g − (⟨w, g⟩ / (⟨w, w⟩ + eps))·w,   g' = g⊥·‖g‖ / (‖g⊥‖ + eps) (preserve_norm).
///
/// Apply it to each parameter tensor separately (per tensor, not globally), then call the base
/// optimizer. The three dot products are accumulated in double from products formed in double,
/// whatever T is. Guards: w = 0 leaves g unchanged (c = 0); g ∥ w (see
/// PerpGradOptions::parallel_tol) sets g to 0 and reports `parallel`. w and g are any two matrices
/// (or vectors) of one shape with contiguous columns; nothing allocates. NaN in w or g gives NaN in
/// g.
/// @throws regula::invalid_argument if the shapes differ, g overlaps w, or eps or parallel_tol
///         is negative or not finite.
template <class D>
PerpGradResult perp_grad(const Eigen::MatrixBase<D>& w, MatrixRef<typename D::Scalar> g,
                         const PerpGradOptions& options = {}) {
  using T = typename D::Scalar;
  static_assert(is_scalar_v<T>, "regula::perp_grad: the scalar type must be float or double");
  const MatrixCRef<T> wr(w.derived());
  const char* who = "regula::perp_grad";
  detail::check_same_shape(who, "g", g, "w", wr);
  // An infinite eps would silently zero g (the coefficient and the rescale both divide by it).
  REGULA_EXPECTS(options.eps >= 0.0 && std::isfinite(options.eps), who,
                 "eps must be finite and >= 0, got ", options.eps);
  REGULA_EXPECTS(options.parallel_tol >= 0.0 && std::isfinite(options.parallel_tol), who,
                 "parallel_tol must be finite and >= 0, got ", options.parallel_tol);
  const auto ew = detail::extent(wr);
  const auto eg = detail::extent(g);
  REGULA_EXPECTS(ew == 0 || eg == 0 || wr.data() + ew <= g.data() || g.data() + eg <= wr.data(),
                 who, "g must not overlap w");
  const auto n = static_cast<std::size_t>(wr.rows());
  kernels::PerpGradDots d;
  for (Index j = 0; j < wr.cols(); ++j)
    kernels::perp_grad_dots(wr.col(j).data(), g.col(j).data(), n, d);
  PerpGradResult r;
  r.norm_before = std::sqrt(d.gg);
  r.coefficient = d.ww == 0.0 ? 0.0 : d.wg / (d.ww + options.eps);
  const T c = static_cast<T>(r.coefficient);
  double pp = 0.0;
  for (Index j = 0; j < wr.cols(); ++j)
    pp += kernels::perp_grad_project(wr.col(j).data(), g.col(j).data(), n, c);
  double norm = std::sqrt(pp);
  const double tol =
      std::max(options.parallel_tol, 16.0 * static_cast<double>(std::numeric_limits<T>::epsilon()));
  if (norm <= tol * r.norm_before && r.norm_before > 0.0) {
    g.setZero();
    r.parallel = true;
    r.norm_after = 0.0;
    return r;
  }
  if (options.preserve_norm) {
    const double scale = r.norm_before / (norm + options.eps);
    g *= static_cast<T>(scale);
    norm *= scale;
  }
  r.norm_after = norm;
  return r;
}

}  // namespace regula

#endif  // REGULA_OPTIM_PERP_GRAD_HPP
