// Per-element relative accuracy of the label-probability losses (coverage, generalized and
// symmetric cross-entropy) against a long-double reference.
//
// Reference, with R = Σ_{j≠y} e^{z_j − m} summed directly, e_y = e^{z_y − m}, S = e_y + R,
// log p = −log1p(R/e_y) and 1 − p = R/S:
//   coverage: ℓ = −log(1 − (1 − p)^N),      F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N);
//   GCE: ℓ = −expm1(q·log p)/q,             F = p^q;
//   SCE: ℓ = α·(−log p) + β·(−A)·R/S,       F = α − β·A·p;
//   ∂ℓ/∂z_y = −F·R/S,  ∂ℓ/∂z_j = F·e_j/S (j ≠ y).
// Judged as tests/accuracy/test_cross_entropy.cpp: each gradient element against
// max(|exact|, 1e-3·column max, abs floor), each loss against itself.
//
// | quantity  | float | double | why                                                 |
// |-----------|-------|--------|-----------------------------------------------------|
// | loss      | 1e-4  | 1e-11  | log p and log(1 − p) from the complement, in double |
// | gradient  | 1e-4  | 1e-11  | F and the elements from the same (coverage's F is a |
// |           |       |        | ratio of exponentials of N·log(1 − p): its relative |
// |           |       |        | error is ≈ N·(that of log(1 − p)), N ≤ 16)          |
//
// Regimes: ordinary, confident (margins 5–60, where p_y rounds to 1 in float: a naive
// 1 − p^q is 0 there), confidently wrong, for C = 2, 10, 1000 (coverage: N = 1, 4, 16).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "regula/losses/coverage.hpp"
#include "regula/losses/generalized_cross_entropy.hpp"
#include "regula/losses/symmetric_cross_entropy.hpp"

#include "support/accuracy.hpp"
#include "support/catch.hpp"

