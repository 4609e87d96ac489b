// Per-element relative accuracy of JoCoR (selection/jocor.hpp): each per-sample joint loss and
// each element of both per-sample gradients (divisor 1, every sample selected) against a
// long-double reference, in float and double.
//
// The reference evaluates the definitions in long double: p = softmax(z¹), q = softmax(z²)
// with the maximum m = z_k subtracted, log p_i = (z_i − m) − log1p(Σ_{j≠k} e^{z_j − m}),
// a = log p − log q, KL terms Σ (p_i − q_i)·a_i, and the gradient formula of the header. Two
// elements need an identity instead of the plain difference, because long double's 64 bits do
// not hold them either at a margin of 100: p_y − 1 = −Σ_{j≠y} p_j, and p_i − q_i as
// (Σ_{j≠i} q_j) − (Σ_{j≠i} p_j) where both exceed 1/2. a = log p − log q is the plain difference:
// its error, 2⁻⁶⁴·|log p| ≈ 1e-18, is 1e-14 of the smallest |a| tested (ε = 1e-4).
//
// Judge (tests/support/accuracy.hpp): each gradient element against max(|exact_i|,
// 1e-3·max_j |exact_j| of its column); each loss against its own size. Exact values below T's
// smallest normal number, and results there, count as 0 (T holds only subnormals).
//
// JoCoR computes every sample in double, float included (its workspace is double), and rounds
// each loss and gradient element once to T, so the float bounds are a few ulps, far inside the
// 1e-4 (cross-entropies) and 1e-3 (KL-type gradients) the suite asks of float elsewhere.
//
// | quantity                          | float | double | why this bound                          |
// |-----------------------------------|-------|--------|-----------------------------------------|
// | loss, λ = 0 (cross-entropies)     | 1e-6  | 1e-12  | sums of non-negative terms; the one     |
// | gradient, λ = 0                   | 1e-6  | 1e-12  | amplified rounding is that of z − m in  |
// |                                   |       |        | exp, |z − m|·2⁻⁵³ ≤ 2e-14 in double     |
// | loss, 0 < λ < 1                   | 1e-6  | 1e-12  | CE and KL parts are both ≥ 0            |
// | gradient, λ > 0 (KL-type terms)   | 1e-6  | 1e-10  | a = log p − log q is exact to a few     |
// |                                   |       |        | ulps of max|a|; in double, an element   |
// |                                   |       |        | where the CE and KL parts nearly cancel |
// |                                   |       |        | is judged on 1e-3 of its column, and    |
// |                                   |       |        | z¹_i − z²_i rounds once: 1e3·few ulps   |
// | divergence (λ = 1), ε down to 1e-4| 1e-6  | 1e-10  | each term (p_i − q_i)·a_i is a product  |
// |                                   |       |        | of two factors of one sign with         |
// |                                   |       |        | p − q = q·expm1(a): no cancellation     |
// | divergence sign                   | ≥ 0   | ≥ 0    | term by term; exactly 0 for z¹ = z²     |
//
// Measured worst cases (x86-64, glibc; REGULA_ACCURACY_REPORT=1 prints them): float 7e-8
// everywhere (one rounding to float); double: loss 7e-15, λ = 0 gradient 7e-15, λ > 0 gradient
// 4e-12, divergence 4e-13.
//
// Regimes: ordinary (z¹, z² ~ N(0, 3²) independent); confident (label margin 10, 20, 50, 80,
// and 100 in double only, since e^{−100} is subnormal in float, over N(0, 1) others; both
// networks on the label, both on another class, or on different classes); nearly agreeing
// (z² = z¹ + ε·N(0, 1), ε = 1e-2, 1e-3, 1e-4, at ordinary logits and at margin 20); identical
// networks (ε = 0). C = 2, 5, 10, 113, 1000; λ = 0, 0.1, 0.5, 0.9, 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "regula/core/stream.hpp"
#include "regula/selection/jocor.hpp"

#include "support/accuracy.hpp"
#include "support/catch.hpp"

namespace {

using regula::Index;
using regula::Labels;
using regula::test::column_relative_error;
using regula::test::LongMatrix;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;
using LD = long double;

/// The bounds of the table above.
template <class T>
struct Bounds;
template <>
struct Bounds<float> {
  static constexpr double ce = 1e-6, kl_grad = 1e-6, divergence = 1e-6;
  static constexpr double max_margin = 80;
};
template <>
struct Bounds<double> {
  static constexpr double ce = 1e-12, kl_grad = 1e-10, divergence = 1e-10;
  static constexpr double max_margin = 100;
};

/// One batch of a regime.
template <class T>
struct Batch {
  std::string name;
  Mat<T> z1, z2;
  Labels y;
};

/// Softmax and log-softmax of one column in long double (see the file comment).
void reference_softmax(const std::vector<LD>& z, std::vector<LD>& p, std::vector<LD>& lp) {
  const std::size_t n = z.size();
  std::size_t k = 0;
  for (std::size_t i = 1; i < n; ++i) k = z[i] > z[k] ? i : k;
  LD tail = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != k) tail += std::exp(z[i] - z[k]);
  }
  const LD l = std::log1p(tail);
  p.resize(n);
  lp.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = std::exp(z[i] - z[k]) / (1 + tail);
    lp[i] = (z[i] - z[k]) - l;
  }
}

