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

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "regula/core/normalizer.hpp"
#include "regula/core/simd.hpp"
#include "regula/kernels/exp_log.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/kernels/stablemax.hpp"
#include "regula/kernels/tile.hpp"

namespace regula::kernels {

/// The target of one column: q_c = w_c·(beta + alpha·t_c) + [c = label]·w_label·gamma.
template <class T>
struct XentTarget {
  const T* weight = nullptr;  ///< w (n values), or null for all ones
  const T* soft = nullptr;    ///< t (n values), or null for all zeros
  std::int64_t label = -1;    ///< y in [0, n), or negative for no hard label
  /// α, the weight of the soft targets t.
  T alpha = T(0);
  /// β, every class's uniform target (label smoothing's share).
  T beta = T(0);
  /// γ, the weight of the hard label.
  T gamma = T(1);
};

/// The parts of a column's loss that need a logarithm, so that a caller can take the logs of
/// many columns at once (xent_finish_batch):
///
///   ℓ = a·log S − lin + γ·L_y,   L_y = log(S/s_y) ≥ 0,
///
/// where a and lin carry the smoothing part (a = n·β, lin = β·Σ log s_j) and L_y is the hard
/// label's own term. L_y is never formed as a difference of two nearly equal numbers: when the
/// label holds more than half of S (the confident regime), L_y = log1p(R/s_y) with
/// R = Σ_{j≠y} s_j summed directly (`Label::dominant`, u = R/s_y); otherwise log S and log s_y
/// differ by at least log 2 and L_y = log S − log s_y, with log s_y = u for softmax (u = z_y − m)
/// or ±log1p|u| for StableMax (u = z_y).
struct XentTerms {
  /// How L_y is formed from u.
  enum class Label : unsigned char { none, dominant, softmax, stablemax };
  /// S, the normalizer's sum over the classes.
  double S = 1.0;
  /// a = n·β, the factor of log S.
  double a = 0.0;
  /// lin = β·Σ log s_j.
  double lin = 0.0;
  /// γ, the factor of L_y.
  double gamma = 0.0;
  /// The argument L_y is formed from (R/s_y, z_y − m or z_y; see Label).
  double u = 0.0;
  /// Which label form the sample has.
  Label kind = Label::none;
};

namespace detail {

/// Lane 0 of a batch.
template <class T, class A>
REGULA_ALWAYS_INLINE T first_lane(const xsimd::batch<T, A>& x) noexcept {
  alignas(64) T v[xsimd::batch<T, A>::size];
  x.store_aligned(v);
  return v[0];
}

/// L_y from log S and log1p(|u|).
REGULA_ALWAYS_INLINE double xent_label_term(const XentTerms& t, double log_S,
                                            double log1p_abs_u) noexcept {
  switch (t.kind) {
    case XentTerms::Label::dominant:
      return log1p_abs_u;
    case XentTerms::Label::softmax:
      return log_S - t.u;
    case XentTerms::Label::stablemax:
      return log_S - (t.u >= 0.0 ? log1p_abs_u : -log1p_abs_u);
    case XentTerms::Label::none:
      break;
  }
  return 0.0;
}

}  // namespace detail

/// ℓ from its terms, with std::log and std::log1p.
inline double xent_finish(const XentTerms& t) noexcept {
  const double ls = std::log(t.S);
  double l = t.a * ls - t.lin;
  if (t.kind != XentTerms::Label::none) {
    l += t.gamma * detail::xent_label_term(t, ls, std::log1p(std::abs(t.u)));
  }
  // Every term q_j·log(S/s_j) is >= 0; the smoothing part's own term for the label may round
  // below 0 when it is all there is (one class). NaN stays NaN.
  return l < 0.0 ? 0.0 : l;
}

/// loss[k] = ℓ of terms[k] for k < count ≤ 16, the logarithms taken in SIMD (log_batch and
/// xsimd::log1p in double, about 1 ulp). The lanes are independent: a column's loss does not
/// depend on its neighbours.
template <class A = default_arch>
void xent_finish_batch(const XentTerms* terms, std::size_t count, double* loss) noexcept {
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t WD = DB::size;
  constexpr std::size_t G = 16;
  alignas(64) double S[G], u[G];
  for (std::size_t k = 0; k < G; ++k) {
    S[k] = k < count ? terms[k].S : 1.0;
    u[k] = k < count ? terms[k].u : 0.0;
  }
  for (std::size_t k = 0; k < G && k < count + WD - 1; k += WD) {
    log_batch(DB::load_aligned(S + k)).store_aligned(S + k);
    xsimd::log1p(xsimd::abs(DB::load_aligned(u + k))).store_aligned(u + k);
  }
  for (std::size_t k = 0; k < count; ++k) {
    const XentTerms& t = terms[k];
    double l = t.a * S[k] - t.lin;
    if (t.kind != XentTerms::Label::none) l += t.gamma * detail::xent_label_term(t, S[k], u[k]);
    loss[k] = l < 0.0 ? 0.0 : l;  // as xent_finish
  }
}

/// Softmax cross-entropy of one column with a hard label and no weights:
/// q = β·1 + γ·e_y. Returns the terms of ℓ (see XentTerms); writes g·∂ℓ/∂z to dz when dz is
/// not null (dz must not overlap z).
///
/// The label's element g·(a·p_y − β − γ) cancels once p_y is close to 1 (p_y rounds to 1 in
/// float at a margin of about 17); it is formed as g·((n−1)·β·e_y − (β + γ)·R)/S with
/// R = Σ_{j≠y} e_j, summed directly in double when e_y > S/2 (else S − e_y loses nothing).
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
      const B e = exp_batch(d);
      if (dz != nullptr) e.store_unaligned(dz + i);
      s0 += e;
      dacc.add(d);
    }
    if (i < n) {
      const std::size_t k = n - i;
      const B d = load_tail<T, A>(z + i, k, -std::numeric_limits<T>::infinity()) - mb;
      const B e = exp_batch(d);
      if (dz != nullptr) store_tail(e, dz + i, k);
      s0 += e;
      dacc.add(xsimd::select(tail_mask<T, A>(k), d, B(T(0))));
    }
    S = hsum(s0);
    sum_d = dacc.sum();
  } else {
    S = sum_exp<T, A>(z, n, m, dz);
  }
  // e_y as the SIMD pass computes it, so that the loss has the same bits with or without dz.
  const T ey = dz != nullptr ? dz[y] : detail::first_lane(exp_batch(B(zy) - B(m)));
  XentTerms terms;
  terms.a = static_cast<double>(n) * static_cast<double>(beta);
  terms.lin = static_cast<double>(beta) * sum_d;
  terms.gamma = static_cast<double>(gamma);
  double R;
  double Sd;
  if (T(2) * ey > S) {
    // The label holds most of S: R directly, S = e_y + R (more accurate than the float S).
    const B mb(m);
    R = dz != nullptr ? sum_in_double_except<T, A>(dz, n, y)
                      : sum_mapped_in_double_except<T, A>(
                            z, n, y, -std::numeric_limits<T>::infinity(),
                            [&mb](const B& x) noexcept { return exp_batch(x - mb); });
    Sd = static_cast<double>(ey) + R;
    terms.kind = XentTerms::Label::dominant;
    terms.u = R / static_cast<double>(ey);
  } else {
    Sd = static_cast<double>(S);
    R = Sd - static_cast<double>(ey);
    terms.kind = XentTerms::Label::softmax;
    terms.u = static_cast<double>(zy) - static_cast<double>(m);
  }
  terms.S = Sd;
  if (dz != nullptr) {
    const double a = terms.a + static_cast<double>(gamma);
    const double gs = static_cast<double>(g) / Sd;  // one division for the column
    const T scale = static_cast<T>(gs * a);
    const T gb = g * beta;
    const B sb(scale);
    const B gbb(gb);
    std::size_t i = 0;
    for (; i + W <= n; i += W)
      xsimd::fms(sb, B::load_unaligned(dz + i), gbb).store_unaligned(dz + i);
    for (; i < n; ++i) dz[i] = scale * dz[i] - gb;
    const double bd = static_cast<double>(beta);
    dz[y] = static_cast<T>(gs * (static_cast<double>(n - 1) * bd * static_cast<double>(ey) -
                                 (bd + static_cast<double>(gamma)) * R));
  }
  return terms;
}

