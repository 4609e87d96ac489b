/// @file
/// JoCoR (Wei, Feng, Chen, An, "Combating noisy labels by agreement: a joint training method
/// with co-regularization", CVPR 2020): two networks trained by one joint loss with a
/// symmetric-KL agreement term, on the samples of smallest joint loss.
///
/// Numerics. Each sample is one scalar pass over its column in a fixed order (index 0 to C − 1),
/// so its loss and gradients are bitwise the same wherever the column sits in memory or in the
/// batch: equal samples tie exactly, and the data-parallel version selects what one process
/// selects. Every quantity is formed without cancellation:
///
/// - log p_i = (z_i − m) − log1p(Σ_{j≠k} e^{z_j − m}), m = z_k the maximum, so the
///   cross-entropy of a confident sample is log1p of its small tail instead of log(1 + tiny);
/// - 1 − p_y = Σ_{j≠y} p_j, the target element of the cross-entropy gradient;
/// - a = log p − log q from the logit differences d = z¹ − z² against a pivot k (the argmax of
///   z²): a_i = (d_i − d_k) − γ with γ = log1p(Σ_j q_j·expm1(d_j − d_k)) when the networks
///   nearly agree (|d_j − d_k| ≤ 1), and a_i = ((z¹_i − m¹) − (z²_i − m²)) − (log1p(s¹) −
///   log1p(s²)) otherwise (m the maxima, s the tails beside them; not against the pivot, whose
///   d_k may be huge where z¹_k is); its error is a few ulps of max|a|, not of |log p|;
/// - p − q = q ⊙ expm1(a) (or −p ⊙ expm1(−a) where a > 0), so that each term (p_i − q_i)·a_i of
///   the symmetric KL is a product of two factors of the same sign: the divergence is never
///   negative and keeps its relative accuracy down to nearly equal networks.
///
/// Every sample is computed and accumulated in double, for float too (the workspace is double:
/// 3·C·B + 6·B doubles), and each loss and gradient element is rounded once to T. Measured
/// accuracy (tests/accuracy/test_jocor.cpp, each element against its column's scale,
/// ordinary, confident and nearly-agreeing regimes, C = 2 to 1000): float 7e-8, one rounding;
/// double 7e-15 for the cross-entropy parts and 4e-12 for the KL-type gradients, where
/// z¹_i − z²_i rounds once.
#ifndef REGULA_SELECTION_JOCOR_HPP
#define REGULA_SELECTION_JOCOR_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/small_loss.hpp"

