#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/selection/co_teaching.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

namespace {

using Mat = regula::Matrix<double>;
using Vec = regula::Vector<double>;

/// Per-sample softmax cross-entropy and the gradient of each sample's own loss, written
/// independently of the library as the test's reference.
void ce_per_sample(const Mat& z, const std::vector<std::int64_t>& y, Vec& loss, Mat& grad) {
  loss.resize(z.cols());
  grad.resize(z.rows(), z.cols());
  for (regula::Index j = 0; j < z.cols(); ++j) {
    const double m = z.col(j).maxCoeff();
    const Eigen::ArrayXd e = (z.col(j).array() - m).exp();
    const double s = e.sum();
    loss(j) = std::log(s) + m - z(y[static_cast<std::size_t>(j)], j);
    grad.col(j) = (e / s).matrix();
    grad(y[static_cast<std::size_t>(j)], j) -= 1.0;
  }
}

struct Batch {
  Mat z1, z2;
  std::vector<std::int64_t> y;
};

Batch make_batch(regula::Index c, regula::Index b) {
  Batch t{Mat::Random(c, b) * 3.0, Mat::Random(c, b) * 3.0, {}};
  for (regula::Index j = 0; j < b; ++j) t.y.push_back(j % c);
  return t;
}

}  // namespace

TEST_CASE("Co-teaching exchanges small-loss samples and rewrites per-sample gradients",
          "[selection][coteaching]") {
  const Batch t = make_batch(5, 12);
  Vec l1, l2;
  Mat g1, g2;
  ce_per_sample(t.z1, t.y, l1, g1);
  ce_per_sample(t.z2, t.y, l2, g2);
  const Mat g1_own = g1, g2_own = g2;
  regula::CoTeaching<double> ct;
  const auto r = ct.exchange(l1, l2, 0.25, g1, g2);
  REQUIRE(r.kept1 == 9);
  REQUIRE(r.kept2 == 9);
  regula::SmallLossSelector<double> ref;
  const auto s1 = ref.select(l1, 9);
  CHECK(ct.selected_by_first() == s1);
  const auto s2 = ref.select(l2, 9);
  CHECK(ct.selected_by_second() == s2);
  double m1 = 0, m2 = 0;
  for (auto i : s2) m1 += l1(i) / 9;
  for (auto i : s1) m2 += l2(i) / 9;
  CHECK(std::abs(r.loss1 - m1) < 1e-14);
  CHECK(std::abs(r.loss2 - m2) < 1e-14);
  for (regula::Index j = 0; j < 12; ++j) {
    const bool in2 = std::find(s2.begin(), s2.end(), j) != s2.end();
    const bool in1 = std::find(s1.begin(), s1.end(), j) != s1.end();
    CHECK(
        g1.col(j).isApprox(in2 ? Eigen::VectorXd(g1_own.col(j) / 9.0) : Eigen::VectorXd::Zero(5)));
    CHECK(
        g2.col(j).isApprox(in1 ? Eigen::VectorXd(g2_own.col(j) / 9.0) : Eigen::VectorXd::Zero(5)));
  }
}

TEST_CASE("Co-teaching gradients equal finite differences of the selected mean losses",
          "[selection][coteaching][gradcheck]") {
  const Batch t = make_batch(4, 10);
  Vec l1, l2;
  Mat g1, g2;
  ce_per_sample(t.z1, t.y, l1, g1);
  ce_per_sample(t.z2, t.y, l2, g2);
  regula::CoTeaching<double> ct;
  (void)ct.exchange(l1, l2, 0.4, g1, g2);
  const auto s2 =
      ct.selected_by_second();  // net 1 trains on these; fixed under small perturbations
  // L¹(z¹) = mean over S² of CE(z¹_i).
  auto f = [&](const Eigen::MatrixXd& z, Eigen::MatrixXd& out) {
    Vec l;
    Mat g;
    ce_per_sample(z, t.y, l, g);
    double m = 0;
    for (auto i : s2) m += l(i);
    out.resize(1, 1);
    out(0, 0) = m / static_cast<double>(s2.size());
  };
  auto vjp = [&](const Eigen::MatrixXd& w, Eigen::MatrixXd& dz) { dz = g1 * w(0, 0); };
  const Eigen::MatrixXd w = Eigen::MatrixXd::Constant(1, 1, 1.3);
  CHECK(regula::test::gradcheck(t.z1, 1, 1, f, vjp, w) < regula::test::fd_tol);
}

TEST_CASE("Co-teaching+ filters by disagreement after the initial epochs",
          "[selection][coteaching_plus]") {
  Mat z1(3, 6), z2(3, 6);
  // argmax per column:   z1: 0 1 2 0 1 2   z2: 0 2 2 1 1 0  → disagree on 1, 3, 5
  z1 << 3, 0, 0, 3, 0, 0,  //
      0, 3, 0, 0, 3, 0,    //
      0, 0, 3, 0, 0, 3;
  z2 << 3, 0, 0, 0, 0, 3,  //
      0, 0, 0, 3, 3, 0,    //
      0, 3, 3, 0, 0, 0;
  const std::vector<std::int64_t> y{0, 1, 2, 0, 1, 2};
  Vec l1, l2;
  Mat g1, g2;
  ce_per_sample(z1, y, l1, g1);
  ce_per_sample(z2, y, l2, g2);
  regula::CoTeachingPlus<double> ctp(
      regula::CoTeachingPlusOptions{2, regula::EmptyDisagreement::all_samples});

  Mat a1 = g1, a2 = g2;
  const auto warm = ctp.exchange(z1, z2, l1, l2, 0.5, 1, a1, a2);  // epoch 1 < 2: plain Co-teaching
  CHECK(warm.kept1 == 3);
  CHECK(ctp.disagreement().empty());

  a1 = g1;
  a2 = g2;
  const auto r = ctp.exchange(z1, z2, l1, l2, 0.5, 2, a1, a2);
  CHECK(ctp.disagreement() == std::vector<regula::Index>{1, 3, 5});
  CHECK(r.kept1 == 1);  // max(1, floor(0.5 · 3))
  // Net 1 trains on net 2's smallest loss inside D (first index on ties) and on nothing else.
  regula::Index best = 1;
  for (const regula::Index j : {3, 5}) {
    if (l2(j) < l2(best)) best = j;
  }
  for (regula::Index j = 0; j < 6; ++j) {
    if (j == best) {
      CHECK(a1.col(j).isApprox(g1.col(j)));
    } else {
      CHECK(a1.col(j).isZero());
    }
  }
  CHECK(std::abs(r.loss1 - l1(best)) < 1e-15);
}