namespace detail {

/// s(x) with the fast reciprocal, as the cross-entropy passes compute (and store) it.
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> stablemax_s_fast(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B a = B(T(1)) + xsimd::abs(x);
  return xsimd::select(x >= B(T(0)), a, stablemax_recip(a));
}

/// One SIMD block of the StableMax pass: S += s(x) in double, s stored to dz (Store),
/// L += log s (Smooth). With Store the double accumulation reloads the stored floats with
/// widening loads.
template <bool Store, bool Smooth, class T, class A>
REGULA_ALWAYS_INLINE void stablemax_block(const xsimd::batch<T, A>& x,
                                          DoubleAccumulator<T, A>& sacc,
                                          DoubleAccumulator<T, A>& lacc, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  const B s = stablemax_s_fast(x);
  if constexpr (Store) {
    s.store_unaligned(dz);
    sacc.add_stored(dz);
  } else {
    sacc.add(s);
  }
  if constexpr (Smooth) {
    const B l = xsimd::log1p(xsimd::abs(x));
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
  for (; i + W <= n; i += W)
    stablemax_block<Store, Smooth>(B::load_unaligned(z + i), s0, l0, out(i));
  if (i < n) {
    // The partial last block, padded with x = 0 lanes whose s = 1 is masked out of S (their
    // log s = 0 adds nothing).
    const std::size_t k = n - i;
    const B x = load_tail<T, A>(z + i, k, T(0));
    const B sv = stablemax_s_fast(x);
    s1.add(xsimd::select(tail_mask<T, A>(k), sv, B(T(0))));
    if constexpr (Store) store_tail(sv, dz + i, k);
    if constexpr (Smooth) {
      const B l = xsimd::log1p(xsimd::abs(x));
      l1.add(xsimd::select(x >= B(T(0)), l, -l));
    }
  }
  s0.merge(s1);
  l0.merge(l1);
  S = s0.sum();
  sum_log_s = Smooth ? l0.sum() : 0.0;
}

}  // namespace detail

template <Normalizer Norm, class T, class W = double>
double xent_column_reference(const T* z, std::size_t n, const XentTarget<T>& t, T g,
                             T* dz) noexcept;

/// StableMax cross-entropy of one column with a hard label and no weights (see
/// softmax_xent_hard_terms). S, and Σ log s with smoothing, are accumulated in double; the
/// label's element is g·r_y·((n−1)·β·s_y − (β + γ)·R)/S with R = Σ_{j≠y} s_j summed directly
/// when s_y > S/2, which is where g·r_y·(a·s_y/S − β − γ) would cancel.
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
  const T sy = dz != nullptr ? dz[y] : detail::first_lane(detail::stablemax_s_fast(B(zy)));
  XentTerms terms;
  terms.S = S;
  terms.a = static_cast<double>(n) * static_cast<double>(beta);
  terms.lin = static_cast<double>(beta) * sum_log_s;
  terms.gamma = static_cast<double>(gamma);
  double R;
  if (2.0 * static_cast<double>(sy) > S) {
    R = dz != nullptr ? sum_in_double_except<T, A>(dz, n, y)
                      : sum_mapped_in_double_except<T, A>(z, n, y, T(0), [](const B& x) noexcept {
                          return detail::stablemax_s_fast(x);
                        });
    terms.kind = XentTerms::Label::dominant;
    terms.u = R / static_cast<double>(sy);
  } else {
    R = S - static_cast<double>(sy);
    terms.kind = XentTerms::Label::stablemax;
    terms.u = static_cast<double>(zy);
  }
  if (dz != nullptr) {
    std::size_t i = 0;
    const double a = terms.a + static_cast<double>(gamma);
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
    // r_y·s_y in double from z_y: 1 for z_y ≥ 0, s_y² otherwise.
    const double zyd = static_cast<double>(zy);
    const double ry = stablemax_r(zyd);
    const double rs = zyd >= 0.0 ? 1.0 : ry * ry;
    const double bd = static_cast<double>(beta);
    dz[y] = static_cast<T>(
        static_cast<double>(g) *
        (static_cast<double>(n - 1) * bd * rs - (bd + static_cast<double>(gamma)) * ry * R) / S);
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

/// The widest head the cross-column cross-entropy kernels take (kernels/tile.hpp).
inline constexpr std::size_t xent_narrow_classes = tile_rows;

namespace detail {

/// The labels of a tile's columns as a batch of T (lanes past `count` take column 0's).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> tile_labels(const std::int64_t* labels,
                                                    std::size_t count) noexcept {
  using B = xsimd::batch<T, A>;
  alignas(64) T t[B::size];
  for (std::size_t k = 0; k < B::size; ++k) t[k] = static_cast<T>(labels[k < count ? k : 0]);
  return B::load_aligned(t);
}

/// The target q = β_j + γ_k·[j = y_k] of a tile's columns: β_j = β·w_j and γ_k = γ·w_{y_k} with
/// class weights w (null: none), as the per-column kernels form them (in T), a = Σ_j β_j in
/// double in class order (n·β without weights), and the label's β_y, γ and a − β_y in double:
/// per lane with weights, one value for every lane without (so an unweighted tile pays nothing
/// per lane for them).
template <class T, class A>
struct TileTarget {
  using DB = xsimd::batch<double, A>;
  static constexpr std::size_t W = xsimd::batch<T, A>::size;
  bool weighted;
  double a = 0.0;
  double beta0, gamma0, amb0;  // without weights: β, γ and (n − 1)·β
  T beta[tile_rows];           // with weights: β_j
  alignas(64) double beta_y[W], gamma[W], a_minus_beta_y[W];

  TileTarget(const std::int64_t* labels, std::size_t count, std::size_t n, const T* weight, T b,
             T g) noexcept
      : weighted(weight != nullptr),
        beta0(static_cast<double>(b)),
        gamma0(static_cast<double>(g)),
        amb0(static_cast<double>(n - 1) * static_cast<double>(b)) {
    if (!weighted) {
      a = static_cast<double>(n) * static_cast<double>(b);  // as the per-column kernel's
      return;
    }
    for (std::size_t r = 0; r < n; ++r) {
      beta[r] = b * weight[r];
      a += static_cast<double>(beta[r]);
    }
    for (std::size_t k = 0; k < W; ++k) {
      const auto y = static_cast<std::size_t>(labels[k < count ? k : 0]);
      beta_y[k] = static_cast<double>(beta[y]);
      gamma[k] = static_cast<double>(g * weight[y]);
      a_minus_beta_y[k] = a - beta_y[k];
    }
  }
  /// γ_k, β_{y_k} and a − β_{y_k} of the lanes h, h + 1, … (double batches).
  DB gamma_at(std::size_t h) const noexcept {
    return weighted ? DB::load_aligned(gamma + h) : DB(gamma0);
  }
  DB beta_y_at(std::size_t h) const noexcept {
    return weighted ? DB::load_aligned(beta_y + h) : DB(beta0);
  }
  DB a_minus_beta_y_at(std::size_t h) const noexcept {
    return weighted ? DB::load_aligned(a_minus_beta_y + h) : DB(amb0);
  }
};

/// terms[k] for k < count from per-lane S, u, the label's form, a = Σ_j β_j, and with smoothing
/// the per-lane Σ_j β_j·log s_j (`lin`, null without smoothing) and the label weights γ_k
/// (`gamma`, or `gamma0` for every lane when null).
REGULA_ALWAYS_INLINE void xent_tile_terms(const double* S, const double* u, const double* dominant,
                                          std::size_t count, double a, const double* lin,
                                          const double* gamma, double gamma0,
                                          XentTerms::Label other, XentTerms* terms) noexcept {
  for (std::size_t k = 0; k < count; ++k) {
    XentTerms& t = terms[k];
    t.S = S[k];
    t.a = a;
    t.lin = lin != nullptr ? lin[k] : 0.0;
    t.gamma = gamma != nullptr ? gamma[k] : gamma0;
    t.u = u[k];
    t.kind = dominant[k] != 0.0 ? XentTerms::Label::dominant : other;
  }
}

}  // namespace detail

/// Softmax cross-entropy of `count` ≤ W consecutive columns (column k at z + k·zs, n ≤
/// xent_narrow_classes classes), each with a hard label `labels[k]` in [0, n), target
/// q_j = β_j + γ_k·[j = y_k] (detail::TileTarget: β = ε/n with label smoothing ε, class weights w
/// or null): terms[k] are column k's XentTerms as softmax_xent_hard_terms gives them without
/// weights (with weights, the same form with each class's q), and g·∂ℓ/∂z goes to dz (the same
/// layout) when dz is not null (column k at dz + k·dzs; dz must not overlap z). W = the batch size
/// of T. The strides only move the scalar transposes, so a block of a wider matrix gives the bits
/// of a copy. Returns true when some lane's gradient scale or label element is past the largest
/// T or NaN: the caller then passes the tile to detail::xent_tile_gradient_repair.
///
/// One lane holds one column (kernels/tile.hpp): the maximum, the exponentials, S, the label's
/// e_y and R = Σ_{j≠y} e_j (in double) are vertical operations. The per-lane arithmetic is the
/// per-column kernel's (the same dominant-label branch, the label's element formed from R, one
/// division per column), branch-free in double lanes (a column's label is dominant or not at
/// random, so a branch per lane would be mispredicted half of the time); only the order of the
/// sums differs (S in class order in T, R and, with smoothing, Σ β_j·(z_j − m) in class order
/// in double), so the two agree to a few ulps of S. With class weights the per-column path is
/// the general kernel (softmax_xent), which forms the same loss around the column's largest
/// class instead of its label: both are accurate to a few ulps of the loss's terms.
template <class T, class A = default_arch>
bool softmax_xent_hard_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count,
                            const std::int64_t* labels, const T* weight, T beta, T gamma, T g,
                            T* dz, std::size_t dzs, XentTerms* terms) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t WD = DB::size;
  const ColumnTile<T, A> tile(z, zs, n, count);
  const B y = detail::tile_labels<T, A>(labels, count);
  B e[tile_rows];
  B m = tile.row(0);
  e[0] = m;
  for (std::size_t r = 1; r < n; ++r) {
    e[r] = tile.row(r);
    m = xsimd::max(m, e[r]);
  }
  const bool smooth = beta != T(0);
  const detail::TileTarget<T, A> q(labels, count, n, weight, beta, gamma);
  B S(T(0));
  B ey(T(0));
  B zy(T(0));
  LaneSums<T, A> R, D;  // D: Σ (z_j − m), or Σ β_j·(z_j − m) with weights; only with smoothing
  for (std::size_t r = 0; r < n; ++r) {
    const auto is_y = y == B(static_cast<T>(r));
    zy = xsimd::select(is_y, e[r], zy);
    const B d = e[r] - m;
    if (smooth) D.add(weight != nullptr ? B(q.beta[r]) * d : d);
    e[r] = exp_batch(d);
    S += e[r];
    ey = xsimd::select(is_y, e[r], ey);
    R.add(xsimd::select(is_y, B(T(0)), e[r]));
  }
  alignas(64) double Sd[W], eyd[W], ud[W], Rd[W], Dd[W], dom[W], scale_d[W], dzy_d[W];
  widen_lanes(S, Sd);
  widen_lanes(ey, eyd);
  widen_lanes(zy - m, ud);
  R.store(Rd);
  if (smooth) {
    D.store(Dd);
    if (weight == nullptr) {
      for (std::size_t k = 0; k < W; ++k) Dd[k] *= static_cast<double>(beta);
    }
  }
  const DB gd(static_cast<double>(g));
  const DB a(q.a);
  for (std::size_t h = 0; h < W; h += WD) {
    const DB S_ = DB::load_aligned(Sd + h);
    const DB ey_ = DB::load_aligned(eyd + h);
    const DB R_ = DB::load_aligned(Rd + h);
    const DB gam = q.gamma_at(h);
    const auto d = DB(2.0) * ey_ > S_;
    const DB sd = xsimd::select(d, ey_ + R_, S_);
    const DB gs = gd / sd;
    xsimd::select(d, R_ / ey_, DB::load_aligned(ud + h)).store_aligned(ud + h);
    sd.store_aligned(Sd + h);
    xsimd::select(d, DB(1.0), DB(0.0)).store_aligned(dom + h);
    (gs * (a + gam)).store_aligned(scale_d + h);
    // g·((a − β_y)·e_y − (β_y + γ)·R)/S; with β = 0 exactly the unsmoothed g·(−γ·R)/S.
    (gs * (q.a_minus_beta_y_at(h) * ey_ - (q.beta_y_at(h) + gam) * xsimd::select(d, R_, S_ - ey_)))
        .store_aligned(dzy_d + h);
  }
  detail::xent_tile_terms(Sd, ud, dom, count, q.a, smooth ? Dd : nullptr,
                          q.weighted ? q.gamma : nullptr, q.gamma0, XentTerms::Label::softmax,
                          terms);
  if (dz == nullptr) return false;
  const B sb = narrow_lanes<T, A>(scale_d);
  const B yb = narrow_lanes<T, A>(dzy_d);
  // Two loops, not a choice per row (which made GCC copy the rows through memcpy).
  if (weight == nullptr) {
    const B gbb(g * beta);
    for (std::size_t r = 0; r < n; ++r)
      e[r] = xsimd::select(y == B(static_cast<T>(r)), yb, xsimd::fms(sb, e[r], gbb));
  } else {
    for (std::size_t r = 0; r < n; ++r) {
      e[r] = xsimd::select(y == B(static_cast<T>(r)), yb, xsimd::fms(sb, e[r], B(g * q.beta[r])));
    }
  }
  store_tile(e, n, count, dz, dzs);
  // One test for the tile: true where a lane's scale or label element is past the largest T or
  // NaN, and the caller must repair it (detail::xent_tile_gradient_repair).
  const B big(std::numeric_limits<T>::max());
  return !(xsimd::all(xsimd::abs(sb) <= big) && xsimd::all(xsimd::abs(yb) <= big));
}

