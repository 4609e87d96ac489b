/// @file
/// Raw-pointer knowledge-distillation kernels over one column: student logits z and teacher
/// logits v of n classes, at inverse temperature κ = 1/T. Each returns the column's divergence D
/// (in double, without the T² factor or any reduction) and, when `dz` is not null, writes
/// gs·∂D/∂z, where gs is the caller's gradient scale (reduction and T² factor).
///
/// Numerics: every log-probability is a shifted logit minus a log-sum-exp, never the log of a
/// probability, so logits of any finite magnitude (±1e4 in float) give finite values, and
/// probabilities that underflow to 0 contribute 0·finite = 0 (the convention 0·log 0 = 0).
/// Sums over classes run in SIMD lanes of T; the loss is assembled in double. NaN anywhere in
/// a column gives NaN loss and gradient for that column.
///
/// Every kernel is SIMD over xsimd batches of T and has a scalar `_reference` twin that the
/// tests compare against. kd_kl, reverse_kl and dkd fuse the two exponentials of student and
/// teacher into one pass and share the reference's formulas. JS, TV, BinaryKL and BinaryKL-Norm
/// use formulations chosen for accuracy in float (log1p, expm1, series where two terms would
/// cancel); their references are the plain formulas evaluated in double.
#ifndef REGULA_KERNELS_KD_HPP
#define REGULA_KERNELS_KD_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "regula/core/simd.hpp"
#include "regula/kernels/softmax.hpp"

namespace regula::kernels {

namespace kd_detail {

/// Sum of the lanes of x, pairwise through memory.
template <class T, class A>
REGULA_ALWAYS_INLINE T hsum(const xsimd::batch<T, A>& x) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  x.store_aligned(v);
  for (std::size_t w = W / 2; w > 0; w /= 2) {
    for (std::size_t i = 0; i < w; ++i) v[i] += v[i + w];
  }
  return v[0];
}

/// log(exp(a) + exp(b)) without overflow; NaN if either is NaN.
inline double logaddexp(double a, double b) noexcept {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  const double m = a > b ? a : b;
  if (m == -std::numeric_limits<double>::infinity()) return m;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

/// Column maximum of z with index `skip` left out (skip ≥ n: nothing left out).
template <class T, class A>
REGULA_ALWAYS_INLINE T max_except(const T* z, std::size_t n, std::size_t skip) noexcept {
  if (skip >= n) return column_max<T, A>(z, n);
  const T a = column_max<T, A>(z, skip);
  const T b = column_max<T, A>(z + skip + 1, n - skip - 1);
  return a > b ? a : b;  // a NaN logit still reaches the loss through exp(NaN − m)
}

template <class T>
T max_except_reference(const T* z, std::size_t n, std::size_t skip) noexcept {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip) m = z[i] > m ? z[i] : m;
  }
  return m;
}

/// Accumulators of the fused exponential pass: Σ e, Σ f, Σ w·(y − x), w ∈ {e, f}.
template <class T>
struct ExpSums {
  T sz = T(0);
  T sv = T(0);
  T cross = T(0);
};

/// One fused pass over [lo, hi): x = (z − mz)·kz, y = (v − mv)·kv, e = exp(x), f = exp(y);
/// accumulates Σ e, Σ f and either Σ f·(y − x) (TeacherWeighted) or Σ e·(x − y). Stores e to
/// ez and f to fv when they are not null.
template <class T, class A, bool TeacherWeighted>
REGULA_ALWAYS_INLINE void fused_exp(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz,
                                    T mv, T kz, T kv, T* ez, T* fv, ExpSums<T>& acc) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B mzb(mz), mvb(mv), kzb(kz), kvb(kv);
  B sz(T(0)), sv(T(0)), cr(T(0));
  std::size_t i = lo;
  for (; i + W <= hi; i += W) {
    const B x = (B::load_unaligned(z + i) - mzb) * kzb;
    const B y = (B::load_unaligned(v + i) - mvb) * kvb;
    const B e = xsimd::exp(x);
    const B f = xsimd::exp(y);
    if (ez != nullptr) e.store_unaligned(ez + i);
    if (fv != nullptr) f.store_unaligned(fv + i);
    sz += e;
    sv += f;
    if constexpr (TeacherWeighted) {
      cr = xsimd::fma(f, y - x, cr);
    } else {
      cr = xsimd::fma(e, x - y, cr);
    }
  }
  T s_z = hsum(sz), s_v = hsum(sv), c = hsum(cr);
  for (; i < hi; ++i) {
    const T x = (z[i] - mz) * kz;
    const T y = (v[i] - mv) * kv;
    const T e = std::exp(x);
    const T f = std::exp(y);
    if (ez != nullptr) ez[i] = e;
    if (fv != nullptr) fv[i] = f;
    s_z += e;
    s_v += f;
    c += TeacherWeighted ? f * (y - x) : e * (x - y);
  }
  acc.sz += s_z;
  acc.sv += s_v;
  acc.cross += c;
}

