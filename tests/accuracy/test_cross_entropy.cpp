// Per-element relative accuracy of the cross-entropies (softmax and StableMax; hard labels,
// label smoothing, class weights, soft targets; per-sample and reduced calls; the loss-only
// path and the fused loss + gradient path) against a long-double reference.
//
// The reference evaluates the definitions in long double without any cancellation: with
// s_j the normalizer's unnormalized values (exp(z_j − m) or StableMax's s), k the largest s_j,
// R = Σ_{j≠k} s_j and S = s_k + R,
//   ℓ = Σ_j q_j·L_j,   L_k = log1p(R/s_k),   L_j = log S − log s_j (j ≠ k, ≥ log 2),
//   ∂ℓ/∂z_k = r_k·((Σ_{j≠k} q_j)·s_k − q_k·R)/S,   ∂ℓ/∂z_j = r_j·(A·s_j/S − q_j) (j ≠ k).
// (long double alone is not enough: p_y − 1 at a softmax margin of 50 is −2e-22, below its
// precision.)
//
// Judge (tests/support/accuracy.hpp): each gradient element against max(|exact_i|,
// 1e-3·max_j |exact_j| of its column, abs floor); each loss against its own size.
//
// | quantity                         | float  | double | why this bound                          |
// |----------------------------------|--------|--------|-----------------------------------------|
// | loss, every regime               | 1e-4   | 1e-12  | assembled in double from T inputs        |
// | gradient, hard labels / smoothing| 1e-4   | 1e-12  | one rounding of exp (≤ 2 ulp) and of     |
// |                                  |        |        | z − m (|z − m|·2⁻²⁴ ≤ 6e-6 for the       |
// |                                  |        |        | margins below 100) per element           |
// | gradient, soft targets near the  | 1e-6   | 1e-14  | ∂ℓ/∂z_j = A·p_j − q_j cancels when the   |
// | prediction (t = p·(1 + 1e-3·N))  | of the | of the | prediction matches the target, and p_j   |
// |                                  | larger | larger | carries its own rounding in T (≈ 1e-7    |
// |                                  | term   | term   | in float): judged against max(that       |
// |                                  |        |        | judge, q_j), i.e. ≤ 16 ulps of the terms |
// |                                  |        |        | (use a KD loss on logits, whose gradient |
// |                                  |        |        | is formed from the logit differences,    |
// |                                  |        |        | when the target comes from a teacher)    |
// | abs floor                        | 1e-30  | 1e-290 | below it T holds values as subnormals    |
//
// Regimes: ordinary (z ~ N(0, 3²)); confident softmax (label margin 10, 17, 20, 30, 50, 80 over
// N(0, 1) others, around offsets ±100); confidently wrong (another class ahead by 30); nearly
// collapsed (margin 17–25, where p_y rounds to 1 in float); StableMax target logits up to 1e5
// against others down to −1e6, and the two-class case z = (10000.88, −9999.72); two classes;
// C = 2, 10, 113, 1000, 4099; label smoothing 0.1; random class weights; soft targets that are
// sharp (one-hot up to 1e-6), smooth, and near the student's own prediction.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "regula/losses/cross_entropy.hpp"

#include "support/accuracy.hpp"
#include "support/catch.hpp"