namespace regula {

/// Options of JoCoR.
struct JoCoROptions {
  /// λ, the weight of the agreement term, in [0, 1]. The official code's default is 0.1; its
  /// README reports λ ≈ 0.9 best on CIFAR-10 (symmetric 20/50%, asymmetric 40%), 0.65 at 80%
  /// noise and 0.85 on CIFAR-100.
  double lambda = 0.1;
  /// Sets `lambda` (chainable).
  JoCoROptions& with_lambda(double v) noexcept { return detail::set(*this, lambda, v); }
};

/// What one JoCoR step did.
template <class T>
struct JoCoRResult {
  T loss = T(0);         ///< the mean joint loss over the selected samples
  std::size_t kept = 0;  ///< k, how many samples were selected
};

namespace detail {

/// Rows of JoCoR's per-sample scalars: 1 − p_y, 1 − q_y, ⟨p, a − a_{k¹}⟩, ⟨q, a − a_{k²}⟩,
/// a_{k¹}, a_{k²} (k the argmax of p and of q), and f, the factor by which a and the three
/// a-terms before it are stored divided: 1, or 2 for a double column whose logits span past the
/// largest double (its a may lie past it too; see jocor_wide_agreement).
inline constexpr Index jocor_stats = 7;

/// The first index of the largest of n ≥ 1 values; a NaN at index 0 is kept (and spreads).
template <class T>
std::size_t jocor_argmax(const T* z, std::size_t n) noexcept {
  std::size_t k = 0;
  for (std::size_t i = 1; i < n; ++i) k = z[i] > z[k] ? i : k;
  return k;
}

/// p_i − q_i from q_i·e^{a_i} = p_i without cancellation and without overflow: the factor that
/// multiplies is the larger probability, expm1 of a non-positive argument lies in (−1, 0].
template <class W>
W jocor_delta(W p, W q, W a) noexcept {
  return a > W(0) ? -p * std::expm1(-a) : q * std::expm1(a);
}

/// The agreement part of jocor_column for a double column whose logits span past the largest
/// double (z_i − m¹ overflows although z is finite), where the divergence and the gradients are
/// often finite although a = log p − log q is not: a, the symmetric KL and the a-terms of stats
/// in long double, stored halved (|a| ≤ twice the largest double) with f = 2. Returns the KL.
inline long double jocor_wide_agreement(const double* z, const double* v, std::size_t n, double m1,
                                        double m2, double L1, double L2, const double* p,
                                        const double* q, double* a, std::size_t k1, std::size_t k2,
                                        double* stats) noexcept {
  using W = long double;
  const W dl = static_cast<W>(L1) - static_cast<W>(L2);
  auto a_of = [&](std::size_t i) {
    return ((static_cast<W>(z[i]) - m1) - (static_cast<W>(v[i]) - m2)) - dl;
  };
  const W ak1 = a_of(k1), ak2 = a_of(k2);
  W skl = 0, kp = 0, kq = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const W ai = a_of(i);
    skl += jocor_delta<W>(p[i], q[i], ai) * ai;
    kp += p[i] * (ai - ak1);
    kq += q[i] * (ai - ak2);
    a[i] = static_cast<double>(ai / 2);
  }
  stats[2] = static_cast<double>(kp / 2);
  stats[3] = static_cast<double>(kq / 2);
  stats[4] = static_cast<double>(ak1 / 2);
  stats[5] = static_cast<double>(ak2 / 2);
  stats[6] = 2.0;
  return skl;
}

/// w·x, and 0 for a weight of 0 also where x is infinite: λ = 0 leaves the cross-entropies
/// alone and λ = 1 the divergence, also where the other term passes the largest double (0·inf).
template <class W>
W jocor_weighted(double w, W x) noexcept {
  return w != 0.0 ? static_cast<W>(w) * x : W(0);
}

/// jocor_column's loss, a and stats in long double for a double sample whose terms pass the
/// largest double (jocor_wide_agreement); the cross-entropies −log p_y = L + (m − z_y) too.
inline double jocor_wide_column(const double* z, const double* v, std::size_t n, std::size_t y,
                                double ce, double lambda, double m1, double m2, double L1,
                                double L2, const double* p, const double* q, double* a,
                                std::size_t k1, std::size_t k2, double* stats) noexcept {
  using W = long double;
  const W skl = jocor_wide_agreement(z, v, n, m1, m2, L1, L2, p, q, a, k1, k2, stats);
  const W ce_sum = (static_cast<W>(L1) + (static_cast<W>(m1) - z[y])) +
                   (static_cast<W>(L2) + (static_cast<W>(m2) - v[y]));
  return static_cast<double>(jocor_weighted<W>(ce, ce_sum) + jocor_weighted<W>(lambda, skl));
}

/// One sample of JoCoR, in double: from logits z, v (n ≥ 1 classes) and label y writes
/// p = softmax(z), q = softmax(v), a = log p − log q and stats (jocor_stats values), and returns
/// the joint loss ce·[CE(z, y) + CE(v, y)] + lambda·[KL(q‖p) + KL(p‖q)]. The forms are those of
/// the file comment.
template <class T>
double jocor_column(const T* z, const T* v, std::size_t n, std::size_t y, double ce, double lambda,
                    double* p, double* q, double* a, double* stats) noexcept {
  const std::size_t k1 = jocor_argmax(z, n);
  const std::size_t k2 = jocor_argmax(v, n);
  const double m1 = static_cast<double>(z[k1]);
  const double m2 = static_cast<double>(v[k2]);
  double s1 = 0.0, s2 = 0.0;  // Σ_{i≠k} e_i: the tails beside each maximum
  double r1 = 0.0, r2 = 0.0;  // Σ_{i≠y} e_i
  for (std::size_t i = 0; i < n; ++i) {
    const double e1 = std::exp(static_cast<double>(z[i]) - m1);
    const double e2 = std::exp(static_cast<double>(v[i]) - m2);
    p[i] = e1;
    q[i] = e2;
    if (i != k1) s1 += e1;
    if (i != k2) s2 += e2;
    if (i != y) {
      r1 += e1;
      r2 += e2;
    }
  }
  // exp(m − m) − 1 is exactly 0 for a finite maximum and NaN otherwise (±inf or NaN logits),
  // which must reach every output as it does in the softmax kernels.
  s1 += p[k1] - 1.0;
  s2 += q[k2] - 1.0;
  const double S1 = 1.0 + s1;
  const double S2 = 1.0 + s2;
  const double L1 = std::log1p(s1);
  const double L2 = std::log1p(s2);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] /= S1;
    q[i] /= S2;
  }
  stats[0] = r1 / S1;
  stats[1] = r2 / S2;
  // −log p_y = log1p(s) + (m − z_y): two non-negative terms.
  const double ce_sum =
      (L1 + (m1 - static_cast<double>(z[y]))) + (L2 + (m2 - static_cast<double>(v[y])));

  // a_i = x_i − γ with x_i = d_i − d_k (see the file comment); the largest |x| picks γ's form.
  const double dk = static_cast<double>(z[k2]) - static_cast<double>(v[k2]);
  double spread = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = (static_cast<double>(z[i]) - static_cast<double>(v[i])) - dk;
    a[i] = x;
    const double ax = std::fabs(x);
    spread = (ax > spread || std::isnan(ax)) ? ax : spread;
  }
  double gamma;
  if (spread <= 1.0) {
    double w = 0.0;  // Σ q_j e^{x_j} − 1, in (−1, e − 1)
    for (std::size_t i = 0; i < n; ++i) w += q[i] * std::expm1(a[i]);
    gamma = std::log1p(w);
  } else {
    // |a| is not small: a_i = ((z¹_i − m¹) − (z²_i − m²)) − (L¹ − L²), each logit against its
    // own maximum first (a huge maximum, 1e30, must not absorb the others' differences) and the
    // log-sum-exps' tails apart (a tiny L¹ − L² is kept). Not through x = d − d_k, whose d_k
    // may be huge (z¹_k = −1e30 where q peaks) and would cancel out of every a_i.
    const double dl = L1 - L2;
    bool wide = false;
    for (std::size_t i = 0; i < n; ++i) {
      const double zi = static_cast<double>(z[i]);
      const double vi = static_cast<double>(v[i]);
      a[i] = ((zi - m1) - (vi - m2)) - dl;
      // Each difference is ≤ 0 and lies within its column's span: infinite (or NaN, −inf
      // against −inf) for finite logits only where a double column spans past the largest
      // double.
      wide = wide || (!std::isfinite(a[i]) && std::isfinite(zi) && std::isfinite(vi));
    }
    if constexpr (std::is_same_v<T, double>) {
      if (wide)
        return jocor_wide_column(z, v, n, y, ce, lambda, m1, m2, L1, L2, p, q, a, k1, k2, stats);
    }
    gamma = 0.0;
  }
  double skl = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double ai = a[i] - gamma;
    a[i] = ai;
    skl += jocor_delta(p[i], q[i], ai) * ai;  // ≥ 0 term by term
  }
  // a − ⟨p, a⟩ against the top class of p: (a_i − a_k) − ⟨p, a − a_k⟩, whose k term is 0, so
  // that a_k − ⟨p, a⟩ (small where p_k ≈ 1 and |a_k| large) is not a difference of large terms.
  const double ak1 = a[k1], ak2 = a[k2];
  double kp = 0.0, kq = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    kp += p[i] * (a[i] - ak1);
    kq += q[i] * (a[i] - ak2);
  }
  stats[2] = kp;
  stats[3] = kq;
  stats[4] = ak1;
  stats[5] = ak2;
  stats[6] = 1.0;
  const double loss = jocor_weighted<double>(ce, ce_sum) + jocor_weighted<double>(lambda, skl);
  if constexpr (std::is_same_v<T, double>) {
    // Terms near the largest double (cross-entropies or a divergence of columns spanning close
    // to it) can pass it in double while the weighted loss does not: the sample again in long
    // double. One test per sample on the common path.
    if (REGULA_UNLIKELY(!std::isfinite(loss)) && kernels::all_finite(z, v, n)) {
      return jocor_wide_column(z, v, n, y, ce, lambda, m1, m2, L1, L2, p, q, a, k1, k2, stats);
    }
  }
  return loss;
}

