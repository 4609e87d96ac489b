/// @file
/// Raw-pointer cross-entropy kernels over one column of logits z (n classes): the per-sample
/// loss and, in the same pass over the column (kept in L1), g·∂ℓ/∂z.
///
/// A column's target is the non-negative vector q with q_c = w_c·(β + α·t_c) + [c = y]·w_y·γ:
/// class weights w (1 when absent), soft targets t (0 when absent), a hard label y (none when
/// negative). Integer labels with label smoothing ε over C classes are α = 0, β = ε/C, γ = 1 − ε;
/// soft targets with smoothing are α = 1 − ε, β = ε/C, γ = 0. Then, with p = normalizer(z),
///
///   ℓ = −Σ_c q_c log p_c,   ∂ℓ/∂z_j = r_j·(A·p_j − q_j),   A = Σ_c q_c,
///
/// where r ≡ 1 for softmax and r_j = 1/(1 + |z_j|) for StableMax (see kernels/stablemax.hpp).
///
/// Precision: softmax works in T with log p = (z − m) − log S; the loss is assembled in double.
/// StableMax sums s, q and q·log s in double (the authors cast to float64) and uses
/// log s(z_y) − log S, never the log of a ratio. Each fast kernel has a general twin (weights,
/// soft targets) and both are checked against one scalar reference computed wholly in double.
#ifndef REGULA_KERNELS_CROSS_ENTROPY_HPP
#define REGULA_KERNELS_CROSS_ENTROPY_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "regula/core/normalizer.hpp"
#include "regula/core/simd.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/kernels/stablemax.hpp"

namespace regula::kernels {

/// The target of one column: q_c = w_c·(beta + alpha·t_c) + [c = label]·w_label·gamma.
template <class T>
struct XentTarget {
  const T* weight = nullptr;  ///< w (n values), or null for all ones
  const T* soft = nullptr;    ///< t (n values), or null for all zeros
  std::int64_t label = -1;    ///< y in [0, n), or negative for no hard label
  T alpha = T(0);
  T beta = T(0);
  T gamma = T(1);
};

/// The parts of a column's loss that need a logarithm, so that a caller can take the logs of
/// many columns at once (xent_finish_batch): ℓ = a·log S − lin − γ_log·log s(z_y), where the last
/// term (StableMax only) uses log s(x) = ±log1p|x|.
struct XentTerms {
  double S = 1.0;
  double a = 0.0;
  double lin = 0.0;
  double gamma_log = 0.0;
  double zy = 0.0;
};

/// ℓ from its terms, with std::log and std::log1p.
inline double xent_finish(const XentTerms& t) noexcept {
  double l = t.a * std::log(t.S) - t.lin;
  if (t.gamma_log != 0.0) l -= t.gamma_log * stablemax_log_s(t.zy);
  return l;
}

/// loss[k] = ℓ of terms[k] for k < count ≤ 16, the logarithms taken in SIMD (xsimd::log and
/// xsimd::log1p in double, about 1 ulp). The lanes are independent: a column's loss does not
/// depend on its neighbours.
template <class A = default_arch>
void xent_finish_batch(const XentTerms* terms, std::size_t count, double* loss) noexcept {
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t WD = DB::size;
  constexpr std::size_t G = 16;
  alignas(64) double S[G], zy[G], out[G];
  for (std::size_t k = 0; k < G; ++k) {
    S[k] = k < count ? terms[k].S : 1.0;
    zy[k] = k < count ? terms[k].zy : 0.0;
  }
  for (std::size_t k = 0; k < G && k < count + WD - 1; k += WD) {
    const DB ls = xsimd::log(DB::load_aligned(S + k));
    const DB x = DB::load_aligned(zy + k);
    const DB l1 = xsimd::log1p(xsimd::abs(x));
    const DB lsy = xsimd::select(x >= DB(0.0), l1, -l1);
    ls.store_aligned(S + k);
    lsy.store_aligned(out + k);
  }
  for (std::size_t k = 0; k < count; ++k) {
    const XentTerms& t = terms[k];
    double l = t.a * S[k] - t.lin;
    if (t.gamma_log != 0.0) l -= t.gamma_log * out[k];
    loss[k] = l;
  }
}

/// Softmax cross-entropy of one column with a hard label and no weights:
/// q = β·1 + γ·e_y. Returns the terms of ℓ (see XentTerms); writes g·∂ℓ/∂z to dz when dz is
/// not null (dz must not overlap z).
template <class T, class A = default_arch>
XentTerms softmax_xent_hard_terms(const T* z, std::size_t n, std::size_t y, T beta, T gamma, T g,
                                  T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const T zy = z[y];
  T S;
  double sum_d = 0.0;  // Σ (z_c − m), needed only with smoothing
  if (beta != T(0)) {
    const B mb(m);
    B s0(T(0));
    DoubleAccumulator<T, A> dacc;
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B d = B::load_unaligned(z + i) - mb;
      const B e = xsimd::exp(d);
      if (dz != nullptr) e.store_unaligned(dz + i);
      s0 += e;
      dacc.add(d);
    }
    if (i < n) {
      const std::size_t k = n - i;
      const B d = load_tail<T, A>(z + i, k, -std::numeric_limits<T>::infinity()) - mb;
      const B e = xsimd::exp(d);
      if (dz != nullptr) store_tail(e, dz + i, k);
      s0 += e;
      dacc.add(xsimd::select(tail_mask<T, A>(k), d, B(T(0))));
    }
    S = hsum(s0);
    sum_d = dacc.sum();
  } else {
    S = sum_exp<T, A>(z, n, m, dz);
  }
  const double a = static_cast<double>(n) * static_cast<double>(beta) + static_cast<double>(gamma);
  XentTerms terms;
  terms.S = static_cast<double>(S);
  terms.a = a;
  terms.lin = static_cast<double>(gamma) * (static_cast<double>(zy) - static_cast<double>(m)) +
              static_cast<double>(beta) * sum_d;
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * a / static_cast<double>(S));
    const T gb = g * beta;
    const B sb(scale);
    const B gbb(gb);
    std::size_t i = 0;
    for (; i + W <= n; i += W) xsimd::fms(sb, B::load_unaligned(dz + i), gbb).store_unaligned(dz + i);
    for (; i < n; ++i) dz[i] = scale * dz[i] - gb;
    dz[y] -= g * gamma;
  }
  return terms;
}

