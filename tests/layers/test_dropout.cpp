#define EIGEN_RUNTIME_NO_MALLOC
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "regula/layers/dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

// Counts every operator new in this test program: Eigen's guard sees only Eigen's allocations.
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using regula::Dropout;
using regula::DropoutOptions;
using regula::Index;
using regula::Stream;
template <class T>
using Mat = regula::Matrix<T>;

template <class T>
Mat<T> ramp(Index rows, Index cols) {
  Mat<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<T>(1 + (i % 17)) * T(0.25);
  return x;
}

template <class T>
bool bitwise_equal(const Mat<T>& a, const Mat<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

}  // namespace

TEMPLATE_TEST_CASE("Dropout rejects p outside [0, 1], naming p and the value",
                   "[layers][dropout][errors]", float, double) {
  CHECK_THROWS_WITH(Dropout<TestType>(DropoutOptions{1.5}),
                    "regula::Dropout: p must be in [0, 1], got 1.5");
  CHECK_THROWS_AS(Dropout<TestType>(DropoutOptions{-0.1}), regula::invalid_argument);
  CHECK_THROWS_AS(Dropout<TestType>(DropoutOptions{std::nan("")}), regula::invalid_argument);
  CHECK_NOTHROW(Dropout<TestType>(DropoutOptions{0.0}));
  CHECK_NOTHROW(Dropout<TestType>(DropoutOptions{1.0}));
}

TEMPLATE_TEST_CASE("Dropout zeroes a fraction p of the elements (within 5 sigma)",
                   "[layers][dropout][stats]", float, double) {
  using T = TestType;
  const double p = GENERATE(0.001, 0.1, 0.5, 0.9);
  const Dropout<T> drop(DropoutOptions{p});
  CHECK(std::abs(drop.effective_p() - p) <= 0x1.0p-17);
  const Index rows = 1000, cols = 1000;
  const Mat<T> x = Mat<T>::Ones(rows, cols);
  Mat<T> y(rows, cols);
  Stream stream(123);
  (void)drop.forward(x, y, stream);
  const double n = static_cast<double>(x.size());
  const double zeroed = static_cast<double>((y.array() == T(0)).count());
  const double sigma = std::sqrt(p * (1 - p) / n);
  INFO("p = " << p << ", zeroed fraction " << zeroed / n);
  CHECK(std::abs(zeroed / n - p) < 5 * sigma);
  // Kept elements are scaled by exactly 1/(1 - effective p).
  CHECK(((y.array() == T(0)) || (y.array() == drop.scale())).all());
  CHECK(drop.scale() == static_cast<T>(1.0 / (1.0 - drop.effective_p())));
}

TEMPLATE_TEST_CASE("Dropout is unbiased: E[y] = x by Monte Carlo", "[layers][dropout][stats]",
                   float, double) {
  using T = TestType;
  const double p = 0.3;
  const Dropout<T> drop(DropoutOptions{p});
  const Mat<T> x = ramp<T>(37, 19);
  Mat<T> y(x.rows(), x.cols());
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(x.rows(), x.cols());
  Stream stream(9);
  const int draws = 4000;
  for (int k = 0; k < draws; ++k) {
    (void)drop.forward(x, y, stream);
    // Element by element here and below: GCC 12 at -O3 reports a false -Wnull-dereference
    // inside Eigen's expressions mixing cast<double>() of a float matrix.
    for (Index i = 0; i < y.size(); ++i) sum(i) += static_cast<double>(y(i));
  }
  const Eigen::MatrixXd mean = sum / draws;
  const double q = 1 - drop.effective_p();
  double worst_z = 0.0;
  for (Index i = 0; i < x.size(); ++i) {
    const double xi = static_cast<double>(x(i));
    const double sigma = std::abs(xi) * std::sqrt((1 - q) / q / draws);
    worst_z = std::max(worst_z, std::abs(mean(i) - xi) / sigma);
  }
  INFO("largest |z| over " << x.size() << " elements: " << worst_z);
  CHECK(worst_z < 6.0);
}