/// StableMax cross-entropy of `count` ≤ W consecutive columns, the cross-column twin of
/// stablemax_xent_hard_terms for hard labels, target q_j = β_j + γ_k·[j = y_k]
/// (detail::TileTarget; the layout and the contract of softmax_xent_hard_tile). One lane holds
/// one column: s(z) with the fast reciprocal, S and R = Σ_{j≠y} s_j (and Σ β_j·log s_j with
/// smoothing) in double, the label's s_y and z_y, then the per-column finish in double lanes
/// (the same dominant-label branch, the label's element g·r_y·((a − β_y)·s_y − (β_y + γ)·R)/S).
/// Only the order of the double sums differs from the per-column kernel.
template <class T, class A = default_arch>
bool stablemax_xent_hard_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count,
                              const std::int64_t* labels, const T* weight, T beta, T gamma, T g,
                              T* dz, std::size_t dzs, XentTerms* terms) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t WD = DB::size;
  const ColumnTile<T, A> tile(z, zs, n, count);
  const B y = detail::tile_labels<T, A>(labels, count);
  const bool smooth = beta != T(0);
  const detail::TileTarget<T, A> q(labels, count, n, weight, beta, gamma);
  B s[tile_rows];
  B sy(T(0));
  B zy(T(0));
  LaneSums<T, A> S, R, L;  // L: Σ log s_j, or Σ β_j·log s_j with weights; only with smoothing
  for (std::size_t r = 0; r < n; ++r) {
    const B x = tile.row(r);
    const auto is_y = y == B(static_cast<T>(r));
    zy = xsimd::select(is_y, x, zy);
    s[r] = detail::stablemax_s_fast(x);
    sy = xsimd::select(is_y, s[r], sy);
    S.add(s[r]);
    R.add(xsimd::select(is_y, B(T(0)), s[r]));
    if (smooth) {
      const B l = xsimd::log1p(xsimd::abs(x));
      const B ls = xsimd::select(x >= B(T(0)), l, -l);
      L.add(weight != nullptr ? B(q.beta[r]) * ls : ls);
    }
  }
  alignas(64) double Sd[W], syd[W], ud[W], Rd[W], Ld[W], dom[W], scale_d[W], dzy_d[W];
  S.store(Sd);
  R.store(Rd);
  if (smooth) {
    L.store(Ld);
    if (weight == nullptr) {
      for (std::size_t k = 0; k < W; ++k) Ld[k] *= static_cast<double>(beta);
    }
  }
  widen_lanes(sy, syd);
  widen_lanes(zy, ud);
  const DB gd(static_cast<double>(g));
  const DB a(q.a);
  for (std::size_t h = 0; h < W; h += WD) {
    const DB S_ = DB::load_aligned(Sd + h);
    const DB sy_ = DB::load_aligned(syd + h);
    const DB R_ = DB::load_aligned(Rd + h);
    const DB zy_ = DB::load_aligned(ud + h);
    const DB gam = q.gamma_at(h);
    const auto d = DB(2.0) * sy_ > S_;
    xsimd::select(d, R_ / sy_, zy_).store_aligned(ud + h);
    xsimd::select(d, DB(1.0), DB(0.0)).store_aligned(dom + h);
    (gd * (a + gam) / S_).store_aligned(scale_d + h);
    const DB ry = DB(1.0) / (DB(1.0) + xsimd::abs(zy_));
    const DB rs = xsimd::select(zy_ >= DB(0.0), DB(1.0), ry * ry);  // r_y·s_y
    // With β = 0 exactly the unsmoothed g·(−γ·r_y·R)/S.
    (gd *
     (q.a_minus_beta_y_at(h) * rs - (q.beta_y_at(h) + gam) * ry * xsimd::select(d, R_, S_ - sy_)) /
     S_)
        .store_aligned(dzy_d + h);
  }
  detail::xent_tile_terms(Sd, ud, dom, count, q.a, smooth ? Ld : nullptr,
                          q.weighted ? q.gamma : nullptr, q.gamma0, XentTerms::Label::stablemax,
                          terms);
  if (dz == nullptr) return false;
  const B sb = narrow_lanes<T, A>(scale_d);
  const B yb = narrow_lanes<T, A>(dzy_d);
  const B one(T(1));
  const B gbb(g * beta);
  // s·r = min(s, 1)², as in the per-column kernel; minus g·β_j·r with smoothing. One loop per
  // case, not a choice per row (which made GCC copy the rows through memcpy).
  if (!smooth) {
    for (std::size_t r = 0; r < n; ++r) {
      const B v = xsimd::min(s[r], one);
      s[r] = xsimd::select(y == B(static_cast<T>(r)), yb, sb * v * v);
    }
  } else if (weight == nullptr) {
    for (std::size_t r = 0; r < n; ++r) {
      const B v = xsimd::min(s[r], one);
      const B x = xsimd::fms(sb * v, v, gbb * (one / (one + xsimd::abs(tile.row(r)))));
      s[r] = xsimd::select(y == B(static_cast<T>(r)), yb, x);
    }
  } else {
    for (std::size_t r = 0; r < n; ++r) {
      const B v = xsimd::min(s[r], one);
      const B x = xsimd::fms(sb * v, v, B(g * q.beta[r]) * (one / (one + xsimd::abs(tile.row(r)))));
      s[r] = xsimd::select(y == B(static_cast<T>(r)), yb, x);
    }
  }
  store_tile(s, n, count, dz, dzs);
  // One test for the tile: true where a lane's scale or label element is past the largest T or
  // NaN, and the caller must repair it (detail::xent_tile_gradient_repair).
  const B big(std::numeric_limits<T>::max());
  return !(xsimd::all(xsimd::abs(sb) <= big) && xsimd::all(xsimd::abs(yb) <= big));
}