namespace detail {

/// One SIMD block of the StableMax pass: S += s(x) in double, s stored to dz (Store),
/// L += log s (Smooth). With Store the double accumulation reloads the stored floats with
/// widening loads.
template <bool Store, bool Smooth, class T, class A>
REGULA_ALWAYS_INLINE void stablemax_block(const xsimd::batch<T, A>& x, DoubleAccumulator<T, A>& sacc,
                                          DoubleAccumulator<T, A>& lacc, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  const B one(T(1));
  const B ax = xsimd::abs(x);
  const B a = one + ax;
  const B s = xsimd::select(x >= B(T(0)), a, stablemax_recip(a));
  if constexpr (Store) {
    s.store_unaligned(dz);
    sacc.add_stored(dz);
  } else {
    sacc.add(s);
  }
  if constexpr (Smooth) {
    const B l = xsimd::log1p(ax);
    lacc.add(xsimd::select(x >= B(T(0)), l, -l));
  }
}

/// The StableMax pass over a column: returns S = Σ s (double) and Σ log s when Smooth, writes
/// s to dz when Store. Two blocks per step keep four double accumulation chains in flight.
template <bool Store, bool Smooth, class T, class A>
void stablemax_pass(const T* z, std::size_t n, T* dz, double& S, double& sum_log_s) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> s0, s1, l0, l1;
  // No offset is ever applied to a null dz.
  auto out = [dz](std::size_t k) noexcept { return Store ? dz + k : dz; };
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    stablemax_block<Store, Smooth>(B::load_unaligned(z + i), s0, l0, out(i));
    stablemax_block<Store, Smooth>(B::load_unaligned(z + i + W), s1, l1, out(i + W));
  }
  for (; i + W <= n; i += W) stablemax_block<Store, Smooth>(B::load_unaligned(z + i), s0, l0, out(i));
  if (i < n) {
    // The partial last block, padded with x = 0 lanes whose s = 1 is masked out of S (their
    // log s = 0 adds nothing).
    const std::size_t k = n - i;
    const B one(T(1));
    const B x = load_tail<T, A>(z + i, k, T(0));
    const B ax = xsimd::abs(x);
    const B a = one + ax;
    const auto pos = x >= B(T(0));
    const B sv = xsimd::select(pos, a, stablemax_recip(a));
    s1.add(xsimd::select(tail_mask<T, A>(k), sv, B(T(0))));
    if constexpr (Store) store_tail(sv, dz + i, k);
    if constexpr (Smooth) {
      const B l = xsimd::log1p(ax);
      l1.add(xsimd::select(pos, l, -l));
    }
  }
  s0.merge(s1);
  l0.merge(l1);
  S = s0.sum();
  sum_log_s = Smooth ? l0.sum() : 0.0;
}

}  // namespace detail

