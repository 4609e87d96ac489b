#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>

#include "regula/losses/kd_kl.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;
using regula::Reduction;

REGULA_KD_LOSS_TRAITS(KdKl, kd_kl, KDLossOptions, KDLossOptions{}.with_temperature(4.0), true);

TEMPLATE_TEST_CASE("kd_kl matches PyTorch and its invariants", "[losses][kd_kl]", float, double) {
  kd::standard_checks<KdKl, TestType>();
  kd::temperature_checks<KdKl, TestType>();
}

TEST_CASE("kd_kl gradient matches central differences (double)", "[losses][kd_kl][gradcheck]") {
  kd::gradient_check<KdKl>();
}

TEMPLATE_TEST_CASE("kd_kl reproduces the Hinton KD test vector of algorithms.md 10",
                   "[losses][kd_kl]", float, double) {
  using T = TestType;
  regula::Matrix<T> z(3, 1), v(3, 1), dz(3, 1);
  z << T(1), T(2), T(0.5);
  v << T(0.5), T(2.5), T(-1);
  const T loss = regula::kd_kl(z, v, dz, KDLossOptions{}.with_temperature(4.0f));
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-9;
  CHECK(static_cast<double>(loss) == Approx(0.318524967).margin(tol));
  CHECK(static_cast<double>(dz(0)) == Approx(0.064178501).margin(tol));
  CHECK(static_cast<double>(dz(1)) == Approx(-0.354876988).margin(tol));
  CHECK(static_cast<double>(dz(2)) == Approx(0.290698487).margin(tol));
}

TEMPLATE_TEST_CASE("kd_kl: mean is PyTorch's B*C average, batchmean the paper's loss",
                   "[losses][kd_kl]", float, double) {
  using T = TestType;
  const auto z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  regula::Matrix<T> dz(kd::kC, kd::kB);
  const auto opt = KDLossOptions{}.with_temperature(4.0).with_reduction(Reduction::mean);
  const T mean = regula::kd_kl(z, v, dz, opt);
  CHECK(std::abs(static_cast<double>(mean) - kd::gscalar("kd_kl_mean_loss")) <= kd::value_tol<T>());
  CHECK(kd::rel_err(dz, kd::gmat<double>("kd_kl_mean_grad")) <= kd::value_tol<T>());
  const T batchmean = regula::kd_kl(z, v, KDLossOptions{}.with_temperature(4.0));
  CHECK(static_cast<double>(batchmean) == Approx(static_cast<double>(mean) * kd::kC).epsilon(1e-5));
}

TEMPLATE_TEST_CASE("kd_kl: the T^2 factor is an explicit option", "[losses][kd_kl]", float,
                   double) {
  using T = TestType;
  const auto z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  regula::Matrix<T> d1(kd::kC, kd::kB), d2(kd::kC, kd::kB);
  const T with = regula::kd_kl(z, v, d1, KDLossOptions{}.with_temperature(4.0));
  const T without =
      regula::kd_kl(z, v, d2, KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false));
  CHECK(static_cast<double>(with) == Approx(16.0 * static_cast<double>(without)).epsilon(1e-6));
  CHECK(kd::rel_err(d1, (d2.template cast<double>() * 16.0)) < 1e-5);
  // Identical distributions: zero loss and gradient.
  regula::Matrix<T> d3(kd::kC, kd::kB);
  CHECK(static_cast<double>(regula::kd_kl(z, z, d3)) == Approx(0.0).margin(1e-6));
  CHECK(d3.cwiseAbs().maxCoeff() < T(1e-6));
}

// Fuzz finding kd-extreme-span: a column holding the largest T and its negative (its logits span
// past the largest T) gave a NaN loss, per sample and reduced; now the column is recomputed in
// long double and matches the definition there. The ordinary column is unaffected.
TEMPLATE_TEST_CASE("kd_kl: a column spanning past the largest T is finite and exact",
                   "[losses][kd_kl][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  regula::Matrix<T> z, v;
  w::extreme_pair(z, v);
  const auto opt =
      KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false).with_reduction(
          Reduction::sum);
  regula::Vector<T> losses(2);
  regula::Matrix<T> dz(4, 2), dr(4, 2);
  regula::kd_kl_per_sample(z, v, losses, dz, opt);
  w::LD total = 0.0L;
  for (regula::Index j = 0; j < 2; ++j) {
    CAPTURE(j);
    const auto lp = w::log_softmax(z.col(j).data(), 4, 0.25L);
    const auto lq = w::log_softmax(v.col(j).data(), 4, 0.25L);
    const w::LD want = w::kl(lq, lp);  // column 0: max/4
    total += want;
    CHECK(losses[j] >= T(0));
    w::check_close(static_cast<double>(losses[j]), want, w::tol_col<T>(j));
    std::vector<w::LD> g(4);
    for (std::size_t i = 0; i < 4; ++i) g[i] = 0.25L * (std::exp(lp[i]) - std::exp(lq[i]));
    w::check_gradient(dz.col(j), g, w::tol_col<T>(j));
  }
  w::check_close(static_cast<double>(regula::kd_kl(z, v, opt)), total, w::loose<T>());
  w::check_close(static_cast<double>(regula::kd_kl(z, v, dr, opt)), total, w::loose<T>());
  CHECK(dr == dz);
}

// The forward-KL side of fuzz finding reverse-kl-huge-relative (test_reverse_kl.cpp): the same
// far-apart column with student and teacher exchanged, KL(q ‖ p) ≈ 1e300·scale, with a gradient
// and without one.
TEMPLATE_TEST_CASE("kd_kl: a column whose maxima lie far apart keeps its accuracy",
                   "[losses][kd_kl][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  const T scales[] = {T(1), T(1e-4), T(1e-8), std::is_same_v<T, float> ? T(1e-20) : T(1e-100)};
  for (const T scale : scales) {
    CAPTURE(static_cast<double>(scale));
    regula::Matrix<T> z, v;
    w::far_maxima_column(v, z, scale);  // the student holds 1e300, the teacher the maximum
    const auto opt = KDLossOptions{}.with_scale_by_t_squared(false);
    regula::Vector<T> plain(1), with_grad(1);
    regula::Matrix<T> dz(7, 1);
    regula::kd_kl_per_sample(z, v, plain, opt);
    regula::kd_kl_per_sample(z, v, with_grad, dz, opt);
    const auto lp = w::log_softmax(z.data(), 7, 1.0L), lq = w::log_softmax(v.data(), 7, 1.0L);
    const w::LD want = w::kl(lq, lp);
    w::check_close(static_cast<double>(plain[0]), want, w::tol<T>());
    w::check_close(static_cast<double>(with_grad[0]), want, w::tol<T>());
    std::vector<w::LD> g(7);
    for (std::size_t i = 0; i < 7; ++i) g[i] = std::exp(lp[i]) - std::exp(lq[i]);
    w::check_gradient(dz.col(0), g, w::tol<T>());
  }
}

}  // namespace
