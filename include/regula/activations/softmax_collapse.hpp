/// @file
/// Softmax Collapse (SC) metrics as the logger of Prieto et al. ("Grokking at the Edge of
/// Numerical Stability", ICLR 2025, logger.py) defines them: the fraction of samples whose
/// softmax has absorbed every non-maximal term, and the fraction of exactly-zero per-sample
/// losses. In PyTorch's float32 cross-entropy a collapsed, correctly classified sample has a
/// loss and a label gradient of exactly 0; regula's cross-entropy keeps both accurate
/// (log1p(Σ_{j≠y} e^{z_j − z_y}) and −Σ_{j≠y} p_j), so its losses are 0 only where that value
/// underflows. softmax_collapse_fraction is the precision-level definition and does not depend
/// on the loss; examples/grokking.cpp shows how to count PyTorch's float32 zero terms.
///
/// Summation-order caveat: whether Σ_j exp(z_j − max) rounds to exactly 1 depends on the order
/// of the additions. Adding left to right from the maximum absorbs each small term on its own
/// once the margin exceeds ln(2/ε) (16.64 in float, 36.74 in double); a lane-parallel or pairwise
/// sum first adds the small terms together, so with C − 1 of them the collapse margin is about
/// ln(2/ε) + ln(C − 1). The default (`CollapseSum::simd`) uses the reduction of regula's softmax
/// kernels (kernels::sum_exp); `CollapseSum::sequential` adds left to right as a naive loop does.
#ifndef REGULA_ACTIVATIONS_SOFTMAX_COLLAPSE_HPP
#define REGULA_ACTIVATIONS_SOFTMAX_COLLAPSE_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/kernels/softmax.hpp"

namespace regula {

/// The summation order used to decide collapse.
enum class CollapseSum : std::uint8_t {
  simd,       ///< the lane-parallel sum of regula's softmax kernels (kernels::sum_exp)
  sequential  ///< left to right, in class order (kernels::sum_exp_reference)
};

/// True when Σ_j exp(z_j − max z) == 1 exactly in T for one column of n ≥ 1 logits.
template <class T>
[[nodiscard]] bool softmax_collapsed(const T* z, std::size_t n,
                                     CollapseSum order = CollapseSum::simd) noexcept {
  const T m = kernels::column_max(z, n);
  const T s = order == CollapseSum::simd
                  ? kernels::sum_exp(z, n, m, static_cast<T*>(nullptr))
                  : kernels::sum_exp_reference(z, n, m, static_cast<T*>(nullptr));
  return s == T(1);
}

/// The fraction of samples (columns of `classes × batch` logits) whose softmax has collapsed:
/// Σ_j exp(z_j − max z) == 1 exactly in the logits' precision (pass float logits to measure
/// float32 training, double for float64). NaN columns do not count as collapsed.
/// @throws regula::invalid_argument if logits has no column or no row.
template <class D>
[[nodiscard]] double softmax_collapse_fraction(const Eigen::MatrixBase<D>& logits,
                                               CollapseSum order = CollapseSum::simd) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  REGULA_EXPECTS(z.cols() > 0 && z.rows() > 0, "regula::softmax_collapse_fraction",
                 "logits must hold at least one sample and one class, got ", z.rows(), " x ",
                 z.cols());
  std::size_t collapsed = 0;
  for (Index j = 0; j < z.cols(); ++j) {
    collapsed +=
        softmax_collapsed(z.col(j).data(), static_cast<std::size_t>(z.rows()), order) ? 1U : 0U;
  }
  return static_cast<double>(collapsed) / static_cast<double>(z.cols());
}

/// The fraction of per-sample losses that are exactly 0 (the logger's "zero terms").
/// @throws regula::invalid_argument if losses is empty.
template <class D>
[[nodiscard]] double zero_loss_fraction(const Eigen::MatrixBase<D>& losses) {
  REGULA_EXPECTS(losses.size() > 0, "regula::zero_loss_fraction", "losses must not be empty, got ",
                 losses.rows(), " x ", losses.cols());
  using T = typename D::Scalar;
  const auto zeros = (losses.derived().array() == T(0)).count();
  return static_cast<double>(zeros) / static_cast<double>(losses.size());
}

}  // namespace regula

#endif  // REGULA_ACTIVATIONS_SOFTMAX_COLLAPSE_HPP
