#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/total_variation.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Tv, total_variation, KDLossOptions, KDLossOptions{}.with_temperature(4.0),
                      true);

TEMPLATE_TEST_CASE("total_variation matches PyTorch and its invariants",
                   "[losses][total_variation]", float, double) {
  kd::standard_checks<Tv, TestType>();
  kd::temperature_checks<Tv, TestType>();
}

TEST_CASE("total_variation gradient matches central differences (double)",
          "[losses][total_variation][gradcheck]") {
  // Golden logits have p != q in every class, where TV is differentiable.
  kd::gradient_check<Tv>();
}

TEST_CASE("total_variation is 1 for disjoint distributions", "[losses][total_variation]") {
  Eigen::MatrixXd z(2, 1), v(2, 1);
  z << 900.0, -900.0;
  v << -900.0, 900.0;
  CHECK(regula::total_variation(z, v, KDLossOptions{}.with_scale_by_t_squared(false)) ==
        Approx(1.0).epsilon(1e-12));
}

// Fuzz finding kd-extreme-span (see test_kd_kl.cpp): TV of column 0 is ½. A pair of
// constant columns far apart (z = −0.6·max, v = 0.6·max: v − z past the largest T) with
// p = q exactly takes the cancellation-free path, whose log-ratio was inf − inf: TV 0.
TEMPLATE_TEST_CASE("total_variation: columns spanning past the largest T are finite and exact",
                   "[losses][total_variation][extreme]", float, double) {
  using T = TestType;
  namespace w = regula::test::kd_wide;
  regula::Matrix<T> z, v;
  w::extreme_pair(z, v);
  const T M = std::numeric_limits<T>::max();
  z.conservativeResize(4, 3);
  v.conservativeResize(4, 3);
  z.col(2).setConstant(T(-0.6) * M);
  v.col(2).setConstant(T(0.6) * M);
  const auto opt =
      regula::KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false).with_reduction(
          regula::Reduction::sum);
  regula::Vector<T> losses(3);
  regula::Matrix<T> dz(4, 3);
  regula::total_variation_per_sample(z, v, losses, dz, opt);
  for (regula::Index j = 0; j < 3; ++j) {
    CAPTURE(j);
    const auto lp = w::log_softmax(z.col(j).data(), 4, 0.25L);
    const auto lq = w::log_softmax(v.col(j).data(), 4, 0.25L);
    w::LD want = 0.0L, dot = 0.0L;
    std::vector<w::LD> s(4), g(4);
    for (std::size_t i = 0; i < 4; ++i) {
      const w::LD d = std::exp(lp[i]) - std::exp(lq[i]);
      want += 0.5L * std::fabs(d);
      s[i] = d > 0.0L ? 0.5L : (d < 0.0L ? -0.5L : 0.0L);
      dot += std::exp(lp[i]) * s[i];
    }
    for (std::size_t i = 0; i < 4; ++i) g[i] = 0.25L * std::exp(lp[i]) * (s[i] - dot);
    CHECK(std::isfinite(losses[j]));
    CHECK(std::fabs(static_cast<w::LD>(losses[j]) - want) <= static_cast<w::LD>(w::tol_col<T>(j)));
    w::check_gradient(dz.col(j), g, w::tol_col<T>(j));
  }
  CHECK(static_cast<double>(losses[0]) == Approx(0.5).epsilon(1e-6));
  CHECK(losses[2] == T(0));
}

}  // namespace
