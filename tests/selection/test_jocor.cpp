#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "regula/core/stream.hpp"
#include "regula/selection/jocor.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

namespace {

using Mat = regula::Matrix<double>;

/// The joint loss of one sample, restated from the paper with plain softmax in double.
double joint_loss(const Eigen::VectorXd& z1, const Eigen::VectorXd& z2, std::int64_t y,
                  double lambda) {
  const Eigen::ArrayXd p =
      (z1.array() - z1.maxCoeff()).exp() / (z1.array() - z1.maxCoeff()).exp().sum();
  const Eigen::ArrayXd q =
      (z2.array() - z2.maxCoeff()).exp() / (z2.array() - z2.maxCoeff()).exp().sum();
  const double ce = -std::log(p(y)) - std::log(q(y));
  const double kl_qp = (q * (q.log() - p.log())).sum();
  const double kl_pq = (p * (p.log() - q.log())).sum();
  return (1 - lambda) * ce + lambda * (kl_qp + kl_pq);
}

}  // namespace

TEST_CASE("JoCoR per-sample joint losses follow the paper's formula", "[selection][jocor]") {
  const Mat z1 = Mat::Random(5, 9) * 3.0, z2 = Mat::Random(5, 9) * 3.0;
  regula::Labels y(9);
  for (int j = 0; j < 9; ++j) y(j) = j % 5;
  regula::JoCoR<double> jocor({0.7});
  regula::Vector<double> l(9);
  jocor.per_sample(z1, z2, y, l);
  for (int j = 0; j < 9; ++j)
    CHECK(std::abs(l(j) - joint_loss(z1.col(j), z2.col(j), y(j), 0.7)) < 1e-12);
}

TEST_CASE("JoCoR selects the smallest joint losses and its gradients equal finite differences",
          "[selection][jocor][gradcheck]") {
  const Mat z1 = Mat::Random(4, 10) * 2.0, z2 = Mat::Random(4, 10) * 2.0;
  regula::Labels y(10);
  for (int j = 0; j < 10; ++j) y(j) = (3 * j) % 4;
  const double lambda = 0.6;
  regula::JoCoR<double> jocor({lambda});
  Mat g1(4, 10), g2(4, 10);
  const auto r = jocor.step(z1, z2, y, 0.4, g1, g2);
  REQUIRE(r.kept == 6);
  regula::Vector<double> l(10);
  jocor.per_sample(z1, z2, y, l);
  regula::SmallLossSelector<double> ref;
  const auto sel = ref.select(l, 6);
  CHECK(jocor.selected() == sel);
  double mean = 0;
  for (auto j : sel) mean += l(j) / 6;
  CHECK(std::abs(r.loss - mean) < 1e-13);
  // L as a function of z¹ (z² fixed) and of z² (z¹ fixed), over the fixed selection.
  auto loss_of = [&](const Mat& a, const Mat& b) {
    double s = 0;
    for (auto j : sel) s += joint_loss(a.col(j), b.col(j), y(j), lambda);
    return s / static_cast<double>(sel.size());
  };
  const Eigen::MatrixXd w = Eigen::MatrixXd::Constant(1, 1, 0.9);
  auto f1 = [&](const Eigen::MatrixXd& z, Eigen::MatrixXd& out) {
    out = Eigen::MatrixXd::Constant(1, 1, loss_of(z, z2));
  };
  auto f2 = [&](const Eigen::MatrixXd& z, Eigen::MatrixXd& out) {
    out = Eigen::MatrixXd::Constant(1, 1, loss_of(z1, z));
  };
  CHECK(regula::test::gradcheck(
            z1, 1, 1, f1, [&](const Eigen::MatrixXd& v, Eigen::MatrixXd& d) { d = g1 * v(0, 0); },
            w) < 1e-7);
  CHECK(regula::test::gradcheck(
            z2, 1, 1, f2, [&](const Eigen::MatrixXd& v, Eigen::MatrixXd& d) { d = g2 * v(0, 0); },
            w) < 1e-7);
  // Unselected samples get no gradient.
  for (int j = 0; j < 10; ++j) {
    if (std::find(sel.begin(), sel.end(), j) == sel.end()) {
      CHECK(g1.col(j).isZero());
      CHECK(g2.col(j).isZero());
    }
  }
}