/// The gradients of scale·ℓ with respect to z and v for one sample of jocor_column, each
/// element formed in double and rounded once to T:
///   g1 = scale·[ce·(p − e_y) + λ·((p − q) + p ⊙ (a − ⟨p, a⟩))],
///   g2 = scale·[ce·(q − e_y) − λ·((p − q) + q ⊙ (a − ⟨q, a⟩))],
/// with p_y − 1 = −Σ_{j≠y} p_j, p − q from jocor_delta and a − ⟨p, a⟩ as
/// (a − a_{k¹}) − ⟨p, a − a_{k¹}⟩ (likewise for q).
template <class T>
void jocor_column_gradients(const double* p, const double* q, const double* a, const double* stats,
                            std::size_t n, std::size_t y, double ce, double lambda, double scale,
                            T* g1, T* g2) noexcept {
  const double kp = stats[2];
  const double kq = stats[3];
  const double ak1 = stats[4];
  const double ak2 = stats[5];
  if (stats[6] != 1.0) {
    // A wide column (jocor_wide_agreement): a-terms stored halved, restored in long double.
    using W = long double;
    const W f = stats[6];
    for (std::size_t i = 0; i < n; ++i) {
      const W ai = f * a[i];
      const W d = jocor_delta<W>(p[i], q[i], ai);
      const W c1 = i == y ? -stats[0] : p[i];
      const W c2 = i == y ? -stats[1] : q[i];
      g1[i] = static_cast<T>((ce * c1 + lambda * (d + p[i] * ((ai - f * ak1) - f * kp))) * scale);
      g2[i] = static_cast<T>((ce * c2 - lambda * (d + q[i] * ((ai - f * ak2) - f * kq))) * scale);
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double d = jocor_delta(p[i], q[i], a[i]);
    const double c1 = i == y ? -stats[0] : p[i];
    const double c2 = i == y ? -stats[1] : q[i];
    g1[i] = static_cast<T>((ce * c1 + lambda * (d + p[i] * ((a[i] - ak1) - kp))) * scale);
    g2[i] = static_cast<T>((ce * c2 - lambda * (d + q[i] * ((a[i] - ak2) - kq))) * scale);
  }
}

/// Throws unless z¹, z² have one shape with at least one class, and `labels` has one class
/// index in [0, C) per column. An empty batch passes only when `allow_empty`.
template <class T>
void check_jocor_inputs(const char* who, const MatrixCRef<T>& z1, const MatrixCRef<T>& z2,
                        const LabelsCRef& y, bool allow_empty) {
  check_same_shape(who, "logits2", z2, "logits1", z1);
  REGULA_EXPECTS(allow_empty || z1.cols() > 0, who,
                 "logits1 must hold at least one sample (column), got ", z1.rows(), " x ",
                 z1.cols());
  REGULA_EXPECTS(z1.rows() > 0, who, "logits1 must have at least one class, got ", z1.rows(), " x ",
                 z1.cols());
  REGULA_EXPECTS(y.size() == z1.cols(), who, "labels must have one entry per sample (", z1.cols(),
                 "), got ", y.size());
  for (Index j = 0; j < y.size(); ++j) {
    REGULA_EXPECTS(y(j) >= 0 && y(j) < z1.rows(), who, "labels(", j, ") must be in [0, ", z1.rows(),
                   "), got ", y(j));
  }
}

/// Throws unless grad1, grad2 have the logits' shape, each is its logits (either) or overlaps
/// none of them, and the two do not share memory.
template <class T>
void check_jocor_outputs(const char* who, const MatrixCRef<T>& z1, const MatrixCRef<T>& z2,
                         const MatrixRef<T>& g1, const MatrixRef<T>& g2) {
  check_output(who, "logits1", z1, "grad1", g1);
  check_output(who, "logits1", z1, "grad2", g2);
  check_output(who, "logits2", z2, "grad1", g1);
  check_output(who, "logits2", z2, "grad2", g2);
  check_disjoint(who, "grad1", g1, "grad2", g2);
}

}  // namespace detail