TEST_CASE("Dropout masks show no correlation at the lags of the bit layout",
          "[layers][dropout][stats]") {
  const Dropout<float> drop(DropoutOptions{0.5});
  const Index n = 1 << 20;
  const Mat<float> x = Mat<float>::Ones(n, 1);
  Mat<float> y(n, 1);
  Stream stream(77);
  (void)drop.forward(x, y, stream);
  Eigen::ArrayXd m = (y.array() != 0.0F).cast<double>();
  const double mean = m.mean();
  const double var = (m - mean).square().mean();
  for (const Index lag : {1, 2, 4, 16, 64, 128}) {
    const double cov = ((m.head(n - lag) - mean) * (m.tail(n - lag) - mean)).mean();
    const double corr = cov / var;
    INFO("lag " << lag << ": correlation " << corr);
    CHECK(std::abs(corr) < 5.0 / std::sqrt(static_cast<double>(n - lag)));
  }
}

TEST_CASE("Masks differ across subsequences and successive calls", "[layers][dropout][stats]") {
  const Dropout<float> drop(DropoutOptions{0.5});
  const Index n = 1 << 16;
  const Mat<float> x = Mat<float>::Ones(n, 1);
  Mat<float> a(n, 1), b(n, 1), c(n, 1);
  Stream s0(5, 0), s1(5, 1);
  (void)drop.forward(x, a, s0);
  (void)drop.forward(x, b, s0);  // the next call on the same stream
  (void)drop.forward(x, c, s1);
  for (const Mat<float>* other : {&b, &c}) {
    const double agree =
        static_cast<double>(((a.array() != 0.0F) == (other->array() != 0.0F)).count()) / n;
    // Independent masks with keep probability 1/2 agree half of the time.
    CHECK(std::abs(agree - 0.5) < 5 * std::sqrt(0.25 / n));
  }
}

TEMPLATE_TEST_CASE("The same seed gives the same mask for 1, 2 and 4 threads",
                   "[layers][dropout][threads]", float, double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.25});
  const Mat<T> x = ramp<T>(1001, 301);  // several parallel chunks, ragged last tile
  Mat<T> reference(x.rows(), x.cols());
  {
    Stream s(31337);
#if defined(_OPENMP)
    omp_set_num_threads(1);
#endif
    (void)drop.forward(x, reference, s);
  }
  for (const int threads : {2, 4}) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    Mat<T> y(x.rows(), x.cols());
    Stream s(31337);
    (void)drop.forward(x, y, s);
    INFO("threads " << threads << ", max_threads " << regula::max_threads());
    CHECK(bitwise_equal(reference, y));
  }
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
}

TEMPLATE_TEST_CASE("Backward from a recomputed mask equals backward from the stored bitmask",
                   "[layers][dropout][backward]", float, double) {
  using T = TestType;
  const Mat<T> x = ramp<T>(130, 7);
  const Mat<T> dy = ramp<T>(130, 7) * T(-1.5);
  const Dropout<T> recompute(DropoutOptions{0.4, false});
  const Dropout<T> stored(DropoutOptions{0.4, true});
  Mat<T> y1(x.rows(), x.cols()), y2(x.rows(), x.cols());
  Stream s1(8), s2(8);
  const auto c1 = recompute.forward(x, y1, s1);
  const auto c2 = stored.forward(x, y2, s2);
  CHECK(s1 == s2);
  CHECK_FALSE(c1.has_mask());
  REQUIRE(c2.has_mask());
  CHECK(c2.mask().size() ==
        regula::kernels::dropout_mask_words(static_cast<std::size_t>(x.size())));
  CHECK(bitwise_equal(y1, y2));
  Mat<T> dx1(x.rows(), x.cols()), dx2(x.rows(), x.cols());
  recompute.backward(dy, c1, dx1);
  stored.backward(dy, c2, dx2);
  CHECK(bitwise_equal(dx1, dx2));
  // Backward applies exactly the forward mask and scale.
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      const bool kept = c1.kept(i, j);
      REQUIRE(kept == c2.kept(i, j));
      REQUIRE(y1(i, j) == (kept ? x(i, j) * recompute.scale() : T(0)));
      REQUIRE(dx1(i, j) == (kept ? dy(i, j) * recompute.scale() : T(0)));
    }
  }
}