TEST_CASE("Co-teaching+ with full agreement follows the documented policy",
          "[selection][coteaching_plus]") {
  const Mat z = Mat::Random(4, 5);
  const std::vector<std::int64_t> y{0, 1, 2, 3, 0};
  Vec l;
  Mat g;
  ce_per_sample(z, y, l, g);
  {
    regula::CoTeachingPlus<double> all({0, regula::EmptyDisagreement::all_samples});
    Mat a1 = g, a2 = g;
    const auto r = all.exchange(z, z, l, l, 0.5, 3, a1, a2);
    CHECK(r.kept1 == 5);
    CHECK(std::abs(r.loss1 - l.mean()) < 1e-15);
    CHECK(a1.isApprox(g / 5.0));
  }
  {
    regula::CoTeachingPlus<double> skip({0, regula::EmptyDisagreement::skip});
    Mat a1 = g, a2 = g;
    const auto r = skip.exchange(z, z, l, l, 0.5, 3, a1, a2);
    CHECK(r.kept1 == 0);
    CHECK(r.loss1 == 0.0);
    CHECK(a1.isZero());
    CHECK(a2.isZero());
  }
}

TEST_CASE("Co-teaching rejects mismatched inputs, naming the parameter",
          "[selection][coteaching][errors]") {
  Vec l1 = Vec::Ones(4), l2 = Vec::Ones(3);
  Mat g1(2, 4), g2(2, 3);
  regula::CoTeaching<double> ct;
  CHECK_THROWS_WITH(ct.exchange(l1, l2, 0.5, g1, g2),
                    "regula::CoTeaching::exchange: loss2 must have the length of loss1 (4), got 3");
  Vec l3 = Vec::Ones(4);
  Mat g3(2, 5);
  CHECK_THROWS_WITH(
      ct.exchange(l1, l3, 0.5, g1, g3),
      "regula::CoTeaching::exchange: grad2 must have one column per sample (4), got 5");
  Mat g4(2, 4);
  CHECK_THROWS_AS(ct.exchange(l1, l3, 1.5, g1, g4), regula::invalid_argument);
  CHECK_THROWS_AS(regula::CoTeachingPlus<double>({-1, regula::EmptyDisagreement::skip}),
                  regula::invalid_argument);
}

TEST_CASE("Co-teaching refuses gradients that share memory with each other or with a loss",
          "[selection][coteaching][errors]") {
  using Catch::Matchers::Contains;
  Vec l1 = Vec::Random(4), l2 = Vec::Random(4);
  Mat g1 = Mat::Random(3, 4), g2 = Mat::Random(3, 4);
  regula::CoTeaching<double> ct;
  CHECK_THROWS_WITH(ct.exchange(l1, l2, 0.5, g1, g1), Contains("grad2 must not overlap grad1"));
  Eigen::Map<Vec> inside(g1.data() + 1, 4);
  CHECK_THROWS_WITH(ct.exchange(l1, inside, 0.5, g1, g2), Contains("grad1 must not overlap loss2"));
  CHECK_THROWS_WITH(ct.exchange(inside, l2, 0.5, g1, g2), Contains("grad1 must not overlap loss1"));
  regula::CoTeachingPlus<double> plus;
  const Mat z1 = Mat::Random(3, 4), z2 = Mat::Random(3, 4);
  CHECK_THROWS_WITH(plus.exchange(z1, z2, l1, l2, 0.5, 5, g1, g1),
                    Contains("grad2 must not overlap grad1"));
  CHECK_NOTHROW(ct.exchange(l1, l2, 0.5, g1, g2));
}

TEST_CASE("Co-teaching+ refuses a NaN or negative epoch", "[selection][coteaching_plus][errors]") {
  using Catch::Matchers::Contains;
  Vec l1 = Vec::Random(4), l2 = Vec::Random(4);
  Mat g1 = Mat::Random(3, 4), g2 = Mat::Random(3, 4);
  const Mat z1 = Mat::Random(3, 4), z2 = Mat::Random(3, 4);
  regula::CoTeachingPlus<double> plus({2});
  CHECK_THROWS_WITH(plus.exchange(z1, z2, l1, l2, 0.5, std::nan(""), g1, g2),
                    "regula::CoTeachingPlus::exchange: epoch must be >= 0, got nan");
  CHECK_THROWS_WITH(plus.exchange(z1, z2, l1, l2, 0.5, -1, g1, g2),
                    Contains("epoch must be >= 0, got -1"));
}