/// JoCoR's joint loss and selection. For each sample, with p = softmax(z¹), q = softmax(z²),
///
///   ℓ_i = (1 − λ)·[CE(z¹_i, y_i) + CE(z²_i, y_i)] + λ·[KL(q_i ‖ p_i) + KL(p_i ‖ q_i)],
///
/// the k = keep_count(B, r) samples of smallest ℓ are selected (ties to the lower index, NaN
/// last), and L = (1/k) Σ_{selected} ℓ_i trains both networks (one optimizer in the paper). With
/// a = log p − log q, the gradient for a selected sample is
///
///   ∂ℓ/∂z¹ = (1 − λ)(p − e_y) + λ[(p − q) + p ⊙ (a − ⟨p, a⟩)],
///   ∂ℓ/∂z² = (1 − λ)(q − e_y) + λ[(q − p) − q ⊙ (a − ⟨q, a⟩)],
///
/// divided by k; other samples get zero. The forms that avoid cancellation are in the file
/// comment. NaN or ±inf in a sample's logits gives NaN for that sample (its loss ranks last).
///
/// The object is stateful: `per_sample` (or `step`) computes and keeps, for its batch, what
/// `gradients` differentiates, so `gradients` must follow a `per_sample` on the same batch and
/// labels; it checks that it does. A workspace: the first call on a batch shape allocates, later
/// ones do not. One object per thread.
template <class T>
class JoCoR {
  static_assert(is_scalar_v<T>, "regula::JoCoR<T>: T must be float or double");