/// Σ_{j≠i} p_j, which is 1 − p_i without its cancellation.
LD complement(const std::vector<LD>& p, std::size_t i) {
  LD s = 0;
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (j != i) s += p[j];
  }
  return s;
}

/// The long-double loss and gradients of one sample.
template <class T>
void reference_column(const T* z1, const T* z2, Index n, std::size_t y, LD lambda, LD& loss, LD* g1,
                      LD* g2) {
  const auto c = static_cast<std::size_t>(n);
  std::vector<LD> a1(c), a2(c), p, q, lp, lq;
  for (std::size_t i = 0; i < c; ++i) {
    a1[i] = static_cast<LD>(z1[i]);
    a2[i] = static_cast<LD>(z2[i]);
  }
  reference_softmax(a1, p, lp);
  reference_softmax(a2, q, lq);
  std::vector<LD> a(c), d(c);
  LD skl = 0, kp = 0, kq = 0;
  for (std::size_t i = 0; i < c; ++i) {
    a[i] = lp[i] - lq[i];
    d[i] = (p[i] > 0.5L && q[i] > 0.5L) ? complement(q, i) - complement(p, i) : p[i] - q[i];
    skl += d[i] * a[i];
    kp += p[i] * a[i];
    kq += q[i] * a[i];
  }
  const LD ce = 1 - lambda;
  loss = ce * (-lp[y] - lq[y]) + lambda * skl;
  for (std::size_t i = 0; i < c; ++i) {
    const LD c1 = i == y ? -complement(p, y) : p[i];
    const LD c2 = i == y ? -complement(q, y) : q[i];
    g1[i] = ce * c1 + lambda * (d[i] + p[i] * (a[i] - kp));
    g2[i] = ce * c2 - lambda * (d[i] + q[i] * (a[i] - kq));
  }
}

/// Gaussian logits of `scale`, with `margin` added to class `hot(j)` of column j when > 0.
template <class T, class Hot>
Mat<T> logits(regula::Stream& s, Index c, Index b, double scale, double margin, Hot hot) {
  Mat<double> u(c, b);
  s.normal(u.data(), static_cast<std::size_t>(u.size()));
  u *= scale;
  if (margin > 0) {
    for (Index j = 0; j < b; ++j) u(hot(j), j) += margin;
  }
  return u.cast<T>();
}

/// z + ε·N(0, 1), rounded once to T.
template <class T>
Mat<T> perturbed(regula::Stream& s, const Mat<T>& z, double eps) {
  Mat<double> u(z.rows(), z.cols());
  s.normal(u.data(), static_cast<std::size_t>(u.size()));
  return (z.template cast<double>() + eps * u).template cast<T>();
}

template <class T>
std::vector<Batch<T>> regimes(Index c) {
  const Index b = 48;
  regula::Stream s(0x10C0 + static_cast<std::uint64_t>(c));
  Labels y(b);
  for (Index j = 0; j < b; ++j) y(j) = (j * 7 + 3) % c;
  auto label = [&](Index j) { return y(j); };
  auto other = [&](Index j) { return (y(j) + 1) % c; };
  std::vector<Batch<T>> out;
  out.push_back({"ordinary", logits<T>(s, c, b, 3, 0, label), logits<T>(s, c, b, 3, 0, label), y});
  for (const double m : {10.0, 20.0, 50.0, 80.0, 100.0}) {
    if (m > Bounds<T>::max_margin) continue;
    const std::string tag = " margin " + std::to_string(static_cast<int>(m));
    out.push_back({"confident on the label" + tag, logits<T>(s, c, b, 1, m, label),
                   logits<T>(s, c, b, 1, m, label), y});
    if (c > 1) {
      out.push_back({"confident on another class" + tag, logits<T>(s, c, b, 1, m, other),
                     logits<T>(s, c, b, 1, m, other), y});
      out.push_back({"confident, networks disagree" + tag, logits<T>(s, c, b, 1, m, label),
                     logits<T>(s, c, b, 1, m, other), y});
    }
  }
  for (const double eps : {1e-2, 1e-3, 1e-4}) {
    const std::string tag = " eps " + std::to_string(eps);
    const Mat<T> z = logits<T>(s, c, b, 3, 0, label);
    out.push_back({"nearly agreeing" + tag, z, perturbed(s, z, eps), y});
    const Mat<T> w = logits<T>(s, c, b, 1, 20, label);
    out.push_back({"nearly agreeing, margin 20" + tag, w, perturbed(s, w, eps), y});
  }
  const Mat<T> same = logits<T>(s, c, b, 3, 0, label);
  out.push_back({"identical networks", same, same, y});
  return out;
}

/// The worst errors seen per quantity, for the report.
struct Worst {
  double ce_loss = 0, ce_grad = 0, kl_loss = 0, kl_grad = 0, divergence = 0;
};

template <class T>
Worst& worst() {
  static Worst w;
  return w;
}