TEST_CASE("JoCoR with lambda = 0 is Co-teaching's cross-entropy on the joint selection",
          "[selection][jocor]") {
  const Mat z1 = Mat::Random(3, 6), z2 = Mat::Random(3, 6);
  regula::Labels y(6);
  y << 0, 1, 2, 0, 1, 2;
  regula::JoCoR<double> jocor({0.0});
  regula::Vector<double> l(6);
  jocor.per_sample(z1, z2, y, l);
  for (int j = 0; j < 6; ++j)
    CHECK(std::abs(l(j) - joint_loss(z1.col(j), z2.col(j), y(j), 0.0)) < 1e-13);
}

TEST_CASE("JoCoR stays finite for confident networks in float", "[selection][jocor]") {
  regula::Matrix<float> z1(3, 2), z2(3, 2);
  z1 << 1e4F, -1e4F, 0, 0, -1e4F, 1e4F;
  z2 << -1e4F, 1e4F, 1e4F, 0, 0, -1e4F;
  regula::Labels y(2);
  y << 0, 1;
  regula::JoCoR<float> jocor({0.5});
  regula::Matrix<float> g1(3, 2), g2(3, 2);
  const auto r = jocor.step(z1, z2, y, 0.0, g1, g2);
  CHECK(std::isfinite(r.loss));
  CHECK(g1.allFinite());
  CHECK(g2.allFinite());
}

TEST_CASE("JoCoR: a huge negative logit where the other network peaks keeps the gradient exact",
          "[selection][jocor][regression]") {
  // Fuzz finding jocor-huge-logit: z1 = -1e30 at z2's argmax made a = log p - log q cancel in
  // every class (it was formed against that class), leaving a gradient column of one -q_0 entry.
  regula::Matrix<float> z1(4, 1), z2(4, 1);
  z1 << -1e30F, 2.0F, 1.0F, 0.0F;
  z2 << 5.0F, 1.0F, 0.0F, -1.0F;
  regula::Labels y(1);
  y << 1;
  regula::JoCoR<float> jocor({1.0});
  regula::Matrix<float> g1(4, 1), g2(4, 1);
  (void)jocor.step(z1, z2, y, 0.0, g1, g2);
  // g1 = (p - q) + p (a - <p, a>) with p_0 = 0 exactly: restated in long double.
  using LD = long double;
  LD p[4], q[4], sp = 0, sq = 0;
  for (int i = 1; i < 4; ++i) sp += std::exp(static_cast<LD>(z1(i)) - 2.0L);
  for (int i = 0; i < 4; ++i) sq += std::exp(static_cast<LD>(z2(i)) - 5.0L);
  p[0] = 0;
  for (int i = 1; i < 4; ++i) p[i] = std::exp(static_cast<LD>(z1(i)) - 2.0L) / sp;
  for (int i = 0; i < 4; ++i) q[i] = std::exp(static_cast<LD>(z2(i)) - 5.0L) / sq;
  LD pa = 0;
  for (int i = 1; i < 4; ++i) pa += p[i] * std::log(p[i] / q[i]);
  for (int i = 0; i < 4; ++i) {
    const LD a = i == 0 ? 0.0L : std::log(p[i] / q[i]);  // p_0 (a_0 - <p, a>) = 0
    const LD want = (p[i] - q[i]) + p[i] * (a - pa);
    INFO("class " << i << ": got " << g1(i) << ", want " << static_cast<double>(want));
    CHECK(std::abs(static_cast<LD>(g1(i)) - want) <= 1e-6L * std::abs(want));
  }
}

