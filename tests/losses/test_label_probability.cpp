// The label-probability losses built on losses/label_probability.hpp: the generalized and the
// symmetric cross-entropy (values against the authors' formulas in PyTorch, gradients by central
// differences, SIMD against the reference twins, truncation, extremes, errors, no allocation).
// The coverage loss on the same driver has its own file (test_coverage.cpp).
#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "regula/activations/softmax.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/generalized_cross_entropy.hpp"
#include "regula/losses/symmetric_cross_entropy.hpp"

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::GeneralizedCrossEntropyOptions;
using regula::Index;
using regula::Labels;
using regula::SymmetricCrossEntropyOptions;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;

constexpr Index B = 6, C = 10;  // the golden file's shape

const regula::test::Golden& golden() {
  static const regula::test::Golden g("robust_losses.txt");
  return g;
}

// A golden record as a classes × batch matrix (the file is row-major batch × classes).
template <class T>
Mat<T> golden_matrix(const std::string& name, Index rows, Index cols) {
  const auto& v = golden()[name];
  REQUIRE(v.size() == static_cast<std::size_t>(rows * cols));
  Mat<T> m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i)
      m(i, j) = static_cast<T>(v[static_cast<std::size_t>(j * rows + i)]);
  return m;
}

Labels golden_labels() {
  const auto& v = golden()["labels"];
  Labels y(static_cast<Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    y[static_cast<Index>(i)] = static_cast<std::int64_t>(v[i]);
  return y;
}

// The per-sample losses, the mean and its gradient of `run` against record `name`.
template <class T, class Reduced, class PerSample>
void check_golden(const std::string& name, Reduced&& reduced, PerSample&& per_sample) {
  INFO(name);
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-13;
  const Mat<T> z = golden_matrix<T>("logits", C, B);
  const Labels y = golden_labels();
  Vec<T> l(B);
  per_sample(z, y, l);
  const auto& el = golden()[name + "_per_sample"];
  for (Index j = 0; j < B; ++j) {
    const double e = el[static_cast<std::size_t>(j)];
    CHECK(std::abs(static_cast<double>(l[j]) - e) <= tol * std::abs(e));
  }
  Mat<T> dz(C, B);
  const double mean = static_cast<double>(reduced(z, y, dz));
  const double em = golden()[name + "_mean"][0];
  CHECK(std::abs(mean - em) <= tol * std::abs(em));
  const Mat<T> eg = golden_matrix<T>(name + "_mean_grad", C, B);
  const double scale = static_cast<double>(eg.cwiseAbs().maxCoeff());
  for (Index j = 0; j < B; ++j)
    for (Index i = 0; i < C; ++i) {
      INFO("element (" << i << ", " << j << ")");
      CHECK(std::abs(static_cast<double>(dz(i, j) - eg(i, j))) <=
            tol * std::max(std::abs(static_cast<double>(eg(i, j))), 1e-3 * scale));
    }
}

template <class T>
Mat<T> random_matrix(Index rows, Index cols, double scale, unsigned seed) {
  std::srand(seed);
  return (Eigen::MatrixXd::Random(rows, cols) * scale).cast<T>();
}

}  // namespace

TEMPLATE_TEST_CASE("generalized cross-entropy matches the authors' formula (PyTorch, float64)",
                   "[losses][generalized_cross_entropy][golden]", float, double) {
  using T = TestType;
  for (const double q : {0.7, 1.0, 0.1}) {
    const auto opt = GeneralizedCrossEntropyOptions{}.with_q(q);
    char name[32];
    std::snprintf(name, sizeof name, "gce_q%g", q);
    check_golden<T>(
        name,
        [&](const Mat<T>& z, const Labels& y, Mat<T>& dz) {
          return regula::generalized_cross_entropy(z, y, dz, opt);
        },
        [&](const Mat<T>& z, const Labels& y, Vec<T>& l) {
          regula::generalized_cross_entropy_per_sample(z, y, l, opt);
        });
  }
}