template <class T>
void check_batch(const Batch<T>& batch, double lambda) {
  using B = Bounds<T>;
  const Index c = batch.z1.rows(), b = batch.z1.cols();
  regula::JoCoR<T> jocor({lambda});
  Vec<T> loss(b);
  jocor.per_sample(batch.z1, batch.z2, batch.y, loss);
  std::vector<Index> all(static_cast<std::size_t>(b));
  std::iota(all.begin(), all.end(), Index{0});
  Mat<T> g1(c, b), g2(c, b);
  jocor.gradients(all, 1.0, batch.y, g1, g2);

  LongMatrix el(1, b), e1(c, b), e2(c, b);
  for (Index j = 0; j < b; ++j) {
    LD l = 0;
    reference_column<T>(batch.z1.col(j).data(), batch.z2.col(j).data(), c,
                        static_cast<std::size_t>(batch.y(j)), static_cast<LD>(lambda), l,
                        e1.col(j).data(), e2.col(j).data());
    el(0, j) = l;
  }
  // Values that are subnormal in T count as 0 (see the file comment).
  const LD tiny = static_cast<LD>(std::numeric_limits<T>::min());
  const auto floor_at = [&](LongMatrix& e) {
    for (Index i = 0; i < e.size(); ++i) {
      if (std::fabs(e(i)) < tiny) e(i) = 0;
    }
  };
  Mat<double> g1d = g1.template cast<double>(), g2d = g2.template cast<double>();
  for (Index i = 0; i < g1d.size(); ++i) {
    if (static_cast<LD>(std::fabs(g1d(i))) < tiny) g1d(i) = 0;
    if (static_cast<LD>(std::fabs(g2d(i))) < tiny) g2d(i) = 0;
  }
  floor_at(e1);
  floor_at(e2);

  const Mat<T> lrow = loss.transpose();
  const auto le = column_relative_error(lrow, el);
  const auto ge1 = column_relative_error(g1d, e1);
  const auto ge2 = column_relative_error(g2d, e2);
  const double ge = std::max(ge1.rel, ge2.rel);
  INFO(batch.name << ", C = " << c << ", lambda = " << lambda);
  INFO("loss: " << le.describe());
  INFO("grad1: " << ge1.describe());
  INFO("grad2: " << ge2.describe());
  CHECK((loss.array() >= T(0)).all());
  Worst& w = worst<T>();
  if (lambda == 1.0) {
    // The loss is the symmetric divergence itself.
    w.divergence = std::max(w.divergence, le.rel);
    CHECK(le.rel <= B::divergence);
    w.kl_grad = std::max(w.kl_grad, ge);
    CHECK(ge <= B::kl_grad);
  } else if (lambda == 0.0) {
    w.ce_loss = std::max(w.ce_loss, le.rel);
    w.ce_grad = std::max(w.ce_grad, ge);
    CHECK(le.rel <= B::ce);
    CHECK(ge <= B::ce);
  } else {
    w.kl_loss = std::max(w.kl_loss, le.rel);
    w.kl_grad = std::max(w.kl_grad, ge);
    CHECK(le.rel <= B::ce);
    CHECK(ge <= B::kl_grad);
  }
  if (batch.name == "identical networks" && lambda == 1.0) {
    CHECK((loss.array() == T(0)).all());
    CHECK(g1.isZero(0));
    CHECK(g2.isZero(0));
  }
}

}  // namespace

TEMPLATE_TEST_CASE("JoCoR: every element of the loss and the gradients is accurate",
                   "[accuracy][selection][jocor]", float, double) {
  for (const Index c : {2, 5, 10, 113, 1000}) {
    for (const auto& batch : regimes<TestType>(c)) {
      for (const double lambda : {0.0, 0.1, 0.5, 0.9, 1.0}) check_batch(batch, lambda);
    }
  }
  if (std::getenv("REGULA_ACCURACY_REPORT") != nullptr) {
    const Worst& w = worst<TestType>();
    std::printf(
        "%s: CE loss %.2g, CE grad %.2g, joint loss %.2g, KL-type grad %.2g, divergence %.2g\n",
        std::is_same_v<TestType, float> ? "float" : "double", w.ce_loss, w.ce_grad, w.kl_loss,
        w.kl_grad, w.divergence);
  }
}

TEMPLATE_TEST_CASE("JoCoR: the divergence of nearly equal networks is never negative",
                   "[accuracy][selection][jocor]", float, double) {
  // Many tiny perturbations, where a signed sum of (p − q)·(log p − log q) would round below 0.
  regula::Stream s(77);
  const Index c = 1001, b = 16;
  Labels y = Labels::Zero(b);
  auto none = [](Index) { return Index{0}; };
  for (const double eps : {1e-3, 1e-4, 1e-5, 1e-6}) {
    const Mat<TestType> z = logits<TestType>(s, c, b, 4, 0, none);
    const Mat<TestType> v = perturbed(s, z, eps);
    regula::JoCoR<TestType> jocor({1.0});
    Vec<TestType> loss(b);
    jocor.per_sample(z, v, y, loss);
    INFO("eps " << eps);
    CHECK((loss.array() >= TestType(0)).all());
  }
}
