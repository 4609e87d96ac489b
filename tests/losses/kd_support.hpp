// Checks shared by the tests of the logit-level distillation losses: golden values from
// tests/golden/kd.txt (PyTorch), central-difference gradients, per-sample consistency, extreme
// and NaN inputs, argument errors, and the absence of allocation.
//
// A loss is described by a struct L with
//   static constexpr const char* name;         // golden record prefix and function name
//   static constexpr bool zero_sum;            // softmax-based: gradient columns sum to 0
//   using Options; static Options options();   // the options of the golden run
//   template <class T> static T loss(z, v, o); static T loss(z, v, dz, o);
//   template <class T> static void per_sample(z, v, losses, dz, o);
#ifndef REGULA_TESTS_LOSSES_KD_SUPPORT_HPP
#define REGULA_TESTS_LOSSES_KD_SUPPORT_HPP

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/core/reduction.hpp"
#include "regula/losses/kd_common.hpp"

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace regula::test::kd {

constexpr Index kB = 5;
constexpr Index kC = 7;

inline const Golden& golden() {
  static const Golden g("kd.txt");
  return g;
}

template <class T>
Matrix<T> gmat(const std::string& name, Index rows = kC, Index cols = kB) {
  const auto& v = golden()[name];
  REQUIRE(static_cast<Index>(v.size()) == rows * cols);
  return Eigen::Map<const Eigen::MatrixXd>(v.data(), rows, cols).cast<T>();
}

inline double gscalar(const std::string& name) { return golden()[name].at(0); }

template <class T>
double value_tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

/// max |a − b| / max(1, |b|) elementwise.
template <class M>
double rel_err(const M& a, const Eigen::MatrixXd& b) {
  const Eigen::MatrixXd d = a.template cast<double>() - b;
  return (d.array().abs() / b.array().abs().max(1.0)).maxCoeff();
}

/// Logits with a wide spread, deterministic.
template <class T>
Matrix<T> spread(Index rows, Index cols, double scale, unsigned salt) {
  Matrix<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    const double u = std::sin(1.7 * static_cast<double>(i) + 0.3 * salt) * 43758.5453;
    x(i) = static_cast<T>(scale * (2.0 * (u - std::floor(u)) - 1.0));
  }
  return x;
}

template <class L, class T>
void golden_checks() {
  const Matrix<T> z = gmat<T>("z"), v = gmat<T>("v");
  Matrix<T> dz(kC, kB);
  const auto opt = L::options();
  const double want = gscalar(std::string(L::name) + "_loss");
  const Eigen::MatrixXd want_grad = gmat<double>(std::string(L::name) + "_grad");
  const T loss = L::loss(z, v, dz, opt);
  CHECK(std::abs(static_cast<double>(loss) - want) <=
        value_tol<T>() * std::max(1.0, std::abs(want)));
  CHECK(rel_err(dz, want_grad) <= value_tol<T>());
  CHECK(static_cast<double>(L::loss(z, v, opt)) == Approx(static_cast<double>(loss)).epsilon(1e-6));
}

/// The reduced loss and gradient against central differences in double.
template <class L>
void gradient_check() {
  const Eigen::MatrixXd z = gmat<double>("z"), v = gmat<double>("v");
  const auto opt = L::options();
  const Eigen::MatrixXd w = Eigen::MatrixXd::Constant(1, 1, 1.0);
  const double err = gradcheck(
      z, 1, 1, [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& y) { y(0, 0) = L::loss(x, v, opt); },
      [&](const Eigen::MatrixXd& wv, Eigen::MatrixXd& dx) {
        (void)L::loss(z, v, dx, opt);
        dx *= wv(0, 0);
      },
      w);
  CHECK(err < fd_tol);
}