/// The cross-column kernel of normalizer Norm (softmax_xent_hard_tile or
/// stablemax_xent_hard_tile).
template <Normalizer Norm, class T, class A = default_arch>
REGULA_ALWAYS_INLINE bool xent_hard_tile(const T* z, std::size_t zs, std::size_t n,
                                         std::size_t count, const std::int64_t* labels,
                                         const T* weight, T beta, T gamma, T g, T* dz,
                                         std::size_t dzs, XentTerms* terms) noexcept {
  if constexpr (Norm == Normalizer::softmax) {
    return softmax_xent_hard_tile<T, A>(z, zs, n, count, labels, weight, beta, gamma, g, dz, dzs,
                                        terms);
  } else {
    return stablemax_xent_hard_tile<T, A>(z, zs, n, count, labels, weight, beta, gamma, g, dz, dzs,
                                          terms);
  }
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

/// q_c for class i, with the hard-label term, in double.
template <class T>
REGULA_ALWAYS_INLINE double xent_q_full(const XentTarget<T>& t, std::size_t i, T hard) noexcept {
  double q = static_cast<double>(xent_q(t, i));
  if (t.label >= 0 && i == static_cast<std::size_t>(t.label)) q += static_cast<double>(hard);
  return q;
}

/// The complement sums over every class but the dominant one k, in double: R = Σ_{j≠k} s_j,
/// A = Σ_{j≠k} q_j and L = Σ_{j≠k} q_j·log s_j (s_j from `s`, log s_j from `log_s`).
struct XentComplement {
  double R = 0.0;
  double A = 0.0;
  double L = 0.0;
};

template <class T, class SOf, class LogSOf>
XentComplement xent_complement(std::size_t n, std::size_t k, const XentTarget<T>& t, T hard,
                               SOf&& s, LogSOf&& log_s) noexcept {
  XentComplement c;
  for (std::size_t j = 0; j < n; ++j) {
    if (j == k) continue;
    const double q = xent_q_full(t, j, hard);
    c.R += s(j);
    c.A += q;
    if (q != 0.0) c.L += q * log_s(j);
  }
  return c;
}

/// The first index of the column's maximum m.
template <class T>
std::size_t index_of(const T* z, std::size_t n, T m) noexcept {
  std::size_t k = 0;
  while (k + 1 < n && !(z[k] == m)) ++k;
  return k;
}

}  // namespace detail

