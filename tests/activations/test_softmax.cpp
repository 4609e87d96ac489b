#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>
#include <string>

#include "regula/activations/softmax.hpp"

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

TEMPLATE_TEST_CASE("softmax and log_softmax match PyTorch, forward and VJP",
                   "[activations][softmax][golden]", float, double) {
  using T = TestType;
  const Mat<T> z = gmat<T>("logits");
  const Mat<T> dy = gmat<T>("dy");
  Mat<T> y(7, 5), dz(7, 5);
  regula::softmax(z, y);
  CHECK((y.template cast<double>() - gmat<double>("softmax")).cwiseAbs().maxCoeff() < tol<T>());
  regula::softmax_backward(y, dy, dz);
  CHECK((dz.template cast<double>() - gmat<double>("softmax_vjp")).cwiseAbs().maxCoeff() <
        4 * tol<T>());
  regula::log_softmax(z, y);
  CHECK((y.template cast<double>() - gmat<double>("log_softmax")).cwiseAbs().maxCoeff() <
        8 * tol<T>());
  regula::log_softmax_backward(y, dy, dz);
  CHECK((dz.template cast<double>() - gmat<double>("log_softmax_vjp")).cwiseAbs().maxCoeff() <
        8 * tol<T>());
  // The returning overloads give the same values.
  CHECK(regula::log_softmax(z) == y);
}

TEMPLATE_TEST_CASE("softmax kernels agree with their scalar references on ragged sizes",
                   "[activations][softmax][kernels]", float, double) {
  using T = TestType;
  namespace k = regula::kernels;
  for (const Index n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 65, 1000}) {
    INFO("n = " << n);
    const Mat<T> z = random_matrix<T>(n, 1, 6.0, static_cast<unsigned>(n));
    const Mat<T> dy = random_matrix<T>(n, 1, 1.0, static_cast<unsigned>(n + 1));
    const auto un = static_cast<std::size_t>(n);
    Mat<T> a(n, 1), b(n, 1);
    CHECK(k::column_max(z.data(), un) == k::column_max_reference(z.data(), un));
    const T m = k::column_max(z.data(), un);
    const T s1 = k::sum_exp(z.data(), un, m, a.data());
    const T s2 = k::sum_exp_reference(z.data(), un, m, b.data());
    CHECK(std::abs(s1 - s2) <= T(8) * std::numeric_limits<T>::epsilon() * s2);
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(4) * std::numeric_limits<T>::epsilon());
    k::softmax_column(z.data(), un, a.data());
    k::softmax_column_reference(z.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(16) * std::numeric_limits<T>::epsilon());
    k::log_softmax_column(z.data(), un, a.data());
    k::log_softmax_column_reference(z.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(64) * std::numeric_limits<T>::epsilon());
    const Mat<T> y = a;
    k::log_softmax_backward_column(y.data(), dy.data(), un, a.data());
    k::log_softmax_backward_column_reference(y.data(), dy.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(64) * std::numeric_limits<T>::epsilon() * T(n));
    const Mat<T> p = regula::softmax(z);
    k::softmax_backward_column(p.data(), dy.data(), un, a.data());
    k::softmax_backward_column_reference(p.data(), dy.data(), un, b.data());
    CHECK((a - b).cwiseAbs().maxCoeff() <= T(64) * std::numeric_limits<T>::epsilon());
  }
}

TEST_CASE("softmax and log_softmax VJPs match central differences (double)",
          "[activations][softmax][gradcheck]") {
  const Eigen::MatrixXd z = random_matrix<double>(9, 4, 3.0, 21);
  const Eigen::MatrixXd w = random_matrix<double>(9, 4, 1.0, 22);
  using regula::test::gradcheck;
  const Eigen::MatrixXd p = regula::softmax(z);
  CHECK(gradcheck(
            z, 9, 4, [](const Eigen::MatrixXd& x, Eigen::MatrixXd& y) { regula::softmax(x, y); },
            [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
              regula::softmax_backward(p, wt, dx);
            },
            w) < regula::test::fd_tol);
  const Eigen::MatrixXd lp = regula::log_softmax(z);
  CHECK(gradcheck(
            z, 9, 4,
            [](const Eigen::MatrixXd& x, Eigen::MatrixXd& y) { regula::log_softmax(x, y); },
            [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
              regula::log_softmax_backward(lp, wt, dx);
            },
            w) < regula::test::fd_tol);
}