TEST_CASE(
    "JoCoR: a double column spanning past the largest double keeps a finite loss and gradients",
    "[selection][jocor][regression]") {
  // Fuzz finding jocor-span-past-max: z¹_0 − max z¹ overflowed to −inf, so a = log p − log q
  // was infinite, the divergence +inf where it is 1.3e308, and with λ = 0 the loss 0·inf = NaN.
  using LD = long double;
  regula::Matrix<double> z1(3, 1), z2(3, 1);
  z1 << -2e307, 1.7e308, 0.0;
  z2 << 1.0, 2.0, 3.0;
  auto log_softmax = [](const regula::Matrix<double>& z, LD* lp) {
    LD m = z(0), tail = 0;
    for (int i = 1; i < 3; ++i) m = std::max<LD>(m, z(i));
    for (int i = 0; i < 3; ++i) tail += std::exp(static_cast<LD>(z(i)) - m);
    for (int i = 0; i < 3; ++i) lp[i] = (static_cast<LD>(z(i)) - m) - std::log(tail);
  };
  LD lp[3], lq[3], p[3], q[3], a[3];
  log_softmax(z1, lp);
  log_softmax(z2, lq);
  LD skl = 0, pa = 0, qa = 0;
  for (int i = 0; i < 3; ++i) {
    p[i] = std::exp(lp[i]);
    q[i] = std::exp(lq[i]);
    a[i] = lp[i] - lq[i];
    skl += (p[i] - q[i]) * a[i];
    pa += p[i] * a[i];
    qa += q[i] * a[i];
  }
  REQUIRE(skl < static_cast<LD>(std::numeric_limits<double>::max()));
  // Label 0 sits at −2e307: its cross-entropy, 1.9e308, passes the largest double, so the loss
  // is +inf unless λ = 1 leaves the cross-entropies out (0·inf was NaN: campaign finding
  // jocor-ce-weight-zero).
  for (const int label : {2, 0}) {
    for (const double lambda : {0.0, 0.5, 1.0}) {
      INFO("label = " << label << ", lambda = " << lambda);
      regula::Labels y(1);
      y << label;
      const LD ce = 1 - static_cast<LD>(lambda);
      const LD want =
          (lambda < 1 ? ce * (-lp[label] - lq[label]) : 0) + static_cast<LD>(lambda) * skl;
      regula::JoCoR<double> jocor({lambda});
      regula::Matrix<double> g1(3, 1), g2(3, 1);
      const auto r = jocor.step(z1, z2, y, 0.0, g1, g2);
      if (want > static_cast<LD>(std::numeric_limits<double>::max())) {
        CHECK(r.loss == std::numeric_limits<double>::infinity());
      } else {
        REQUIRE(std::isfinite(r.loss));
        CHECK(std::abs(static_cast<LD>(r.loss) - want) <= 1e-15L * want);
      }
      for (int i = 0; i < 3; ++i) {
        const LD e = i == label ? 1 : 0;
        const LD w1 =
            ce * (p[i] - e) + static_cast<LD>(lambda) * ((p[i] - q[i]) + p[i] * (a[i] - pa));
        const LD w2 =
            ce * (q[i] - e) - static_cast<LD>(lambda) * ((p[i] - q[i]) + q[i] * (a[i] - qa));
        INFO("class " << i << ": got " << g1(i) << ", " << g2(i) << "; want "
                      << static_cast<double>(w1) << ", " << static_cast<double>(w2));
        REQUIRE(std::isfinite(g1(i)));
        REQUIRE(std::isfinite(g2(i)));
        CHECK(std::abs(static_cast<LD>(g1(i)) - w1) <= 1e-14L * std::max<LD>(1, std::abs(w1)));
        CHECK(std::abs(static_cast<LD>(g2(i)) - w2) <= 1e-14L * std::max<LD>(1, std::abs(w2)));
      }
    }
  }
}

TEST_CASE("JoCoR: both networks spanning past the largest double at one class give no NaN",
          "[selection][jocor][regression]") {
  // Campaign finding jocor-span-nan: class 4 at −DBL_MAX in both columns, whose maxima are
  // DBL_MAX: z − m¹ and v − m² are both −inf, and a = (−inf) − (−inf) was NaN.
  const double big = std::numeric_limits<double>::max();
  regula::Matrix<double> z1(6, 1), z2(6, 1);
  z1 << big, 29.75, 2.2e-308, 5.4375, -big, big;
  z2 << big, 0.0, 0.0, -1e38, -big, 5.125;
  regula::Labels y(1);
  y << 3;
  for (const double lambda : {0.0, 0.5, 1.0}) {
    INFO("lambda = " << lambda);
    regula::JoCoR<double> jocor({lambda});
    regula::Matrix<double> g1(6, 1), g2(6, 1);
    const auto r = jocor.step(z1, z2, y, 0.0, g1, g2);
    CHECK_FALSE(std::isnan(r.loss));
    CHECK(r.loss >= 0.0);
    CHECK_FALSE(g1.array().isNaN().any());
    CHECK_FALSE(g2.array().isNaN().any());
  }
}