 public:
  /// @throws regula::invalid_argument if λ ∉ [0, 1].
  explicit JoCoR(JoCoROptions options = {}) : options_(options) {
    REGULA_EXPECTS(options.lambda >= 0.0 && options.lambda <= 1.0, "regula::JoCoR",
                   "lambda must be in [0, 1], got ", options.lambda);
  }

  /// The options this object was built with.
  [[nodiscard]] const JoCoROptions& options() const noexcept { return options_; }

  /// The per-sample joint losses ℓ (length B) of logits z¹, z² (C × B) and labels y, kept for a
  /// following `gradients`.
  /// @throws regula::invalid_argument on shapes that differ, an empty batch, labels outside
  ///         [0, C), or `losses` of another length or sharing memory with the logits. A call
  ///         that throws leaves the state of the previous call in place.
  void per_sample(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                  const LabelsCRef& labels, VectorRef<T> losses) {
    constexpr const char* who = "regula::JoCoR::per_sample";
    detail::check_jocor_inputs<T>(who, logits1, logits2, labels, false);
    REGULA_EXPECTS(losses.size() == logits1.cols(), who, "losses must have one entry per sample (",
                   logits1.cols(), "), got ", losses.size());
    detail::check_disjoint(who, "logits1", logits1, "losses", losses);
    detail::check_disjoint(who, "logits2", logits2, "losses", losses);
    compute(logits1, logits2, labels);
    losses = loss_;
  }