/// Per-sample losses sum to B·batchmean; per-sample gradients are B times the batchmean ones.
template <class L, class T>
void per_sample_checks() {
  const Matrix<T> z = gmat<T>("z"), v = gmat<T>("v");
  auto opt = L::options();
  opt.with_reduction(Reduction::batchmean);
  Matrix<T> dz(kC, kB), dzs(kC, kB);
  Vector<T> losses(kB);
  const T loss = L::loss(z, v, dz, opt);
  L::per_sample(z, v, losses, dzs, opt);
  CHECK(static_cast<double>(losses.sum()) ==
        Approx(static_cast<double>(loss) * kB).epsilon(1e-5).margin(1e-7));
  CHECK(rel_err(dzs, (dz.template cast<double>() * static_cast<double>(kB))) <= 1e-5);
  // sum and mean scale the same values.
  opt.with_reduction(Reduction::sum);
  CHECK(static_cast<double>(L::loss(z, v, opt)) ==
        Approx(static_cast<double>(losses.sum())).epsilon(1e-5).margin(1e-7));
  opt.with_reduction(Reduction::mean);
  CHECK(static_cast<double>(L::loss(z, v, opt)) ==
        Approx(static_cast<double>(losses.sum()) / (kB * kC)).epsilon(1e-5).margin(1e-7));
  if (L::zero_sum) {
    const Eigen::VectorXd col = dz.template cast<double>().colwise().sum().transpose();
    CHECK(col.cwiseAbs().maxCoeff() < (std::is_same_v<T, float> ? 1e-6 : 1e-15));
  }
}

/// ±1e4 logits in float stay finite; NaN in gives NaN out for that sample only.
template <class L, class T>
void extreme_checks() {
  const Index C = 37, B = 6;
  const Matrix<T> z = spread<T>(C, B, 1e4, 1), v = spread<T>(C, B, 1e4, 2);
  Matrix<T> dz(C, B);
  Vector<T> losses(B);
  const T loss = L::loss(z, v, dz, L::options());
  CHECK(std::isfinite(loss));
  CHECK(dz.allFinite());
  Matrix<T> zn = spread<T>(C, B, 3, 3);
  zn(4, 2) = std::numeric_limits<T>::quiet_NaN();
  L::per_sample(zn, v, losses, dz, L::options());
  CHECK(std::isnan(losses[2]));
  CHECK(std::isfinite(losses[1]));
  CHECK(dz.col(2).hasNaN());
  CHECK(dz.col(1).allFinite());
  CHECK(std::isnan(L::loss(zn, v, L::options())));
}

/// Bad arguments throw regula::invalid_argument naming function and parameter.
template <class L, class T>
void error_checks() {
  const Matrix<T> z = gmat<T>("z"), v = gmat<T>("v");
  const Matrix<T> v_bad(kC + 1, kB);
  Matrix<T> dz(kC, kB), dz_bad(kC, kB + 1);
  Vector<T> short_losses(kB - 1);
  const std::string fn = std::string("regula::") + L::name;
  CHECK_THROWS_WITH(L::loss(z, v_bad, L::options()),
                    Catch::Contains(fn) && Catch::Contains("teacher logits must have the shape"));
  CHECK_THROWS_AS(L::loss(z, v_bad, L::options()), regula::invalid_argument);
  CHECK_THROWS_WITH(L::loss(z, v, dz_bad, L::options()), Catch::Contains("dstudent"));
  CHECK_THROWS_WITH(L::per_sample(z, v, short_losses, dz, L::options()), Catch::Contains("losses"));
  auto none = L::options();
  none.with_reduction(Reduction::none);
  CHECK_THROWS_WITH(L::loss(z, v, none),
                    Catch::Contains("reduction") && Catch::Contains("got none"));
  const Matrix<T> empty(kC, 0);
  CHECK_THROWS_WITH(L::loss(empty, empty, L::options()), Catch::Contains("at least one sample"));
  Matrix<T> inplace = z;
  CHECK_THROWS_WITH(L::loss(inplace, v, inplace, L::options()),
                    Catch::Contains("must not overlap"));
}