template <class T, bool TeacherWeighted>
void fused_exp_reference(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz, T mv, T kz,
                         T kv, T* ez, T* fv, ExpSums<T>& acc) noexcept {
  for (std::size_t i = lo; i < hi; ++i) {
    const T x = (z[i] - mz) * kz;
    const T y = (v[i] - mv) * kv;
    const T e = std::exp(x);
    const T f = std::exp(y);
    if (ez != nullptr) ez[i] = e;
    if (fv != nullptr) fv[i] = f;
    acc.sz += e;
    acc.sv += f;
    acc.cross += TeacherWeighted ? f * (y - x) : e * (x - y);
  }
}

/// dz[i] = c1·ez[i] − c2·f_i over [lo, hi), with f_i read from fv or, when fv is null,
/// recomputed as exp((v − mv)·kv). ez may be dz.
template <class T, class A>
REGULA_ALWAYS_INLINE void combine(const T* ez, const T* fv, const T* v, std::size_t lo,
                                  std::size_t hi, T mv, T kv, T c1, T c2, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B c1b(c1), c2b(c2), mvb(mv), kvb(kv);
  std::size_t i = lo;
  if (fv != nullptr) {
    for (; i + W <= hi; i += W) {
      xsimd::fms(c1b, B::load_unaligned(ez + i), c2b * B::load_unaligned(fv + i)).store_unaligned(dz + i);
    }
    for (; i < hi; ++i) dz[i] = c1 * ez[i] - c2 * fv[i];
  } else {
    for (; i + W <= hi; i += W) {
      const B f = xsimd::exp((B::load_unaligned(v + i) - mvb) * kvb);
      xsimd::fms(c1b, B::load_unaligned(ez + i), c2b * f).store_unaligned(dz + i);
    }
    for (; i < hi; ++i) dz[i] = c1 * ez[i] - c2 * std::exp((v[i] - mv) * kv);
  }
}

}  // namespace kd_detail

/// Hinton KD on one column: D = KL(q ‖ p) = Σ_c q_c (log q_c − log p_c) with
/// p = softmax(kz·z), q = softmax(kv·v); gradient gs·kz·(p − q). `scratch` (n values, may be
/// null) holds the teacher's exponentials between the passes; without it they are recomputed.
/// dz and scratch must not overlap z or v.
template <class T, class A = default_arch>
double kd_kl_column(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                    T* scratch) noexcept {
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  kd_detail::ExpSums<T> acc;
  T* fv = dz != nullptr ? scratch : nullptr;
  kd_detail::fused_exp<T, A, true>(z, v, 0, n, mz, mv, kz, kv, dz, fv, acc);
  const double lsz = std::log(static_cast<double>(acc.sz));
  const double lsv = std::log(static_cast<double>(acc.sv));
  if (dz != nullptr) {
    const T c1 = gs * kz / acc.sz;
    const T c2 = gs * kz / acc.sv;
    kd_detail::combine<T, A>(dz, fv, v, 0, n, mv, kv, c1, c2, dz);
  }
  return static_cast<double>(acc.cross) / static_cast<double>(acc.sv) + lsz - lsv;
}

/// Scalar reference of kd_kl_column.
template <class T>
double kd_kl_column_reference(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                              T* scratch) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  kd_detail::ExpSums<T> acc;
  kd_detail::fused_exp_reference<T, true>(z, v, 0, n, mz, mv, kz, kv, dz, scratch, acc);
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const T f = scratch != nullptr ? scratch[i] : std::exp((v[i] - mv) * kv);
      dz[i] = gs * kz * (dz[i] / acc.sz - f / acc.sv);
    }
  }
  return static_cast<double>(acc.cross) / static_cast<double>(acc.sv) +
         std::log(static_cast<double>(acc.sz)) - std::log(static_cast<double>(acc.sv));
}

/// Reverse KL on one column: D = KL(p ‖ q) = Σ_c p_c (log p_c − log q_c), p = softmax(k·z),
/// q = softmax(k·v); gradient gs·k·p_c·(r_c − D) with r_c = log p_c − log q_c.
template <class T, class A = default_arch>
double reverse_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  kd_detail::ExpSums<T> acc;
  kd_detail::fused_exp<T, A, false>(z, v, 0, n, mz, mv, k, k, dz, nullptr, acc);
  const double lsz = std::log(static_cast<double>(acc.sz));
  const double lsv = std::log(static_cast<double>(acc.sv));
  const double mean_xy = static_cast<double>(acc.cross) / static_cast<double>(acc.sz);
  if (dz != nullptr) {
    // r_c − D = (x_c − y_c) − Σ p (x − y): the log-sum-exp offsets cancel.
    const T c = gs * k / acc.sz;
    const T off = static_cast<T>(mean_xy);
    const B cb(c), offb(off), mzb(mz), mvb(mv), kb(k);
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B d = (B::load_unaligned(z + i) - mzb) * kb - (B::load_unaligned(v + i) - mvb) * kb;
      (cb * B::load_unaligned(dz + i) * (d - offb)).store_unaligned(dz + i);
    }
    for (; i < n; ++i) {
      const T d = (z[i] - mz) * k - (v[i] - mv) * k;
      dz[i] = c * dz[i] * (d - off);
    }
  }
  return mean_xy - lsz + lsv;
}