TEMPLATE_TEST_CASE("begin + forward_columns reproduce forward block by block, in any order",
                   "[layers][dropout][columns]", float, double) {
  using T = TestType;
  // 130 rows: blocks start in the middle of tiles and of mask words.
  const Mat<T> x = ramp<T>(130, 9);
  const Dropout<T> stored(DropoutOptions{0.3, true});
  const Dropout<T> drop(DropoutOptions{0.3});
  Mat<T> y(x.rows(), x.cols());
  Stream s1(21, 4), s2(21, 4);
  const auto full = stored.forward(x, y, s1);
  regula::DropoutContext ctx;
  drop.begin(x.rows(), x.cols(), s2, ctx);
  CHECK(s1 == s2);
  CHECK(ctx.mode() == regula::DropoutContext::Mode::random);
  Mat<T> yb = Mat<T>::Constant(x.rows(), x.cols(), T(-9));
  std::vector<std::uint64_t> bits(
      regula::kernels::dropout_mask_words(static_cast<std::size_t>(x.size())), 0);
  const Index starts[] = {6, 2, 0, 5};  // blocks [6, 9), [2, 5), [0, 2), [5, 6)
  const Index ends[] = {9, 5, 2, 6};
  for (int k = 0; k < 4; ++k) {
    drop.forward_columns(ctx, starts[k], x.middleCols(starts[k], ends[k] - starts[k]),
                         yb.middleCols(starts[k], ends[k] - starts[k]), bits.data());
  }
  CHECK(bitwise_equal(y, yb));
  // The recorded bits are the forward's mask (the bits past the last element are not defined).
  const std::size_t n = static_cast<std::size_t>(x.size());
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(((bits[i / 64] >> (i % 64)) & 1U) == ((full.mask()[i / 64] >> (i % 64)) & 1U));
  }
  // A block of a larger matrix (column stride ≠ rows), in place.
  Mat<T> big = Mat<T>::Zero(x.rows() + 5, x.cols());
  big.topRows(x.rows()) = x;
  drop.forward_columns(ctx, 3, big.topRows(x.rows()).middleCols(3, 4),
                       big.topRows(x.rows()).middleCols(3, 4));
  CHECK(big.topRows(x.rows()).middleCols(3, 4) == y.middleCols(3, 4));
  CHECK(big.bottomRows(5).isZero());
  // Eval and p = 1 take the identity and zero modes and draw nothing.
  Dropout<T> off(DropoutOptions{0.3});
  off.eval();
  Stream s3(1);
  off.begin(x.rows(), x.cols(), s3, ctx);
  CHECK(s3 == Stream(1));
  drop.forward_columns(ctx, 1, x.middleCols(1, 2), yb.middleCols(1, 2));
  CHECK(yb.middleCols(1, 2) == x.middleCols(1, 2));
  const Dropout<T> all(DropoutOptions{1.0});
  all.begin(x.rows(), x.cols(), s3, ctx);
  CHECK(s3 == Stream(1));
  drop.forward_columns(ctx, 1, x.middleCols(1, 2), yb.middleCols(1, 2));
  CHECK(yb.middleCols(1, 2).isZero());
  CHECK_THROWS_WITH(drop.forward_columns(ctx, 8, x.middleCols(0, 2), yb.middleCols(0, 2)),
                    "regula::Dropout::forward_columns: x: columns [8, 10) of 130 rows do not fit "
                    "the call (130 x 9)");
  CHECK_THROWS_WITH(drop.forward_columns(ctx, 0, x.middleCols(0, 2), yb.middleCols(0, 3)),
                    Catch::Matchers::Contains("y must have the shape of x"));
}