TEMPLATE_TEST_CASE("symmetric cross-entropy and MAE match the authors' formulas (PyTorch, float64)",
                   "[losses][symmetric_cross_entropy][golden]", float, double) {
  using T = TestType;
  struct Case {
    const char* name;
    SymmetricCrossEntropyOptions opt;
  };
  const Case cases[] = {
      {"sce_a0.1_b1_clip1e-4", SymmetricCrossEntropyOptions{}},  // the defaults
      {"sce_a6_b0.1_clip1e-4", SymmetricCrossEntropyOptions{}.with_alpha(6.0).with_beta(0.1)},
      {"sce_a0.1_b1_A-4", SymmetricCrossEntropyOptions{}.with_A(-4.0)},
      {"mae", SymmetricCrossEntropyOptions{}.with_alpha(0.0).with_beta(1.0).with_A(-1.0)}};
  for (const Case& c : cases) {
    check_golden<T>(
        c.name,
        [&](const Mat<T>& z, const Labels& y, Mat<T>& dz) {
          return regula::symmetric_cross_entropy(z, y, dz, c.opt);
        },
        [&](const Mat<T>& z, const Labels& y, Vec<T>& l) {
          regula::symmetric_cross_entropy_per_sample(z, y, l, c.opt);
        });
  }
}

TEST_CASE(
    "generalized and symmetric cross-entropy: gradients by central differences, SIMD "
    "against the reference twins",
    "[losses][generalized_cross_entropy][symmetric_cross_entropy][gradcheck]") {
  const Eigen::MatrixXd z0 = random_matrix<double>(17, 5, 3.0, 5);
  Labels y(5);
  y << 3, 16, 0, 8, -100;
  const Eigen::MatrixXd one = Eigen::MatrixXd::Ones(1, 1);
  auto gradcheck = [&](auto&& loss, auto&& loss_grad) {
    const double err = regula::test::gradcheck(
        z0, 1, 1, [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& out) { out(0, 0) = loss(x); },
        [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
          (void)loss_grad(z0, dx);
          dx *= wt(0, 0);
        },
        one);
    CHECK(err < regula::test::fd_tol);
  };
  for (const double q : {0.05, 0.7, 1.0}) {
    INFO("GCE q = " << q);
    const auto opt = GeneralizedCrossEntropyOptions{}.with_q(q);
    gradcheck(
        [&](const Eigen::MatrixXd& x) { return regula::generalized_cross_entropy(x, y, opt); },
        [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& dx) {
          return regula::generalized_cross_entropy(x, y, dx, opt);
        });
    regula::kernels::GceTerms terms;
    terms.q = q;
    for (Index j = 0; j < 4; ++j) {
      Eigen::VectorXd a(17), b(17);
      const auto yj = static_cast<std::size_t>(y[j]);
      const double la = regula::kernels::gce_column(z0.col(j).data(), 17, yj, terms, 0.5, a.data());
      const double lb =
          regula::kernels::gce_column_reference(z0.col(j).data(), 17, yj, terms, 0.5, b.data());
      CHECK(std::abs(la - lb) < 1e-13 * std::max(1.0, lb));
      CHECK((a - b).cwiseAbs().maxCoeff() < 1e-13);
    }
  }
  for (const double A : {-9.210340371976182, -4.0, -1.0}) {
    INFO("SCE A = " << A);
    const auto opt = SymmetricCrossEntropyOptions{}.with_alpha(0.3).with_beta(0.8).with_A(A);
    gradcheck([&](const Eigen::MatrixXd& x) { return regula::symmetric_cross_entropy(x, y, opt); },
              [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& dx) {
                return regula::symmetric_cross_entropy(x, y, dx, opt);
              });
    regula::kernels::SceTerms terms;
    terms.alpha = 0.3;
    terms.beta = 0.8;
    terms.A = A;
    for (Index j = 0; j < 4; ++j) {
      Eigen::VectorXd a(17), b(17);
      const auto yj = static_cast<std::size_t>(y[j]);
      const double la = regula::kernels::sce_column(z0.col(j).data(), 17, yj, terms, 0.5, a.data());
      const double lb =
          regula::kernels::sce_column_reference(z0.col(j).data(), 17, yj, terms, 0.5, b.data());
      CHECK(std::abs(la - lb) < 1e-13 * std::max(1.0, lb));
      CHECK((a - b).cwiseAbs().maxCoeff() < 1e-13);
    }
  }
}