/// Scalar reference of reverse_kl_column.
template <class T>
double reverse_kl_column_reference(const T* z, const T* v, std::size_t n, T k, T gs,
                                   T* dz) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  kd_detail::ExpSums<T> acc;
  kd_detail::fused_exp_reference<T, false>(z, v, 0, n, mz, mv, k, k, dz, nullptr, acc);
  const double mean_xy = static_cast<double>(acc.cross) / static_cast<double>(acc.sz);
  if (dz != nullptr) {
    const T off = static_cast<T>(mean_xy);
    for (std::size_t i = 0; i < n; ++i) {
      const T d = (z[i] - mz) * k - (v[i] - mv) * k;
      dz[i] = gs * k / acc.sz * dz[i] * (d - off);
    }
  }
  return mean_xy - std::log(static_cast<double>(acc.sz)) + std::log(static_cast<double>(acc.sv));
}

/// The two parts of DKD on one column (each without T² or weights).
struct DkdTerms {
  double tckd = 0.0;  ///< KL((q_t, 1 − q_t) ‖ (p_t, 1 − p_t))
  double nckd = 0.0;  ///< KL(q̂ ‖ p̂) over the non-target classes
};

namespace kd_detail {

/// From the non-target log-sum-exps (relative to the non-target maxima) and the shifted target
/// logits: the DKD terms and p_t − q_t.
inline DkdTerms dkd_assemble(double xt, double yt, double lsz, double lsv, double cross_over_sv,
                             double& pt_minus_qt) noexcept {
  const double lz = logaddexp(xt, lsz);  // log Σ_all exp, same shift
  const double lv = logaddexp(yt, lsv);
  const double lpt = xt - lz, l1pt = lsz - lz;  // log p_t, log(1 − p_t)
  const double lqt = yt - lv, l1qt = lsv - lv;
  const double qt = std::exp(lqt), q1t = std::exp(l1qt);
  DkdTerms r;
  r.tckd = qt * (lqt - lpt) + q1t * (l1qt - l1pt);
  r.nckd = cross_over_sv + lsz - lsv;
  pt_minus_qt = std::exp(lpt) - qt;
  return r;
}

}  // namespace kd_detail

/// Decoupled KD (Zhao et al., CVPR 2022) on one column with target class t < n, n ≥ 2, at
/// inverse temperature k. Returns TCKD and NCKD; writes gs·∂(α·TCKD + β·NCKD)/∂z:
/// gs·k·α·(p_t − q_t) at t and gs·k·(−α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j)) elsewhere.
/// log p_t and log(1 − p_t) come from the log-sum-exp over the non-target classes (the target
/// left out, not masked), so neither underflows for confident students. `scratch` as in
/// kd_kl_column.
template <class T, class A = default_arch>
DkdTerms dkd_column(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha, T beta,
                    T gs, T* dz, T* scratch) noexcept {
  const T mz = kd_detail::max_except<T, A>(z, n, t);
  const T mv = kd_detail::max_except<T, A>(v, n, t);
  kd_detail::ExpSums<T> acc;
  T* fv = dz != nullptr ? scratch : nullptr;
  kd_detail::fused_exp<T, A, true>(z, v, 0, t, mz, mv, k, k, dz, fv, acc);
  kd_detail::fused_exp<T, A, true>(z, v, t + 1, n, mz, mv, k, k, dz, fv, acc);
  double d = 0.0;
  const DkdTerms r = kd_detail::dkd_assemble(
      static_cast<double>((z[t] - mz) * k), static_cast<double>((v[t] - mv) * k),
      std::log(static_cast<double>(acc.sz)), std::log(static_cast<double>(acc.sv)),
      static_cast<double>(acc.cross) / static_cast<double>(acc.sv), d);
  if (dz != nullptr) {
    const T c1 = gs * k * (beta - alpha * static_cast<T>(d)) / acc.sz;
    const T c2 = gs * k * beta / acc.sv;
    kd_detail::combine<T, A>(dz, fv, v, 0, t, mv, k, c1, c2, dz);
    kd_detail::combine<T, A>(dz, fv, v, t + 1, n, mv, k, c1, c2, dz);
    dz[t] = gs * k * alpha * static_cast<T>(d);
  }
  return r;
}