TEMPLATE_TEST_CASE("softmax is finite for extreme logits and NaN-propagating",
                   "[activations][softmax][numerics]", float, double) {
  using T = TestType;
  for (const double big : {1e4, 1e30}) {
    Mat<T> z(20, 2);
    for (Index i = 0; i < 20; ++i) {
      z(i, 0) = static_cast<T>(i % 3 == 0 ? big : -big);
      z(i, 1) = static_cast<T>(-big);
    }
    const Mat<T> p = regula::softmax(z);
    CHECK(p.allFinite());
    CHECK(std::abs(static_cast<double>(p(0, 0)) - 1.0 / 7) < 1e-6);
    CHECK(p(1, 0) == T(0));
    CHECK(std::abs(static_cast<double>(p.col(1).sum()) - 1.0) < 1e-6);
    const Mat<T> lp = regula::log_softmax(z);
    CHECK(lp.allFinite());
    CHECK(std::abs(static_cast<double>(lp(1, 0)) - (-2 * big - std::log(7.0))) <= 1e-6 * 2 * big);
  }
  Mat<T> z = random_matrix<T>(33, 3, 2.0, 4);
  z(32, 1) = std::numeric_limits<T>::quiet_NaN();  // in the SIMD tail
  z(3, 2) = std::numeric_limits<T>::quiet_NaN();   // in a full block
  const Mat<T> p = regula::softmax(z);
  CHECK(p.col(0).allFinite());
  CHECK(p.col(1).array().isNaN().all());
  CHECK(p.col(2).array().isNaN().all());
  CHECK(regula::log_softmax(z).col(1).array().isNaN().all());
}

TEMPLATE_TEST_CASE("softmax works in place and on blocks, and allocates nothing",
                   "[activations][softmax][nomalloc]", float, double) {
  using T = TestType;
  const Mat<T> z = random_matrix<T>(37, 6, 3.0, 9);
  const Mat<T> want = regula::softmax(z);
  Mat<T> big = Mat<T>::Constant(40, 8, T(-7));
  big.block(1, 1, 37, 6) = z;
  Mat<T> y = z;
  Mat<T> dz(37, 6);
  {
    regula::test::NoMalloc guard;
    regula::softmax(y, y);  // in place
    regula::softmax(big.block(1, 1, 37, 6), big.block(1, 1, 37, 6));
    regula::softmax_backward(y, z, dz);
    regula::log_softmax(z, dz);
    regula::log_softmax_backward(dz, z, dz);
  }
  CHECK(y == want);
  CHECK(big.block(1, 1, 37, 6) == want);
  CHECK((big.row(0).array() == T(-7)).all());
  CHECK((big.row(38).array() == T(-7)).all());
  CHECK((big.col(0).array() == T(-7)).all());
}

TEST_CASE("softmax rejects bad shapes and partial overlap", "[activations][softmax][errors]") {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(4, 3);
  Eigen::MatrixXf y(4, 2);
  CHECK_THROWS_WITH(regula::softmax(z, y),
                    "regula::softmax: y must have the shape of z (4 x 3), got 4 x 2");
  CHECK_THROWS_WITH(regula::log_softmax(z, y),
                    "regula::log_softmax: y must have the shape of z (4 x 3), got 4 x 2");
  Eigen::MatrixXf buf = Eigen::MatrixXf::Random(4, 4);
  CHECK_THROWS_WITH(regula::softmax(buf.leftCols(3), buf.rightCols(3)),
                    "regula::softmax: y must be z itself or not overlap it; it overlaps partly");
  const Eigen::MatrixXf dy(4, 2);
  Eigen::MatrixXf dz(4, 3);
  CHECK_THROWS_WITH(regula::softmax_backward(z, dy, dz),
                    "regula::softmax_backward: dy must have the shape of y (4 x 3), got 4 x 2");
  // Empty matrices are a no-op.
  Eigen::MatrixXf e(4, 0);
  CHECK_NOTHROW(regula::softmax(e, e));
}

TEST_CASE("softmax VJPs may write over y or dy, and refuse partial overlap with either",
          "[activations][softmax][errors]") {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(5, 3);
  const Eigen::MatrixXf y = regula::softmax(z);
  const Eigen::MatrixXf ly = regula::log_softmax(z);
  const Eigen::MatrixXf dy = Eigen::MatrixXf::Random(5, 3);
  Eigen::MatrixXf want(5, 3), want_log(5, 3);
  regula::softmax_backward(y, dy, want);
  regula::log_softmax_backward(ly, dy, want_log);
  // dz = y: each element depends only on y_ij, dy_ij and the column's dot product.
  Eigen::MatrixXf yy = y;
  regula::softmax_backward(yy, dy, yy);
  CHECK(yy == want);
  Eigen::MatrixXf lyy = ly;
  regula::log_softmax_backward(lyy, dy, lyy);
  CHECK(lyy == want_log);
  // Partial overlap with y is refused.
  Eigen::MatrixXf buf(5, 4);
  buf.leftCols(3) = y;
  CHECK_THROWS_WITH(
      regula::softmax_backward(buf.leftCols(3), dy, buf.rightCols(3)),
      "regula::softmax_backward: dz must be y itself or not overlap it; it overlaps partly");
  buf.leftCols(3) = ly;
  CHECK_THROWS_WITH(
      regula::log_softmax_backward(buf.leftCols(3), dy, buf.rightCols(3)),
      "regula::log_softmax_backward: dz must be y itself or not overlap it; it overlaps partly");
}
