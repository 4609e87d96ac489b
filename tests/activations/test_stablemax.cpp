#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>
#include <string>

#include "regula/activations/stablemax.hpp"

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::Index;
template <class T>
using Mat = regula::Matrix<T>;

const regula::test::Golden& golden() {
  static const regula::test::Golden g("cross_entropy.txt");
  return g;
}

template <class T>
Mat<T> gmat(const std::string& name) {
  return Eigen::Map<const Eigen::MatrixXd>(golden()[name].data(), 7, 5).cast<T>();
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-6 : 1e-14;
}

template <class T>
Mat<T> random_matrix(Index rows, Index cols, double scale, unsigned seed) {
  std::srand(seed);
  return (Eigen::MatrixXd::Random(rows, cols) * scale).cast<T>();
}

}  // namespace

TEMPLATE_TEST_CASE("StableMax and log-StableMax match the official formulation, forward and VJP",
                   "[activations][stablemax][golden]", float, double) {
  using T = TestType;
  const Mat<T> z = gmat<T>("logits");
  const Mat<T> dy = gmat<T>("dy");
  Mat<T> y(7, 5), dz(7, 5);
  regula::stablemax(z, y);
  CHECK((y.template cast<double>() - gmat<double>("stablemax")).cwiseAbs().maxCoeff() < tol<T>());
  regula::stablemax_backward(z, y, dy, dz);
  CHECK((dz.template cast<double>() - gmat<double>("stablemax_vjp")).cwiseAbs().maxCoeff() <
        4 * tol<T>());
  regula::log_stablemax(z, y);
  CHECK((y.template cast<double>() - gmat<double>("log_stablemax")).cwiseAbs().maxCoeff() <
        4 * tol<T>());
  regula::log_stablemax_backward(z, y, dy, dz);
  CHECK((dz.template cast<double>() - gmat<double>("log_stablemax_vjp")).cwiseAbs().maxCoeff() <
        4 * tol<T>());
}

TEMPLATE_TEST_CASE("StableMax of [2, 0, -1] is [2/3, 2/9, 1/9] (algorithms.md section 10)",
                   "[activations][stablemax]", float, double) {
  using T = TestType;
  Mat<T> z(3, 1);
  z << T(2), T(0), T(-1);
  const Mat<T> p = regula::stablemax(z);
  CHECK(std::abs(static_cast<double>(p(0)) - 2.0 / 3) < 1e-7);
  CHECK(std::abs(static_cast<double>(p(1)) - 2.0 / 9) < 1e-7);
  CHECK(std::abs(static_cast<double>(p(2)) - 1.0 / 9) < 1e-7);
  // Not shift-invariant, unlike softmax.
  const Mat<T> q = regula::stablemax((z.array() + T(1)).matrix());
  CHECK(std::abs(static_cast<double>(q(0) - p(0))) > 0.01);
}

TEMPLATE_TEST_CASE("StableMax kernels agree with their scalar references on ragged sizes",
                   "[activations][stablemax][kernels]", float, double) {
  using T = TestType;
  namespace k = regula::kernels;
  for (const Index n : {1, 2, 7, 8, 9, 15, 16, 17, 33, 1000}) {
    INFO("n = " << n);
    const Mat<T> z = random_matrix<T>(n, 1, 6.0, static_cast<unsigned>(n));
    const Mat<T> dy = random_matrix<T>(n, 1, 1.0, static_cast<unsigned>(n + 1));
    const auto un = static_cast<std::size_t>(n);
    Mat<T> a(n, 1), b(n, 1);
    const double s1 = k::sum_s(z.data(), un, a.data());
    const double s2 = k::sum_s_reference(z.data(), un, b.data());
    CHECK(std::abs(s1 - s2) <= 1e-14 * s2);
    CHECK(a == b);
    k::stablemax_column(z.data(), un, a.data());
    k::stablemax_column_reference(z.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(2) * std::numeric_limits<T>::epsilon());
    k::log_stablemax_column(z.data(), un, a.data());
    k::log_stablemax_column_reference(z.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(8) * std::numeric_limits<T>::epsilon());
    const Mat<T> ly = a;
    k::log_stablemax_backward_column(z.data(), ly.data(), dy.data(), un, a.data());
    k::log_stablemax_backward_column_reference(z.data(), ly.data(), dy.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(16) * std::numeric_limits<T>::epsilon());
    const Mat<T> y = regula::stablemax(z);
    k::stablemax_backward_column(z.data(), y.data(), dy.data(), un, a.data());
    k::stablemax_backward_column_reference(z.data(), y.data(), dy.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(16) * std::numeric_limits<T>::epsilon());
  }
}

