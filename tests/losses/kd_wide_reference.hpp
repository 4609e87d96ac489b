// Long-double restatements of the distillation losses' definitions, for the tests of columns
// whose logits span past the largest finite T (fuzz finding kd-extreme-span) and of BinaryKL
// with huge logits (binary-kl-huge). Long double is the x87 80-bit format on x86 (exponent to
// 1e4932), where differences of the largest floats and doubles and their multiples by 1/T stay
// finite, so that the definitions can be evaluated directly.
#ifndef REGULA_TESTS_LOSSES_KD_WIDE_REFERENCE_HPP
#define REGULA_TESTS_LOSSES_KD_WIDE_REFERENCE_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

#include "regula/core/matrix.hpp"

#include "support/catch.hpp"

namespace regula::test::kd_wide {

using LD = long double;

/// Student and teacher logits, 4 classes × 2 samples: column 0 spans past the largest T
/// (p = (½, ½, 0, 0), q = (½, 0, ½, 0), with log p_2 and log q_1 of −2·max/T), column 1 is
/// ordinary.
template <class T>
void extreme_pair(Matrix<T>& z, Matrix<T>& v) {
  const T M = std::numeric_limits<T>::max();
  z.resize(4, 2);
  v.resize(4, 2);
  z << M, T(0.5), M, T(-1), -M, T(2), T(0.5), T(0.25);
  v << M, T(1), -M, T(0), M, T(1.5), T(0), T(-0.5);
}

/// One column, 7 classes, whose student and teacher maxima lie far apart (the fuzz finding
/// reverse-kl-huge-relative, times `scale`): the student's top class holds the largest T, the
/// teacher's a tenth of it (double: 1e300) and 100 at the student's top; D ≈ |v − z| there.
/// Formed jointly, u = k·((v − z) − (mv − mz)) rounds by ε·max at every class, far beyond D's
/// accuracy.
template <class T>
void far_maxima_column(Matrix<T>& z, Matrix<T>& v, T scale) {
  const T M = std::numeric_limits<T>::max();
  const T big = std::is_same_v<T, float> ? T(1e30) : T(1e300);
  z.resize(7, 1);
  v.resize(7, 1);
  z << T(6.8125), T(1e37), T(5.375), T(5.375), T(5.375), T(5.375), M;
  v << T(8.5), T(1e37), -big, big, T(0.001), T(6.5), T(100);
  z *= scale;
  v *= scale;
}

/// log softmax of k·x in long double over the indices other than `skip` (−inf at skip).
template <class T>
std::vector<LD> log_softmax(const T* x, std::size_t n, LD k,
                            std::size_t skip = static_cast<std::size_t>(-1)) {
  LD m = -std::numeric_limits<LD>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) m = std::max(m, static_cast<LD>(x[i]));
  }
  LD s = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) s += std::exp(k * (static_cast<LD>(x[i]) - m));
  }
  std::vector<LD> out(n, -std::numeric_limits<LD>::infinity());
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) out[i] = k * (static_cast<LD>(x[i]) - m) - std::log(s);
  }
  return out;
}

/// KL(e^a ‖ e^b) = Σ e^{a_i}·(a_i − b_i) over the i where e^{a_i} > 0 (a, b log-probabilities).
inline LD kl(const std::vector<LD>& a, const std::vector<LD>& b) {
  LD s = 0.0L;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::exp(a[i]) > 0.0L) s += std::exp(a[i]) * (a[i] - b[i]);
  }
  return s;
}

inline LD softplus(LD x) {
  return x > 0.0L ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

inline LD sigmoid(LD x) {
  return x >= 0.0L ? 1.0L / (1.0L + std::exp(-x)) : std::exp(x) / (1.0L + std::exp(x));
}

/// KL(Bern(σ(b)) ‖ Bern(σ(a))) = σ(b)·log(σ(b)/σ(a)) + σ(−b)·log(σ(−b)/σ(−a)), each log a
/// difference of softplus values.
inline LD bernoulli_kl(LD b, LD a) {
  return sigmoid(b) * (softplus(-a) - softplus(-b)) + sigmoid(-b) * (softplus(a) - softplus(b));
}

/// |got − want| ≤ tol·|want| (and got finite, want finite).
inline void check_close(double got, LD want, double tol) {
  CAPTURE(got, static_cast<double>(want));
  REQUIRE(std::isfinite(got));
  REQUIRE(std::isfinite(static_cast<double>(want)));
  CHECK(std::fabs(static_cast<LD>(got) - want) <= static_cast<LD>(tol) * std::fabs(want));
}

/// Every element of a gradient column within tol of the largest |want| of the column.
template <class Col>
void check_gradient(const Col& got, const std::vector<LD>& want, double tol) {
  LD scale = 0.0L;
  for (LD w : want) scale = std::max(scale, std::fabs(w));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto gi = static_cast<LD>(got[static_cast<Index>(i)]);
    CAPTURE(i, static_cast<double>(gi), static_cast<double>(want[i]));
    REQUIRE(std::isfinite(static_cast<double>(gi)));
    CHECK(std::fabs(gi - want[i]) <= static_cast<LD>(tol) * scale);
  }
}

/// The tolerance of a loss or gradient element of the wide fallback in T: a few roundings of T.
template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-13;
}

/// The tolerance of an ordinary column's loss or gradient (the SIMD kernels).
template <class T>
double loose() {
  return std::is_same_v<T, float> ? 1e-4 : 1e-11;
}

/// The tolerance of column j of extreme_pair: the wide fallback's for column 0, else loose.
template <class T>
double tol_col(Index j) {
  return j == 0 ? tol<T>() : loose<T>();
}

}  // namespace regula::test::kd_wide

#endif  // REGULA_TESTS_LOSSES_KD_WIDE_REFERENCE_HPP
