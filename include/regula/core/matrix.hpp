/// @file
/// Matrix aliases and shape checks.
///
/// A batch is a column-major matrix with one column per sample (`features × batch`). Byte for
/// byte this is a row-major `(batch, features)` tensor of libtorch or NumPy, so such buffers map
/// with `Eigen::Map` and no copy. Logits are `classes × batch`.
#ifndef REGULA_CORE_MATRIX_HPP
#define REGULA_CORE_MATRIX_HPP

#include <cstddef>
#include <initializer_list>
#include <type_traits>

#include <Eigen/Core>

#include "regula/core/error.hpp"

namespace regula {

/// Eigen's signed index type, used for every size and index.
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
/// A read-only view of any contiguous column vector of T.
using VectorCRef = Eigen::Ref<const Vector<T>>;
template <class T>
/// A writable view of any contiguous column vector of T.
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

/// The bytes a named argument occupies, for check_no_overlap; empty for an empty view or a
/// missing (null) optional output.
struct Region {
  const char* name = "";
  const unsigned char* begin = nullptr;
  std::size_t bytes = 0;
};

/// The region of a column-major Eigen view, from its first to one past its last element.
template <class M, std::enable_if_t<!std::is_pointer_v<M>, int> = 0>
[[nodiscard]] Region region(const char* name, const M& m) noexcept {
  return {name, reinterpret_cast<const unsigned char*>(m.data()),
          static_cast<std::size_t>(extent(m)) * sizeof(typename M::Scalar)};
}

/// The region of an optional output: empty when `m` is null.
template <class M>
[[nodiscard]] Region region(const char* name, const M* m) noexcept {
  return m != nullptr ? region(name, *m) : Region{name, nullptr, 0};
}

/// Throws if an output shares any byte with an input or with another output (outputs that may
/// alias nothing: gradients written while the inputs are still read, results written in
/// place). The message names the output and what it overlaps; the inputs are checked first, in
/// order, then the outputs against the earlier ones.
inline void check_no_overlap(const char* who, std::initializer_list<Region> inputs,
                             std::initializer_list<Region> outputs) {
  const auto overlap = [](const Region& a, const Region& b) noexcept {
    return a.bytes > 0 && b.bytes > 0 && a.begin < b.begin + b.bytes && b.begin < a.begin + a.bytes;
  };
  for (const Region* o = outputs.begin(); o != outputs.end(); ++o) {
    for (const Region& i : inputs) {
      REGULA_EXPECTS(!overlap(i, *o), who, o->name, " must not overlap ", i.name);
    }
    for (const Region* e = outputs.begin(); e != o; ++e) {
      REGULA_EXPECTS(!overlap(*e, *o), who, o->name, " must not overlap ", e->name);
    }
  }
}

}  // namespace detail
}  // namespace regula

#endif  // REGULA_CORE_MATRIX_HPP
