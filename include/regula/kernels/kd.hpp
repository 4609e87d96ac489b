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
/// The fast kernels (kd_kl, reverse_kl, dkd) fuse the two exponentials of student and teacher
/// into one pass; each has a scalar `_reference` twin with the same formulas that the tests
/// compare against. JS and TV are scalar (they are not on a hot path of the benchmarks).
#ifndef REGULA_KERNELS_KD_HPP
#define REGULA_KERNELS_KD_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

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

/// Jensen–Shannon on one column: D = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, p = softmax(k·z),
/// q = softmax(k·v); gradient gs·k·p_c·(g_c − ⟨p, g⟩), g_c = ½(log p_c − log m_c), with
/// log m_c = logaddexp(log p_c, log q_c) − ln 2 (finite when p_c or q_c underflows).
template <class T>
double js_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
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
/// with s_c = ½·sign(p_c − q_c), sign(0) = 0.
template <class T>
double tv_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
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

/// Binary KL (DHKD's BinaryKL) on one column: D = Σ_c KL(Bern(σ(k·v_c)) ‖ Bern(σ(k·z_c))),
/// gradient gs·k·(σ(k·z) − σ(k·v)). Computed as
/// KL = σ(b)(b − a) + softplus(a) − softplus(b) with a = k·z, b = k·v (σ(b)·(softplus(−a) −
/// softplus(−b)) + (1 − σ(b))(softplus(a) − softplus(b)), simplified), finite for any logits.
template <class T>
double binary_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
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
/// Bernoulli KL of σ(k·(z − v)) from ½ before its clamp; gradient gs·(k/2)·tanh(u). Computed as
/// |u| + log1p(exp(−2|u|)) − ln 2, finite for any u.
template <class T>
double binary_kl_norm_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
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