/// Scalar reference of dkd_column.
template <class T>
DkdTerms dkd_column_reference(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha,
                              T beta, T gs, T* dz, T* scratch) noexcept {
  const T mz = kd_detail::max_except_reference(z, n, t);
  const T mv = kd_detail::max_except_reference(v, n, t);
  kd_detail::ExpSums<T> acc;
  kd_detail::fused_exp_reference<T, true>(z, v, 0, t, mz, mv, k, k, dz, scratch, acc);
  kd_detail::fused_exp_reference<T, true>(z, v, t + 1, n, mz, mv, k, k, dz, scratch, acc);
  double d = 0.0;
  const DkdTerms r = kd_detail::dkd_assemble(
      static_cast<double>((z[t] - mz) * k), static_cast<double>((v[t] - mv) * k),
      std::log(static_cast<double>(acc.sz)), std::log(static_cast<double>(acc.sv)),
      static_cast<double>(acc.cross) / static_cast<double>(acc.sv), d);
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      if (i == t) continue;
      const T f = scratch != nullptr ? scratch[i] : std::exp((v[i] - mv) * k);
      const T ph = dz[i] / acc.sz, qh = f / acc.sv;
      dz[i] = gs * k * (-alpha * static_cast<T>(d) * ph + beta * (ph - qh));
    }
    dz[t] = gs * k * alpha * static_cast<T>(d);
  }
  return r;
}

namespace kd_detail {

/// The first m values at p as a batch (all W when m ≥ W), the other lanes set to `pad`.
template <class B, class T>
REGULA_ALWAYS_INLINE B load_n(const T* p, std::size_t m, T pad) noexcept {
  constexpr std::size_t W = B::size;
  if (m >= W) return B::load_unaligned(p);
  alignas(64) T buf[W];
  for (std::size_t l = 0; l < W; ++l) buf[l] = l < m ? p[l] : pad;
  return B::load_aligned(buf);
}

/// Stores the first m lanes of x (all W when m ≥ W) to p.
template <class B, class T>
REGULA_ALWAYS_INLINE void store_n(T* p, std::size_t m, const B& x) noexcept {
  constexpr std::size_t W = B::size;
  if (m >= W) {
    x.store_unaligned(p);
    return;
  }
  alignas(64) T buf[W];
  x.store_aligned(buf);
  for (std::size_t l = 0; l < m; ++l) p[l] = buf[l];
}

/// x with the lanes from m on set to 0 (x itself when m ≥ W).
template <class B>
REGULA_ALWAYS_INLINE B keep_first(const B& x, std::size_t m) noexcept {
  using T = typename B::value_type;
  constexpr std::size_t W = B::size;
  if (m >= W) return x;
  alignas(64) T idx[W];
  for (std::size_t l = 0; l < W; ++l) idx[l] = static_cast<T>(l);
  return xsimd::select(B::load_aligned(idx) < B(static_cast<T>(m)), x, B(T(0)));
}

/// Σ exp(x) and Σ exp(y) over n values, x = (z − mz)·k, y = (v − mv)·k; stores exp(x) to ez
/// and exp(y) to fv when they are not null.
template <class T, class A>
REGULA_ALWAYS_INLINE void exp_sums(const T* z, const T* v, std::size_t n, T mz, T mv, T k, T* ez,
                                   T* fv, T& sz_out, T& sv_out) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B mzb(mz), mvb(mv), kb(k);
  B sz(T(0)), sv(T(0));
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp((B::load_unaligned(z + i) - mzb) * kb);
    const B f = xsimd::exp((B::load_unaligned(v + i) - mvb) * kb);
    if (ez != nullptr) e.store_unaligned(ez + i);
    if (fv != nullptr) f.store_unaligned(fv + i);
    sz += e;
    sv += f;
  }
  T s_z = hsum(sz), s_v = hsum(sv);
  for (; i < n; ++i) {
    const T e = std::exp((z[i] - mz) * k);
    const T f = std::exp((v[i] - mv) * k);
    if (ez != nullptr) ez[i] = e;
    if (fv != nullptr) fv[i] = f;
    s_z += e;
    s_v += f;
  }
  sz_out = s_z;
  sv_out = s_v;
}