TEMPLATE_TEST_CASE(
    "generalized cross-entropy: q -> 0 tends to cross-entropy, q = 1 is MAE, the "
    "truncation holds the loss constant with no gradient",
    "[losses][generalized_cross_entropy]", float, double) {
  using T = TestType;
  const Mat<T> z = random_matrix<T>(7, 8, 3.0, 9);
  Labels y(8);
  y << 0, 1, 2, 3, 4, 5, 6, 0;
  Vec<T> l(8), lce(8), lmae(8);
  Mat<T> dz(7, 8), dce(7, 8);
  regula::generalized_cross_entropy_per_sample(z, y, l, dz,
                                               GeneralizedCrossEntropyOptions{}.with_q(1e-6));
  regula::cross_entropy_per_sample(z, y, lce, dce);
  for (Index j = 0; j < 8; ++j) {
    // (1 − p^q)/q = −log p − q·(log p)²/2 + …: within q·(log p)² of cross-entropy.
    const double lp = static_cast<double>(lce[j]);
    CHECK(std::abs(static_cast<double>(l[j]) - lp) <= 1e-6 * lp * lp + 1e-5 * lp);
  }
  CHECK((dz - dce).cwiseAbs().maxCoeff() <= T(1e-4));
  regula::symmetric_cross_entropy_per_sample(
      z, y, lmae, SymmetricCrossEntropyOptions{}.with_alpha(0.0).with_beta(1.0).with_A(-1.0));
  regula::generalized_cross_entropy_per_sample(z, y, l, GeneralizedCrossEntropyOptions{}.with_q(1));
  CHECK((l - lmae).cwiseAbs().maxCoeff() <= T(1e-6));
  // Truncation at k = 0.2: samples with p ≤ k take (1 − k^q)/q and a zero gradient.
  const double k = 0.2, q = 0.7;
  const auto opt = GeneralizedCrossEntropyOptions{}.with_q(q).with_truncation(k);
  Vec<T> lt(8);
  Mat<T> dt(7, 8), p(7, 8);
  regula::generalized_cross_entropy_per_sample(z, y, lt, dt, opt);
  regula::generalized_cross_entropy_per_sample(z, y, l, dz,
                                               GeneralizedCrossEntropyOptions{}.with_q(q));
  regula::softmax(z, p);
  int truncated = 0, kept = 0;
  for (Index j = 0; j < 8; ++j) {
    if (static_cast<double>(p(y[j], j)) <= k) {
      ++truncated;
      CHECK(std::abs(static_cast<double>(lt[j]) - (1.0 - std::pow(k, q)) / q) <= 1e-6);
      CHECK(dt.col(j).isZero(0));
    } else {
      ++kept;
      CHECK(lt[j] == l[j]);
      CHECK(dt.col(j) == dz.col(j));
    }
  }
  CHECK(truncated > 0);
  CHECK(kept > 0);
}

TEMPLATE_TEST_CASE(
    "generalized and symmetric cross-entropy: confident samples keep their small "
    "losses, extremes stay finite, NaN propagates",
    "[losses][generalized_cross_entropy][symmetric_cross_entropy][numerics]", float, double) {
  using T = TestType;
  Mat<T> z(4, 4);
  z << T(30), T(-1e4), T(1e30), T(0),  //
      T(0), T(1e4), T(-1e30), T(0),    //
      T(0), T(0), T(0), T(0),          //
      T(0), T(0), T(0), T(0);
  Labels y(4);
  y << 0, 0, 1, 2;
  Vec<T> l(4), ls(4);
  Mat<T> dz(4, 4), ds(4, 4);
  regula::generalized_cross_entropy_per_sample(z, y, l, dz);
  regula::symmetric_cross_entropy_per_sample(z, y, ls, ds);
  CHECK(l.allFinite());
  CHECK(dz.allFinite());
  CHECK(ls.allFinite());
  CHECK(ds.allFinite());
  // A confident sample: 1 − p = 3e^{-30} = 2.8e-13 rounds p to 1 in float and double;
  // (1 − p^q)/q ≈ 1 − p to first order, and RCE is −A·(1 − p).
  const double r = 3.0 * std::exp(-30.0);
  CHECK(std::abs(static_cast<double>(l[0]) - r) <= 1e-5 * r);
  const double sce0 = 0.1 * r + 9.210340371976182 * r;
  CHECK(std::abs(static_cast<double>(ls[0]) - sce0) <= 1e-5 * sce0);
  CHECK(static_cast<double>(dz(0, 0)) < 0.0);
  // A hopeless sample (p ~ 0): GCE is 1/q with no push; SCE is α·CE + β·(−A).
  CHECK(std::abs(static_cast<double>(l[1]) - 1.0 / 0.7) <= 1e-6);
  CHECK(dz.col(1).cwiseAbs().maxCoeff() == T(0));
  z(2, 3) = std::numeric_limits<T>::quiet_NaN();
  regula::generalized_cross_entropy_per_sample(z, y, l, dz);
  regula::symmetric_cross_entropy_per_sample(z, y, ls, ds);
  CHECK(std::isnan(l[3]));
  CHECK(std::isnan(ls[3]));
  CHECK(std::isfinite(l[0]));
  CHECK(std::isfinite(ls[0]));
}

