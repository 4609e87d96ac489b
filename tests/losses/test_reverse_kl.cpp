#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>
#include <vector>

#include "regula/losses/reverse_kl.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(ReverseKl, reverse_kl, KDLossOptions, KDLossOptions{}.with_temperature(4.0),
                      true);

TEMPLATE_TEST_CASE("reverse_kl matches PyTorch and its invariants", "[losses][reverse_kl]", float,
                   double) {
  kd::standard_checks<ReverseKl, TestType>();
  kd::temperature_checks<ReverseKl, TestType>();
}

TEST_CASE("reverse_kl gradient matches central differences (double)",
          "[losses][reverse_kl][gradcheck]") {
  kd::gradient_check<ReverseKl>();
}

// Fuzz finding kd-extreme-span (see test_kd_kl.cpp): KL(p ‖ q) of column 0 is max/4, its
// gradient gs·k·p·(r − D) holds ±max/32.
TEMPLATE_TEST_CASE("reverse_kl: a column spanning past the largest T is finite and exact",
                   "[losses][reverse_kl][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  regula::Matrix<T> z, v;
  w::extreme_pair(z, v);
  const auto opt =
      regula::KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false).with_reduction(
          regula::Reduction::sum);
  regula::Vector<T> losses(2);
  regula::Matrix<T> dz(4, 2), dr(4, 2);
  regula::reverse_kl_per_sample(z, v, losses, dz, opt);
  w::LD total = 0.0L;
  for (regula::Index j = 0; j < 2; ++j) {
    CAPTURE(j);
    const auto lp = w::log_softmax(z.col(j).data(), 4, 0.25L);
    const auto lq = w::log_softmax(v.col(j).data(), 4, 0.25L);
    const w::LD want = w::kl(lp, lq);
    total += want;
    CHECK(losses[j] >= T(0));
    w::check_close(static_cast<double>(losses[j]), want, w::tol_col<T>(j));
    std::vector<w::LD> g(4);
    for (std::size_t i = 0; i < 4; ++i) g[i] = 0.25L * std::exp(lp[i]) * ((lp[i] - lq[i]) - want);
    w::check_gradient(dz.col(j), g, w::tol_col<T>(j));
  }
  w::check_close(static_cast<double>(regula::reverse_kl(z, v, opt)), total, w::loose<T>());
  w::check_close(static_cast<double>(regula::reverse_kl(z, v, dr, opt)), total, w::loose<T>());
  CHECK(dr == dz);
}

// Found by the kd harness after the kd-extreme-span fix: a finite loss (max/2) with a NaN
// gradient, m − du = −max/2 − max overflowing at a class whose e is 0 (0·inf); now the
// gradient is 0 there and the column exact.
TEMPLATE_TEST_CASE("reverse_kl: a log-ratio past the largest T leaves the gradient finite",
                   "[losses][reverse_kl][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  const T M = std::numeric_limits<T>::max();
  regula::Matrix<T> z(5, 1), v(5, 1), dz(5, 1);
  z << T(0), T(1.25), M, std::numeric_limits<T>::min(), M;
  v << T(2), M, M, T(0), T(0);
  const auto opt = regula::KDLossOptions{}.with_scale_by_t_squared(false);
  regula::Vector<T> losses(1);
  regula::reverse_kl_per_sample(z, v, losses, dz, opt);
  const auto lp = w::log_softmax(z.data(), 5, 1.0L), lq = w::log_softmax(v.data(), 5, 1.0L);
  const w::LD want = w::kl(lp, lq);  // max/2
  w::check_close(static_cast<double>(losses[0]), want, w::tol<T>());
  std::vector<w::LD> g(5);
  for (std::size_t i = 0; i < 5; ++i) {
    g[i] = std::exp(lp[i]) > 0.0L ? std::exp(lp[i]) * ((lp[i] - lq[i]) - want) : 0.0L;
  }
  w::check_gradient(dz.col(0), g, w::tol<T>());
}

// Fuzz finding reverse-kl-huge-relative: a column whose maxima lie far apart (student 1.8e308,
// teacher 1e300) lost ~1e-12 of the loss's relative accuracy, and ~1e-8 once scaled by 1e-8
// (u formed from v − z and mv − mz, each rounding by ε·1.8e308); now u is formed from the
// shifted logits there (kernels::detail::kl_joint), with and without gradient.
TEMPLATE_TEST_CASE("reverse_kl: a column whose maxima lie far apart keeps its accuracy",
                   "[losses][reverse_kl][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  const T scales[] = {T(1), T(1e-4), T(1e-8), std::is_same_v<T, float> ? T(1e-20) : T(1e-100)};
  for (const T scale : scales) {
    CAPTURE(static_cast<double>(scale));
    regula::Matrix<T> z, v;
    w::far_maxima_column(z, v, scale);
    const auto opt = regula::KDLossOptions{}.with_scale_by_t_squared(false);
    regula::Vector<T> plain(1), with_grad(1);
    regula::Matrix<T> dz(7, 1);
    regula::reverse_kl_per_sample(z, v, plain, opt);
    regula::reverse_kl_per_sample(z, v, with_grad, dz, opt);
    const auto lp = w::log_softmax(z.data(), 7, 1.0L), lq = w::log_softmax(v.data(), 7, 1.0L);
    const w::LD want = w::kl(lp, lq);
    w::check_close(static_cast<double>(plain[0]), want, w::tol<T>());
    w::check_close(static_cast<double>(with_grad[0]), want, w::tol<T>());
    std::vector<w::LD> g(7);
    for (std::size_t i = 0; i < 7; ++i) {
      g[i] = std::exp(lp[i]) > 0.0L ? std::exp(lp[i]) * ((lp[i] - lq[i]) - want) : 0.0L;
    }
    w::check_gradient(dz.col(0), g, w::tol<T>());
  }
}

}  // namespace