namespace {

using regula::CrossEntropyLoss;
using regula::CrossEntropyOptions;
using regula::Index;
using regula::Labels;
using regula::Normalizer;
using regula::Reduction;
using regula::test::column_relative_error;
using regula::test::LongMatrix;
using regula::test::scalar_relative_error;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;
using LD = long double;

/// One column batch of a regime: logits, and either labels or soft targets.
template <class T>
struct Batch {
  std::string name;
  Mat<T> z;
  Labels y;           // empty for soft targets
  Mat<T> t;           // empty for hard labels
  bool near = false;  // soft targets near the prediction: the looser gradient bound applies
};

/// Long-double reference of one column (see the file comment).
template <class T>
void reference_column(Normalizer norm, const T* z, Index n, const std::vector<LD>& q, LD g,
                      LD& loss, LD* dz) {
  const bool soft = norm == Normalizer::softmax;
  LD m = -std::numeric_limits<LD>::infinity();
  Index k = 0;
  for (Index i = 0; i < n; ++i) {
    if (static_cast<LD>(z[i]) > m) {
      m = static_cast<LD>(z[i]);
      k = i;
    }
  }
  auto s_of = [&](Index i) {
    const LD x = static_cast<LD>(z[i]);
    if (soft) return std::exp(x - m);
    return x >= 0 ? 1.0L + x : 1.0L / (1.0L - x);
  };
  auto log_s_of = [&](Index i) {
    const LD x = static_cast<LD>(z[i]);
    if (soft) return x - m;
    return x >= 0 ? std::log1p(x) : -std::log1p(-x);
  };
  LD R = 0;
  LD A = 0;
  LD A_not_k = 0;
  for (Index i = 0; i < n; ++i) {
    A += q[static_cast<std::size_t>(i)];
    if (i == k) continue;
    R += s_of(i);
    A_not_k += q[static_cast<std::size_t>(i)];
  }
  const LD sk = s_of(k);
  const LD S = sk + R;
  const LD log_S = std::log(S);
  loss = 0;
  for (Index i = 0; i < n; ++i) {
    const LD qi = q[static_cast<std::size_t>(i)];
    if (qi == 0) continue;
    loss += qi * (i == k ? std::log1p(R / sk) : log_S - log_s_of(i));
  }
  for (Index i = 0; i < n; ++i) {
    const LD qi = q[static_cast<std::size_t>(i)];
    const LD r = soft ? 1.0L : 1.0L / (1.0L + std::fabs(static_cast<LD>(z[i])));
    const LD v = i == k ? (A_not_k * sk - qi * R) / S : A * s_of(i) / S - qi;
    dz[i] = g * r * v;
  }
}

/// The reference target q of column j.
template <class T>
std::vector<LD> target_of(const Batch<T>& b, Index j, double eps, const Vec<T>& w) {
  const Index C = b.z.rows();
  std::vector<LD> q(static_cast<std::size_t>(C));
  for (Index c = 0; c < C; ++c) {
    const LD wc = w.size() > 0 ? static_cast<LD>(w[c]) : 1.0L;
    LD v = static_cast<LD>(eps) / static_cast<LD>(C);
    if (b.y.size() > 0) {
      if (c == b.y[j]) v += 1.0L - static_cast<LD>(eps);
    } else {
      v += (1.0L - static_cast<LD>(eps)) * static_cast<LD>(b.t(c, j));
    }
    q[static_cast<std::size_t>(c)] = wc * v;
  }
  return q;
}

template <class T>
Mat<T> softmax_of(const Mat<T>& z) {
  Mat<T> p(z.rows(), z.cols());
  for (Index j = 0; j < z.cols(); ++j) {
    const LD m = static_cast<LD>(z.col(j).maxCoeff());
    LD S = 0;
    for (Index i = 0; i < z.rows(); ++i) S += std::exp(static_cast<LD>(z(i, j)) - m);
    for (Index i = 0; i < z.rows(); ++i)
      p(i, j) = static_cast<T>(std::exp(static_cast<LD>(z(i, j)) - m) / S);
  }
  return p;
}

template <class T>
std::vector<Batch<T>> regimes() {
  std::mt19937_64 rng(20261201);
  std::normal_distribution<double> N(0.0, 1.0);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  std::vector<Batch<T>> out;
  const Index Bn = 24;
  for (const Index C : {Index(2), Index(10), Index(113), Index(1000), Index(4099)}) {
    const Index B = C >= 1000 ? 6 : Bn;
    auto labels = [&]() {
      Labels y(B);
      for (Index j = 0; j < B; ++j)
        y[j] = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(C));
      return y;
    };
    {
      Batch<T> b{"ordinary C=" + std::to_string(C), Mat<T>(C, B), labels(), {}, false};
      for (Index i = 0; i < b.z.size(); ++i) b.z(i) = static_cast<T>(3.0 * N(rng));
      out.push_back(b);
    }
    for (const double margin : {10.0, 17.0, 20.0, 25.0, 30.0, 50.0, 80.0}) {
      Batch<T> b{"confident margin " + std::to_string(margin) + " C=" + std::to_string(C),
                 Mat<T>(C, B),
                 labels(),
                 {},
                 false};
      for (Index j = 0; j < B; ++j) {
        const double base = (j % 3 == 0) ? 0.0 : (j % 3 == 1 ? 100.0 : -100.0);
        for (Index i = 0; i < C; ++i) b.z(i, j) = static_cast<T>(base + N(rng));
        const Index y = static_cast<Index>(b.y[j]);
        b.z(y, j) = static_cast<T>(static_cast<double>(b.z.col(j).maxCoeff()) + margin);
      }
      out.push_back(b);
    }
    {
      // Confidently wrong: another class is 30 ahead of the label.
      Batch<T> b{"wrong C=" + std::to_string(C), Mat<T>(C, B), labels(), {}, false};
      for (Index j = 0; j < B; ++j) {
        for (Index i = 0; i < C; ++i) b.z(i, j) = static_cast<T>(N(rng));
        const Index other = (static_cast<Index>(b.y[j]) + 1) % C;
        b.z(other, j) = static_cast<T>(30.0 + N(rng));
      }
      out.push_back(b);
    }
    for (const double top : {1e2, 1e4, 3e4, 1e5}) {
      // StableMax's confident regime: a large target logit against very negative others.
      Batch<T> b{"stablemax target " + std::to_string(top) + " C=" + std::to_string(C),
                 Mat<T>(C, B),
                 labels(),
                 {},
                 false};
      for (Index j = 0; j < B; ++j) {
        for (Index i = 0; i < C; ++i)
          b.z(i, j) = static_cast<T>(-std::pow(10.0, 2.0 + 4.0 * U(rng)));
        b.z(static_cast<Index>(b.y[j]), j) = static_cast<T>(top * (1.0 + 0.1 * U(rng)));
      }
      out.push_back(b);
    }
    {
      // Soft targets: sharp (one-hot up to 1e-6), smooth, and near the prediction.
      Batch<T> sharp{"soft sharp C=" + std::to_string(C), Mat<T>(C, B), {}, Mat<T>(C, B), false};
      Batch<T> smooth{"soft smooth C=" + std::to_string(C), Mat<T>(C, B), {}, Mat<T>(C, B), false};
      Batch<T> near{"soft near C=" + std::to_string(C), Mat<T>(C, B), {}, Mat<T>(C, B), true};
      for (Index j = 0; j < B; ++j) {
        const Index y = static_cast<Index>(rng() % static_cast<std::uint64_t>(C));
        for (Index i = 0; i < C; ++i) {
          sharp.z(i, j) = static_cast<T>(N(rng));
          sharp.t(i, j) = static_cast<T>(
              i == y ? 1.0 - 1e-6 : 1e-6 / static_cast<double>(C - 1 > 0 ? C - 1 : 1));
          smooth.z(i, j) = static_cast<T>(2.0 * N(rng));
          smooth.t(i, j) = static_cast<T>(U(rng));
          near.z(i, j) = static_cast<T>(2.0 * N(rng));
        }
        sharp.z(y, j) =
            static_cast<T>(static_cast<double>(sharp.z(y, j)) + 25.0);  // collapsed and right
        smooth.t.col(j) /= smooth.t.col(j).sum();
      }
      // Near: the target is the student's own softmax, perturbed by 1e-3 relative.
      const Mat<T> p = softmax_of(near.z);
      for (Index j = 0; j < B; ++j) {
        for (Index i = 0; i < C; ++i)
          near.t(i, j) = static_cast<T>(static_cast<double>(p(i, j)) * (1.0 + 1e-3 * N(rng)));
        near.t.col(j) /= near.t.col(j).sum();
      }
      out.push_back(sharp);
      out.push_back(smooth);
      out.push_back(near);
    }
  }
  {
    // The two cases of the issue that found the cancellation.
    Batch<T> b{"issue two-class", Mat<T>(2, 1), Labels(1), {}, false};
    b.z << T(10000.88), T(-9999.72);
    b.y << 0;
    out.push_back(b);
    Batch<T> c{"issue 113 classes", Mat<T>(113, 4), Labels(4), {}, false};
    for (Index j = 0; j < 4; ++j) {
      for (Index i = 0; i < 113; ++i) c.z(i, j) = static_cast<T>(-1e5 * (1.0 + 0.01 * U(rng)));
      c.y[j] = 7 * j;
      c.z(7 * j, j) = T(3e4);
    }
    out.push_back(c);
  }
  return out;
}