  /// One step: joint losses, selection at `forget_rate`, and in `grad1`, `grad2` (C × B, written)
  /// the gradients of L with respect to z¹ and z². Each gradient may be one of the logits itself
  /// (the logits are read before the gradients are written) or overlap neither; the two
  /// gradients may not share memory.
  /// @throws regula::invalid_argument as per_sample, on gradients of another shape or that
  ///         overlap as said, and if forget_rate ∉ [0, 1].
  JoCoRResult<T> step(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                      const LabelsCRef& labels, double forget_rate, MatrixRef<T> grad1,
                      MatrixRef<T> grad2) {
    constexpr const char* who = "regula::JoCoR::step";
    detail::check_jocor_inputs<T>(who, logits1, logits2, labels, false);
    detail::check_jocor_outputs<T>(who, logits1, logits2, grad1, grad2);
    const std::size_t keep = keep_count(static_cast<std::size_t>(logits1.cols()), forget_rate);
    compute(logits1, logits2, labels);
    const std::vector<Index>& sel = selector_.select(loss_, keep);
    mark(sel);
    const double sum = write_gradients(sel, static_cast<double>(sel.size()), grad1, grad2);
    JoCoRResult<T> r;
    r.kept = sel.size();
    r.loss = static_cast<T>(sum / static_cast<double>(sel.size()));
    return r;
  }

  /// The building block of step (and of its data-parallel version): after per_sample (or step)
  /// on this object, writes into `grad1`, `grad2` (C × B) the gradients of
  /// (1/divisor)·Σ_{i∈selected} ℓ_i (zero for the other columns) and returns Σ_{i∈selected} ℓ_i in
  /// double, summed in the order of `selected`. `labels` must be those of that per_sample.
  /// @throws regula::invalid_argument if no per_sample came first, on gradients of another
  ///         shape than its logits or sharing memory with each other, on labels that differ from
  ///         its labels, on a selected index outside [0, B) or listed twice, and on a divisor that
  ///         is not finite and > 0.
  double gradients(const std::vector<Index>& selected, double divisor, const LabelsCRef& labels,
                   MatrixRef<T> grad1, MatrixRef<T> grad2) {
    constexpr const char* who = "regula::JoCoR::gradients";
    REGULA_EXPECTS(ready_, who,
                   "per_sample (or step) must come first: there are no losses to differentiate");
    const Index c = p_.rows();
    const Index b = p_.cols();
    REGULA_EXPECTS(grad1.rows() == c && grad1.cols() == b, who,
                   "grad1 must have the shape of the logits of per_sample (", c, " x ", b,
                   "), got ", grad1.rows(), " x ", grad1.cols());
    REGULA_EXPECTS(grad2.rows() == c && grad2.cols() == b, who,
                   "grad2 must have the shape of the logits of per_sample (", c, " x ", b,
                   "), got ", grad2.rows(), " x ", grad2.cols());
    detail::check_disjoint(who, "grad1", grad1, "grad2", grad2);
    REGULA_EXPECTS(labels.size() == b, who, "labels must have one entry per sample (", b, "), got ",
                   labels.size());
    for (Index j = 0; j < b; ++j) {
      REGULA_EXPECTS(labels(j) == labels_(j), who, "labels must be those of per_sample: labels(", j,
                     ") was ", labels_(j), ", got ", labels(j));
    }
    REGULA_EXPECTS(std::isfinite(divisor) && divisor > 0.0, who,
                   "divisor must be finite and > 0, got ", divisor);
    mark_.assign(static_cast<std::size_t>(b), 0);
    for (std::size_t s = 0; s < selected.size(); ++s) {
      const Index j = selected[s];
      REGULA_EXPECTS(j >= 0 && j < b, who, "selected[", s, "] must be in [0, ", b, "), got ", j);
      REGULA_EXPECTS(mark_[static_cast<std::size_t>(j)] == 0, who, "selected[", s, "] = ", j,
                     " is listed twice");
      mark_[static_cast<std::size_t>(j)] = 1;
    }
    return write_gradients(selected, divisor, grad1, grad2);
  }

