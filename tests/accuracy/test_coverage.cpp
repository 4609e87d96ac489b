// Per-element relative accuracy of the pass@N coverage loss against a long-double reference.
//
// Reference, with p = p_y, R = Σ_{j≠y} e^{z_j − m} summed directly and log(1 − p) = log1p(−p)
// for p < 1/2, log R − log S otherwise:
//   ℓ = −log(−expm1(N·log(1 − p))),  F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N),
//   ∂ℓ/∂z_y = −F·R/S,  ∂ℓ/∂z_j = F·p_j (j ≠ y).
// Judge as tests/accuracy/test_cross_entropy.cpp: each gradient element against
// max(|exact|, 1e-3·column max, abs floor), each loss against itself.
//
// | quantity  | float | double | why                                                     |
// |-----------|-------|--------|---------------------------------------------------------|
// | loss      | 1e-4  | 1e-11  | log p and log(1 − p) from the complement, in double     |
// | gradient  | 1e-4  | 1e-11  | F is a ratio of exponentials of N·log(1 − p): its      |
// |           |       |        | relative error is ≈ N·(that of log(1 − p)), N ≤ 16      |
//
// Regimes: ordinary, confident (margins 5–60, where p_y rounds to 1 in float), wrong, for
// N = 1, 4, 16 and C = 2, 10, 1000.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "regula/losses/coverage.hpp"

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

template <class T>
void reference(const Mat<T>& z, const Labels& y, LD N, std::vector<LD>& loss, LongMatrix& dz) {
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
    const LD p = ey / S;
    const LD log1mp = p < 0.5L ? std::log1p(-p) : std::log(R) - std::log(S);
    const LD a = N * log1mp;
    const LD denom = -std::expm1(a);
    const LD log1m_exp = a < -std::log(2.0L) ? std::log1p(-std::exp(a)) : std::log(denom);
    loss[static_cast<std::size_t>(j)] = N == 1 ? std::log1p(R / ey) : -log1m_exp;
    const LD F = N == 1 ? 1.0L : N * p * std::exp((N - 1) * log1mp) / denom;
    for (Index i = 0; i < z.rows(); ++i) {
      dz(i, j) = i == t ? -F * R / S : F * std::exp(static_cast<LD>(z(i, j)) - m) / S;
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("coverage loss: every element accurate, confident samples included",
                   "[accuracy][coverage]", float, double) {
  using T = TestType;
  const double bound = std::is_same_v<T, float> ? 1e-4 : 1e-11;
  const LD abs_floor = std::is_same_v<T, float> ? 1e-30L : 1e-290L;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> g(0.0, 1.0);
  for (const Index C : {Index(2), Index(10), Index(1000)}) {
    for (const double margin : {0.0, 5.0, 10.0, 17.0, 25.0, 40.0, 60.0, -30.0}) {
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
      for (const double N : {1.0, 4.0, 16.0}) {
        INFO("C = " << C << ", margin " << margin << ", N = " << N);
        regula::CoverageLossOptions opt;
        opt.N = N;
        Vec<T> l(B);
        Mat<T> dz(C, B);
        regula::coverage_loss_per_sample(z, y, l, dz, opt);
        std::vector<LD> el(static_cast<std::size_t>(B));
        LongMatrix edz(C, B);
        reference(z, y, static_cast<LD>(N), el, edz);
        double worst = 0.0;
        for (Index j = 0; j < B; ++j) {
          CHECK(l[j] >= T(0));
          worst =
              std::max(worst, scalar_relative_error(static_cast<double>(l[j]),
                                                    el[static_cast<std::size_t>(j)], abs_floor));
        }
        CHECK(worst <= bound);
        const auto err = column_relative_error(dz, edz, 1e-3, abs_floor);
        INFO("gradient: " << err.describe());
        CHECK(err.rel <= bound);
      }
    }
  }
}