/// The driver of the two-distribution kernels (JS, TV): p = softmax(k·z), q = softmax(k·v),
/// D = Σ_c ℓ_c and gradient gs·k·p_c·(g_c − ⟨p, g⟩), where `elem(p, q, d, ℓ, g)` computes ℓ and
/// g for a batch of classes from p, q and d = log p − log q (from the logits, finite when p or
/// q underflows). Three passes over the column: (1) the exponentials and their sums (student's
/// kept in dz, teacher's in scratch); (2) ℓ, g and ⟨p, g⟩, p·g kept in scratch (in dz without
/// scratch); (3) the gradient. Without dz the exponentials are recomputed in pass 2, without
/// scratch the teacher's in pass 2 and the student's in pass 3. No allocation.
template <class T, class A, class Elem>
REGULA_ALWAYS_INLINE double pq_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz,
                                      T* scratch, Elem&& elem) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  T* fv = dz != nullptr ? scratch : nullptr;
  T sz = T(0), sv = T(0);
  exp_sums<T, A>(z, v, n, mz, mv, k, dz, fv, sz, sv);
  const T isz = T(1) / sz, isv = T(1) / sv;
  const T dl = static_cast<T>(std::log(static_cast<double>(sz)) - std::log(static_cast<double>(sv)));
  const B mzb(mz), mvb(mv), kb(k), iszb(isz), isvb(isv), dlb(dl), mzvb(mz - mv);
  T* pg = fv != nullptr ? fv : dz;  // where p·g goes between passes 2 and 3 (null: loss only)
  B lacc(T(0)), dacc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B zi = load_n<B>(z + i, m, mz), vi = load_n<B>(v + i, m, mv);
    const B e = dz != nullptr ? load_n<B>(dz + i, m, T(0)) : xsimd::exp((zi - mzb) * kb);
    const B f = fv != nullptr ? load_n<B>(fv + i, m, T(0)) : xsimd::exp((vi - mvb) * kb);
    const B p = e * iszb;
    B l, g;
    // d from the logits' difference: exact-ish where z ≈ v (the maxima are close then too).
    elem(p, f * isvb, xsimd::fms((zi - vi) - mzvb, kb, dlb), l, g);
    const B pgv = keep_first(p * g, m);
    lacc += keep_first(l, m);
    dacc += pgv;
    if (pg != nullptr) store_n(pg + i, m, pgv);
  }
  if (dz != nullptr) {
    const T c1 = gs * k, c2 = gs * k * hsum(dacc) * isz;
    // gs·k·(p·g − ⟨p, g⟩·p): p·g is in fv with the exponentials in dz, or in dz with the
    // exponentials recomputed from z; c2 carries the 1/sz that turns them into p.
    if (fv != nullptr) {
      combine<T, A>(fv, dz, z, 0, n, mz, k, c1, c2, dz);
    } else {
      combine<T, A>(dz, nullptr, z, 0, n, mz, k, c1, c2, dz);
    }
  }
  return static_cast<double>(hsum(lacc));
}

}  // namespace kd_detail

/// Jensen–Shannon on one column: D = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, p = softmax(k·z),
/// q = softmax(k·v); gradient gs·k·p_c·(g_c − ⟨p, g⟩), g_c = ½ log(p_c/m_c).
///
/// SIMD in T, everything per class from d = log p − log q = k(z − v − max z + max v) − (log Σ e^x
/// − log Σ e^y) (accurate where z ≈ v) and ρ = min(p, q)/max(p, q) = e^{−|d|} = 1 + expm1(−|d|):
/// with |r| = |p − q|/(p + q) = (1 − ρ)/(1 + ρ), the class's term is ¼(p + q)·h(|r|),
/// h(r) = (1+r)log(1+r) + (1−r)log(1−r) = 2(ln 2 − log(1 + ρ)) − (1 − |r|)·|d|, by its series
/// r² + r⁴/6 + r⁶/15 + … for small |r| (no cancellation when p ≈ q). The gradient uses
/// g_c − ½ln 2 = −½(max(−d, 0) + log(1 + ρ)) (the constant cancels in g − ⟨p, g⟩ and would cost
/// float accuracy where p ≫ q), finite when p or q underflows. `scratch` (n values, may be null)
/// keeps the teacher's exponentials between passes; dz and scratch must not overlap z or v.
template <class T, class A = default_arch>
double js_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept {
  using B = xsimd::batch<T, A>;
  // Below this |r| the series (through r¹²) is exact to the type's precision.
  const B series_below(std::is_same_v<T, float> ? T(0.25) : T(0.0625));
  const B one(T(1)), two(T(2)), zero(T(0)), ln2(T(0.69314718055994530942));
  return kd_detail::pq_column<T, A>(
      z, v, n, k, gs, dz, scratch, [&](const B& p, const B& q, const B& d, B& l, B& g) noexcept {
        const B ad = xsimd::abs(d);
        const B em = xsimd::expm1(-ad);  // ρ − 1
        const B i2 = one / (two + em);   // 1/(1 + ρ)
        const B ra = -em * i2;           // |r|
        const B om = two * (one + em) * i2;  // 1 − |r|
        const B t = xsimd::log(two + em);    // log(1 + ρ)
        const B u = ra * ra;
        const B poly = xsimd::fma(
            xsimd::fma(xsimd::fma(xsimd::fma(xsimd::fma(u, B(T(1) / T(66)), B(T(1) / T(45))), u,
                                             B(T(1) / T(28))),
                                  u, B(T(1) / T(15))),
                       u, B(T(1) / T(6))),
            u, one);
        const B h = xsimd::select(ra < series_below, u * poly, xsimd::fms(two, ln2 - t, om * ad));
        l = T(0.25) * (p + q) * h;
        g = T(-0.5) * (xsimd::max(-d, zero) + t);
      });
}