  /// The per-sample joint losses of the last per_sample or step call.
  [[nodiscard]] const Vector<T>& losses() const noexcept { return loss_; }

  /// The samples selected by the last step, ascending.
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return selector_.selected(); }

 private:
  /// Probabilities, a = log p − log q, per-sample scalars and joint losses of every sample.
  void compute(const MatrixCRef<T>& z1, const MatrixCRef<T>& z2, const LabelsCRef& y) {
    const Index c = z1.rows();
    const Index b = z1.cols();
    p_.resize(c, b);
    q_.resize(c, b);
    a_.resize(c, b);
    stats_.resize(detail::jocor_stats, b);
    loss_.resize(b);
    labels_.resize(y.size());
    for (Index j = 0; j < y.size(); ++j) labels_(j) = y[j];
    const double ce = 1.0 - options_.lambda;
    const double lambda = options_.lambda;
    const auto n = static_cast<std::size_t>(c);
    for (Index j = 0; j < b; ++j) {
      loss_(j) = static_cast<T>(detail::jocor_column<T>(
          z1.col(j).data(), z2.col(j).data(), n, static_cast<std::size_t>(y(j)), ce, lambda,
          p_.col(j).data(), q_.col(j).data(), a_.col(j).data(), stats_.col(j).data()));
    }
    ready_ = true;
  }

  /// Marks the selected columns in mark_ (their validity is known).
  void mark(const std::vector<Index>& selected) {
    mark_.assign(static_cast<std::size_t>(p_.cols()), 0);
    for (const Index j : selected) mark_[static_cast<std::size_t>(j)] = 1;
  }

  /// Writes the gradients of the columns marked in mark_, scaled by 1/divisor, zeroes the
  /// others, and returns the sum of the selected losses in the order of `selected`.
  double write_gradients(const std::vector<Index>& selected, double divisor, MatrixRef<T>& g1,
                         MatrixRef<T>& g2) {
    const double ce = 1.0 - options_.lambda;
    const double lambda = options_.lambda;
    const double scale = 1.0 / divisor;
    const auto n = static_cast<std::size_t>(p_.rows());
    for (Index j = 0; j < p_.cols(); ++j) {
      if (mark_[static_cast<std::size_t>(j)] != 0) {
        detail::jocor_column_gradients<T>(p_.col(j).data(), q_.col(j).data(), a_.col(j).data(),
                                          stats_.col(j).data(), n,
                                          static_cast<std::size_t>(labels_(j)), ce, lambda, scale,
                                          g1.col(j).data(), g2.col(j).data());
      } else {
        g1.col(j).setZero();
        g2.col(j).setZero();
      }
    }
    double sum = 0.0;
    for (const Index j : selected) sum += static_cast<double>(loss_(j));
    return sum;
  }

  JoCoROptions options_;
  Matrix<double> p_, q_, a_, stats_;  // double for float too: see the file comment
  Vector<T> loss_;
  Labels labels_;
  bool ready_ = false;
  SmallLossSelector<T> selector_;
  std::vector<std::uint8_t> mark_;
};

}  // namespace regula

#endif  // REGULA_SELECTION_JOCOR_HPP