/// StableMax cross-entropy of one column with a hard label and no weights (see
/// softmax_xent_hard_terms). S, and Σ log s with smoothing, are accumulated in double.
template <class T, class A = default_arch>
XentTerms stablemax_xent_hard_terms(const T* z, std::size_t n, std::size_t y, T beta, T gamma, T g,
                                    T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B one(T(1));
  const T zy = z[y];
  const bool smooth = beta != T(0);
  double S = 0.0;
  double sum_log_s = 0.0;
  if (dz != nullptr) {
    if (smooth) {
      detail::stablemax_pass<true, true, T, A>(z, n, dz, S, sum_log_s);
    } else {
      detail::stablemax_pass<true, false, T, A>(z, n, dz, S, sum_log_s);
    }
  } else {
    if (smooth) {
      detail::stablemax_pass<false, true, T, A>(z, n, dz, S, sum_log_s);
    } else {
      detail::stablemax_pass<false, false, T, A>(z, n, dz, S, sum_log_s);
    }
  }
  std::size_t i = 0;
  const double a = static_cast<double>(n) * static_cast<double>(beta) + static_cast<double>(gamma);
  XentTerms terms;
  terms.S = S;
  terms.a = a;
  terms.lin = static_cast<double>(beta) * sum_log_s;
  terms.gamma_log = static_cast<double>(gamma);
  terms.zy = static_cast<double>(zy);
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * a / S);
    const B sb(scale);
    // dz holds s; s·r = 1 for z ≥ 0 (s ≥ 1) and s² for z < 0 (s < 1), i.e. min(s, 1)².
    if (smooth) {
      const T gb = g * beta;
      const B gbb(gb);
      for (; i + W <= n; i += W) {
        const B v = xsimd::min(B::load_unaligned(dz + i), one);
        const B r = one / (one + xsimd::abs(B::load_unaligned(z + i)));
        xsimd::fms(sb * v, v, gbb * r).store_unaligned(dz + i);
      }
      for (; i < n; ++i) {
        const T v = dz[i] < T(1) ? dz[i] : T(1);
        dz[i] = scale * v * v - gb * stablemax_r(z[i]);
      }
    } else {
      for (; i + W <= n; i += W) {
        const B v = xsimd::min(B::load_unaligned(dz + i), one);
        (sb * v * v).store_unaligned(dz + i);
      }
      for (; i < n; ++i) {
        const T v = dz[i] < T(1) ? dz[i] : T(1);
        dz[i] = scale * v * v;
      }
    }
    dz[y] -= g * gamma * stablemax_r(zy);
  }
  return terms;
}

/// Softmax cross-entropy of one column with a hard label and no weights; returns ℓ.
template <class T, class A = default_arch>
double softmax_xent_hard(const T* z, std::size_t n, std::size_t y, T beta, T gamma, T g,
                         T* dz) noexcept {
  return xent_finish(softmax_xent_hard_terms<T, A>(z, n, y, beta, gamma, g, dz));
}

/// StableMax cross-entropy of one column with a hard label and no weights; returns ℓ.
template <class T, class A = default_arch>
double stablemax_xent_hard(const T* z, std::size_t n, std::size_t y, T beta, T gamma, T g,
                           T* dz) noexcept {
  return xent_finish(stablemax_xent_hard_terms<T, A>(z, n, y, beta, gamma, g, dz));
}

/// The hard-label, unweighted kernel of normalizer Norm, returning the loss's terms.
template <Normalizer Norm, class T, class A = default_arch>
REGULA_ALWAYS_INLINE XentTerms xent_hard_terms(const T* z, std::size_t n, std::size_t y, T beta,
                                               T gamma, T g, T* dz) noexcept {
  if constexpr (Norm == Normalizer::softmax) {
    return softmax_xent_hard_terms<T, A>(z, n, y, beta, gamma, g, dz);
  } else {
    return stablemax_xent_hard_terms<T, A>(z, n, y, beta, gamma, g, dz);
  }
}