template <class T>
struct Bounds {
  static constexpr double tight = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  static constexpr double near = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  static constexpr LD abs_floor = std::is_same_v<T, float> ? 1e-30L : 1e-290L;
};

/// Runs one loss object over one batch through every call that yields per-element results and
/// checks each element against the reference.
template <class T, Normalizer Norm>
void check_batch(const Batch<T>& b, double eps, const Vec<T>& w) {
  const Index C = b.z.rows();
  const Index B = b.z.cols();
  CrossEntropyLoss<T, Norm> ce(CrossEntropyOptions{}.with_label_smoothing(eps), w);
  const bool hard = b.y.size() > 0;
  Vec<T> losses(B);
  Vec<T> losses_only(B);
  Mat<T> dz(C, B);
  if (hard) {
    ce.per_sample(b.z, b.y, losses, dz);
    ce.per_sample(b.z, b.y, losses_only);
  } else {
    ce.per_sample_soft(b.z, b.t, losses, dz);
    ce.per_sample_soft(b.z, b.t, losses_only);
  }
  // The reduced call: gradient = dz / B for batchmean.
  Mat<T> dz_mean(C, B);
  CrossEntropyLoss<T, Norm> ce_mean(
      CrossEntropyOptions{}.with_label_smoothing(eps).with_reduction(Reduction::batchmean), w);
  const T reduced = hard ? ce_mean.forward_backward(b.z, b.y, dz_mean)
                         : ce_mean.forward_backward_soft(b.z, b.t, dz_mean);

  LongMatrix exact(C, B);
  LongMatrix exact_mean(C, B);
  std::vector<LD> exact_loss(static_cast<std::size_t>(B));
  LD total = 0;
  for (Index j = 0; j < B; ++j) {
    const auto q = target_of(b, j, eps, w);
    LD l = 0;
    reference_column(Norm, b.z.col(j).data(), C, q, 1.0L, l, exact.col(j).data());
    exact_loss[static_cast<std::size_t>(j)] = l;
    total += l;
    exact_mean.col(j) = exact.col(j) / static_cast<LD>(B);
  }
  const double bound = b.near ? Bounds<T>::near : Bounds<T>::tight;
  const std::string what = b.name + (Norm == Normalizer::softmax ? " softmax" : " stablemax") +
                           " eps=" + std::to_string(eps) + (w.size() > 0 ? " weighted" : "");
  INFO(what);
  double worst_loss = 0.0;
  for (Index j = 0; j < B; ++j) {
    const LD e = exact_loss[static_cast<std::size_t>(j)];
    CHECK(losses[j] >= T(0));
    CHECK(losses[j] == losses_only[j]);
    const LD floor = Bounds<T>::abs_floor;
    worst_loss =
        std::max(worst_loss, scalar_relative_error(static_cast<double>(losses[j]), e, floor));
    worst_loss =
        std::max(worst_loss, scalar_relative_error(static_cast<double>(losses_only[j]), e, floor));
  }
  CHECK(worst_loss <= Bounds<T>::tight);
  CHECK(scalar_relative_error(static_cast<double>(reduced), total / static_cast<LD>(B),
                              Bounds<T>::abs_floor) <= Bounds<T>::tight);
  if (b.near) {
    // Near the target, ∂ℓ/∂z_j = A·p_j − q_j is the difference of two terms that agree to 1e-3;
    // p_j carries its own rounding in T, so each element is judged against the larger term
    // as well: max(|exact_j|, 1e-3·column max, q_j) (a few ulps of what it is the difference of).
    double worst = 0.0;
    for (Index j = 0; j < B; ++j) {
      const auto q = target_of(b, j, eps, w);
      const LD colmax = exact.col(j).cwiseAbs().maxCoeff();
      for (Index i = 0; i < C; ++i) {
        const LD e = exact(i, j);
        const LD scale = std::max({std::fabs(e), 1e-3L * colmax, q[static_cast<std::size_t>(i)]});
        worst =
            std::max(worst, static_cast<double>(std::fabs(static_cast<LD>(dz(i, j)) - e) / scale));
        const LD em = exact_mean(i, j);
        const LD scale_m = scale / static_cast<LD>(B);
        worst = std::max(
            worst, static_cast<double>(std::fabs(static_cast<LD>(dz_mean(i, j)) - em) / scale_m));
      }
    }
    INFO("gradient against the larger term: " << worst);
    CHECK(worst <= bound);
    return;
  }
  const auto err = column_relative_error(dz, exact, 1e-3, Bounds<T>::abs_floor);
  INFO("gradient: " << err.describe());
  CHECK(err.rel <= bound);
  const auto err_mean = column_relative_error(dz_mean, exact_mean, 1e-3, Bounds<T>::abs_floor / B);
  INFO("reduced gradient: " << err_mean.describe());
  CHECK(err_mean.rel <= bound);
}