/// Scalar reference of js_column, per element in double (probabilities from log-sum-exp,
/// log m_c = logaddexp(log p_c, log q_c) − ln 2).
template <class T>
double js_column_reference(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  double sz = 0.0, sv = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sz += std::exp(static_cast<double>((z[i] - mz) * k));
    sv += std::exp(static_cast<double>((v[i] - mv) * k));
  }
  const double lsz = std::log(sz), lsv = std::log(sv);
  const double ln2 = 0.69314718055994530942;
  double loss = 0.0, dot = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double lp = static_cast<double>((z[i] - mz) * k) - lsz;
    const double lq = static_cast<double>((v[i] - mv) * k) - lsv;
    const double lm = kd_detail::logaddexp(lp, lq) - ln2;
    const double p = std::exp(lp), q = std::exp(lq);
    loss += 0.5 * (p * (lp - lm) + q * (lq - lm));
    const double g = 0.5 * (lp - lm);
    dot += p * g;
    if (dz != nullptr) dz[i] = static_cast<T>(g);
  }
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const double p = std::exp(static_cast<double>((z[i] - mz) * k) - lsz);
      dz[i] = static_cast<T>(static_cast<double>(gs * k) * p * (static_cast<double>(dz[i]) - dot));
    }
  }
  return loss;
}

/// Total variation on one column: D = ½ Σ_c |p_c − q_c|; (sub)gradient gs·k·p_c·(s_c − ⟨p, s⟩)
/// with s_c = ½·sign(p_c − q_c), sign(0) = 0. SIMD in T. With P₊, P₋, P₀ the student's mass
/// where p > q, p < q, p = q (they sum to 1): s_c − ⟨p, s⟩ = P₋ + ½P₀, −(P₊ + ½P₀) or ½(P₋ − P₊)
/// for s_c = ½, −½, 0, which avoids the cancellation of ½ − ⟨p, s⟩ when p concentrates where
/// p > q. `scratch` as in js_column.
template <class T, class A = default_arch>
double tv_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  T* fv = dz != nullptr ? scratch : nullptr;
  T sz = T(0), sv = T(0);
  kd_detail::exp_sums<T, A>(z, v, n, mz, mv, k, dz, fv, sz, sv);
  const B mzb(mz), mvb(mv), kb(k), iszb(T(1) / sz), isvb(T(1) / sv), zero(T(0));
  const auto exps = [&](std::size_t i, std::size_t m, B& e, B& f) noexcept {
    e = dz != nullptr ? kd_detail::load_n<B>(dz + i, m, T(0))
                      : xsimd::exp((kd_detail::load_n<B>(z + i, m, mz) - mzb) * kb);
    f = fv != nullptr ? kd_detail::load_n<B>(fv + i, m, T(0))
                      : xsimd::exp((kd_detail::load_n<B>(v + i, m, mv) - mvb) * kb);
  };
  B lacc(T(0)), pos(T(0)), neg(T(0)), tie(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    B e, f;
    exps(i, m, e, f);
    const B p = kd_detail::keep_first(e * iszb, m);
    const B diff = p - kd_detail::keep_first(f * isvb, m);
    lacc += xsimd::abs(diff);
    pos += xsimd::select(diff > zero, p, zero);
    neg += xsimd::select(diff < zero, p, zero);
    tie += xsimd::select(diff == zero, p, zero);
    tie += diff * T(0);  // a NaN difference makes every coefficient NaN
  }
  if (dz != nullptr) {
    const T pp = kd_detail::hsum(pos), pn = kd_detail::hsum(neg), p0 = kd_detail::hsum(tie);
    const B cpos(pn + T(0.5) * p0), cneg(-(pp + T(0.5) * p0)), czero(T(0.5) * (pn - pp));
    const B c(gs * k);
    for (std::size_t i = 0; i < n; i += W) {
      const std::size_t m = n - i;
      B e, f;
      exps(i, m, e, f);
      const B p = e * iszb;
      const B diff = p - f * isvb;
      const B coef = xsimd::select(diff > zero, cpos, xsimd::select(diff < zero, cneg, czero + diff * T(0)));
      kd_detail::store_n(dz + i, m, B(c * p * coef));
    }
  }
  return 0.5 * static_cast<double>(kd_detail::hsum(lacc));
}

/// Scalar reference of tv_column, per element in double.
template <class T>
double tv_column_reference(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  double sz = 0.0, sv = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sz += std::exp(static_cast<double>((z[i] - mz) * k));
    sv += std::exp(static_cast<double>((v[i] - mv) * k));
  }
  const double lsz = std::log(sz), lsv = std::log(sv);
  double loss = 0.0, dot = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double p = std::exp(static_cast<double>((z[i] - mz) * k) - lsz);
    const double q = std::exp(static_cast<double>((v[i] - mv) * k) - lsv);
    const double diff = p - q;
    loss += 0.5 * std::abs(diff);
    const double s = diff > 0.0 ? 0.5 : (diff < 0.0 ? -0.5 : (std::isnan(diff) ? diff : 0.0));
    dot += p * s;
    if (dz != nullptr) dz[i] = static_cast<T>(s);
  }
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const double p = std::exp(static_cast<double>((z[i] - mz) * k) - lsz);
      dz[i] = static_cast<T>(static_cast<double>(gs * k) * p * (static_cast<double>(dz[i]) - dot));
    }
  }
  return loss;
}

