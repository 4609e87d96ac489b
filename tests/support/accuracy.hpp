// Per-element relative accuracy against a long-double reference, the judge of the
// relative-accuracy suite (tests/accuracy/).
//
// Each element i of a column is judged against
//     scale_i = max(|exact_i|, floor · max_k |exact_k|)   (k over the same column),
// so an element that is small only because its exact value crosses zero is measured on its
// column's scale, while a large element that comes out as 0 counts fully. floor = 1e-3 unless a
// test says otherwise. An element whose scale is 0 must be exactly 0.
#ifndef REGULA_TESTS_SUPPORT_ACCURACY_HPP
#define REGULA_TESTS_SUPPORT_ACCURACY_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <string>

#include <Eigen/Core>

namespace regula::test {

using LongMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;

inline constexpr double kInf = std::numeric_limits<double>::infinity();

/// The worst element of one judged comparison, with where it happened.
struct ElementError {
  double rel = 0.0;       ///< |got − exact| / scale of the worst element
  Eigen::Index row = -1;  ///< its position
  Eigen::Index col = -1;
  long double exact = 0.0L;  ///< its exact value
  double got = 0.0;          ///< what the code returned

  std::string describe() const {
    std::ostringstream s;
    s.precision(10);
    s << "rel " << rel << " at (" << row << ", " << col << "): got " << got << ", exact "
      << static_cast<double>(exact);
    return s.str();
  }
};

/// The largest relative error of got against exact, column by column (see the file comment).
/// A NaN in got where exact is finite counts as an infinite error.
/// `abs_floor` (0 unless given) is a last absolute scale, for elements that T can only hold
/// as subnormals.
template <class Derived>
ElementError column_relative_error(const Eigen::MatrixBase<Derived>& got, const LongMatrix& exact,
                                   double floor = 1e-3, long double abs_floor = 0.0L) {
  ElementError worst;
  for (Eigen::Index j = 0; j < exact.cols(); ++j) {
    long double col_max = 0.0L;
    for (Eigen::Index i = 0; i < exact.rows(); ++i)
      col_max = std::max(col_max, std::fabs(exact(i, j)));
    for (Eigen::Index i = 0; i < exact.rows(); ++i) {
      const long double e = exact(i, j);
      const long double g = static_cast<long double>(got(i, j));
      const long double scale =
          std::max({std::fabs(e), static_cast<long double>(floor) * col_max, abs_floor});
      double rel;
      if (std::isnan(static_cast<double>(g))) {
        rel = kInf;
      } else if (scale == 0.0L) {
        rel = g == 0.0L ? 0.0 : kInf;
      } else {
        rel = static_cast<double>(std::fabs(g - e) / scale);
      }
      if (rel > worst.rel || worst.row < 0) {
        worst.rel = rel;
        worst.row = i;
        worst.col = j;
        worst.exact = e;
        worst.got = static_cast<double>(g);
      }
    }
  }
  return worst;
}

/// The relative error of one scalar, against max(|exact|, abs_floor).
inline double scalar_relative_error(double got, long double exact, long double abs_floor = 0.0L) {
  if (std::isnan(got)) return kInf;
  const long double scale = std::max(std::fabs(exact), abs_floor);
  if (scale == 0.0L) return got == 0.0 ? 0.0 : kInf;
  return static_cast<double>(std::fabs(static_cast<long double>(got) - exact) / scale);
}

}  // namespace regula::test

#endif