TEST_CASE("StableMax VJPs match central differences (double)",
          "[activations][stablemax][gradcheck]") {
  // Keep the logits away from the kink of s'' at 0 (|z| >= 0.05).
  Eigen::MatrixXd z = random_matrix<double>(9, 4, 3.0, 31);
  z = z.unaryExpr([](double v) { return std::abs(v) < 0.05 ? v + 0.1 : v; });
  const Eigen::MatrixXd w = random_matrix<double>(9, 4, 1.0, 32);
  using regula::test::gradcheck;
  const Eigen::MatrixXd p = regula::stablemax(z);
  CHECK(gradcheck(
            z, 9, 4, [](const Eigen::MatrixXd& x, Eigen::MatrixXd& y) { regula::stablemax(x, y); },
            [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
              regula::stablemax_backward(z, p, wt, dx);
            },
            w) < regula::test::fd_tol);
  const Eigen::MatrixXd lp = regula::log_stablemax(z);
  CHECK(gradcheck(
            z, 9, 4,
            [](const Eigen::MatrixXd& x, Eigen::MatrixXd& y) { regula::log_stablemax(x, y); },
            [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
              regula::log_stablemax_backward(z, lp, wt, dx);
            },
            w) < regula::test::fd_tol);
}

TEMPLATE_TEST_CASE(
    "StableMax at extreme logits: finite, and linear rather than exponential saturation",
    "[activations][stablemax][numerics]", float, double) {
  using T = TestType;
  for (const double big : {1e4, 1e30}) {
    Mat<T> z(3, 1);
    z << static_cast<T>(big), static_cast<T>(-big), T(0);
    const Mat<T> p = regula::stablemax(z);
    const Mat<T> lp = regula::log_stablemax(z);
    CHECK(p.allFinite());
    CHECK(lp.allFinite());
    // s(big) = big + 1, s(-big) = 1/(1 + big), s(0) = 1: the 0 logit keeps probability ~1/big,
    // where softmax would give exp(-big) = 0.
    CHECK(std::abs(static_cast<double>(p(2)) * big - 1.0) < 1e-3);
    CHECK(p(2) > T(0));
    CHECK(std::abs(static_cast<double>(lp(1)) + 2 * std::log(big)) < 1e-4 * 2 * std::log(big));
  }
  Mat<T> z = random_matrix<T>(20, 2, 2.0, 8);
  z(19, 1) = std::numeric_limits<T>::quiet_NaN();
  const Mat<T> p = regula::stablemax(z);
  CHECK(p.col(0).allFinite());
  CHECK(p.col(1).array().isNaN().all());
  CHECK(regula::log_stablemax(z).col(1).array().isNaN().all());
}

TEMPLATE_TEST_CASE("StableMax allocates nothing and rejects bad shapes",
                   "[activations][stablemax][nomalloc]", float, double) {
  using T = TestType;
  const Mat<T> z = random_matrix<T>(37, 6, 3.0, 9);
  const Mat<T> dy = random_matrix<T>(37, 6, 1.0, 10);
  Mat<T> y(37, 6), dz(37, 6);
  {
    regula::test::NoMalloc guard;
    regula::stablemax(z, y);
    regula::stablemax_backward(z, y, dy, dz);
    regula::log_stablemax(z, y);
    regula::log_stablemax_backward(z, y, dy, dz);
  }
  CHECK(dz.allFinite());
  Mat<T> bad(37, 5);
  CHECK_THROWS_WITH(regula::stablemax(z, bad),
                    "regula::stablemax: y must have the shape of z (37 x 6), got 37 x 5");
  CHECK_THROWS_WITH(regula::stablemax_backward(z, y, bad, dz),
                    "regula::stablemax_backward: dy must have the shape of z (37 x 6), got 37 x 5");
}