TEST_CASE("JoCoR rejects bad input, naming the parameter", "[selection][jocor][errors]") {
  CHECK_THROWS_WITH(regula::JoCoR<double>({1.5}),
                    "regula::JoCoR: lambda must be in [0, 1], got 1.5");
  regula::JoCoR<double> jocor;
  const Mat z = Mat::Zero(3, 2);
  regula::Labels y(2);
  y << 0, 3;
  regula::Vector<double> l(2);
  CHECK_THROWS_WITH(jocor.per_sample(z, z, y, l),
                    "regula::JoCoR::per_sample: labels(1) must be in [0, 3), got 3");
  regula::Labels y1(1);
  y1 << 0;
  CHECK_THROWS_AS(jocor.per_sample(z, z, y1, l), regula::invalid_argument);
  const Mat z4 = Mat::Zero(4, 2);
  CHECK_THROWS_AS(jocor.per_sample(z, z4, y, l), regula::invalid_argument);
  const Mat empty(3, 0);
  regula::Vector<double> none(0);
  CHECK_THROWS_WITH(
      jocor.per_sample(empty, empty, regula::Labels(0), none),
      "regula::JoCoR::per_sample: logits1 must hold at least one sample (column), got 3 x 0");
}

namespace {

/// Columns of one sample, repeated, in a buffer that starts `offset` elements after an aligned
/// address: every column sits at another offset from a SIMD boundary.
template <class T>
struct RepeatedBatch {
  std::vector<T> buf1, buf2;
  Eigen::Map<regula::Matrix<T>> z1, z2;
  RepeatedBatch(const regula::Vector<T>& s1, const regula::Vector<T>& s2, regula::Index b,
                std::size_t offset)
      : buf1(static_cast<std::size_t>(s1.size() * b) + offset),
        buf2(static_cast<std::size_t>(s1.size() * b) + offset),
        z1(buf1.data() + offset, s1.size(), b),
        z2(buf2.data() + offset, s1.size(), b) {
    for (regula::Index j = 0; j < b; ++j) {
      z1.col(j) = s1;
      z2.col(j) = s2;
    }
  }
};

template <class T>
bool bitwise_equal(const T* a, const T* b, regula::Index n) {
  return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(T)) == 0;
}

}  // namespace

TEMPLATE_TEST_CASE("JoCoR: a sample's loss and gradients do not depend on where its column sits",
                   "[selection][jocor][determinism]", float, double) {
  using T = TestType;
  regula::Stream s(2024);
  const regula::Index b = 11;
  for (const regula::Index c : {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 100}) {
    regula::Vector<double> u1(c), u2(c);
    s.normal(u1.data(), static_cast<std::size_t>(c));
    s.normal(u2.data(), static_cast<std::size_t>(c));
    const regula::Vector<T> s1 = (3.0 * u1).cast<T>(), s2 = (3.0 * u2).cast<T>();
    regula::Labels y = regula::Labels::Constant(b, c / 2);
    regula::Vector<T> first_loss(1);
    regula::Matrix<T> first_g1(c, 1), first_g2(c, 1);
    for (std::size_t offset = 0; offset < 17; ++offset) {
      RepeatedBatch<T> batch(s1, s2, b, offset);
      regula::JoCoR<T> jocor({0.4});
      regula::Vector<T> l(b);
      jocor.per_sample(batch.z1, batch.z2, y, l);
      std::vector<regula::Index> all(static_cast<std::size_t>(b));
      for (regula::Index j = 0; j < b; ++j) all[static_cast<std::size_t>(j)] = j;
      regula::Matrix<T> g1(c, b), g2(c, b);
      jocor.gradients(all, 1.0, y, g1, g2);
      if (offset == 0) {
        first_loss(0) = l(0);
        first_g1 = g1.col(0);
        first_g2 = g2.col(0);
      }
      for (regula::Index j = 0; j < b; ++j) {
        INFO("C = " << c << ", offset " << offset << ", column " << j);
        CHECK(bitwise_equal(&l(j), first_loss.data(), 1));
        CHECK(bitwise_equal(g1.col(j).data(), first_g1.data(), c));
        CHECK(bitwise_equal(g2.col(j).data(), first_g2.data(), c));
      }
      // Equal losses: ties go to the lower index.
      const auto r = jocor.step(batch.z1, batch.z2, y, 0.5, g1, g2);
      REQUIRE(r.kept == 5);
      CHECK(jocor.selected() == std::vector<regula::Index>{0, 1, 2, 3, 4});
    }
  }
}