namespace detail {

/// q_c for a SIMD block starting at class i.
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> xent_q(const XentTarget<T>& t, std::size_t i) noexcept {
  using B = xsimd::batch<T, A>;
  B q(t.beta);
  if (t.soft != nullptr) q = xsimd::fma(B(t.alpha), B::load_unaligned(t.soft + i), q);
  if (t.weight != nullptr) q *= B::load_unaligned(t.weight + i);
  return q;
}

/// q_c for class i, without the hard-label term.
template <class T>
REGULA_ALWAYS_INLINE T xent_q(const XentTarget<T>& t, std::size_t i) noexcept {
  T q = t.beta;
  if (t.soft != nullptr) q += t.alpha * t.soft[i];
  if (t.weight != nullptr) q *= t.weight[i];
  return q;
}

/// w_y·γ, the hard-label part of q_y.
template <class T>
REGULA_ALWAYS_INLINE T xent_hard_weight(const XentTarget<T>& t) noexcept {
  if (t.label < 0) return T(0);
  const T w = t.weight != nullptr ? t.weight[static_cast<std::size_t>(t.label)] : T(1);
  return w * t.gamma;
}

}  // namespace detail

/// Softmax cross-entropy of one column with any target (weights, soft targets, smoothing).
/// Returns ℓ = −Σ q log p; writes g·(A·p − q) to dz when dz is not null (no overlap with z).
template <class T, class A = default_arch>
double softmax_xent(const T* z, std::size_t n, const XentTarget<T>& t, T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const B mb(m);
  B s0(T(0));
  DoubleAccumulator<T, A> qacc;
  DoubleAccumulator<T, A> dacc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B d = B::load_unaligned(z + i) - mb;
    const B e = xsimd::exp(d);
    if (dz != nullptr) e.store_unaligned(dz + i);
    s0 += e;
    const B q = detail::xent_q<T, A>(t, i);
    qacc.add(q);
    dacc.add(q * d);
  }
  T S = hsum(s0);
  double a = qacc.sum();
  double qd = dacc.sum();
  for (; i < n; ++i) {
    const T d = z[i] - m;
    const T e = std::exp(d);
    if (dz != nullptr) dz[i] = e;
    S += e;
    const T q = detail::xent_q(t, i);
    a += static_cast<double>(q);
    qd += static_cast<double>(q * d);
  }
  const T hw = detail::xent_hard_weight(t);
  if (t.label >= 0) {
    const auto y = static_cast<std::size_t>(t.label);
    a += static_cast<double>(hw);
    qd += static_cast<double>(hw) * (static_cast<double>(z[y]) - static_cast<double>(m));
  }
  const double loss = a * std::log(static_cast<double>(S)) - qd;
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * a / static_cast<double>(S));
    const B sb(scale);
    const B gb(g);
    for (i = 0; i + W <= n; i += W) {
      xsimd::fms(sb, B::load_unaligned(dz + i), gb * detail::xent_q<T, A>(t, i)).store_unaligned(dz + i);
    }
    for (; i < n; ++i) dz[i] = scale * dz[i] - g * detail::xent_q(t, i);
    if (t.label >= 0) dz[static_cast<std::size_t>(t.label)] -= g * hw;
  }
  return loss;
}

