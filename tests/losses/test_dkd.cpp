#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>

#include "regula/losses/dkd.hpp"
#include "regula/losses/kd_kl.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::DKDOptions;
using regula::Index;
using regula::Labels;
using regula::Reduction;
template <class T>
using Mat = regula::Matrix<T>;

Labels golden_labels() {
  const auto& v = kd::golden()["labels"];
  Labels y(static_cast<Index>(v.size()));
  for (Index i = 0; i < y.size(); ++i)
    y[i] = static_cast<std::int64_t>(v[static_cast<std::size_t>(i)]);
  return y;
}

TEMPLATE_TEST_CASE("dkd matches mdistiller's DKD (PyTorch, float64)", "[losses][dkd]", float,
                   double) {
  using T = TestType;
  const Mat<T> z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  const Labels y = golden_labels();
  Mat<T> dz(kd::kC, kd::kB);
  struct Case {
    const char* name;
    double alpha, beta;
  };
  for (const Case c :
       {Case{"dkd", 1.0, 8.0}, Case{"dkd_tckd", 1.0, 0.0}, Case{"dkd_nckd", 0.0, 1.0}}) {
    const auto o = DKDOptions{}.with_alpha(c.alpha).with_beta(c.beta).with_temperature(4.0);
    const T loss = regula::dkd(z, v, y, dz, o);
    const double want = kd::gscalar(std::string(c.name) + "_loss");
    CHECK(std::abs(static_cast<double>(loss) - want) <= kd::value_tol<T>() * std::max(1.0, want));
    CHECK(kd::rel_err(dz, kd::gmat<double>(std::string(c.name) + "_grad")) <= kd::value_tol<T>());
    CHECK(static_cast<double>(regula::dkd(z, v, y, o)) ==
          Approx(static_cast<double>(loss)).epsilon(1e-6));
    const Eigen::VectorXd sums = dz.template cast<double>().colwise().sum().transpose();
    CHECK(sums.cwiseAbs().maxCoeff() < (std::is_same_v<T, float> ? 1e-5 : 1e-14));
  }
}

TEMPLATE_TEST_CASE("dkd reproduces the test vector of algorithms.md 10", "[losses][dkd]", float,
                   double) {
  using T = TestType;
  Mat<T> z(3, 1), v(3, 1), dz(3, 1);
  z << T(1), T(2), T(0.5);
  v << T(0.5), T(2.5), T(-1);
  Labels y(1);
  y << 1;
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-9;
  const T loss = regula::dkd(z, v, y, dz);  // defaults: alpha 1, beta 8, T 4
  CHECK(static_cast<double>(loss) == Approx(1.234908668).margin(tol));
  CHECK(static_cast<double>(dz(0)) == Approx(-1.778117268).margin(tol));
  CHECK(static_cast<double>(dz(1)) == Approx(-0.354876988).margin(tol));
  CHECK(static_cast<double>(dz(2)) == Approx(2.132994256).margin(tol));
  CHECK(static_cast<double>(regula::dkd(z, v, y, DKDOptions{}.with_beta(0.0))) ==
        Approx(0.256678758).margin(tol));
  CHECK(static_cast<double>(regula::dkd(z, v, y, DKDOptions{}.with_alpha(0.0).with_beta(1.0))) ==
        Approx(0.122278739).margin(tol));
}

TEST_CASE("dkd: KD = TCKD + (1 - q_t) * NCKD per sample", "[losses][dkd]") {
  const auto z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  const Labels y = golden_labels();
  for (double t : {1.0, 4.0}) {
    Eigen::VectorXd tckd(kd::kB), nckd(kd::kB), kl(kd::kB);
    regula::dkd_per_sample(z, v, y, tckd,
                           DKDOptions{}.with_alpha(1).with_beta(0).with_temperature(t));
    regula::dkd_per_sample(z, v, y, nckd,
                           DKDOptions{}.with_alpha(0).with_beta(1).with_temperature(t));
    regula::kd_kl_per_sample(z, v, kl, regula::KDLossOptions{}.with_temperature(t));
    for (Index i = 0; i < kd::kB; ++i) {
      const Eigen::VectorXd q = (v.col(i) / t).array().exp().matrix();
      const double qt = q[y[i]] / q.sum();
      CHECK(kl[i] == Approx(tckd[i] + (1.0 - qt) * nckd[i]).epsilon(1e-12));
    }
  }
}