/// Squared logit distance on one column: D = Σ_c (z_c − v_c)², gradient gs·2(z − v).
template <class T, class A = default_arch>
double logit_mse_column(const T* z, const T* v, std::size_t n, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B g2(gs * T(2));
  B acc(T(0));
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B d = B::load_unaligned(z + i) - B::load_unaligned(v + i);
    acc = xsimd::fma(d, d, acc);
    if (dz != nullptr) (g2 * d).store_unaligned(dz + i);
  }
  double s = static_cast<double>(kd_detail::hsum(acc));
  for (; i < n; ++i) {
    const T d = z[i] - v[i];
    s += static_cast<double>(d * d);
    if (dz != nullptr) dz[i] = gs * T(2) * d;
  }
  return s;
}

namespace kd_detail {

/// One batch of BinaryKL: ℓ = KL(Bern(σ(b)) ‖ Bern(σ(a))) and g = σ(a) − σ(b).
///
/// ℓ is unchanged and g changes sign under (a, b) → (−a, −b), so the lanes are first turned to
/// b ≤ 0 (σ(b) ≤ ½). Where then |δ| ≤ 16 and b ≥ −64 (almost always), with δ = a − b and
/// u = σ(b)·expm1(δ) (so that 1 + e^a = (1 + e^b)(1 + u)): g = (1 − σ(b))·u/(1 + u) and
/// ℓ = log1p(u) − σ(b)·δ, which is the Bernoulli cumulant series Σ_{m≥2} κ_m δ^m/m! (κ₂ = σ(1−σ),
/// …), summed through δ⁷ for small |δ| where the two terms would cancel. Elsewhere the direct
/// ℓ = σ(b)(b − a) + softplus(a) − softplus(b), g = σ(a) − σ(b) (stable forms), which has no
/// cancellation to fear there; it is only evaluated for batches that have such a lane.
template <class B>
REGULA_ALWAYS_INLINE void binary_kl_batch(const B& a, const B& b, B& l, B& g) noexcept {
  using T = typename B::value_type;
  const B one(T(1)), zero(T(0));
  const auto flip = b > zero;
  const B bs = xsimd::select(flip, -b, b);
  const B delta = xsimd::select(flip, -a, a) - bs;
  const B ad = xsimd::abs(delta);
  const auto fast = (ad <= B(T(16))) && (bs >= B(T(-64)));
  const B eb = xsimd::exp(-bs);
  const B sb = one / (one + eb);  // σ(b) ≤ ½
  const B sbc = eb * sb;          // 1 − σ(b) ≥ ½
  const B u = sb * xsimd::expm1(delta);
  const B w = one + u;
  const B iw = one / w;
  const B l1pu = xsimd::log(w) + (u - (w - one)) * iw;  // log1p(u) from the rounded 1 + u
  // Cumulants of Bern(σ): κ₂ = v, κ₃ = v·c, κ₄ = v(1 − 6v), κ₅ = v·c(1 − 12v),
  // κ₆ = v(1 − 30v + 120v²), κ₇ = v·c(1 − 60v + 360v²), v = σ(1 − σ), c = 1 − 2σ.
  const B v = sb * sbc, c = sbc - sb;
  const B k4 = v * xsimd::fnma(B(T(6)), v, one);
  const B k5 = v * c * xsimd::fnma(B(T(12)), v, one);
  const B k6 = v * xsimd::fma(v, xsimd::fma(B(T(120)), v, B(T(-30))), one);
  const B k7 = v * c * xsimd::fma(v, xsimd::fma(B(T(360)), v, B(T(-60))), one);
  B ser = xsimd::fma(delta, k7 * T(1.0 / 5040), k6 * T(1.0 / 720));
  ser = xsimd::fma(delta, ser, k5 * T(1.0 / 120));
  ser = xsimd::fma(delta, ser, k4 * T(1.0 / 24));
  ser = xsimd::fma(delta, ser, v * c * T(1.0 / 6));
  ser = xsimd::fma(delta, ser, v * T(0.5));
  const B series_below(std::is_same_v<T, float> ? T(0.25) : T(1e-3));
  l = xsimd::select(ad < series_below, delta * delta * ser, xsimd::fnma(sb, delta, l1pu));
  const B gf = sbc * u * iw;
  g = xsimd::select(flip, -gf, gf);
  if (xsimd::all(fast)) return;
  const B ea = xsimd::exp(-xsimd::abs(a)), ebb = xsimd::exp(-xsimd::abs(b));
  const B spa = xsimd::max(a, zero) + xsimd::log1p(ea);
  const B spb = xsimd::max(b, zero) + xsimd::log1p(ebb);
  const B ia = one / (one + ea), ib = one / (one + ebb);
  const B sa = xsimd::select(a >= zero, ia, ea * ia);
  const B sbg = xsimd::select(b >= zero, ib, ebb * ib);
  l = xsimd::select(fast, l, sbg * (b - a) + spa - spb);
  g = xsimd::select(fast, g, sa - sbg);
}

}  // namespace kd_detail