/// Softmax cross-entropy of one column with any target (weights, soft targets, smoothing).
/// Returns ℓ = −Σ q log p; writes g·(A·p − q) to dz when dz is not null (no overlap with z).
/// When the column's maximum k holds more than half of S, its element and the loss are formed
/// from the complement sums over j ≠ k (XentComplement): ℓ = A_{¬k}·log S − Σ_{j≠k} q_j·d_j +
/// q_k·log1p(R), dz_k = g·(A_{¬k} − q_k·R)/S, with d = z − m, e_k = 1 and S = 1 + R.
template <class T, class A = default_arch>
double softmax_xent(const T* z, std::size_t n, const XentTarget<T>& t, T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const B mb(m);
  // S in double: with soft targets the gradient A·p − q may cancel, so p must carry no more
  // than its own rounding.
  DoubleAccumulator<T, A> sacc;
  DoubleAccumulator<T, A> qacc;
  DoubleAccumulator<T, A> dacc;
  std::size_t i = 0;
  // z − m overflows to −inf for a column spanning more than the largest finite T; clamped, its
  // exp is still 0 and a zero q·d stays 0 instead of NaN.
  const B lowest(std::numeric_limits<T>::lowest());
  const B ninf(-std::numeric_limits<T>::infinity());
  for (; i + W <= n; i += W) {
    const B d0 = B::load_unaligned(z + i) - mb;
    const B d = xsimd::select(d0 == ninf, lowest, d0);  // NaN stays NaN
    const B e = exp_batch(d);
    if (dz != nullptr) e.store_unaligned(dz + i);
    sacc.add(e);
    const B q = detail::xent_q<T, A>(t, i);
    qacc.add(q);
    dacc.add(q * d);
  }
  double S = sacc.sum();
  double a = qacc.sum();
  double qd = dacc.sum();
  for (; i < n; ++i) {
    const T d0 = z[i] - m;
    const T d = d0 == -std::numeric_limits<T>::infinity() ? std::numeric_limits<T>::lowest() : d0;
    const T e = std::exp(d);
    if (dz != nullptr) dz[i] = e;
    S += static_cast<double>(e);
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
  // e_k = 1 for the maximum k: it dominates when S < 2.
  const bool dominant = S < 2.0;
  std::size_t k = 0;
  detail::XentComplement c;
  double Sd = S;
  double loss;
  if (dominant) {
    k = detail::index_of(z, n, m);
    const double md = static_cast<double>(m);
    c = detail::xent_complement(
        n, k, t, hw, [&](std::size_t j) { return std::exp(static_cast<double>(z[j]) - md); },
        [&](std::size_t j) { return static_cast<double>(z[j]) - md; });
    Sd = 1.0 + c.R;
    const double log_S = std::log1p(c.R);
    loss = c.A * log_S - c.L + detail::xent_q_full(t, k, hw) * log_S;
  } else {
    loss = a * std::log(Sd) - qd;
  }
  if (dz != nullptr) {
    const T scale = static_cast<T>(static_cast<double>(g) * a / Sd);
    const B sb(scale);
    const B gb(g);
    for (i = 0; i + W <= n; i += W) {
      xsimd::fms(sb, B::load_unaligned(dz + i), gb * detail::xent_q<T, A>(t, i))
          .store_unaligned(dz + i);
    }
    for (; i < n; ++i) dz[i] = scale * dz[i] - g * detail::xent_q(t, i);
    if (t.label >= 0) dz[static_cast<std::size_t>(t.label)] -= g * hw;
    if (dominant) {
      const double qk = detail::xent_q_full(t, k, hw);
      dz[k] = static_cast<T>(static_cast<double>(g) * (c.A - qk * c.R) / Sd);
    }
  }
  return loss;
}

/// StableMax cross-entropy of one column with any target (see softmax_xent).
/// Writes g·r ⊙ (A·π − q) to dz when dz is not null (no overlap with z). When the largest s_k
/// holds more than half of S: ℓ = A_{¬k}·log S − Σ_{j≠k} q_j·log s_j + q_k·log1p(R/s_k) and
/// dz_k = g·r_k·(A_{¬k}·s_k − q_k·R)/S.
template <class T, class A = default_arch>
double stablemax_xent(const T* z, std::size_t n, const XentTarget<T>& t, T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  // For double logits S and A are summed with compensation: the gradient's two terms are built
  // from them and may agree to many digits (soft targets).
  using Acc = std::conditional_t<std::is_same_v<T, double>, CompensatedAccumulator<A>,
                                 DoubleAccumulator<T, A>>;
  Acc sacc;
  Acc qacc;
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
  const T m = column_max<T, A>(z, n);
  const double sk = stablemax_s(static_cast<double>(m));
  const bool dominant = 2.0 * sk > S;
  std::size_t k = 0;
  detail::XentComplement c;
  double loss;
  if (dominant) {
    k = detail::index_of(z, n, m);
    c = detail::xent_complement(
        n, k, t, hw, [&](std::size_t j) { return static_cast<double>(stablemax_s(z[j])); },
        [&](std::size_t j) { return stablemax_log_s(static_cast<double>(z[j])); });
    loss = c.A * std::log(S) - c.L + detail::xent_q_full(t, k, hw) * std::log1p(c.R / sk);
  } else {
    loss = a * std::log(S) - ql;
  }
  if (dz != nullptr) {
    // g·(a·s_j·r_j/S − q_j·r_j) in double lanes, rounded once to T: with soft targets the two
    // terms may agree to many digits, and in float their own roundings would be all that is left.
    using DB = xsimd::batch<double, A>;
    constexpr std::size_t WD = DB::size;
    const double gd = static_cast<double>(g);
    if (!std::isfinite(gd * a / S)) {
      // S tiny (every logit near the lowest double): g·A/S overflows where each s_j/S ≤ 1 does
      // not, and would meet r_j·s_j = 0. The gradient from the definitions, in long double.
      xent_column_reference<Normalizer::stablemax, T, long double>(z, n, t, g, dz);
      return loss;
    }
    const DB sb(gd * a / S);
    const DB gb(gd);
    const DB oned(1.0);
    const DB beta(static_cast<double>(t.beta));
    const DB alpha(static_cast<double>(t.alpha));
    for (i = 0; i + WD <= n; i += WD) {
      const DB x = DB::load_unaligned(z + i);
      const DB r = oned / (oned + xsimd::abs(x));
      const DB sr = xsimd::select(x >= DB(0.0), oned, r * r);
      DB q = beta;
      if (t.soft != nullptr) q = xsimd::fma(alpha, DB::load_unaligned(t.soft + i), q);
      if (t.weight != nullptr) q *= DB::load_unaligned(t.weight + i);
      xsimd::fms(sb, sr, gb * q * r).store_unaligned(dz + i);
    }
    for (; i < n; ++i) {
      const double x = static_cast<double>(z[i]);
      const double r = stablemax_r(x);
      const double sr = x >= 0.0 ? 1.0 : r * r;
      double q = static_cast<double>(t.beta);
      if (t.soft != nullptr) q += static_cast<double>(t.alpha) * static_cast<double>(t.soft[i]);
      if (t.weight != nullptr) q *= static_cast<double>(t.weight[i]);
      dz[i] = static_cast<T>(gd * a / S * sr - gd * q * r);
    }
    if (t.label >= 0) {
      const auto y = static_cast<std::size_t>(t.label);
      dz[y] = static_cast<T>(static_cast<double>(dz[y]) -
                             gd * static_cast<double>(hw) * stablemax_r(static_cast<double>(z[y])));
    }
    if (dominant) {
      const double qk = detail::xent_q_full(t, k, hw);
      const double md = static_cast<double>(m);
      const double rk = stablemax_r(md);
      const double rs = md >= 0.0 ? 1.0 : rk * rk;  // r_k·s_k
      dz[k] = static_cast<T>(static_cast<double>(g) * (c.A * rs - qk * rk * c.R) / S);
    }
  }
  return loss;
}

/// Scalar reference of xent_column, wholly in double, from the definitions:
/// ℓ = Σ_j q_j·log(S/s_j) and dz_j = g·r_j·((A − q_j)·π_j − q_j·(1 − π_j)), where
/// 1 − π_j = Σ_{i≠j} s_i / S is summed directly for the largest s_j (the one element whose
/// 1 − π_j can be small) and formed as a difference for the others. W is the working type:
/// long double makes it xent_column's fallback where double's range does not suffice.
template <Normalizer Norm, class T, class W>
double xent_column_reference(const T* z, std::size_t n, const XentTarget<T>& t, T g,
                             T* dz) noexcept {
  constexpr bool soft = Norm == Normalizer::softmax;
  W m = -std::numeric_limits<W>::infinity();
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<W>(z[i]) > m) {
      m = static_cast<W>(z[i]);
      k = i;
    }
  }
  auto s_of = [&](std::size_t i) {
    const W x = static_cast<W>(z[i]);
    return soft ? std::exp(x - m) : stablemax_s(x);
  };
  auto log_s_of = [&](std::size_t i) {
    const W x = static_cast<W>(z[i]);
    return soft ? x - m : stablemax_log_s(x);
  };
  auto q_of = [&](std::size_t i) {
    W q = static_cast<W>(t.beta);
    if (t.soft != nullptr) q += static_cast<W>(t.alpha) * static_cast<W>(t.soft[i]);
    if (t.weight != nullptr) q *= static_cast<W>(t.weight[i]);
    if (t.label >= 0 && i == static_cast<std::size_t>(t.label)) {
      const W w = t.weight != nullptr ? static_cast<W>(t.weight[i]) : W(1);
      q += w * static_cast<W>(t.gamma);
    }
    return q;
  };
  W R = 0;  // Σ_{i≠k} s_i
  W a = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != k) R += s_of(i);
    a += q_of(i);
  }
  const W sk = s_of(k);
  const W S = sk + R;
  const W log_S = std::log(S);
  W loss = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const W q = q_of(i);
    if (q == W(0)) continue;
    loss += q * (i == k ? std::log1p(R / sk) : log_S - log_s_of(i));
  }
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const W si = s_of(i);
      const W p = si / S;
      const W rest = i == k ? R / S : W(1) - p;  // 1 − π_i
      const W r = soft ? W(1) : stablemax_r(static_cast<W>(z[i]));
      const W q = q_of(i);
      dz[i] = static_cast<T>(static_cast<W>(g) * r * ((a - q) * p - q * rest));
    }
  }
  return static_cast<double>(loss);
}