TEST_CASE("dkd gradient matches central differences (double)", "[losses][dkd][gradcheck]") {
  const Eigen::MatrixXd z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  const Labels y = golden_labels();
  for (const auto& o :
       {DKDOptions{}, DKDOptions{}.with_temperature(1.0).with_alpha(0.5).with_beta(2.0)}) {
    const double err = regula::test::gradcheck(
        z, 1, 1,
        [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& out) {
          out(0, 0) = regula::dkd(x, v, y, o);
        },
        [&](const Eigen::MatrixXd& w, Eigen::MatrixXd& dx) {
          (void)regula::dkd(z, v, y, dx, o);
          dx *= w(0, 0);
        },
        // The loss is about 40 here (T^2 = 16, beta = 8): at the default step of 1e-6 the
        // rounding of the two evaluations is ~1e-16*40/2e-6 = 2e-9 per ulp, and the check sat at
        // 0.9e-8 before; at 1e-5 it is ten times smaller and the truncation error stays ~1e-10.
        Eigen::MatrixXd::Constant(1, 1, 1.0), 1e-5);
    CHECK(err < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("dkd stays finite where mdistiller's formulas fail", "[losses][dkd]", float,
                   double) {
  using T = TestType;
  // A confident student: in float, 1 - p_t rounds to 0 and mdistiller's log(1 - p_t) is -inf.
  Mat<T> z = Mat<T>::Zero(10, 2), v = Mat<T>::Zero(10, 2), dz(10, 2);
  z(3, 0) = T(60);
  z(3, 1) = T(30);
  v(3, 0) = T(2);
  v(1, 1) = T(1);
  Labels y(2);
  y << 3, 3;
  const auto o = DKDOptions{}.with_temperature(1.0);
  const T loss = regula::dkd(z, v, y, dz, o);
  CHECK(std::isfinite(loss));
  CHECK(dz.allFinite());
  // The same in double, where it is representable, agrees.
  Eigen::MatrixXd dzd(10, 2);
  const double ld =
      regula::dkd(z.template cast<double>().eval(), v.template cast<double>().eval(), y, dzd, o);
  CHECK(static_cast<double>(loss) == Approx(ld).epsilon(1e-5));
  // Logits of +-1e4 (past mdistiller's -1000 mask) in float.
  const auto zb = kd::spread<T>(37, 6, 1e4, 1), vb = kd::spread<T>(37, 6, 1e4, 2);
  Mat<T> dzb(37, 6);
  Labels yb(6);
  yb << 0, 5, 36, 17, 2, 9;
  CHECK(std::isfinite(regula::dkd(zb, vb, yb, dzb, DKDOptions{})));
  CHECK(dzb.allFinite());
  // Two classes: NCKD is 0 and the loss is finite (and equals alpha * T^2 * TCKD).
  Mat<T> z2(2, 3), v2(2, 3), dz2(2, 3);
  z2 << T(1), T(-2), T(50), T(0), T(3), T(-50);
  v2 << T(0.5), T(1), T(2), T(-1), T(0), T(1);
  Labels y2(3);
  y2 << 0, 1, 0;
  const T l2 = regula::dkd(z2, v2, y2, dz2, DKDOptions{});
  CHECK(std::isfinite(l2));
  CHECK(dz2.allFinite());
  CHECK(static_cast<double>(regula::dkd(z2, v2, y2, DKDOptions{}.with_beta(0.0))) ==
        Approx(static_cast<double>(l2)).epsilon(1e-6));
}

TEMPLATE_TEST_CASE("dkd: NaN in gives NaN out; per-sample agrees", "[losses][dkd]", float, double) {
  using T = TestType;
  Mat<T> z = kd::gmat<T>("z");
  const Mat<T> v = kd::gmat<T>("v");
  const Labels y = golden_labels();
  Mat<T> dz(kd::kC, kd::kB), dzs(kd::kC, kd::kB);
  regula::Vector<T> l(kd::kB);
  const T loss = regula::dkd(z, v, y, dz);
  regula::dkd_per_sample(z, v, y, l, dzs);
  CHECK(static_cast<double>(l.sum()) == Approx(static_cast<double>(loss) * kd::kB).epsilon(1e-5));
  CHECK(kd::rel_err(dzs, dz.template cast<double>() * double(kd::kB)) < 1e-5);
  const auto sum_opt = DKDOptions{}.with_reduction(Reduction::sum);
  CHECK(static_cast<double>(regula::dkd(z, v, y, sum_opt)) ==
        Approx(static_cast<double>(l.sum())).epsilon(1e-5));
  z(2, 3) = std::numeric_limits<T>::quiet_NaN();  // a non-target logit of sample 3
  regula::dkd_per_sample(z, v, y, l, dzs);
  CHECK(std::isnan(l[3]));
  CHECK(dzs.col(3).hasNaN());
  CHECK(std::isfinite(l[2]));
  z(2, 3) = T(0);
  z(y[1], 1) = std::numeric_limits<T>::quiet_NaN();  // the target logit of sample 1
  regula::dkd_per_sample(z, v, y, l, dzs);
  CHECK(std::isnan(l[1]));
  CHECK(dzs.col(1).hasNaN());
}

TEMPLATE_TEST_CASE("dkd rejects bad arguments, naming them", "[losses][dkd]", float, double) {
  using T = TestType;
  const Mat<T> z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  Labels y = golden_labels();
  CHECK_THROWS_WITH(regula::dkd(z, v, y, DKDOptions{}.with_temperature(0.0)),
                    Catch::Contains("regula::dkd") &&
                        Catch::Contains("temperature must be finite and > 0, got 0"));
  // T = 1e20 in float was accepted: T² overflows and the loss came out 0 with a zero gradient.
  for (double t :
       {10.0 * regula::detail::temperature_max<T>(), regula::detail::temperature_min<T>() / 10.0,
        std::is_same_v<T, float> ? 1e20 : 1e200}) {
    CAPTURE(t);
    CHECK_THROWS_WITH(
        regula::dkd(z, v, y, DKDOptions{}.with_temperature(t)),
        Catch::Contains("regula::dkd") && Catch::Contains("temperature must be in ["));
  }
  CHECK_THROWS_WITH(regula::dkd(z, v, y, DKDOptions{}.with_alpha(std::nan(""))),
                    Catch::Contains("alpha"));
  CHECK_THROWS_WITH(regula::dkd(z, v, y, DKDOptions{}.with_beta(INFINITY)),
                    Catch::Contains("beta"));
  CHECK_THROWS_WITH(regula::dkd(z, Mat<T>(kd::kC, kd::kB + 1), y),
                    Catch::Contains("teacher logits"));
  CHECK_THROWS_WITH(regula::dkd(z, v, y.head(3)),
                    Catch::Contains("labels must have one value per sample"));
  y[2] = kd::kC;
  CHECK_THROWS_WITH(regula::dkd(z, v, y), Catch::Contains("labels[2] must be in [0, 7), got 7"));
  y[2] = -1;
  CHECK_THROWS_AS(regula::dkd(z, v, y), regula::invalid_argument);
  const Mat<T> one(1, 2);
  Labels y0(2);
  y0 << 0, 0;
  CHECK_THROWS_WITH(regula::dkd(one, one, y0), Catch::Contains("at least two classes"));
  CHECK_THROWS_WITH(
      regula::dkd(z, v, golden_labels(), DKDOptions{}.with_reduction(Reduction::none)),
      Catch::Contains("got none"));
}

TEMPLATE_TEST_CASE("dkd does not allocate", "[losses][dkd][nomalloc]", float, double) {
  using T = TestType;
  const Index C = 2100, B = 7;
  const Mat<T> z = kd::spread<T>(C, B, 5, 1), v = kd::spread<T>(C, B, 5, 2);
  const Mat<T> zs = kd::spread<T>(100, B, 5, 3), vs = kd::spread<T>(100, B, 5, 4);
  Mat<T> dz(C, B), dzs(100, B);
  regula::Vector<T> l(B);
  Labels y(B);
  y << 0, 1, 2, 2099, 50, 99, 7;
  const Labels ys = y.cwiseMin(99);
  double acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += static_cast<double>(regula::dkd(z, v, y, dz));
    acc += static_cast<double>(regula::dkd(zs, vs, ys, dzs));
    regula::dkd_per_sample(z, v, y, l, dz);
  }
  CHECK(std::isfinite(acc));
}

// Fuzz finding kd-extreme-span: a column spanning past the largest T (here p = (½, ½, 0, 0),
// q = (⅓, ⅓, ⅓, 0), target 0: TCKD = KL(Bern(⅓) ‖ Bern(½)), NCKD = max/4 − ln 2) gave NaN.
// Also, in double, NCKD past the largest double with β = 0 (T = 0.5: NCKD = 2·max): α·TCKD +
// 0·inf was NaN; the loss is α·TCKD.
TEMPLATE_TEST_CASE("dkd: a column spanning past the largest T is finite and exact",
                   "[losses][dkd][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  const T M = std::numeric_limits<T>::max();
  Mat<T> z(4, 2), v(4, 2);
  z << M, T(0.5), M, T(-1), -M, T(2), T(0.5), T(0.25);
  v << M, T(1), M, T(0), M, T(1.5), -M, T(-0.5);
  Labels y(2);
  y << 0, 2;
  for (const double t : {4.0, 0.5}) {
    const double beta = t == 4.0 ? 0.5 : 0.0;
    CAPTURE(t, beta);
    const auto opt = DKDOptions{}
                         .with_temperature(t)
                         .with_alpha(1.0)
                         .with_beta(beta)
                         .with_scale_by_t_squared(false)
                         .with_reduction(Reduction::sum);
    const w::LD k = 1.0L / static_cast<w::LD>(t);
    regula::Vector<T> losses(2);
    Mat<T> dz(4, 2);
    regula::dkd_per_sample(z, v, y, losses, dz, opt);
    w::LD total = 0.0L;
    for (Index j = 0; j < 2; ++j) {
      CAPTURE(j);
      const auto tj = static_cast<std::size_t>(y[j]);
      const auto lp = w::log_softmax(z.col(j).data(), 4, k),
                 lq = w::log_softmax(v.col(j).data(), 4, k);
      // log(1 − p_t) = log Σ_{i≠t} p_i, from the non-target log-sum-exp.
      const auto l1 = [&](const std::vector<w::LD>& l) {
        w::LD m = -std::numeric_limits<w::LD>::infinity(), s = 0.0L;
        for (std::size_t i = 0; i < 4; ++i)
          if (i != tj) m = std::max(m, l[i]);
        for (std::size_t i = 0; i < 4; ++i)
          if (i != tj) s += std::exp(l[i] - m);
        return m + std::log(s);
      };
      const w::LD lpt = lp[tj], lqt = lq[tj], l1p = l1(lp), l1q = l1(lq);
      const w::LD tckd = std::exp(lqt) * (lqt - lpt) + std::exp(l1q) * (l1q - l1p);
      const auto hp = w::log_softmax(z.col(j).data(), 4, k, tj),
                 hq = w::log_softmax(v.col(j).data(), 4, k, tj);
      const w::LD nckd = w::kl(hq, hp);
      if (j == 0) {
        CHECK(static_cast<double>(tckd) ==
              Approx(std::log(2.0 / 3.0) / 3.0 + 2.0 / 3.0 * std::log(4.0 / 3.0)).epsilon(1e-12));
        // The kernel's own terms, in double.
        const regula::kernels::DkdTerms r = regula::kernels::dkd_column<T>(
            z.col(0).data(), v.col(0).data(), 4, 0, static_cast<T>(k), T(1), static_cast<T>(beta),
            T(1), nullptr, nullptr);
        w::check_close(r.tckd, tckd, 1e-15);
        if (t == 4.0) w::check_close(r.nckd, nckd, 1e-15);
        if (t == 0.5 && std::is_same_v<T, double>)
          CHECK(r.nckd == std::numeric_limits<double>::infinity());
      }
      const w::LD want = tckd + static_cast<w::LD>(beta) * nckd;
      total += want;
      CHECK(losses[j] >= T(0));
      w::check_close(static_cast<double>(losses[j]), want, w::tol_col<T>(j));
      std::vector<w::LD> g(4);
      const w::LD d = std::exp(lpt) - std::exp(lqt);
      for (std::size_t i = 0; i < 4; ++i) {
        g[i] = i == tj ? k * d
                       : k * (static_cast<w::LD>(beta) * (std::exp(hp[i]) - std::exp(hq[i])) -
                              d * std::exp(hp[i]));
      }
      w::check_gradient(dz.col(j), g, w::tol_col<T>(j));
    }
    w::check_close(static_cast<double>(regula::dkd(z, v, y, opt)), total, w::loose<T>());
  }
}

TEST_CASE("dkd: columns of +inf and -inf loss sum to a number (weights of opposite signs)",
          "[losses][dkd][extreme]") {
  // Column 0: v = (a, 0, 0), z = (−a, 0, 0): TCKD = a + log 2 + O(e^{−a}), NCKD = 0 (both
  // non-target parts uniform). Column 1: z = (0, b, −b), v = (0, −b, b): p_t = q_t, so TCKD = 0,
  // and NCKD = 2b + O(e^{−2b}). With α = 2, β = −1 the losses are 2a ≈ 3e308 and −2b ≈ −2.8e308,
  // each past the largest double; their sum 2(a − b) is exact in double (Sterbenz).
  const auto columns = [](double a, double b, Mat<double>& z, Mat<double>& v) {
    z.resize(3, 2);
    v.resize(3, 2);
    z.col(0) << -a, 0.0, 0.0;
    v.col(0) << a, 0.0, 0.0;
    z.col(1) << 0.0, b, -b;
    v.col(1) << 0.0, -b, b;
  };
  const double a = 1.5e308, b = 1.4e308;
  Mat<double> z, v;
  columns(a, b, z, v);
  Labels y(2);
  y << 0, 0;
  const auto opt = DKDOptions{}.with_alpha(2.0).with_beta(-1.0).with_temperature(1.0);
  regula::Vector<double> losses(2);
  regula::dkd_per_sample(z, v, y, losses, opt);
  CHECK(losses[0] == std::numeric_limits<double>::infinity());
  CHECK(losses[1] == -std::numeric_limits<double>::infinity());
  const double want = 2.0 * (a - b);
  for (const Reduction r : {Reduction::sum, Reduction::batchmean, Reduction::mean}) {
    CAPTURE(static_cast<int>(r));
    const double scale = r == Reduction::sum ? 1.0 : r == Reduction::batchmean ? 0.5 : 1.0 / 6.0;
    const auto o = DKDOptions{opt}.with_reduction(r);
    CHECK(regula::dkd(z, v, y, o) == Approx(want * scale).epsilon(1e-15));
    // The fused gradient is each column's own (none is affected by the sum):
    // ∂/∂z_t = α(p_t − q_t) = −2 and α(q_t − p_t)·p̂_j = 1 at j ≠ t in column 0; β(p̂ − q̂) =
    // (−1, 1) at the non-target classes of column 1, 0 at its target.
    Mat<double> dz(3, 2);
    CHECK(regula::dkd(z, v, y, dz, o) == Approx(want * scale).epsilon(1e-15));
    Mat<double> g(3, 2);
    g << -2.0, 0.0, 1.0, -1.0, 1.0, 1.0;
    CHECK((dz - g * scale).cwiseAbs().maxCoeff() <= 1e-15);
  }
  // +inf beside a finite loss of the other sign: 2a' ≈ 1.8e308 (past DBL_MAX) and −2b' = −1.5e308
  // give 3e307, not +inf.
  const double a2 = 0.9e308, b2 = 0.75e308;
  Mat<double> z2, v2;
  columns(a2, b2, z2, v2);
  regula::dkd_per_sample(z2, v2, y, losses, opt);
  CHECK(losses[0] == std::numeric_limits<double>::infinity());
  CHECK(std::isfinite(losses[1]));
  CHECK(regula::dkd(z2, v2, y, DKDOptions{opt}.with_reduction(Reduction::sum)) ==
        Approx(2.0 * (a2 - b2)).epsilon(1e-15));
  // NaN in still gives NaN out through the long-double sum.
  z(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(regula::dkd(z, v, y, DKDOptions{opt}.with_reduction(Reduction::sum))));
}

TEMPLATE_TEST_CASE("dkd: gradient coefficients past the largest T take the long-double path",
                   "[losses][dkd][extreme]", float, double) {
  using T = TestType;
  const double big = 0.75 * static_cast<double>(std::numeric_limits<T>::max());
  // Campaign finding `dkd-coefficient-overflow`: T = 1e20 with the T² factor and α = β = 1e300
  // make gs·k·β = 1e320 while p = q: the gradient, exactly 0, was NaN (inf·0).
  if (std::is_same_v<T, double>) {
    Mat<T> z = Mat<T>::Constant(8, 1, T(-18.25)), v = Mat<T>::Constant(8, 1, T(-18.26825));
    Labels y(1);
    y << 3;
    const auto opt = DKDOptions{}.with_temperature(1e20).with_alpha(1e300).with_beta(1e300);
    Mat<T> dz(8, 1);
    regula::Vector<T> losses(1);
    regula::dkd_per_sample(z, v, y, losses, dz, opt);
    CHECK(losses[0] == T(0));
    CHECK(dz.cwiseAbs().maxCoeff() == T(0));
  }
  // A student far below the teacher at the target (p_t − q_t ≈ −1) with α = β = 0.75·max: the
  // direct form's c₁ = β − α·(p_t − q_t) passes the largest T, although every element
  // (α·(p_t − q_t) at t, −α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j) elsewhere) is below it.
  Mat<T> z(3, 1), v(3, 1);
  z << T(0), T(5), T(5);
  v << T(10), T(0), T(0);
  Labels y(1);
  y << 0;
  const auto opt = DKDOptions{}
                       .with_temperature(1.0)
                       .with_alpha(big)
                       .with_beta(big)
                       .with_scale_by_t_squared(false)
                       .with_reduction(Reduction::sum);
  Mat<T> dz(3, 1);
  const T loss = regula::dkd(z, v, y, dz, opt);
  using LD = long double;
  const LD e5 = std::exp(5.0L), e10 = std::exp(10.0L);
  const LD pt = 1.0L / (1.0L + 2.0L * e5), qt = e10 / (e10 + 2.0L), d = pt - qt;
  const LD b = static_cast<LD>(big);
  CAPTURE(dz(0, 0), dz(1, 0), dz(2, 0));
  // The loss itself, α·TCKD with TCKD ≈ 15, passes the largest T: +inf, not NaN.
  CHECK(loss == std::numeric_limits<T>::infinity());
  CHECK(static_cast<double>(dz(0, 0)) ==
        Approx(static_cast<double>(b * d)).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-14));
  for (Index j = 1; j < 3; ++j) {
    CHECK(static_cast<double>(dz(j, 0)) == Approx(static_cast<double>(-b * d * 0.5L))
                                               .epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-14));
  }
}