TEST_CASE("JoCoR: two identical samples of the issue's batch get the same loss",
          "[selection][jocor][determinism]") {
  // C = 5 in double: the second column used to come out one ulp below the first.
  regula::Stream s(7);
  for (int trial = 0; trial < 200; ++trial) {
    regula::Matrix<double> z1(5, 2), z2(5, 2);
    s.normal(z1.data(), 5);
    s.normal(z2.data(), 5);
    z1.col(1) = z1.col(0);
    z2.col(1) = z2.col(0);
    regula::Labels y(2);
    y << trial % 5, trial % 5;
    regula::JoCoR<double> jocor({0.7});
    regula::Vector<double> l(2);
    jocor.per_sample(z1, z2, y, l);
    INFO("trial " << trial);
    REQUIRE(bitwise_equal(&l(0), &l(1), 1));
  }
}

TEST_CASE("JoCoR::gradients checks its arguments and that per_sample came first",
          "[selection][jocor][errors]") {
  using Catch::Matchers::Contains;
  constexpr const char* who = "regula::JoCoR::gradients: ";
  const Mat z1 = Mat::Random(4, 5), z2 = Mat::Random(4, 5);
  regula::Labels y(5);
  y << 0, 1, 2, 3, 0;
  Mat g1(4, 5), g2(4, 5);
  regula::JoCoR<double> jocor({0.5});
  CHECK_THROWS_WITH(
      jocor.gradients({0, 1}, 2.0, y, g1, g2),
      std::string(who) +
          "per_sample (or step) must come first: there are no losses to differentiate");
  regula::Vector<double> l(5);
  jocor.per_sample(z1, z2, y, l);
  CHECK_THROWS_WITH(jocor.gradients({0, 5}, 2.0, y, g1, g2),
                    std::string(who) + "selected[1] must be in [0, 5), got 5");
  CHECK_THROWS_WITH(jocor.gradients({-1}, 1.0, y, g1, g2),
                    std::string(who) + "selected[0] must be in [0, 5), got -1");
  CHECK_THROWS_WITH(jocor.gradients({2, 1, 2}, 3.0, y, g1, g2),
                    std::string(who) + "selected[2] = 2 is listed twice");
  CHECK_THROWS_WITH(jocor.gradients({0}, 0.0, y, g1, g2),
                    std::string(who) + "divisor must be finite and > 0, got 0");
  CHECK_THROWS_WITH(jocor.gradients({0}, std::nan(""), y, g1, g2),
                    Contains("divisor must be finite and > 0"));
  Mat g_small(4, 4), g_rows(3, 5);
  CHECK_THROWS_WITH(jocor.gradients({0}, 1.0, y, g_small, g2),
                    std::string(who) +
                        "grad1 must have the shape of the logits of per_sample (4 x 5), got 4 x 4");
  CHECK_THROWS_WITH(jocor.gradients({0}, 1.0, y, g1, g_rows),
                    std::string(who) +
                        "grad2 must have the shape of the logits of per_sample (4 x 5), got 3 x 5");
  CHECK_THROWS_WITH(jocor.gradients({0}, 1.0, y, g1, g1),
                    std::string(who) + "grad2 must not overlap grad1");
  regula::Labels y4 = y.head(4);
  CHECK_THROWS_WITH(jocor.gradients({0}, 1.0, y4, g1, g2),
                    std::string(who) + "labels must have one entry per sample (5), got 4");
  regula::Labels other = y;
  other(3) = 1;
  CHECK_THROWS_WITH(
      jocor.gradients({0}, 1.0, other, g1, g2),
      std::string(who) + "labels must be those of per_sample: labels(3) was 3, got 1");
  other(3) = 7;
  CHECK_THROWS_WITH(jocor.gradients({0}, 1.0, other, g1, g2), Contains("labels(3) was 3, got 7"));
  // A valid call still works after the refused ones, and a failed per_sample keeps the old state.
  const Mat z3 = Mat::Random(3, 2);
  regula::Labels y3(2);
  y3 << 0, 9;
  regula::Vector<double> l2(2);
  CHECK_THROWS_AS(jocor.per_sample(z3, z3, y3, l2), regula::invalid_argument);
  CHECK_NOTHROW(jocor.gradients({0, 4}, 2.0, y, g1, g2));
  CHECK(g1.col(1).isZero());
  CHECK(!g1.col(4).isZero());
}