/// Temperature checks for losses that have one.
template <class L, class T>
void temperature_checks() {
  const Matrix<T> z = gmat<T>("z"), v = gmat<T>("v");
  for (double t : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    auto o = L::options();
    o.with_temperature(t);
    CHECK_THROWS_WITH(L::loss(z, v, o), Catch::Contains(std::string("regula::") + L::name) &&
                                            Catch::Contains("temperature must be finite and > 0"));
  }
  // Finite temperatures whose T² or 1/T² over- or underflows in T (issue 20, item 9: T = 1e20
  // in float gave a loss of 0 and a zero gradient) are refused, naming the parameter.
  const double lo = regula::detail::temperature_min<T>(), hi = regula::detail::temperature_max<T>();
  for (double t : {hi * 10.0, lo / 10.0, std::is_same_v<T, float> ? 1e20 : 1e200}) {
    CAPTURE(t);
    auto o = L::options();
    o.with_temperature(t);
    CHECK_THROWS_WITH(L::loss(z, v, o), Catch::Contains(std::string("regula::") + L::name) &&
                                            Catch::Contains("temperature must be in ["));
  }
  // Inside the range the loss and its gradient stay finite.
  for (double t : {hi / 2.0, lo * 2.0}) {
    CAPTURE(t);
    auto o = L::options();
    o.with_temperature(t);
    Matrix<T> dz(kC, kB);
    CHECK(std::isfinite(static_cast<double>(L::loss(z, v, dz, o))));
    CHECK(dz.allFinite());
  }
}

/// Warm calls on evaluated storage, maps and column blocks do not allocate.
template <class L, class T>
void no_malloc_checks() {
  const Index C = 2100, B = 9;  // past the stack-buffer size for the recompute path
  const Matrix<T> z = spread<T>(C, B, 5, 4), v = spread<T>(C, B, 5, 5);
  Matrix<T> dz(C, B);
  Vector<T> losses(B);
  const Matrix<T> zs = spread<T>(kC, kB, 5, 6), vs = spread<T>(kC, kB, 5, 7);
  Matrix<T> dzs(kC, kB);
  double acc = 0.0;
  {
    NoMalloc guard;
    acc += static_cast<double>(L::loss(z, v, dz, L::options()));
    acc += static_cast<double>(L::loss(zs, vs, dzs, L::options()));
    acc += static_cast<double>(L::loss(z.leftCols(4), v.leftCols(4), dz.leftCols(4), L::options()));
    L::per_sample(z, v, losses, dz, L::options());
  }
  CHECK(std::isfinite(acc));
}

template <class L, class T>
void standard_checks() {
  golden_checks<L, T>();
  per_sample_checks<L, T>();
  extreme_checks<L, T>();
  error_checks<L, T>();
  no_malloc_checks<L, T>();
}

}  // namespace regula::test::kd

/// Declares the struct describing a KDLossOptions-based loss `fn` with golden prefix `fn`.
#define REGULA_KD_LOSS_TRAITS(Struct, fn, OptionsType, opts_expr, zero)               \
  struct Struct {                                                                     \
    static constexpr const char* name = #fn;                                          \
    static constexpr bool zero_sum = zero;                                            \
    using Options = OptionsType;                                                      \
    static Options options() { return opts_expr; }                                    \
    template <class Z, class V>                                                       \
    static auto loss(const Z& z, const V& v, const Options& o) {                      \
      return regula::fn(z, v, o);                                                     \
    }                                                                                 \
    template <class Z, class V, class G>                                              \
    static auto loss(const Z& z, const V& v, G&& g, const Options& o) {               \
      return regula::fn(z, v, regula::MatrixRef<typename Z::Scalar>(g), o);           \
    }                                                                                 \
    template <class Z, class V, class Lo, class G>                                    \
    static void per_sample(const Z& z, const V& v, Lo&& l, G&& g, const Options& o) { \
      regula::fn##_per_sample(z, v, regula::VectorRef<typename Z::Scalar>(l),         \
                              regula::MatrixRef<typename Z::Scalar>(g), o);           \
    }                                                                                 \
  }

#endif