// Fuzz finding dkd-wide-terms-underflow (input regressions/kd/dkd-double-reduced-gradient-zero-
// terms-1e-71): at T = 1e20 with α = β = 1e300 a gradient coefficient (gs·k·β = 1e320) passes the
// largest double, so the column took the long-double path for its gradient and for its terms too;
// there the terms of a teacher that is the student shifted by 0.02275 (1e-71 each: k·z is 1e-19)
// drown in the long-double log-softmaxes' roundings and came out 0, and the reduced loss with a
// gradient was 0 where the loss alone is 1.2e270. The terms now stay the normal path's.
TEST_CASE("dkd: a column whose gradient coefficients overflow keeps its loss (T = 1e20)",
          "[losses][dkd][extreme]") {
  const double tiny = std::numeric_limits<double>::denorm_min();
  Mat<double> z = Mat<double>::Constant(5, 5, tiny), v = Mat<double>::Constant(5, 5, -0.02275);
  for (Index j = 0; j < 5; ++j) {
    z(4, j) = -22.75;
    v(4, j) = -22.77275;
  }
  Labels y(5);
  y << 0, 1, 2, 3, 4;
  const auto opt =
      DKDOptions{}.with_temperature(1e20).with_alpha(1e300).with_beta(1e300).with_reduction(
          Reduction::sum);
  regula::Vector<double> losses(5);
  regula::dkd_per_sample(z, v, y, losses, opt);
  const double alone = regula::dkd(z, v, y, opt);
  CHECK(alone == Approx(losses.sum()).epsilon(1e-12));
  CHECK(alone > 1e269);  // not trivial
  Mat<double> dz(5, 5);
  CHECK(regula::dkd(z, v, y, dz, opt) == Approx(alone).epsilon(1e-12));
  CHECK(dz.allFinite());
  regula::Vector<double> with_grad(5);
  regula::dkd_per_sample(z, v, y, with_grad, dz, opt);
  for (Index j = 0; j < 5; ++j) CHECK(with_grad[j] == Approx(losses[j]).epsilon(1e-12));
}

}  // namespace