namespace {

using regula::Index;
using regula::Labels;
using regula::test::column_relative_error;
using regula::test::LongMatrix;
using regula::test::scalar_relative_error;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;
using LD = long double;

// terms(log p, p, R/S) → (ℓ, F) in long double.
template <class T, class Terms>
void reference(const Mat<T>& z, const Labels& y, Terms&& terms, std::vector<LD>& loss,
               LongMatrix& dz) {
  for (Index j = 0; j < z.cols(); ++j) {
    LD m = -std::numeric_limits<LD>::infinity();
    for (Index i = 0; i < z.rows(); ++i) m = std::max(m, static_cast<LD>(z(i, j)));
    const Index t = y[j];
    LD R = 0;
    for (Index i = 0; i < z.rows(); ++i) {
      if (i != t) R += std::exp(static_cast<LD>(z(i, j)) - m);
    }
    const LD ey = std::exp(static_cast<LD>(z(t, j)) - m);
    const LD S = ey + R;
    LD l = 0, F = 0;
    terms(-std::log1p(R / ey), ey / S, R / S, l, F);
    loss[static_cast<std::size_t>(j)] = l;
    for (Index i = 0; i < z.rows(); ++i) {
      dz(i, j) = i == t ? -F * R / S : F * std::exp(static_cast<LD>(z(i, j)) - m) / S;
    }
  }
}

template <class T, class Run, class Terms>
void check_regimes(Run&& run, Terms&& terms) {
  const double bound = std::is_same_v<T, float> ? 1e-4 : 1e-11;
  const LD abs_floor = std::is_same_v<T, float> ? 1e-30L : 1e-290L;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> g(0.0, 1.0);
  for (const Index C : {Index(2), Index(10), Index(1000)}) {
    for (const double margin : {0.0, 5.0, 10.0, 17.0, 25.0, 40.0, 60.0, -30.0}) {
      INFO("C = " << C << ", margin " << margin);
      const Index B = 16;
      Mat<T> z(C, B);
      Labels y(B);
      for (Index j = 0; j < B; ++j) {
        y[j] = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(C));
        for (Index i = 0; i < C; ++i) z(i, j) = static_cast<T>(g(rng));
        if (margin > 0) {
          z(y[j], j) = static_cast<T>(static_cast<double>(z.col(j).maxCoeff()) + margin);
        } else if (margin < 0) {
          z((y[j] + 1) % C, j) = static_cast<T>(-margin);  // confidently wrong
        }
      }
      Vec<T> l(B);
      Mat<T> dz(C, B);
      run(z, y, l, dz);
      std::vector<LD> el(static_cast<std::size_t>(B));
      LongMatrix edz(C, B);
      reference(z, y, terms, el, edz);
      double worst = 0.0;
      for (Index j = 0; j < B; ++j) {
        CHECK(l[j] >= T(0));
        worst = std::max(worst, scalar_relative_error(static_cast<double>(l[j]),
                                                      el[static_cast<std::size_t>(j)], abs_floor));
      }
      CHECK(worst <= bound);
      const auto err = column_relative_error(dz, edz, 1e-3, abs_floor);
      INFO("gradient: " << err.describe());
      CHECK(err.rel <= bound);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("generalized cross-entropy: every element accurate, confident samples included",
                   "[accuracy][generalized_cross_entropy]", float, double) {
  using T = TestType;
  for (const double q : {0.1, 0.7, 1.0}) {
    INFO("q = " << q);
    const auto opt = regula::GeneralizedCrossEntropyOptions{}.with_q(q);
    check_regimes<T>(
        [&](const Mat<T>& z, const Labels& y, Vec<T>& l, Mat<T>& dz) {
          regula::generalized_cross_entropy_per_sample(z, y, l, dz, opt);
        },
        [q](LD log_p, LD, LD, LD& loss, LD& F) {
          const LD Q = static_cast<LD>(q);
          loss = -std::expm1(Q * log_p) / Q;
          F = std::exp(Q * log_p);
        });
  }
}

TEMPLATE_TEST_CASE("symmetric cross-entropy: every element accurate, confident samples included",
                   "[accuracy][symmetric_cross_entropy]", float, double) {
  using T = TestType;
  struct Setting {
    double alpha, beta, A;
  };
  for (const Setting s :
       {Setting{0.1, 1.0, -9.210340371976182}, Setting{6.0, 0.1, -4.0}, Setting{0.0, 1.0, -1.0}}) {
    INFO("alpha " << s.alpha << ", beta " << s.beta << ", A " << s.A);
    const auto opt =
        regula::SymmetricCrossEntropyOptions{}.with_alpha(s.alpha).with_beta(s.beta).with_A(s.A);
    check_regimes<T>(
        [&](const Mat<T>& z, const Labels& y, Vec<T>& l, Mat<T>& dz) {
          regula::symmetric_cross_entropy_per_sample(z, y, l, dz, opt);
        },
        [s](LD log_p, LD p, LD one_minus_p, LD& loss, LD& F) {
          const LD a = static_cast<LD>(s.alpha), b = static_cast<LD>(s.beta),
                   A = static_cast<LD>(s.A);
          loss = a * -log_p + b * -A * one_minus_p;
          F = a - b * A * p;
        });
  }
}

TEMPLATE_TEST_CASE("coverage loss: every element accurate, confident samples included",
                   "[accuracy][coverage]", float, double) {
  using T = TestType;
  for (const double N : {1.0, 4.0, 16.0}) {
    INFO("N = " << N);
    const auto opt = regula::CoverageLossOptions{}.with_N(N);
    check_regimes<T>([&](const Mat<T>& z, const Labels& y, Vec<T>& l,
                         Mat<T>& dz) { regula::coverage_loss_per_sample(z, y, l, dz, opt); },
                     [N](LD log_p, LD p, LD one_minus_p, LD& loss, LD& F) {
                       const LD n = static_cast<LD>(N);
                       const LD log1mp = p < 0.5L ? std::log1p(-p) : std::log(one_minus_p);
                       const LD a = n * log1mp;
                       const LD denom = -std::expm1(a);
                       const LD log1m_exp =
                           a < -std::log(2.0L) ? std::log1p(-std::exp(a)) : std::log(denom);
                       loss = N == 1 ? -log_p : -log1m_exp;
                       F = N == 1 ? 1.0L : n * p * std::exp((n - 1) * log1mp) / denom;
                     });
  }
}
