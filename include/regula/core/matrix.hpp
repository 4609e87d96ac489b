/// @file
/// Matrix aliases and shape checks.
///
/// A batch is a column-major matrix with one column per sample (`features × batch`). Byte for
/// byte this is a row-major `(batch, features)` tensor of libtorch or NumPy, so such buffers map
/// with `Eigen::Map` and no copy. Logits are `classes × batch`.
#ifndef REGULA_CORE_MATRIX_HPP
#define REGULA_CORE_MATRIX_HPP

#include <cstddef>
#include <type_traits>

#include <Eigen/Core>

#include "regula/core/error.hpp"

namespace regula {

using Index = Eigen::Index;

/// True for the scalar types regula computes in: `float` and `double`.
template <class T>
inline constexpr bool is_scalar_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// `features × batch`, column-major: column j is sample j.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
/// One value per sample (per-sample losses) or per feature.
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Read-only view of any matrix whose columns are contiguous (a Matrix, a Map, a block of
/// whole columns or of rows within columns). An expression such as `2 * x` binds too, but is
/// first evaluated into a heap temporary; pass evaluated storage in hot paths.
template <class T>
using MatrixCRef = Eigen::Ref<const Matrix<T>>;
/// Writable view of caller-owned, pre-sized storage with contiguous columns.
template <class T>
using MatrixRef = Eigen::Ref<Matrix<T>>;
template <class T>
using VectorCRef = Eigen::Ref<const Vector<T>>;
template <class T>
using VectorRef = Eigen::Ref<Vector<T>>;

namespace detail {

/// Throws unless `a` and `b` have the same shape; the message names both parameters.
template <class A, class B>
void check_same_shape(const char* who, const char* a_name, const A& a, const char* b_name,
                      const B& b) {
  REGULA_EXPECTS(a.rows() == b.rows() && a.cols() == b.cols(), who, a_name,
                 " must have the shape of ", b_name, " (", b.rows(), " x ", b.cols(), "), got ",
                 a.rows(), " x ", a.cols());
}

/// True when the memory of `[a, a + na)` and `[b, b + nb)` overlaps without being identical.
/// Elementwise kernels allow exact aliasing (in place) but not partial overlap.
template <class T>
[[nodiscard]] bool overlaps_partially(const T* a, std::ptrdiff_t na, const T* b,
                                      std::ptrdiff_t nb) noexcept {
  if (a == b) return false;
  return a < b + nb && b < a + na;
}

/// Extent of a column-major view in elements, from its first to one past its last element.
template <class M>
[[nodiscard]] std::ptrdiff_t extent(const M& m) noexcept {
  if (m.size() == 0) return 0;
  return static_cast<std::ptrdiff_t>((m.cols() - 1) * m.outerStride() + m.rows());
}

}  // namespace detail
}  // namespace regula

#endif  // REGULA_CORE_MATRIX_HPP