namespace detail {

/// Whether every logit, target, weight and coefficient of a column is finite.
template <class T>
bool xent_inputs_finite(const T* z, std::size_t n, const XentTarget<T>& t) noexcept {
  if (!std::isfinite(t.alpha) || !std::isfinite(t.beta) || !std::isfinite(t.gamma)) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(z[i])) return false;
    if (t.soft != nullptr && !std::isfinite(t.soft[i])) return false;
    if (t.weight != nullptr && !std::isfinite(t.weight[i])) return false;
  }
  return true;
}

/// The gradient of each of `count` columns (label_of(k), skipped where it is ignore_index) whose
/// gradient from a tile is not finite with finite logits (g·A/S past the largest T: class weights
/// near it, or a StableMax S that is subnormal, every logit near the lowest T) from the general
/// per-column kernel, which forms it from the definitions in long double there; the lane's loss
/// terms stay the tile's. The driver calls it once per call, after the parallel sum, and only
/// where a tile reported a scale or label element past the largest T: called from the tile, or
/// from the driver's chunk loop, it cost the 10-class cross-entropy about 15% at 512 × 10
/// (AVX-512) although it never ran.
template <Normalizer Norm, class T, class A, class LabelOf>
REGULA_NOINLINE void xent_tile_gradient_repair(const T* z, std::size_t zs, std::size_t n,
                                               std::size_t count, LabelOf&& label_of,
                                               std::int64_t ignore_index, const T* weight, T beta,
                                               T gamma, T g, T* dz, std::size_t dzs) noexcept {
  for (std::size_t k = 0; k < count; ++k) {
    const std::int64_t label = label_of(k);
    if (label == ignore_index) continue;
    T* dk = dz + k * dzs;
    bool done = true;
    for (std::size_t r = 0; r < n; ++r) done = done && std::isfinite(dk[r]);
    if (done) continue;
    const T* zk = z + k * zs;
    XentTarget<T> t;
    t.weight = weight;
    t.label = label;
    t.beta = beta;
    t.gamma = gamma;
    if (!xent_inputs_finite(zk, n, t)) continue;  // NaN in, NaN out: the tile's result stands
    if constexpr (Norm == Normalizer::softmax) {
      softmax_xent<T, A>(zk, n, t, g, dk);
    } else {
      stablemax_xent<T, A>(zk, n, t, g, dk);
    }
  }
}

}  // namespace detail

