#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>

#include "regula/losses/js.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Js, js, KDLossOptions, KDLossOptions{}.with_temperature(4.0), true);

TEMPLATE_TEST_CASE("js matches PyTorch and its invariants", "[losses][js]", float, double) {
  kd::standard_checks<Js, TestType>();
  kd::temperature_checks<Js, TestType>();
}

TEST_CASE("js gradient matches central differences (double)", "[losses][js][gradcheck]") {
  kd::gradient_check<Js>();
}

TEST_CASE("js is bounded by ln 2 and finite when a probability underflows", "[losses][js]") {
  Eigen::MatrixXd z(3, 1), v(3, 1), dz(3, 1);
  z << 800.0, 0.0, -800.0;  // p = (1, 0, 0) to double precision
  v << -800.0, 0.0, 800.0;  // q = (0, 0, 1)
  const double l = regula::js(z, v, dz, KDLossOptions{}.with_scale_by_t_squared(false));
  CHECK(l == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(dz.allFinite());
}

// Fuzz finding kd-extreme-span (see test_kd_kl.cpp), through the two-distribution driver
// detail::pq_column: with m = (½, ¼, ¼, 0), JS of column 0 is ½·ln 2.
TEMPLATE_TEST_CASE("js: a column spanning past the largest T is finite and exact",
                   "[losses][js][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  regula::Matrix<T> z, v;
  w::extreme_pair(z, v);
  const auto opt =
      regula::KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false).with_reduction(
          regula::Reduction::sum);
  regula::Vector<T> losses(2);
  regula::Matrix<T> dz(4, 2);
  regula::js_per_sample(z, v, losses, dz, opt);
  w::LD total = 0.0L;
  for (regula::Index j = 0; j < 2; ++j) {
    CAPTURE(j);
    const auto lp = w::log_softmax(z.col(j).data(), 4, 0.25L);
    const auto lq = w::log_softmax(v.col(j).data(), 4, 0.25L);
    std::vector<w::LD> lm(4), g(4);
    for (std::size_t i = 0; i < 4; ++i)
      lm[i] = std::log(0.5L * (std::exp(lp[i]) + std::exp(lq[i])));
    const w::LD want = 0.5L * (w::kl(lp, lm) + w::kl(lq, lm));
    if (j == 0) CHECK(static_cast<double>(want) == Approx(0.5 * std::log(2.0)).epsilon(1e-15));
    total += want;
    w::check_close(static_cast<double>(losses[j]), want, w::tol_col<T>(j));
    w::LD dot = 0.0L;
    for (std::size_t i = 0; i < 4; ++i) {
      if (std::exp(lp[i]) > 0.0L) dot += std::exp(lp[i]) * 0.5L * (lp[i] - lm[i]);
    }
    for (std::size_t i = 0; i < 4; ++i) {
      g[i] =
          std::exp(lp[i]) > 0.0L ? 0.25L * std::exp(lp[i]) * (0.5L * (lp[i] - lm[i]) - dot) : 0.0L;
    }
    w::check_gradient(dz.col(j), g, w::tol_col<T>(j));
  }
  w::check_close(static_cast<double>(regula::js(z, v, opt)), total, w::loose<T>());
}

}  // namespace