template <class T>
Vec<T> random_weights(Index C) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(C) * 7919u);
  std::uniform_real_distribution<double> U(0.25, 4.0);
  Vec<T> w(C);
  for (Index i = 0; i < C; ++i) w[i] = static_cast<T>(U(rng));
  return w;
}

}  // namespace

TEMPLATE_TEST_CASE("softmax cross-entropy: every element accurate in every regime",
                   "[accuracy][xent]", float, double) {
  using T = TestType;
  for (const auto& b : regimes<T>()) {
    for (const double eps : {0.0, 0.1}) {
      check_batch<T, Normalizer::softmax>(b, eps, Vec<T>());
      check_batch<T, Normalizer::softmax>(b, eps, random_weights<T>(b.z.rows()));
    }
  }
}

TEMPLATE_TEST_CASE("StableMax cross-entropy: every element accurate in every regime",
                   "[accuracy][xent]", float, double) {
  using T = TestType;
  for (const auto& b : regimes<T>()) {
    for (const double eps : {0.0, 0.1}) {
      check_batch<T, Normalizer::stablemax>(b, eps, Vec<T>());
      check_batch<T, Normalizer::stablemax>(b, eps, random_weights<T>(b.z.rows()));
    }
  }
}

TEMPLATE_TEST_CASE("the collapsed target element is never rounded to zero", "[accuracy][xent]",
                   float, double) {
  // The defect this suite was written for: at z = (10000.88, −9999.72), y = 0 the StableMax
  // target element is −9.9955e-13 (it was 0 in float), and a softmax margin of 20 gives
  // ∂ℓ/∂z_y = −2.06e-9 (it was 0 once p_y rounded to 1).
  using T = TestType;
  Mat<T> z(2, 1);
  z << T(10000.88), T(-9999.72);
  Labels y(1);
  y << 0;
  Mat<T> dz(2, 1);
  Vec<T> l(1);
  CrossEntropyLoss<T, Normalizer::stablemax>().per_sample(z, y, l, dz);
  CHECK(dz(0, 0) < T(0));
  CHECK(std::abs(static_cast<double>(dz(0, 0)) + 9.9955e-13) <= 1e-4 * 9.9955e-13);
  CHECK(dz(1, 0) > T(0));
  // Softmax at a margin of 20: ℓ = log1p(e^−20) and ∂ℓ/∂z_y = −e^−20/(1 + e^−20).
  Mat<T> zs(3, 1);
  zs << T(20), T(0), T(-1e30);
  Mat<T> dzs(3, 1);
  CrossEntropyLoss<T>().per_sample(zs, y, l, dzs);
  const double r = std::exp(-20.0);
  CHECK(std::abs(static_cast<double>(l[0]) - std::log1p(r)) <= 1e-6 * std::log1p(r));
  CHECK(std::abs(static_cast<double>(dzs(0, 0)) + r / (1.0 + r)) <= 1e-6 * r);
  CHECK(std::abs(static_cast<double>(dzs(1, 0)) - r / (1.0 + r)) <= 1e-6 * r);
  CHECK(dzs(2, 0) == T(0));
}
