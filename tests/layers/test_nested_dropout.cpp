#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>
#include <vector>

#include "regula/layers/nested_dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::Index;
using regula::NestedDropout;
using regula::NestedDropoutOptions;
using regula::NestedIndexMode;
using regula::NestedPrior;
using regula::NestedTail;
using regula::Stream;
template <class T>
using Mat = regula::Matrix<T>;

// Counts, over many columns, how often unit j (1-based) is kept, and compares with P(b ≥ j)
// unit by unit within 5 binomial standard deviations.
template <class T>
void check_keep_frequency(const NestedDropout<T>& nd, Index cols, std::uint64_t seed) {
  const Index K = nd.units();
  const Mat<T> x = Mat<T>::Ones(K, cols);
  Mat<T> y(K, cols);
  Stream s(seed);
  const auto ctx = nd.forward(x, y, s);
  const Eigen::VectorXd freq = (y.array() != T(0)).template cast<double>().rowwise().mean();
  double worst = 0.0;
  for (Index j = 1; j <= K; ++j) {
    const double p = nd.survival(j);
    const double sigma = std::sqrt(std::max(p * (1 - p), 1e-12) / static_cast<double>(cols));
    const double z = std::abs(freq(j - 1) - p) / sigma;
    worst = std::max(worst, p > 0 && p < 1 ? z : std::abs(freq(j - 1) - p) * 1e12);
  }
  INFO("worst |z| " << worst);
  CHECK(worst < 5.0);
  // The recorded indices are what was applied.
  for (Index n = 0; n < cols; n += 97) {
    const Index b = ctx.kept(n);
    REQUIRE(b >= 1);
    REQUIRE(b <= K);
    CHECK((y.col(n).head(b).array() == T(1)).all());
    CHECK((y.col(n).tail(K - b).array() == T(0)).all());
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Nested dropout keeps unit j with frequency P(b >= j) for every prior",
                   "[layers][nested][stats]", float, double) {
  using T = TestType;
  const Index K = 40;
  std::vector<double> w(K);
  for (Index k = 0; k < K; ++k) w[static_cast<std::size_t>(k)] = 1.0 + static_cast<double>(k % 5);
  const NestedPrior priors[] = {NestedPrior::geometric(0.9, NestedTail::clamp),
                                NestedPrior::geometric(0.95, NestedTail::renormalize),
                                NestedPrior::half_gaussian(10.0),
                                NestedPrior::half_gaussian(4.0, 12.5),
                                NestedPrior::uniform(),
                                NestedPrior::custom(w)};
  std::uint64_t seed = 1;
  for (const auto& prior : priors) {
    const NestedDropout<T> nd(NestedDropoutOptions{K, prior, NestedIndexMode::per_sample});
    INFO("prior kind " << static_cast<int>(prior.kind));
    check_keep_frequency(nd, 20000, seed++);
  }
}

TEST_CASE("Nested dropout priors have the documented pmf", "[layers][nested]") {
  const Index K = 10;
  const NestedDropout<double> clamp({K, NestedPrior::geometric(0.5, NestedTail::clamp)});
  const NestedDropout<double> renorm({K, NestedPrior::geometric(0.5, NestedTail::renormalize)});
  for (Index k = 1; k < K; ++k) {
    CHECK(clamp.pmf()[static_cast<std::size_t>(k - 1)] == Approx(std::pow(0.5, k)).epsilon(1e-14));
    CHECK(clamp.survival(k) == Approx(std::pow(0.5, k - 1)).epsilon(1e-14));
    CHECK(renorm.pmf()[static_cast<std::size_t>(k - 1)] ==
          Approx(std::pow(0.5, k) / (1 - std::pow(0.5, K))).epsilon(1e-14));
  }
  CHECK(clamp.pmf()[K - 1] == Approx(std::pow(0.5, K - 1)).epsilon(1e-14));
  CHECK(clamp.cdf().back() == 1.0);
  const NestedDropout<double> uni({K, NestedPrior::uniform()});
  CHECK(uni.mean_kept() == Approx(5.5).epsilon(1e-14));
  const NestedDropout<double> custom({0, NestedPrior::custom({0.0, 2.0, 2.0})});
  CHECK(custom.units() == 3);
  CHECK(custom.pmf()[0] == 0.0);
  CHECK(custom.pmf()[1] == 0.5);
}

TEST_CASE("Half-Gaussian prior of Chen et al.: K = 512, sigma = 10 keeps about 6.0 units",
          "[layers][nested][stats]") {
  const NestedDropout<float> nd(
      {512, NestedPrior::half_gaussian(10.0), NestedIndexMode::per_sample});
  // Σ k·exp(−(k/10)²)/Σ exp(−(k/10)²), k = 1..512 (no ½ in the exponent).
  CHECK(nd.mean_kept() == Approx(5.969262841805378).epsilon(1e-12));
  const Index cols = 20000;
  const Mat<float> x = Mat<float>::Ones(512, cols);
  Mat<float> y(512, cols);
  Stream s(5);
  const auto ctx = nd.forward(x, y, s);
  double mean = 0.0;
  for (Index n = 0; n < cols; ++n) mean += static_cast<double>(ctx.kept(n));
  mean /= cols;
  // sd of b is about 4.2: 5 sigma of the mean is about 0.15.
  CHECK(std::abs(mean - 5.969) < 0.15);
  CHECK(std::abs(mean - 6.0) < 0.2);
  // With a ½ in the exponent the mean would be about 8.5: the test tells the two apart.
  CHECK(std::abs(mean - 8.5) > 1.0);
}

TEMPLATE_TEST_CASE("Per-batch mode draws one index for all samples", "[layers][nested]", float,
                   double) {
  using T = TestType;
  const NestedDropout<T> nd({64, NestedPrior::uniform(), NestedIndexMode::per_batch});
  const Mat<T> x = Mat<T>::Random(64, 33);
  Mat<T> y(64, 33);
  Stream s(3);
  const auto ctx = nd.forward(x, y, s);
  CHECK(s.offset() == 1);
  CHECK(ctx.indices().size() == 1);
  const Index b = ctx.kept(0);
  for (Index n = 0; n < 33; ++n) CHECK(ctx.kept(n) == b);
  Mat<T> expected(64, 33);
  nd.truncate(x, b, expected);
  CHECK(y == expected);
  // Successive batches get different indices (uniform over 64: 20 equal draws in a row is
  // improbable).
  bool differ = false;
  for (int i = 0; i < 20; ++i) differ = differ || nd.forward(x, y, s).kept(0) != b;
  CHECK(differ);
}

TEMPLATE_TEST_CASE("Per-sample indices come from Stream::uniform<double> by inverse CDF",
                   "[layers][nested]", float, double) {
  using T = TestType;
  const NestedDropout<T> nd({30, NestedPrior::geometric(0.8)});
  const Mat<T> x = Mat<T>::Random(30, 7);
  Mat<T> y(30, 7);
  Stream s(11, 2, 4);
  const auto ctx = nd.forward(x, y, s);
  CHECK(s == Stream(11, 2, 4 + 4));  // ⌈7/2⌉ blocks
  Stream r(11, 2, 4);
  double u[7];
  r.uniform(u, 7);
  for (Index n = 0; n < 7; ++n) {
    const auto expected = regula::kernels::inverse_cdf_reference(nd.cdf().data(), 30, u[n]);
    CHECK(static_cast<std::size_t>(ctx.kept(n)) == expected);
    CHECK(regula::kernels::inverse_cdf(nd.cdf().data(), 30, u[n]) == expected);
  }
}

TEMPLATE_TEST_CASE("truncate keeps exactly the prefix; eval is the identity", "[layers][nested]",
                   float, double) {
  using T = TestType;
  NestedDropout<T> nd({37, NestedPrior::uniform()});
  const Mat<T> x = Mat<T>::Random(37, 5);
  Mat<T> y(37, 5);
  for (const Index k : {0, 1, 16, 17, 36, 37}) {
    nd.truncate(x, k, y);
    CHECK(y.topRows(k) == x.topRows(k));
    CHECK((y.bottomRows(37 - k).array() == T(0)).all());
  }
  Mat<T> ref(37, 5);
  for (Index j = 0; j < 5; ++j) {
    regula::kernels::prefix_keep_reference(x.col(j).data(), 37, 9, ref.col(j).data());
  }
  nd.truncate(x, 9, y);
  CHECK(y == ref);
  nd.eval();
  Stream s(1);
  const auto ctx = nd.forward(x, y, s);
  CHECK(y == x);
  CHECK(s.offset() == 0);
  CHECK_FALSE(ctx.random());
  Mat<T> dx(37, 5);
  nd.backward(x, ctx, dx);
  CHECK(dx == x);
}

TEMPLATE_TEST_CASE("A dropped NaN stays NaN (0·x)", "[layers][nested]", float, double) {
  using T = TestType;
  const NestedDropout<T> nd({20, NestedPrior::geometric(0.1)});
  Mat<T> x = Mat<T>::Constant(20, 4, std::numeric_limits<T>::quiet_NaN());
  Mat<T> y(20, 4);
  Stream s(1);
  (void)nd.forward(x, y, s);
  CHECK(y.array().isNaN().all());
}

TEST_CASE("Nested dropout gradient equals central finite differences (double)",
          "[layers][nested][gradcheck]") {
  for (const auto mode : {NestedIndexMode::per_sample, NestedIndexMode::per_batch}) {
    const NestedDropout<double> nd({12, NestedPrior::geometric(0.8), mode});
    const Eigen::MatrixXd x = Eigen::MatrixXd::Random(12, 6);
    const Eigen::MatrixXd w = Eigen::MatrixXd::Random(12, 6);
    const Stream start(99);
    auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
      Stream s = start;
      (void)nd.forward(in, out, s);
    };
    auto vjp = [&](const Eigen::MatrixXd& weights, Eigen::MatrixXd& dx) {
      Stream s = start;
      Eigen::MatrixXd y(12, 6);
      const auto ctx = nd.forward(x, y, s);
      nd.backward(weights, ctx, dx);
    };
    CHECK(regula::test::gradcheck(x, 12, 6, f, vjp, w) < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("Backward applies the forward prefix masks, in place too", "[layers][nested]",
                   float, double) {
  using T = TestType;
  const NestedDropout<T> nd({50, NestedPrior::half_gaussian(10.0)});
  const Mat<T> x = Mat<T>::Random(50, 9);
  Mat<T> y(50, 9);
  Stream s(8);
  const auto ctx = nd.forward(x, y, s);
  Mat<T> g = Mat<T>::Random(50, 9);
  const Mat<T> g0 = g;
  nd.backward(g, ctx, g);
  for (Index n = 0; n < 9; ++n) {
    const Index b = ctx.kept(n);
    CHECK(g.col(n).head(b) == g0.col(n).head(b));
    CHECK((g.col(n).tail(50 - b).array() == T(0)).all());
    CHECK(y.col(n).head(b) == x.col(n).head(b));
  }
}

TEMPLATE_TEST_CASE("Nested dropout forward and backward do not allocate after the first call",
                   "[layers][nested][alloc]", float, double) {
  using T = TestType;
  const NestedDropout<T> nd({64, NestedPrior::geometric(0.9)});
  const Mat<T> x = Mat<T>::Random(64, 40);
  Mat<T> y(64, 40), dx(64, 40);
  regula::NestedDropoutContext ctx;
  Stream s(1);
  nd.forward(x, y, s, ctx);
  regula::test::NoMalloc guard;
  nd.forward(x, y, s, ctx);
  nd.backward(y, ctx, dx);
  nd.truncate(x, 3, y);
}

TEST_CASE("Unit sweeping freezes converged units and shifts the prior", "[layers][nested][sweep]") {
  regula::NestedSweeper sweep(8, 1e-3, 3);
  Eigen::VectorXd v = Eigen::VectorXd::Ones(4);
  CHECK_FALSE(sweep.observe(v));  // first observation: nothing to compare
  v(0) += 0.5;                    // a large change resets the streak
  CHECK_FALSE(sweep.observe(v));
  CHECK(sweep.streak() == 0);
  v(0) += 1e-5;
  CHECK_FALSE(sweep.observe(v));
  CHECK(sweep.streak() == 1);
  CHECK_FALSE(sweep.observe(v));
  CHECK(sweep.streak() == 2);
  CHECK(sweep.observe(v));  // third converged observation in a row
  CHECK(sweep.frozen() == 1);
  CHECK(sweep.streak() == 0);
  CHECK_FALSE(sweep.observe(Eigen::VectorXd::Ones(5)));  // the next unit may have another size
  CHECK_THROWS_AS(sweep.observe(Eigen::VectorXd::Ones(6)), regula::invalid_argument);
}

TEST_CASE("Frozen units are always kept: b = min(K, f + b')", "[layers][nested][sweep]") {
  const NestedDropout<double> nd({16, NestedPrior::geometric(0.5)});
  const Eigen::MatrixXd x = Eigen::MatrixXd::Ones(16, 500);
  Eigen::MatrixXd y(16, 500), y0(16, 500);
  regula::NestedDropoutContext ctx, ctx0;
  Stream s(4), s0(4);
  nd.forward(x, y, s, ctx, 5);
  nd.forward(x, y0, s0, ctx0, 0);
  for (Index n = 0; n < 500; ++n) CHECK(ctx.kept(n) == std::min<Index>(16, 5 + ctx0.kept(n)));
  CHECK((y.topRows(6).array() == 1.0).all());
  Eigen::MatrixXd grad = Eigen::MatrixXd::Ones(16, 3);
  regula::NestedSweeper sweep(16, 1e-3, 1);
  sweep.observe(Eigen::VectorXd::Ones(2));
  sweep.observe(Eigen::VectorXd::Ones(2));
  REQUIRE(sweep.frozen() == 1);
  sweep.zero_frozen_rows(grad);
  CHECK((grad.row(0).array() == 0.0).all());
  CHECK((grad.row(1).array() == 1.0).all());
}

TEMPLATE_TEST_CASE("Nested dropout rejects bad options and inputs, naming the parameter",
                   "[layers][nested][errors]", float, double) {
  using T = TestType;
  using O = NestedDropoutOptions;
  CHECK_THROWS_WITH(NestedDropout<T>(O{8, NestedPrior::geometric(1.0)}),
                    "regula::NestedDropout: rho must be in (0, 1), got 1");
  CHECK_THROWS_WITH(NestedDropout<T>(O{8, NestedPrior::geometric(0.0)}),
                    "regula::NestedDropout: rho must be in (0, 1), got 0");
  CHECK_THROWS_WITH(NestedDropout<T>(O{8, NestedPrior::half_gaussian(0.0)}),
                    "regula::NestedDropout: sigma must be positive and finite, got 0");
  CHECK_THROWS_WITH(NestedDropout<T>(O{8, NestedPrior::half_gaussian(-2.0)}),
                    "regula::NestedDropout: sigma must be positive and finite, got -2");
  CHECK_THROWS_WITH(NestedDropout<T>(O{0, NestedPrior::custom({})}),
                    "regula::NestedDropout: pmf must not be empty");
  CHECK_THROWS_WITH(NestedDropout<T>(O{0, NestedPrior::custom({0.0, 0.0})}),
                    "regula::NestedDropout: pmf weights must not all be 0");
  CHECK_THROWS_WITH(
      NestedDropout<T>(O{0, NestedPrior::custom({1.0, -1.0})}),
      "regula::NestedDropout: pmf weights must be finite and nonnegative, got -1 at 1");
  CHECK_THROWS_WITH(NestedDropout<T>(O{3, NestedPrior::custom({1.0, 1.0})}),
                    "regula::NestedDropout: pmf must have one weight per unit (3), got 2");
  CHECK_THROWS_WITH(NestedDropout<T>(O{0, NestedPrior::uniform()}),
                    "regula::NestedDropout: units must be at least 1, got 0");
  const NestedDropout<T> nd(O{8, NestedPrior::uniform()});
  Mat<T> x = Mat<T>::Ones(8, 2), y(8, 2);
  CHECK_THROWS_WITH(nd.truncate(x, 9, y),
                    "regula::NestedDropout::truncate: k must be in [0, 8], got 9");
  CHECK_THROWS_WITH(nd.truncate(x, -1, y),
                    "regula::NestedDropout::truncate: k must be in [0, 8], got -1");
  Stream s(1);
  Mat<T> bad = Mat<T>::Ones(7, 2);
  CHECK_THROWS_WITH(nd.forward(bad, bad, s),
                    "regula::NestedDropout: x must have 8 rows (units), got 7");
  Mat<T> wrong(8, 3);
  CHECK_THROWS_WITH(nd.forward(x, wrong, s),
                    "regula::NestedDropout: y must have the shape of x (8 x 2), got 8 x 3");
  regula::NestedDropoutContext ctx;
  CHECK_THROWS_WITH(nd.forward(x, y, s, ctx, 9),
                    "regula::NestedDropout: frozen must be in [0, 8], got 9");
  CHECK_THROWS_WITH(regula::NestedSweeper(4, 0.0),
                    "regula::NestedSweeper: tol must be positive, got 0");
}

TEST_CASE("Half-Gaussian prior works for any positive finite sigma, tiny or huge",
          "[layers][nested][prior]") {
  // Issue 20, item 10: sigma = 1e-300 (valid by the docs) squared z into inf, and the pmf became
  // NaN ("pmf must have a positive, finite sum to be normalised, got nan").
  using O = NestedDropoutOptions;
  const NestedDropout<double> tiny(O{8, NestedPrior::half_gaussian(1e-300)});
  CHECK(tiny.pmf()[0] == 1.0);
  for (std::size_t k = 1; k < 8; ++k) CHECK(tiny.pmf()[k] == 0.0);
  CHECK(tiny.mean_kept() == 1.0);
  const NestedDropout<double> denormal(O{8, NestedPrior::half_gaussian(5e-324, 6.0)});
  CHECK(denormal.pmf()[5] == 1.0);
  CHECK(denormal.cdf()[4] == 0.0);
  // μ halfway between two units: they share the mass.
  const NestedDropout<double> tie(O{8, NestedPrior::half_gaussian(1e-300, 2.5)});
  CHECK(tie.pmf()[1] == 0.5);
  CHECK(tie.pmf()[2] == 0.5);
  // A sigma far beyond the units' spread is the uniform prior.
  const NestedDropout<double> huge(O{8, NestedPrior::half_gaussian(1e300, -1e300)});
  for (std::size_t k = 0; k < 8; ++k) CHECK(huge.pmf()[k] == 0.125);
  // And ordinary sigmas keep their values: exp(−((k − μ)/σ)²) normalised, to rounding.
  const NestedDropout<double> usual(O{512, NestedPrior::half_gaussian(10.0, 3.3)});
  double total = 0.0;
  for (int k = 1; k <= 512; ++k) total += std::exp(-((k - 3.3) / 10.0) * ((k - 3.3) / 10.0));
  for (int k = 1; k <= 512; ++k) {
    const double want = std::exp(-((k - 3.3) / 10.0) * ((k - 3.3) / 10.0)) / total;
    CHECK(usual.pmf()[static_cast<std::size_t>(k - 1)] ==
          Approx(want).epsilon(1e-12).margin(1e-300));
  }
  // Draws from the tiny-sigma prior keep exactly one unit.
  const Mat<double> x = Mat<double>::Ones(8, 5);
  Mat<double> y(8, 5);
  Stream s(1);
  const auto ctx = tiny.forward(x, y, s);
  for (Index n = 0; n < 5; ++n) CHECK(ctx.kept(n) == 1);
}

TEST_CASE("Custom pmf weights near the largest double are normalised without overflow",
          "[layers][nested][prior]") {
  const NestedDropout<float> nd(
      NestedDropoutOptions{0, NestedPrior::custom({1e308, 1e308, 0.0, 1e308})});
  CHECK(nd.pmf()[0] == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(nd.pmf()[2] == 0.0);
  CHECK(nd.cdf()[3] == 1.0);
}