/// StableMax cross-entropy of one column with any target (see softmax_xent).
/// Writes g·r ⊙ (A·π − q) to dz when dz is not null (no overlap with z).
template <class T, class A = default_arch>
double stablemax_xent(const T* z, std::size_t n, const XentTarget<T>& t, T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B one(T(1));
  const B zero(T(0));
  DoubleAccumulator<T, A> sacc;
  DoubleAccumulator<T, A> qacc;
  DoubleAccumulator<T, A> lacc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B x = B::load_unaligned(z + i);
    sacc.add(stablemax_s(x));
    const B q = detail::xent_q<T, A>(t, i);
    qacc.add(q);
    lacc.add(q * stablemax_log_s(x));
  }
  double S = sacc.sum();
  double a = qacc.sum();
  double ql = lacc.sum();
  for (; i < n; ++i) {
    S += static_cast<double>(stablemax_s(z[i]));
    const T q = detail::xent_q(t, i);
    a += static_cast<double>(q);
    ql += static_cast<double>(q * stablemax_log_s(z[i]));
  }
  const T hw = detail::xent_hard_weight(t);
  if (t.label >= 0) {
    const auto y = static_cast<std::size_t>(t.label);
    a += static_cast<double>(hw);
    ql += static_cast<double>(hw) * stablemax_log_s(static_cast<double>(z[y]));
  }
  const double loss = a * std::log(S) - ql;
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * a / S);
    const B sb(scale);
    const B gb(g);
    for (i = 0; i + W <= n; i += W) {
      const B x = B::load_unaligned(z + i);
      const B r = one / (one + xsimd::abs(x));
      const B sr = xsimd::select(x >= zero, one, r * r);
      xsimd::fms(sb, sr, gb * detail::xent_q<T, A>(t, i) * r).store_unaligned(dz + i);
    }
    for (; i < n; ++i) {
      const T r = stablemax_r(z[i]);
      const T sr = z[i] >= T(0) ? T(1) : r * r;
      dz[i] = scale * sr - g * detail::xent_q(t, i) * r;
    }
    if (t.label >= 0) {
      const auto y = static_cast<std::size_t>(t.label);
      dz[y] -= g * hw * stablemax_r(z[y]);
    }
  }
  return loss;
}

/// The per-column cross-entropy of normalizer Norm with any target, dispatching to the fast
/// kernel when the target is a hard label without weights or soft targets.
template <Normalizer Norm, class T, class A = default_arch>
REGULA_ALWAYS_INLINE double xent_column(const T* z, std::size_t n, const XentTarget<T>& t, T g,
                                        T* dz) noexcept {
  if (t.weight == nullptr && t.soft == nullptr && t.label >= 0) {
    const auto y = static_cast<std::size_t>(t.label);
    if constexpr (Norm == Normalizer::softmax) {
      return softmax_xent_hard<T, A>(z, n, y, t.beta, t.gamma, g, dz);
    } else {
      return stablemax_xent_hard<T, A>(z, n, y, t.beta, t.gamma, g, dz);
    }
  }
  if constexpr (Norm == Normalizer::softmax) {
    return softmax_xent<T, A>(z, n, t, g, dz);
  } else {
    return stablemax_xent<T, A>(z, n, t, g, dz);
  }
}

/// Scalar reference of xent_column, wholly in double: log p, p and r from the definitions.
template <Normalizer Norm, class T>
double xent_column_reference(const T* z, std::size_t n, const XentTarget<T>& t, T g,
                             T* dz) noexcept {
  double log_norm = 0.0;  // log S, with the max folded in for softmax
  double m = 0.0;
  if constexpr (Norm == Normalizer::softmax) {
    m = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) m = static_cast<double>(z[i]) > m ? static_cast<double>(z[i]) : m;
    double S = 0.0;
    for (std::size_t i = 0; i < n; ++i) S += std::exp(static_cast<double>(z[i]) - m);
    log_norm = std::log(S);
  } else {
    double S = 0.0;
    for (std::size_t i = 0; i < n; ++i) S += stablemax_s(static_cast<double>(z[i]));
    log_norm = std::log(S);
  }
  auto log_p = [&](std::size_t i) {
    const double x = static_cast<double>(z[i]);
    if constexpr (Norm == Normalizer::softmax) {
      return (x - m) - log_norm;
    } else {
      return stablemax_log_s(x) - log_norm;
    }
  };
  auto q_of = [&](std::size_t i) {
    double q = static_cast<double>(t.beta);
    if (t.soft != nullptr) q += static_cast<double>(t.alpha) * static_cast<double>(t.soft[i]);
    if (t.weight != nullptr) q *= static_cast<double>(t.weight[i]);
    if (t.label >= 0 && i == static_cast<std::size_t>(t.label)) {
      const double w = t.weight != nullptr ? static_cast<double>(t.weight[i]) : 1.0;
      q += w * static_cast<double>(t.gamma);
    }
    return q;
  };
  double a = 0.0;
  double loss = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double q = q_of(i);
    a += q;
    if (q != 0.0) loss -= q * log_p(i);
  }
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const double p = std::exp(log_p(i));
      const double r = Norm == Normalizer::softmax ? 1.0 : stablemax_r(static_cast<double>(z[i]));
      dz[i] = static_cast<T>(static_cast<double>(g) * r * (a * p - q_of(i)));
    }
  }
  return loss;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_CROSS_ENTROPY_HPP