TEST_CASE("Dropout gradient equals central finite differences (double)",
          "[layers][dropout][gradcheck]") {
  const Dropout<double> drop(DropoutOptions{0.35});
  const Mat<double> x = Eigen::MatrixXd::Random(9, 5);
  const Mat<double> w = Eigen::MatrixXd::Random(9, 5);
  const Stream start(4242);
  auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
    Stream s = start;  // the same mask for every evaluation
    (void)drop.forward(in, out, s);
  };
  auto vjp = [&](const Eigen::MatrixXd& weights, Eigen::MatrixXd& dx) {
    Stream s = start;
    Eigen::MatrixXd y(x.rows(), x.cols());
    const auto ctx = drop.forward(x, y, s);
    drop.backward(weights, ctx, dx);
  };
  CHECK(regula::test::gradcheck(x, x.rows(), x.cols(), f, vjp, w) < regula::test::fd_tol);
}

TEMPLATE_TEST_CASE("Dropout in place equals out of place", "[layers][dropout]", float, double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.5});
  const Mat<T> x = ramp<T>(33, 9);
  Mat<T> y(x.rows(), x.cols());
  Mat<T> z = x;
  Stream s1(1), s2(1);
  const auto c1 = drop.forward(x, y, s1);
  const auto c2 = drop.forward(z, z, s2);
  CHECK(bitwise_equal(y, z));
  Mat<T> g = x;
  drop.backward(g, c2, g);
  Mat<T> h(x.rows(), x.cols());
  drop.backward(x, c1, h);
  CHECK(bitwise_equal(g, h));
}

TEMPLATE_TEST_CASE(
    "Dropout on a block of a larger matrix touches only the block and numbers elements "
    "column-major",
    "[layers][dropout]", float, double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.5});
  const Mat<T> big = ramp<T>(50, 20);
  Mat<T> out = Mat<T>::Constant(50, 20, T(-7));
  Stream s1(3), s2(3);
  (void)drop.forward(big.block(5, 2, 31, 11), out.block(5, 2, 31, 11), s1);
  const Mat<T> compact = big.block(5, 2, 31, 11);
  Mat<T> expected(31, 11);
  (void)drop.forward(compact, expected, s2);
  CHECK(bitwise_equal(Mat<T>(out.block(5, 2, 31, 11)), expected));
  out.block(5, 2, 31, 11).setConstant(T(-7));
  CHECK((out.array() == T(-7)).all());
}

TEMPLATE_TEST_CASE("Eval, p = 0 and p = 1 follow PyTorch and draw nothing", "[layers][dropout]",
                   float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  Mat<T> x = ramp<T>(4, 3);
  x(0, 0) = nan;
  x(1, 0) = inf;
  Mat<T> y(4, 3), dx(4, 3);
  Stream s(10);

  Dropout<T> drop(DropoutOptions{0.5});
  drop.eval();
  CHECK_FALSE(drop.is_training());
  auto ctx = drop.forward(x, y, s);
  CHECK(ctx.mode() == regula::DropoutContext::Mode::identity);
  CHECK(bitwise_equal(x, y));
  CHECK(s.offset() == 0);
  drop.train();
  drop.backward(x, ctx, dx);  // the context remembers eval mode
  CHECK(bitwise_equal(x, dx));

  const Dropout<T> none(DropoutOptions{0.0});
  ctx = none.forward(x, y, s);
  CHECK(bitwise_equal(x, y));
  CHECK(s.offset() == 0);

  const Dropout<T> all(DropoutOptions{1.0});
  ctx = all.forward(x, y, s);
  CHECK(ctx.mode() == regula::DropoutContext::Mode::zero);
  CHECK(s.offset() == 0);
  CHECK(std::isnan(y(0, 0)));
  CHECK(std::isnan(y(1, 0)));  // 0·inf
  CHECK((y.array().bottomRows(2) == T(0)).all());
  all.backward(x, ctx, dx);
  CHECK(std::isnan(dx(0, 0)));
  CHECK((dx.array().bottomRows(2) == T(0)).all());
}