TEST_CASE("symmetric cross-entropy with a loss weight past the largest float: no inf times 0",
          "[losses][symmetric_cross_entropy][numerics][regression]") {
  // α = 1e300 is a finite option; g·F/S overflows float, and an element whose e^{z − m} is 0
  // gave inf·0 = NaN. Its true value is below the smallest float: 0.
  Eigen::MatrixXf z(2, 1);
  z << 0.0f, -200.0f;
  Labels y(1);
  y << 0;
  Eigen::MatrixXf dz(2, 1);
  (void)regula::symmetric_cross_entropy(z, y, dz, SymmetricCrossEntropyOptions{}.with_alpha(1e300));
  CHECK(dz(1, 0) == 0.0f);
  CHECK_FALSE(std::isnan(dz(0, 0)));
}

TEST_CASE("generalized and symmetric cross-entropy reject bad arguments and allocate nothing",
          "[losses][generalized_cross_entropy][symmetric_cross_entropy][errors]") {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(5, 3);
  Labels y(3);
  y << 0, 4, 2;
  using G = GeneralizedCrossEntropyOptions;
  using S = SymmetricCrossEntropyOptions;
  CHECK_THROWS_WITH(regula::generalized_cross_entropy(z, y, G{}.with_q(0.0)),
                    "regula::generalized_cross_entropy: q must be in (0, 1], got 0");
  CHECK_THROWS_WITH(regula::generalized_cross_entropy(z, y, G{}.with_q(1.5)),
                    "regula::generalized_cross_entropy: q must be in (0, 1], got 1.5");
  CHECK_THROWS_WITH(regula::generalized_cross_entropy(z, y, G{}.with_truncation(1.0)),
                    "regula::generalized_cross_entropy: truncation must be in [0, 1), got 1");
  CHECK_THROWS_AS(regula::generalized_cross_entropy(z, y, G{}.with_q(std::nan(""))),
                  regula::invalid_argument);
  CHECK_THROWS_WITH(regula::symmetric_cross_entropy(z, y, S{}.with_alpha(-1.0)),
                    "regula::symmetric_cross_entropy: alpha must be finite and >= 0, got -1");
  CHECK_THROWS_WITH(regula::symmetric_cross_entropy(z, y, S{}.with_beta(-0.5)),
                    "regula::symmetric_cross_entropy: beta must be finite and >= 0, got -0.5");
  CHECK_THROWS_WITH(regula::symmetric_cross_entropy(z, y, S{}.with_A(0.0)),
                    "regula::symmetric_cross_entropy: A must be finite and < 0, got 0");
  Labels bad = y;
  bad[2] = 5;
  CHECK_THROWS_WITH(regula::symmetric_cross_entropy(z, bad),
                    "regula::symmetric_cross_entropy: labels[2] must be in [0, 5) or "
                    "ignore_index (-100), got 5");
  Eigen::VectorXf losses(2);
  CHECK_THROWS_WITH(regula::generalized_cross_entropy_per_sample(z, y, losses),
                    "regula::generalized_cross_entropy_per_sample: losses must have one value per "
                    "sample (3), got 2");
  Eigen::MatrixXf dz(5, 3);
  Eigen::VectorXf l3(3);
  float acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += regula::generalized_cross_entropy(z, y, dz);
    regula::generalized_cross_entropy_per_sample(z, y, l3, dz);
    acc += regula::symmetric_cross_entropy(z, y, dz);
    regula::symmetric_cross_entropy_per_sample(z, y, l3, dz);
  }
  CHECK(std::isfinite(acc));
}
