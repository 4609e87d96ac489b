/// @file
/// StableMax and log-StableMax over each sample's column, forward and vector–Jacobian product
/// (Prieto, Barsbey, Mediano, Birdal, "Grokking at the Edge of Numerical Stability", ICLR 2025,
/// https://arxiv.org/abs/2501.04697).
///
///   s(x) = x + 1 (x ≥ 0),  1/(1 − x) (x < 0);   StableMax(z)_i = s(z_i) / Σ_j s(z_j).
///
/// s is positive, increasing and C¹ (s(0) = s'(0) = 1) but not C² at 0. Unlike softmax,
/// StableMax is not shift-invariant: the absolute logit scale matters. With
/// r(x) = s'(x)/s(x) = 1/(1 + |x|), the Jacobian is ∂π_i/∂z_j = r_j·π_j·(δ_ij − π_i).
///
/// Shapes, aliasing and threads as in activations/softmax.hpp. Numerics (kernels/stablemax.hpp):
/// s in T, Σ s in double (the authors cast to float64), log s as ±log1p|x|, never the log of a
/// ratio. Finite logits of any magnitude give finite outputs; NaN gives NaN; ±inf gives NaN.
#ifndef REGULA_ACTIVATIONS_STABLEMAX_HPP
#define REGULA_ACTIVATIONS_STABLEMAX_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/columns.hpp"
#include "regula/core/matrix.hpp"
#include "regula/kernels/stablemax.hpp"

namespace regula {

/// y = StableMax(z) per column.
/// @throws regula::invalid_argument if y's shape differs from z's or y partly overlaps z.
template <class D>
void stablemax(const Eigen::MatrixBase<D>& z, MatrixRef<typename D::Scalar> y) {
  using T = typename D::Scalar;
  static_assert(is_scalar_v<T>, "regula::stablemax: the scalar type must be float or double");
  const MatrixCRef<T> zr(z.derived());
  detail::check_output("regula::stablemax", "z", zr, "y", y);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::stablemax_tile<T>(a...); },
      [](auto... a) noexcept { kernels::stablemax_column<T>(a...); }, y, zr);
}

/// StableMax(z) in a new matrix.
template <class D>
[[nodiscard]] Matrix<typename D::Scalar> stablemax(const Eigen::MatrixBase<D>& z) {
  Matrix<typename D::Scalar> y(z.rows(), z.cols());
  stablemax(z, y);
  return y;
}

/// y = log StableMax(z) = log s(z) − log Σ s(z) per column.
/// @throws regula::invalid_argument if y's shape differs from z's or y partly overlaps z.
template <class D>
void log_stablemax(const Eigen::MatrixBase<D>& z, MatrixRef<typename D::Scalar> y) {
  using T = typename D::Scalar;
  static_assert(is_scalar_v<T>, "regula::log_stablemax: the scalar type must be float or double");
  const MatrixCRef<T> zr(z.derived());
  detail::check_output("regula::log_stablemax", "z", zr, "y", y);
  detail::map_columns(
      kernels::tile_rows, [](auto... a) noexcept { kernels::log_stablemax_tile<T>(a...); },
      [](auto... a) noexcept { kernels::log_stablemax_column<T>(a...); }, y, zr);
}

/// log StableMax(z) in a new matrix.
template <class D>
[[nodiscard]] Matrix<typename D::Scalar> log_stablemax(const Eigen::MatrixBase<D>& z) {
  Matrix<typename D::Scalar> y(z.rows(), z.cols());
  log_stablemax(z, y);
  return y;
}

namespace detail {

template <bool Log, class D1, class D2, class D3>
void stablemax_backward_impl(const char* who, const Eigen::MatrixBase<D1>& z,
                             const Eigen::MatrixBase<D2>& y, const Eigen::MatrixBase<D3>& dy,
                             MatrixRef<typename D1::Scalar> dz) {
  using T = typename D1::Scalar;
  static_assert(std::is_same_v<T, typename D2::Scalar> && std::is_same_v<T, typename D3::Scalar>,
                "regula::stablemax_backward: z, y and dy must have one scalar type");
  const MatrixCRef<T> zr(z.derived());
  const MatrixCRef<T> yr(y.derived());
  const MatrixCRef<T> dyr(dy.derived());
  check_same_shape(who, "y", yr, "z", zr);
  check_same_shape(who, "dy", dyr, "z", zr);
  check_output(who, "dy", dyr, "dz", dz);
  check_output(who, "y", yr, "dz", dz);
  check_output(who, "z", zr, "dz", dz);
  if constexpr (Log) {
    map_columns(
        kernels::tile_rows,
        [](auto... a) noexcept { kernels::log_stablemax_backward_tile<T>(a...); },
        [](auto... a) noexcept { kernels::log_stablemax_backward_column<T>(a...); }, dz, zr, yr,
        dyr);
  } else {
    map_columns(
        kernels::tile_rows, [](auto... a) noexcept { kernels::stablemax_backward_tile<T>(a...); },
        [](auto... a) noexcept { kernels::stablemax_backward_column<T>(a...); }, dz, zr, yr, dyr);
  }
}

}  // namespace detail

/// Vector–Jacobian product of StableMax at z, with y = StableMax(z) and dy = ∂L/∂y:
/// dz_j = r(z_j)·y_j·(dy_j − ⟨dy, y⟩) per column, r(x) = 1/(1 + |x|); the dot product is
/// accumulated in double. dz may be dy, y or z itself.
/// @throws regula::invalid_argument on shape mismatch or partial overlap.
template <class D1, class D2, class D3>
void stablemax_backward(const Eigen::MatrixBase<D1>& z, const Eigen::MatrixBase<D2>& y,
                        const Eigen::MatrixBase<D3>& dy, MatrixRef<typename D1::Scalar> dz) {
  detail::stablemax_backward_impl<false>("regula::stablemax_backward", z, y, dy, dz);
}

/// Vector–Jacobian product of log-StableMax at z, with y = log StableMax(z):
/// dz_j = r(z_j)·(dy_j − exp(y_j)·Σ dy) per column, Σ dy accumulated in double. dz may be dy,
/// y or z itself.
/// @throws regula::invalid_argument on shape mismatch or partial overlap.
template <class D1, class D2, class D3>
void log_stablemax_backward(const Eigen::MatrixBase<D1>& z, const Eigen::MatrixBase<D2>& y,
                            const Eigen::MatrixBase<D3>& dy, MatrixRef<typename D1::Scalar> dz) {
  detail::stablemax_backward_impl<true>("regula::log_stablemax_backward", z, y, dy, dz);
}

}  // namespace regula

#endif  // REGULA_ACTIVATIONS_STABLEMAX_HPP