TEMPLATE_TEST_CASE("A dropped NaN stays NaN, as x·0 in PyTorch", "[layers][dropout]", float,
                   double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.9});
  const Mat<T> x = Mat<T>::Constant(256, 1, std::numeric_limits<T>::quiet_NaN());
  Mat<T> y(256, 1);
  Stream s(1);
  (void)drop.forward(x, y, s);
  CHECK(y.array().isNaN().all());
}

TEMPLATE_TEST_CASE("Dropout advances the stream by 16 blocks per started 128 elements",
                   "[layers][dropout]", float, double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.5});
  const Mat<T> x = ramp<T>(10, 13);  // 130 elements: two tiles
  Mat<T> y(10, 13);
  Stream s(1, 2, 5);
  const auto ctx = drop.forward(x, y, s);
  CHECK(ctx.stream() == Stream(1, 2, 5));
  CHECK(s == Stream(1, 2, 5 + 32));
}

TEMPLATE_TEST_CASE("Dropout forward and backward do not allocate", "[layers][dropout][alloc]",
                   float, double) {
  using T = TestType;
  const Mat<T> x = ramp<T>(300, 40);
  Mat<T> y(300, 40), dx(300, 40);
  for (const bool store : {false, true}) {
    const Dropout<T> drop(DropoutOptions{0.5, store});
    Stream s(1);
    regula::DropoutContext ctx;
    drop.forward(x, y, s, ctx);  // the first call may size the mask
    const long before = g_allocations.load();
    {
      regula::test::NoMalloc guard;
      drop.forward(x, y, s, ctx);
      drop.backward(y, ctx, dx);
      drop.forward(x.leftCols(20), y.leftCols(20), s, ctx);  // blocks bind without copies
    }
    CHECK(g_allocations.load() == before);
  }
}

TEMPLATE_TEST_CASE(
    "Dropout rejects mismatched shapes and overlapping outputs, naming the parameter",
    "[layers][dropout][errors]", float, double) {
  using T = TestType;
  const Dropout<T> drop(DropoutOptions{0.5});
  Mat<T> x = ramp<T>(8, 4);
  Mat<T> wrong(8, 3);
  Stream s(1);
  CHECK_THROWS_WITH(drop.forward(x, wrong, s),
                    "regula::Dropout: y must have the shape of x (8 x 4), got 8 x 3");
  Mat<T> y(8, 4);
  const auto ctx = drop.forward(x, y, s);
  Mat<T> dy(7, 4), dx(7, 4);
  CHECK_THROWS_WITH(
      drop.backward(dy, ctx, dx),
      "regula::Dropout::backward: dy must have the shape of the forward input (8 x 4), got 7 x 4");
  Mat<T> dx_wrong(8, 5);
  CHECK_THROWS_AS(drop.backward(y, ctx, dx_wrong), regula::invalid_argument);
  Mat<T> big = ramp<T>(9, 4);
  CHECK_THROWS_WITH(drop.forward(big.topRows(8), big.bottomRows(8), s),
                    "regula::Dropout: y must be x itself or not overlap it; it overlaps partly");
}

TEST_CASE("Outputs large enough for streaming stores get the same values",
          "[layers][dropout][streaming]") {
  // 16 MiB of float output out of place takes the streaming-store path; in place it does not.
  const Index rows = 1024, cols = 4096;
  REQUIRE(static_cast<std::size_t>(rows * cols) * sizeof(float) >=
          regula::kernels::streaming_bytes);
  const Mat<float> x = ramp<float>(rows, cols);
  Mat<float> y(rows, cols);
  Mat<float> z = x;
  const Dropout<float> drop(DropoutOptions{0.3});
  Stream s1(12), s2(12);
  const auto c1 = drop.forward(x, y, s1);
  (void)drop.forward(z, z, s2);
  CHECK(bitwise_equal(y, z));
  Mat<float> dx(rows, cols);
  Mat<float> g = x;
  drop.backward(x, c1, dx);
  drop.backward(g, c1, g);
  CHECK(bitwise_equal(dx, g));
}