TEST_CASE("JoCoR refuses outputs that overlap its inputs", "[selection][jocor][errors]") {
  using Catch::Matchers::Contains;
  Mat buf = Mat::Random(3, 12);
  regula::Labels y(4);
  y << 0, 1, 2, 0;
  regula::JoCoR<double> jocor({0.5});
  const Mat z1 = buf.leftCols(4), z2 = buf.middleCols(4, 4);
  // grad1 overlaps logits1 partly (shifted by one column).
  Mat g2(3, 4);
  Eigen::Map<Mat> logits(buf.data(), 3, 4);
  Eigen::Map<Mat> shifted(buf.data() + 3, 3, 4);
  CHECK_THROWS_WITH(jocor.step(logits, z2, y, 0.0, shifted, g2),
                    Contains("grad1 must be logits1 itself or not overlap it; it overlaps partly"));
  Mat g1(3, 4);
  CHECK_THROWS_WITH(jocor.step(z1, z2, y, 0.0, g1, g1), Contains("grad2 must not overlap grad1"));
  CHECK_THROWS_WITH(jocor.step(z1, z2, y, 1.5, g1, g2),
                    Contains("forget_rate must be in [0, 1], got 1.5"));
  // Exactly in place is allowed: the gradients replace the logits.
  Mat a = z1, b = z2;
  Mat e1(3, 4), e2(3, 4);
  regula::JoCoR<double> ref({0.5});
  ref.step(z1, z2, y, 0.25, e1, e2);
  jocor.step(a, b, y, 0.25, a, b);
  CHECK(a == e1);
  CHECK(b == e2);
  // Per-sample losses may not overlap the logits.
  Eigen::Map<regula::Vector<double>> inside(buf.data() + 1, 4);
  CHECK_THROWS_WITH(jocor.per_sample(logits, z2, y, inside),
                    Contains("losses must not overlap logits1"));
}

TEST_CASE("JoCoR: NaN in a sample gives NaN for that sample only", "[selection][jocor][nan]") {
  Mat z1 = Mat::Random(4, 3), z2 = Mat::Random(4, 3);
  z1(2, 1) = std::nan("");
  z2(0, 2) = std::nan("");
  regula::Labels y(3);
  y << 0, 1, 2;
  regula::JoCoR<double> jocor({0.3});
  regula::Vector<double> l(3);
  jocor.per_sample(z1, z2, y, l);
  CHECK(std::isfinite(l(0)));
  CHECK(std::isnan(l(1)));
  CHECK(std::isnan(l(2)));
  Mat g1(4, 3), g2(4, 3);
  jocor.gradients({0, 1, 2}, 3.0, y, g1, g2);
  CHECK(g1.col(0).allFinite());
  CHECK(g1.col(1).array().isNaN().all());
  CHECK(g2.col(2).array().isNaN().all());
}