/// A column's loss l from the SIMD kernels, or, where l is not finite although every input is
/// (a column spanning more than T's range, a StableMax sum past the largest double, products of
/// targets and logits that overflow), the column again from the definitions in long double,
/// whose wider range holds those intermediate values: its loss and gradient (into dz) rounded
/// once. One test per column on the common path.
template <Normalizer Norm, class T>
REGULA_ALWAYS_INLINE double xent_column_repair(double l, const T* z, std::size_t n,
                                               const XentTarget<T>& t, T g, T* dz) noexcept {
  if (std::isfinite(l) || !detail::xent_inputs_finite(z, n, t)) return l;
  return xent_column_reference<Norm, T, long double>(z, n, t, g, dz);
}

/// The per-column cross-entropy of normalizer Norm with any target, dispatching to the fast
/// kernel when the target is a hard label without weights or soft targets (xent_column_repair
/// for columns whose result is not finite).
template <Normalizer Norm, class T, class A = default_arch>
REGULA_ALWAYS_INLINE double xent_column(const T* z, std::size_t n, const XentTarget<T>& t, T g,
                                        T* dz) noexcept {
  double l;
  if (t.weight == nullptr && t.soft == nullptr && t.label >= 0) {
    const auto y = static_cast<std::size_t>(t.label);
    if constexpr (Norm == Normalizer::softmax) {
      l = softmax_xent_hard<T, A>(z, n, y, t.beta, t.gamma, g, dz);
    } else {
      l = stablemax_xent_hard<T, A>(z, n, y, t.beta, t.gamma, g, dz);
    }
  } else if constexpr (Norm == Normalizer::softmax) {
    l = softmax_xent<T, A>(z, n, t, g, dz);
  } else {
    l = stablemax_xent<T, A>(z, n, t, g, dz);
  }
  return xent_column_repair<Norm>(l, z, n, t, g, dz);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_CROSS_ENTROPY_HPP
