/// @file
/// Softmax and log-softmax over each sample's column, forward and vector–Jacobian product.
///
/// Shapes: z is `classes × batch` (one column per sample, column-major); outputs have z's shape,
/// are caller-owned and pre-sized, and may be the input itself (in place) but may not partly
/// overlap it. An empty matrix is a no-op. Nothing allocates when the arguments are evaluated
/// matrices, maps or column blocks (an expression such as `2 * z` is first evaluated into a
/// temporary). Columns run in parallel under OpenMP; results do not depend on the thread count.
///
/// Numerics (see kernels/softmax.hpp): the column maximum is subtracted first, so finite logits
/// of any magnitude (±1e30 in float) give finite outputs; Σ exp is accumulated in T. NaN in a
/// column gives NaN in that whole column, +inf gives NaN, as in PyTorch.
#ifndef REGULA_ACTIVATIONS_SOFTMAX_HPP
#define REGULA_ACTIVATIONS_SOFTMAX_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/columns.hpp"
#include "regula/core/matrix.hpp"
#include "regula/kernels/softmax.hpp"

namespace regula {

/// y = softmax(z) per column: y_ij = exp(z_ij) / Σ_k exp(z_kj) (`torch.softmax(z, dim=-1)` on
/// the row-major (batch, classes) view).
/// @throws regula::invalid_argument if y's shape differs from z's or y partly overlaps z.
template <class D>
void softmax(const Eigen::MatrixBase<D>& z, MatrixRef<typename D::Scalar> y) {
  using T = typename D::Scalar;
  static_assert(is_scalar_v<T>, "regula::softmax: the scalar type must be float or double");
  const MatrixCRef<T> zr(z.derived());
  detail::check_output("regula::softmax", "z", zr, "y", y);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::softmax_tile<T>(a...); },
      [](auto... a) noexcept { kernels::softmax_column<T>(a...); }, y, zr);
}

/// softmax(z) in a new matrix.
template <class D>
[[nodiscard]] Matrix<typename D::Scalar> softmax(const Eigen::MatrixBase<D>& z) {
  Matrix<typename D::Scalar> y(z.rows(), z.cols());
  softmax(z, y);
  return y;
}

/// Vector–Jacobian product of softmax: given y = softmax(z) and dy = ∂L/∂y, writes
/// dz = ∂L/∂z = y ⊙ (dy − ⟨dy, y⟩) per column. dz may be dy or y itself (each element of dz
/// depends only on the same element of y and dy once ⟨dy, y⟩ is known).
/// @throws regula::invalid_argument if dy's or dz's shape differs from y's, or dz partly
///         overlaps dy or y, or aliases one of them with another layout.
template <class D1, class D2>
void softmax_backward(const Eigen::MatrixBase<D1>& y, const Eigen::MatrixBase<D2>& dy,
                      MatrixRef<typename D1::Scalar> dz) {
  using T = typename D1::Scalar;
  static_assert(std::is_same_v<T, typename D2::Scalar>,
                "regula::softmax_backward: y and dy must have one scalar type");
  const MatrixCRef<T> yr(y.derived());
  const MatrixCRef<T> dyr(dy.derived());
  detail::check_same_shape("regula::softmax_backward", "dy", dyr, "y", yr);
  detail::check_output("regula::softmax_backward", "dy", dyr, "dz", dz);
  detail::check_output("regula::softmax_backward", "y", yr, "dz", dz);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::softmax_backward_tile<T>(a...); },
      [](auto... a) noexcept { kernels::softmax_backward_column<T>(a...); }, dz, yr, dyr);
}

/// y = log_softmax(z) per column: y_ij = (z_ij − m_j) − log Σ_k exp(z_kj − m_j), m_j the column
/// maximum (`torch.log_softmax(z, dim=-1)`).
/// @throws regula::invalid_argument if y's shape differs from z's or y partly overlaps z.
template <class D>
void log_softmax(const Eigen::MatrixBase<D>& z, MatrixRef<typename D::Scalar> y) {
  using T = typename D::Scalar;
  static_assert(is_scalar_v<T>, "regula::log_softmax: the scalar type must be float or double");
  const MatrixCRef<T> zr(z.derived());
  detail::check_output("regula::log_softmax", "z", zr, "y", y);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::log_softmax_tile<T>(a...); },
      [](auto... a) noexcept { kernels::log_softmax_column<T>(a...); }, y, zr);
}

/// log_softmax(z) in a new matrix.
template <class D>
[[nodiscard]] Matrix<typename D::Scalar> log_softmax(const Eigen::MatrixBase<D>& z) {
  Matrix<typename D::Scalar> y(z.rows(), z.cols());
  log_softmax(z, y);
  return y;
}

/// Vector–Jacobian product of log-softmax: given y = log_softmax(z) and dy, writes
/// dz = dy − exp(y)·Σ dy per column. dz may be dy or y itself.
/// @throws regula::invalid_argument on shape mismatch or overlap, as softmax_backward.
template <class D1, class D2>
void log_softmax_backward(const Eigen::MatrixBase<D1>& y, const Eigen::MatrixBase<D2>& dy,
                          MatrixRef<typename D1::Scalar> dz) {
  using T = typename D1::Scalar;
  static_assert(std::is_same_v<T, typename D2::Scalar>,
                "regula::log_softmax_backward: y and dy must have one scalar type");
  const MatrixCRef<T> yr(y.derived());
  const MatrixCRef<T> dyr(dy.derived());
  detail::check_same_shape("regula::log_softmax_backward", "dy", dyr, "y", yr);
  detail::check_output("regula::log_softmax_backward", "dy", dyr, "dz", dz);
  detail::check_output("regula::log_softmax_backward", "y", yr, "dz", dz);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::log_softmax_backward_tile<T>(a...); },
      [](auto... a) noexcept { kernels::log_softmax_backward_column<T>(a...); }, dz, yr, dyr);
}

}  // namespace regula

#endif  // REGULA_ACTIVATIONS_SOFTMAX_HPP
