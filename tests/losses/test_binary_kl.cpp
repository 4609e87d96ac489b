#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>

#include "regula/losses/binary_kl.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Bkl, binary_kl, KDLossOptions, KDLossOptions{}.with_temperature(4.0), false);
REGULA_KD_LOSS_TRAITS(Bkln, binary_kl_norm, KDLossOptions, KDLossOptions{}.with_temperature(4.0),
                      false);

TEMPLATE_TEST_CASE("binary_kl and binary_kl_norm match DHKD's formulas", "[losses][binary_kl]",
                   float, double) {
  kd::standard_checks<Bkl, TestType>();
  kd::temperature_checks<Bkl, TestType>();
  kd::standard_checks<Bkln, TestType>();
  kd::temperature_checks<Bkln, TestType>();
}

TEST_CASE("binary_kl gradients match central differences (double)",
          "[losses][binary_kl][gradcheck]") {
  kd::gradient_check<Bkl>();
  kd::gradient_check<Bkln>();
}

TEMPLATE_TEST_CASE("binary_kl_norm reproduces the test vector of algorithms.md 10",
                   "[losses][binary_kl]", float, double) {
  using T = TestType;
  regula::Matrix<T> z(3, 1), v(3, 1), dz(3, 1);
  z << T(1), T(2), T(0.5);
  v << T(0.5), T(2.5), T(-1);
  const T loss = regula::binary_kl_norm(z, v, dz, KDLossOptions{}.with_temperature(2.0));
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-9;
  CHECK(static_cast<double>(loss) == Approx(0.337233217).margin(tol));
  CHECK(static_cast<double>(dz(0)) == Approx(0.124353002).margin(tol));
  CHECK(static_cast<double>(dz(1)) == Approx(-0.124353002).margin(tol));
  CHECK(static_cast<double>(dz(2)) == Approx(0.358357398).margin(tol));
}

TEST_CASE("binary_kl_norm equals T^2 * sum log cosh((z - v)/2T) / B", "[losses][binary_kl]") {
  const auto z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  for (double t : {0.5, 2.0, 7.0}) {
    const double want =
        t * t * ((z - v).array() / (2.0 * t)).cosh().log().sum() / static_cast<double>(kd::kB);
    CHECK(regula::binary_kl_norm(z, v, KDLossOptions{}.with_temperature(t)) ==
          Approx(want).epsilon(1e-12));
  }
  // Far past DHKD's clamp (|z - v| > 18.4 T) the gradient saturates at T/(2B) instead of 0.
  Eigen::MatrixXd a(1, 1), b(1, 1), d(1, 1);
  a << 100.0;
  b << 0.0;
  (void)regula::binary_kl_norm(a, b, d, KDLossOptions{}.with_temperature(2.0));
  CHECK(d(0) == Approx(1.0).epsilon(1e-12));
}

// Fuzz finding binary-kl-huge, input binary-kl-negative-huge-logit: a student logit of 1e300
// among values of 1e3..1e4 at T = 20 gave a negative divergence (−244.69): σ(b)(b − a) +
// softplus(a) − softplus(b) cancelled terms of 5e298 where σ(b) rounds to 1. The class's true
// KL is σ(−b)·(a − b) ≈ 3.6e81.
TEST_CASE("binary_kl is non-negative and exact with a logit far beyond the others",
          "[losses][binary_kl][extreme]") {
  namespace w = regula::test::kd_wide;
  regula::Matrix<double> z(4, 1), v(4, 1), dz(4, 1);
  z << 3372.25, 3660.125, 1e300, 1453.5;
  v << -1.1875, -2.5, 1e4, -2945.5;
  const auto opt = KDLossOptions{}.with_temperature(20.0).with_scale_by_t_squared(false);
  regula::Vector<double> losses(1);
  regula::binary_kl_per_sample(z, v, losses, dz, opt);
  w::LD want = 0.0L;
  std::vector<w::LD> g(4);
  for (regula::Index i = 0; i < 4; ++i) {
    const w::LD a = static_cast<w::LD>(z(i)) / 20.0L, b = static_cast<w::LD>(v(i)) / 20.0L;
    want += w::bernoulli_kl(b, a);
    g[static_cast<std::size_t>(i)] = (w::sigmoid(a) - w::sigmoid(b)) / 20.0L;
  }
  CHECK(static_cast<double>(want) == Approx(3.56e81).epsilon(0.01));
  CHECK(losses[0] >= 0.0);
  w::check_close(losses[0], want, 1e-13);
  w::check_gradient(dz.col(0), g, 1e-15);
  // The same column in float (1e300 → the largest float), and reduced.
  const regula::Matrix<float> zf = z.cwiseMin(3e38).cast<float>(), vf = v.cast<float>();
  w::LD wf = 0.0L;
  for (regula::Index i = 0; i < 4; ++i) {
    wf += w::bernoulli_kl(static_cast<w::LD>(vf(i)) / 20.0L, static_cast<w::LD>(zf(i)) / 20.0L);
  }
  const float lf =
      regula::binary_kl(zf, vf, KDLossOptions{opt}.with_reduction(regula::Reduction::sum));
  CHECK(lf >= 0.0F);
  w::check_close(static_cast<double>(lf), wf, 1e-6);
}

// Input binary-kl-nan-near-dbl-max: student (−max, max) against teacher (−4.9e-324, −1e300) at
// T = 1 gave NaN (k·(z − v) overflows, σ(b)·(b − a) = 0·inf). The sample's KL is ½·max +
// max, past the largest double: +inf, never NaN; the gradient σ(a) − σ(b) is finite. With the
// student's first logit −1 instead, the KL is max (rounded) and finite.
TEST_CASE("binary_kl is +inf, not NaN, where the divergence passes the largest double",
          "[losses][binary_kl][extreme]") {
  namespace w = regula::test::kd_wide;
  const double M = std::numeric_limits<double>::max();
  regula::Matrix<double> z(2, 1), v(2, 1), dz(2, 1);
  z << -M, M;
  v << -4.9406564584124654e-324, -1e300;
  const auto opt = KDLossOptions{}.with_temperature(1.0).with_reduction(regula::Reduction::mean);
  const double l = regula::binary_kl(z, v, dz, opt);
  CHECK(l == std::numeric_limits<double>::infinity());
  CHECK(dz(0) == Approx(-0.25).epsilon(1e-15));  // (σ(−max) − σ(0))/2
  CHECK(dz(1) == Approx(0.5).epsilon(1e-15));    // (σ(max) − σ(−1e300))/2
  z(0) = -1.0;
  regula::Vector<double> losses(1);
  regula::binary_kl_per_sample(z, v, losses, opt);
  const w::LD want = w::bernoulli_kl(static_cast<w::LD>(v(0)), -1.0L) +
                     w::bernoulli_kl(-1e300L, static_cast<w::LD>(M));
  w::check_close(losses[0], want, 1e-15);
  CHECK(regula::binary_kl(z, v, opt) == Approx(losses[0] / 2.0).epsilon(1e-15));
}

}  // namespace