/// Binary KL (DHKD's BinaryKL) on one column: D = Σ_c KL(Bern(σ(k·v_c)) ‖ Bern(σ(k·z_c))),
/// gradient gs·k·(σ(k·z) − σ(k·v)); SIMD in T, finite for any finite logits (formulas at
/// kd_detail::binary_kl_batch).
template <class T, class A = default_arch>
double binary_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B kb(k), gkb(gs * k);
  B acc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B a = kd_detail::load_n<B>(z + i, m, T(0)) * kb;
    const B b = kd_detail::load_n<B>(v + i, m, T(0)) * kb;
    B l, g;
    kd_detail::binary_kl_batch(a, b, l, g);
    acc += kd_detail::keep_first(l, m);
    if (dz != nullptr) kd_detail::store_n(dz + i, m, B(gkb * g));
  }
  return static_cast<double>(kd_detail::hsum(acc));
}

/// Scalar reference of binary_kl_column, per element in double: KL = σ(b)(b − a) + softplus(a)
/// − softplus(b) with a = k·z, b = k·v (σ(b)·(softplus(−a) − softplus(−b)) + (1 − σ(b))·
/// (softplus(a) − softplus(b)), simplified).
template <class T>
double binary_kl_column_reference(const T* z, const T* v, std::size_t n, T k, T gs,
                                  T* dz) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(z[i] * k), b = static_cast<double>(v[i] * k);
    const auto softplus = [](double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); };
    const auto sigmoid = [](double x) {
      return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    };
    const double sb = sigmoid(b);
    // (b − a)·σ(b) without 0·inf: a, b are finite for finite logits.
    s += sb * (b - a) + softplus(a) - softplus(b);
    if (dz != nullptr) dz[i] = static_cast<T>(static_cast<double>(gs * k) * (sigmoid(a) - sb));
  }
  return s;
}

/// BinaryKL-Norm (DHKD) on one column: D = Σ_c log cosh(u_c), u = k·(z − v)/2, i.e. DHKD's
/// Bernoulli KL of σ(k·(z − v)) from ½ before its clamp; gradient gs·(k/2)·tanh(u). SIMD in T:
/// with t = expm1(|u|), log cosh u = log1p(t²/(2(1 + t))) and tanh|u| = t(t + 2)/(t(t + 2) + 2),
/// accurate for small u (cosh u − 1 without cancellation); above |u| = 9 (float) or 19 (double)
/// tanh|u| rounds to 1 and log cosh u = |u| − ln 2 to the type's precision. Finite for any u.
template <class T, class A = default_arch>
double binary_kl_norm_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B hb(T(0.5) * k), ghb(gs * T(0.5) * k), one(T(1)), two(T(2)), zero(T(0));
  const B big(std::is_same_v<T, float> ? T(9) : T(19));
  const B ln2(T(0.69314718055994530942));
  B acc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B u = hb * (kd_detail::load_n<B>(z + i, m, T(0)) - kd_detail::load_n<B>(v + i, m, T(0)));
    const B au = xsimd::abs(u);
    const auto large = au > big;  // false for NaN, which then flows through expm1
    const B t = xsimd::expm1(xsimd::select(large, big, au));
    const B w = t * (t + two);  // e^{2|u|} − 1
    const B lc = xsimd::select(large, au - ln2, xsimd::log1p(t * t / (two * (one + t))));
    acc += kd_detail::keep_first(lc, m);
    if (dz != nullptr) {
      const B th = xsimd::select(large, one, w / (w + two));
      kd_detail::store_n(dz + i, m, B(ghb * xsimd::select(u < zero, -th, th)));
    }
  }
  return static_cast<double>(kd_detail::hsum(acc));
}

/// Scalar reference of binary_kl_norm_column, per element in double: |u| + log1p(exp(−2|u|))
/// − ln 2 and tanh(u).
template <class T>
double binary_kl_norm_column_reference(const T* z, const T* v, std::size_t n, T k, T gs,
                                       T* dz) noexcept {
  const double ln2 = 0.69314718055994530942;
  double s = 0.0;
  const double h = 0.5 * static_cast<double>(k);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = h * (static_cast<double>(z[i]) - static_cast<double>(v[i]));
    const double au = std::abs(u);
    s += au + std::log1p(std::exp(-2.0 * au)) - ln2;
    if (dz != nullptr) dz[i] = static_cast<T>(static_cast<double>(gs) * h * std::tanh(u));
  }
  return s;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_KD_HPP
