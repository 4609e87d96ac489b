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
/// tests compare against. kd_kl, reverse_kl, dkd and TV first run the direct form (the two
/// exponentials of student and teacher in one fused pass) and keep it when its rounding
/// estimate is small against the result (detail::direct_is_accurate, float only); otherwise
/// (teacher ≈ student, confident columns whose top classes agree, double) they recompute the
/// column without cancellation from u = log(q/p) + const formed from the logits' difference:
/// e = exp(x), e^u, t = expm1(u) and the tails φ(u) = t − u, ψ(u) = u·e^u − t by their series
/// (detail::kl_batch), so that each divergence is a sum of non-negative terms and p − q,
/// r − D come without subtracting nearly equal numbers. Their references share the formulas.
/// JS, BinaryKL and BinaryKL-Norm use formulations chosen for accuracy in float (log1p, expm1,
/// series where two terms would cancel); their references are the plain formulas in double.
/// tests/accuracy/test_kd.cpp measures every element against long double.
///
/// Every column kernel and its reference test their result (one std::isfinite per column); a
/// column whose result is not finite although its inputs are (logits spanning past the largest
/// finite T, where z − max z, v − z or k·z overflow and 0·inf forms) is recomputed by a scalar
/// long-double fallback, the same for the kernel and its reference (detail::*_wide, see
/// "The wide fallback" below).
#ifndef REGULA_KERNELS_KD_HPP
#define REGULA_KERNELS_KD_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "regula/core/simd.hpp"
#include "regula/kernels/exp_log.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/kernels/tile.hpp"

namespace regula::kernels {

namespace detail {

/// log(exp(a) + exp(b)) without overflow; NaN if either is NaN.
inline double logaddexp(double a, double b) noexcept {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  const double m = a > b ? a : b;
  if (m == -std::numeric_limits<double>::infinity()) return m;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// ---------------------------------------------------------------------------------------------
// The wide fallback of columns whose logits span past the largest finite T.
//
// A column holding, say, 1.8e308 and −1.8e308 (double) or 3.4e38 and −3.4e38 (float) has
// differences z − max z, v − z or k·(z − v) beyond the largest T: the kernels' T arithmetic
// turns them into ±inf and then forms 0·inf or inf − inf. Each column kernel tests its result
// (one std::isfinite per column; reverse_kl also its gradient's sum); only where it is not
// finite and every input of the column is finite, the column is recomputed here, scalar, in
// long double, from the T inputs directly, and the loss and gradient are rounded once to T (the
// loss to double). Long double is the x87 80-bit format on x86 (exponent to 1e4932, 64-bit
// significand; IEEE quad on AArch64 Linux): differences of finite doubles or floats, times
// k ≤ 1/temperature_min, and their products by probabilities stay finite there, so the result
// is finite unless the true value overflows (then +inf). Where long double is double (MSVC),
// probability-weighted terms are still skipped where the probability is 0, but results reach
// +inf sooner and a double column whose differences pass the largest double may still give NaN.
// Non-finite input keeps the kernels' own result (NaN in, NaN out).

/// REGULA_KD_COLD: the fallbacks are kept out of line, away from the kernels' code.
#if defined(__GNUC__) || defined(__clang__)
#define REGULA_KD_COLD __attribute__((noinline, cold))
#else
#define REGULA_KD_COLD
#endif

/// The type of the fallback.
using wide = long double;

/// The result d of a kernel on a column whose result is not finite: the wide fallback
/// `wide_fn(z, v, n, args...)` when the column's inputs are all finite, else d. A plain
/// function and arguments by value, so that the kernels' hot code only tests and calls.
template <class R, class T, class F, class... Args>
REGULA_KD_COLD R recompute_wide(const T* z, const T* v, std::size_t n, R d, F wide_fn,
                                Args... args) noexcept {
  return kernels::all_finite(z, v, n) ? static_cast<R>(wide_fn(z, v, n, args...)) : d;
}

/// d where it is finite (the normal path: one test), else recompute_wide.
template <class T, class F, class... Args>
REGULA_ALWAYS_INLINE double finite_or_wide(const T* z, const T* v, std::size_t n, double d,
                                           F wide_fn, Args... args) noexcept {
  if (REGULA_LIKELY(std::isfinite(d))) return d;
  return recompute_wide(z, v, n, d, wide_fn, args...);
}

/// The log-softmax in long double of k·x over one column, index `skip` left out (none by
/// default): log p_i = k·(x_i − m) − lse, m the maximum. The maximum's own term is left out of
/// the sum that lse takes log1p of, so that log p stays accurate where p is near 1.
struct WideLogSoftmax {
  wide m = 0.0L, k = 1.0L, lse = 0.0L;
  template <class T>
  [[nodiscard]] wide operator()(T x) const noexcept {
    return k * (static_cast<wide>(x) - m) - lse;
  }
};

template <class T>
WideLogSoftmax wide_log_softmax(const T* x, std::size_t n, wide k,
                                std::size_t skip = static_cast<std::size_t>(-1)) noexcept {
  std::size_t top = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip && (top == n || x[i] > x[top])) top = i;
  }
  WideLogSoftmax r;
  r.k = k;
  if (top == n) return r;
  r.m = static_cast<wide>(x[top]);
  wide s = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    if (i != skip && i != top) s += std::exp(k * (static_cast<wide>(x[i]) - r.m));
  }
  r.lse = std::log1p(s);
  return r;
}

/// log((e^a + e^b)/2) in long double, for finite a and b (or one −inf): max + log1p(expm1(−d)/2),
/// d = |a − b|, which keeps its accuracy where a ≈ b (log1p(e^{−d}) − log 2 would round e^{−d}
/// to 1 for d below the long-double epsilon and give 0 where the truth is −d/2).
inline wide wide_log_mean_exp(wide a, wide b) noexcept {
  return (a > b ? a : b) + std::log1p(0.5L * std::expm1(-std::fabs(a - b)));
}

/// e^a − e^b in long double without cancellation where a ≈ b: e^a·(−expm1(b − a)) for a ≥ b,
/// else −e^b·(−expm1(a − b)) (exponents ≤ 0, so nothing overflows).
inline wide wide_exp_difference(wide a, wide b) noexcept {
  if (a == b) return 0.0L;
  return a > b ? -std::exp(a) * std::expm1(b - a) : std::exp(b) * std::expm1(a - b);
}

/// ψ(r) = r·e^r − e^r + 1 ≥ 0 in long double, by its series Σ_{m≥2} (m − 1)·r^m/m! where
/// |r| < ½ (there r·e^r and e^r − 1 agree to a factor 1 + r/2 and the direct form cancels).
inline wide wide_kl_tail(wide r) noexcept {
  if (!(std::fabs(r) < 0.5L)) return r * std::exp(r) - std::expm1(r);
  wide sum = 0.0L, power = r;  // power = r^m/m!
  for (int m = 2; m < 32; ++m) {
    power *= r / static_cast<wide>(m);
    const wide term = static_cast<wide>(m - 1) * power;
    sum += term;
    if (std::fabs(term) <= std::numeric_limits<wide>::epsilon() * 0.25L * std::fabs(sum)) break;
  }
  return sum;
}

/// KL(a ‖ b) = Σ_i a_i·(log a_i − log b_i) over columns x (of a) and y (of b) given their wide
/// log-softmaxes la, lb, as Σ_i [a_i·r_i − a_i + b_i] (r = log a − log b; the added terms sum
/// to 0): every term is ≥ 0, and b_i·ψ(r_i) by the series where a ≈ b, so that the divergence
/// keeps its relative accuracy there rather than the rounding of Σ a·log a. A class with a_i = 0
/// adds b_i.
template <class T>
wide wide_kl(const WideLogSoftmax& la, const T* x, const WideLogSoftmax& lb, const T* y,
             std::size_t n) noexcept {
  wide d = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const wide lai = la(x[i]), lbi = lb(y[i]), r = lai - lbi;
    const wide a = std::exp(lai), b = std::exp(lbi);
    if (std::fabs(r) < 0.5L) {
      d += b * wide_kl_tail(r);
    } else if (a > 0.0L) {
      d += a * r - a + b;
    } else {
      d += b;
    }
  }
  return d;
}

/// kd_kl_column's fallback (kz ≠ kv allowed): KL(q ‖ p) = Σ q·(log q − log p), at least 0,
/// and gs·kz·(p − q) in dz when not null. Also logit_std_kd's wide path (its kz, kv in long
/// double).
template <class T>
REGULA_KD_COLD double kd_kl_wide(const T* z, const T* v, std::size_t n, wide kz, wide kv, wide gs,
                                 T* dz) noexcept {
  const WideLogSoftmax lp = wide_log_softmax(z, n, kz), lq = wide_log_softmax(v, n, kv);
  const wide d = wide_kl(lq, v, lp, z, n);
  if (dz != nullptr) {
    const wide c = gs * kz;
    for (std::size_t i = 0; i < n; ++i) {
      dz[i] = static_cast<T>(c * (std::exp(lp(z[i])) - std::exp(lq(v[i]))));
    }
  }
  return static_cast<double>(d < 0.0L ? 0.0L : d);  // NaN stays NaN
}

/// reverse_kl_column's fallback: D = KL(p ‖ q) = Σ p·r, r = log p − log q, at least 0, and
/// gs·k·p·(r − D) in dz when not null.
template <class T>
REGULA_KD_COLD double reverse_kl_wide(const T* z, const T* v, std::size_t n, wide k, wide gs,
                                      T* dz) noexcept {
  const WideLogSoftmax lp = wide_log_softmax(z, n, k), lq = wide_log_softmax(v, n, k);
  const wide d = wide_kl(lp, z, lq, v, n);
  if (dz != nullptr) {
    const wide c = gs * k;
    for (std::size_t i = 0; i < n; ++i) {
      const wide p = std::exp(lp(z[i]));
      dz[i] = p > 0.0L ? static_cast<T>(c * p * ((lp(z[i]) - lq(v[i])) - d)) : T(0);
    }
  }
  return static_cast<double>(d < 0.0L ? 0.0L : d);  // NaN stays NaN
}

/// js_column's fallback: D = Σ ½(p·(log p − log m) + q·(log q − log m)), m = (p + q)/2, at
/// least 0, and gs·k·p·(g − ⟨p, g⟩), g = ½(log p − log m), in dz when not null.
template <class T>
REGULA_KD_COLD double js_wide(const T* z, const T* v, std::size_t n, wide k, wide gs,
                              T* dz) noexcept {
  const WideLogSoftmax lp = wide_log_softmax(z, n, k), lq = wide_log_softmax(v, n, k);
  wide d = 0.0L, dot = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const wide a = lp(z[i]), b = lq(v[i]), lm = wide_log_mean_exp(a, b);
    const wide p = std::exp(a), q = std::exp(b);
    if (p > 0.0L) {
      d += 0.5L * p * (a - lm);
      dot += 0.5L * p * (a - lm);
    }
    if (q > 0.0L) d += 0.5L * q * (b - lm);
  }
  if (dz != nullptr) {
    const wide c = gs * k;
    for (std::size_t i = 0; i < n; ++i) {
      const wide a = lp(z[i]), lm = wide_log_mean_exp(a, lq(v[i]));
      const wide p = std::exp(a);
      dz[i] = p > 0.0L ? static_cast<T>(c * p * (0.5L * (a - lm) - dot)) : T(0);
    }
  }
  return static_cast<double>(d < 0.0L ? 0.0L : d);  // NaN stays NaN
}

/// tv_column's fallback: D = ½ Σ |p − q| and gs·k·p·(s − ⟨p, s⟩), s = ½·sign(p − q), in dz
/// when not null.
template <class T>
REGULA_KD_COLD double tv_wide(const T* z, const T* v, std::size_t n, wide k, wide gs,
                              T* dz) noexcept {
  const WideLogSoftmax lp = wide_log_softmax(z, n, k), lq = wide_log_softmax(v, n, k);
  const auto sign = [](wide x) { return x > 0.0L ? 0.5L : (x < 0.0L ? -0.5L : 0.0L); };
  wide d = 0.0L, dot = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const wide p = std::exp(lp(z[i])), diff = wide_exp_difference(lp(z[i]), lq(v[i]));
    d += 0.5L * std::fabs(diff);
    dot += p * sign(diff);
  }
  if (dz != nullptr) {
    const wide c = gs * k;
    for (std::size_t i = 0; i < n; ++i) {
      const wide p = std::exp(lp(z[i]));
      dz[i] = static_cast<T>(c * p * (sign(wide_exp_difference(lp(z[i]), lq(v[i]))) - dot));
    }
  }
  return static_cast<double>(d);
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
      xsimd::fms(c1b, B::load_unaligned(ez + i), c2b * B::load_unaligned(fv + i))
          .store_unaligned(dz + i);
    }
    for (; i < hi; ++i) dz[i] = c1 * ez[i] - c2 * fv[i];
  } else {
    for (; i + W <= hi; i += W) {
      const B f = exp_batch((B::load_unaligned(v + i) - mvb) * kvb);
      xsimd::fms(c1b, B::load_unaligned(ez + i), c2b * f).store_unaligned(dz + i);
    }
    for (; i < hi; ++i) dz[i] = c1 * ez[i] - c2 * std::exp((v[i] - mv) * kv);
  }
}

/// The tails of expm1, log1p and (1 + x)·log1p(x) in F (double, or long double in the wide
/// fallback), each a series where the direct form would cancel: expm1(x) − x, x − log1p(x) and
/// (1 + x)·log1p(x) − x (all ≥ 0, ~x²/2).
template <class F>
F expm1_tail(F x) noexcept {
  if (std::abs(x) < F(0.0625)) {
    // Σ_{n≥2} x^n/n!, through x^11 (the next term is below 1e-17 of the sum).
    F s = F(1.0 / 39916800.0);
    for (double c : {1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
                     1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5}) {
      s = s * x + F(c);
    }
    return x * x * s;
  }
  return std::expm1(x) - x;
}

template <class F>
F log1p_tail(F x) noexcept {
  if (std::abs(x) < F(0.01)) {
    // Σ_{n≥2} (−1)^n x^n/n, through x^10.
    F s = F(1.0 / 10.0);
    for (double c :
         {-1.0 / 9.0, 1.0 / 8.0, -1.0 / 7.0, 1.0 / 6.0, -1.0 / 5.0, 1.0 / 4.0, -1.0 / 3.0, 0.5}) {
      s = s * x + F(c);
    }
    return x * x * s;
  }
  return x - std::log1p(x);
}

template <class F>
F xlog1p_tail(F x) noexcept {
  if (std::abs(x) < F(0.01)) {
    // Σ_{n≥2} (−1)^n x^n/(n(n − 1)), through x^10.
    F s = F(1.0 / 90.0);
    for (double c : {-1.0 / 72.0, 1.0 / 56.0, -1.0 / 42.0, 1.0 / 30.0, -1.0 / 20.0, 1.0 / 12.0,
                     -1.0 / 6.0, 0.5}) {
      s = s * x + F(c);
    }
    return x * x * s;
  }
  return (F(1) + x) * std::log1p(x) - x;
}

/// KL(Bern(σ(b)) ‖ Bern(σ(b + δ))) in F (double, or long double in the wide fallback), and
/// g = σ(b + δ) − σ(b). Both are unchanged (g changes sign) under (b, δ) → (−b, −δ), so b is
/// first turned ≤ 0, s = σ(b) ≤ ½. For |δ| ≤ 1, with w = s·expm1(δ) (so that
/// 1 + e^{b+δ} = (1 + e^b)(1 + w)): KL = log1p(w) − s·δ = s·(expm1(δ) − δ) − (w − log1p(w)),
/// whose two tails are ~sδ²/2 and ~s²δ²/2 (no cancellation for s ≤ ½), and
/// g = (1 − s)·w/(1 + w). For |δ| > 1, with a = b + δ and r = σ(a):
/// KL = s·ℓ₁ + (1 − s)·ℓ₂, ℓ₁ = log(s/r) = sp(−a) − sp(−b), ℓ₂ = log((1 − s)/(1 − r)) =
/// sp(a) − sp(b) (sp = softplus, each difference formed without subtracting large numbers:
/// ℓ₁ = ℓ₂ − δ where a ≤ 0, |ℓ₂| ≤ |δ|/2 there); ℓ₁ and ℓ₂ have opposite signs, but for
/// |δ| > 1 the result is at least about a third of the larger term, and no term overflows or
/// forms 0·inf for finite b and δ (the form s(b − a) + sp(a) − sp(b) cancels terms of the size
/// of |a| where σ(b) ≈ 1 and a is huge, and forms s·δ = 0·inf where δ overflows).
template <class F>
F bernoulli_kl(F b, F delta, F& g) noexcept {
  if (std::isnan(b) || std::isnan(delta)) {
    g = b + delta;
    return g;
  }
  const bool flip = b > F(0);
  const F bs = flip ? -b : b, ds = flip ? -delta : delta;
  const F eb = std::exp(bs);
  const F s = eb / (F(1) + eb), sc = F(1) / (F(1) + eb);
  F l, gf;
  if (std::abs(ds) <= F(1)) {
    const F w = s * std::expm1(ds);
    l = s * expm1_tail(ds) - log1p_tail(w);
    gf = sc * w / (F(1) + w);
  } else {
    const F a = bs + ds;  // ≤ ds where ds > 0 (finite); may round to −inf where ds < 0
    const F ea = std::exp(-std::abs(a));
    const F la = std::log1p(ea), lb = std::log1p(eb);  // log1p(e^{−|a|}), sp(b) (b ≤ 0)
    F l1, l2;
    if (a <= F(0)) {
      l2 = la - lb;
      l1 = l2 - ds;
    } else {
      l2 = (a + la) - lb;
      l1 = (la + bs) - lb;
    }
    l = s * l1 + sc * l2;
    gf = (a >= F(0) ? F(1) / (F(1) + ea) : ea / (F(1) + ea)) - s;
  }
  g = flip ? -gf : gf;
  return l < F(0) ? F(0) : l;
}

/// Accumulators of the direct (fast) pass: Σ e, Σ f, Σ w·y and Σ w·x, w ∈ {e, f} (so that
/// Σ w·(y − x) = wy − wx and, x and y being ≤ 0, |wy| + |wx| bounds Σ w·|y − x|), and for
/// reverse KL Σ e·(u − u_ref).
template <class T>
struct ExpSums {
  T sz = T(0);
  T sv = T(0);
  T wy = T(0);
  T wx = T(0);
  T r = T(0);
  /// Σ w·(y − x) over Σ w and the size of its terms, for direct_is_accurate.
  [[nodiscard]] double cross(double sw) const noexcept {
    return (static_cast<double>(wy) - static_cast<double>(wx)) / sw;
  }
  [[nodiscard]] double mag(double sw) const noexcept {
    return (std::abs(static_cast<double>(wy)) + std::abs(static_cast<double>(wx))) / sw;
  }
};

/// Where the maxima of a column are this far apart (k·|mv − mz|, in units of the exponent),
/// the divergence passes form u from the two shifted logits instead of their difference
/// (kl_joint): about the exponent range of T, beyond which e = exp(k·(z − mz)) is 0.
template <class T>
inline constexpr T kl_joint_span = std::is_same_v<T, float> ? T(128) : T(1024);

/// Whether a divergence pass forms u = y − x jointly, as k·((v − z) − (mv − mz)): exact where
/// v ≈ z and the maxima are close (the cancellation-free path's regime), but each of its two
/// differences rounds by ε·|mv − mz| where the maxima are far apart, which swamps u (and a
/// loss near |u|) once k·|mv − mz| passes kl_joint_span. There, and where kz ≠ kv, u is formed
/// split, k_v·(v − mv) − k_z·(z − mz), whose roundings are ε·k·|z − mz| ≤ ε·kl_joint_span at
/// every class with e > 0. False for NaN maxima (the NaN then flows through either form).
template <class T>
REGULA_ALWAYS_INLINE bool kl_joint(T mz, T mv, T kz, T kv) noexcept {
  return kz == kv && std::abs(mv - mz) * kz <= kl_joint_span<T>;
}

/// The reference class ρ of reverse KL's gradient sum Σ e·(u − u_ρ) (the student's top class,
/// z_ρ = mz): u_c − u_ρ = k·((v_c − z_c) − d) with d = v_ρ − z_ρ (joint, as kl_joint), or
/// k·(v_c − v_ρ) − k·(z_c − mz) where k·|d| passes kl_joint_span.
template <class T>
struct KlRef {
  T d = T(0);         ///< v_ρ − z_ρ
  T v = T(0);         ///< v_ρ
  bool joint = true;  ///< the joint form (see kl_joint)
};

/// The KlRef of class `top` of a column (the student's top class), for temperature factor k.
template <class T>
KlRef<T> kl_ref(const T* z, const T* v, std::size_t top, T k) noexcept {
  KlRef<T> r;
  r.v = v[top];
  r.d = v[top] - z[top];
  r.joint = std::abs(r.d) * k <= kl_joint_span<T>;  // as kl_joint; false for NaN
  return r;
}

/// u = y − x of a batch or scalar zi, vi given x = kz·(zi − mz), formed as kl_joint decides.
template <class B, class T>
REGULA_ALWAYS_INLINE B kl_u(const B& zi, const B& vi, const B& x, T mz, T mv, T kz, T kv,
                            bool joint) noexcept {
  if (joint) return ((vi - zi) - B(mv - mz)) * B(kz);
  if constexpr (std::is_same_v<B, T>) {
    return (vi - mv) * kv - x;
  } else {
    return xsimd::fms(vi - B(mv), B(kv), x);
  }
}

/// u_c − u_ρ of a batch or scalar zi, vi given x = k·(zi − mz), in the form `joint` names
/// (ref.joint, or that value as a constant; see KlRef).
template <class B, class T>
REGULA_ALWAYS_INLINE B kl_du(const B& zi, const B& vi, const B& x, const KlRef<T>& ref, T k,
                             bool joint) noexcept {
  if (joint) return ((vi - zi) - B(ref.d)) * B(k);
  if constexpr (std::is_same_v<B, T>) {
    return (vi - ref.v) * k - x;
  } else {
    return xsimd::fms(vi - B(ref.v), B(k), x);
  }
}

/// The direct pass over [lo, hi): x = (z − mz)·kz, y = (v − mv)·kv, e = exp(x), f = exp(y);
/// accumulates Σ e, Σ f, Σ w·y, Σ w·x with w = f (TeacherWeighted) or e. Stores e to ez and f
/// to fv when they are not null.
template <class T, class A, bool TeacherWeighted>
REGULA_ALWAYS_INLINE void fused_exp(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz,
                                    T mv, T kz, T kv, T* ez, T* fv, ExpSums<T>& acc) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B mzb(mz), mvb(mv), kzb(kz), kvb(kv);
  B sz(T(0)), sv(T(0)), ay(T(0)), ax(T(0));
  std::size_t i = lo;
  for (; i + W <= hi; i += W) {
    const B zi = B::load_unaligned(z + i), vi = B::load_unaligned(v + i);
    const B x = (zi - mzb) * kzb;
    const B y = (vi - mvb) * kvb;
    const B e = exp_batch(x);
    const B f = exp_batch(y);
    if (ez != nullptr) e.store_unaligned(ez + i);
    if (fv != nullptr) f.store_unaligned(fv + i);
    sz += e;
    sv += f;
    const B w = TeacherWeighted ? f : e;
    ay = xsimd::fma(w, y, ay);
    ax = xsimd::fma(w, x, ax);
  }
  T s_z = hsum(sz), s_v = hsum(sv), a_y = hsum(ay), a_x = hsum(ax);
  for (; i < hi; ++i) {
    const T x = (z[i] - mz) * kz;
    const T y = (v[i] - mv) * kv;
    const T e = std::exp(x);
    const T f = std::exp(y);
    if (ez != nullptr) ez[i] = e;
    if (fv != nullptr) fv[i] = f;
    s_z += e;
    s_v += f;
    const T w = TeacherWeighted ? f : e;
    a_y += w * y;
    a_x += w * x;
  }
  acc.sz += s_z;
  acc.sv += s_v;
  acc.wy += a_y;
  acc.wx += a_x;
}

/// Scalar twin of fused_exp; with Ref also Σ e·(u − u_ρ) (see KlRef) into acc.r.
template <class T, bool TeacherWeighted, bool Ref = false>
void fused_exp_reference(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz, T mv, T kz,
                         T kv, T* ez, T* fv, ExpSums<T>& acc, const KlRef<T>& ref = {}) noexcept {
  for (std::size_t i = lo; i < hi; ++i) {
    const T x = (z[i] - mz) * kz;
    const T y = (v[i] - mv) * kv;
    const T e = std::exp(x);
    const T f = std::exp(y);
    if (ez != nullptr) ez[i] = e;
    if (fv != nullptr) fv[i] = f;
    acc.sz += e;
    acc.sv += f;
    const T w = TeacherWeighted ? f : e;
    acc.wy += w * y;
    acc.wx += w * x;
    if (Ref) acc.r += e * kl_du(z[i], v[i], x, ref, kz, ref.joint);
  }
}

/// direct_is_accurate for sums of n terms that run in `lanes` SIMD lanes (1: serially, as in
/// the cross-column kernels, where one lane holds one column).
template <class T>
inline bool direct_is_accurate_in(double d, double mag, std::size_t n, std::size_t lanes) noexcept {
  if constexpr (std::is_same_v<T, double>) return false;
  // 256·d ≥ (√(n/lanes) + 4)·mag without the square root (per column, it is not free).
  const double r = 256.0 * d - 4.0 * mag;
  return r >= 0.0 && r * r >= static_cast<double>(n) / static_cast<double>(lanes) * mag * mag;
}

/// Whether a divergence d computed by the direct pass from terms of total size `mag` (the
/// weighted Σ|y − x| over the weights' sum, plus 2 for the two log-sum-exps) is accurate: its
/// rounding, estimated as (√(n/W) + 4) roundings of T over mag for sums in W lanes, at most
/// 256 roundings of d (3e-5·d in float). Fails for NaN. Where it fails (nearly equal
/// distributions, confident columns whose top classes agree) the kernels take their
/// cancellation-free path. Double always takes that path: the direct form's 256-rounding
/// budget is not what double is asked for, and a loss that switches between two forms, each
/// accurate to its own budget, is not smooth enough for finite differences at 1e-6.
template <class T, class A>
inline bool direct_is_accurate(double d, double mag, std::size_t n) noexcept {
  return direct_is_accurate_in<T>(d, mag, n, xsimd::batch<T, A>::size);
}

/// What a divergence pass accumulates per element besides its sums (see kl_batch).
enum class KlTerm : std::uint8_t { none, expm1_tail, xexp_tail };

/// Accumulators of kl_pass, sums over the classes of one column slice.
template <class T>
struct KlSums {
  T s = T(0);  ///< Σ e_c
  T w = T(0);  ///< Σ e_c·t_c, t = expm1(u)
  T f = T(0);  ///< Σ e_c·e^{u_c}
  T h = T(0);  ///< Σ e_c·φ(u_c) or Σ e_c·ψ(u_c)
  T r = T(0);  ///< Σ e_c·(u_c − u_ref) (expm1_tail only)
};

/// The index of the first value == x among z[0..n) (0 if none, e.g. x NaN), SIMD with early
/// exit: where the column maximum sits.
template <class T, class A>
REGULA_ALWAYS_INLINE std::size_t find_first(const T* z, std::size_t n, T x) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B xb(x);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    if (xsimd::any(B::load_unaligned(z + i) == xb)) break;
  }
  for (; i < n; ++i) {
    if (z[i] == x) return i;
  }
  return 0;
}

/// Below this |u| the pass takes φ(u) = e^u − 1 − u from its series (through u^8 in float,
/// u^17 in double: exact to the type's precision) and t = u + φ; above it t = e^u − 1 and
/// φ = t − u, which lose at most a factor 8 (float) or 5 (double) to cancellation.
template <class T>
inline constexpr T kl_series_below = std::is_same_v<T, float> ? T(0.25) : T(0.5);

/// 1/n! for n = 2..17, the coefficients of φ(u)/u² in double.
inline constexpr double kl_inv_factorial[16] = {1.0 / 2,
                                                1.0 / 6,
                                                1.0 / 24,
                                                1.0 / 120,
                                                1.0 / 720,
                                                1.0 / 5040,
                                                1.0 / 40320,
                                                1.0 / 362880,
                                                1.0 / 3628800,
                                                1.0 / 39916800,
                                                1.0 / 479001600,
                                                1.0 / 6227020800,
                                                1.0 / 87178291200,
                                                1.0 / 1307674368000,
                                                1.0 / 20922789888000,
                                                1.0 / 355687428096000};

/// Where the gradient's p − q = p·(M − t)/(1 + M) = p·((1 + M) − e^u)/(1 + M) switches from
/// the first form (|u| below: t and M are small near equality) to the second (above: e^u is
/// accurate where t ≈ −1, and 1 + M is taken from Σ e·e^u where M ≈ −1).
template <class T>
inline constexpr T kl_split = T(0.5);

/// Above this u the pass takes e·e^u = f = exp(y) directly (e^u would overflow for u ≳ 88 in
/// float where e underflows) and e·t = f − e (exact there: f ≥ 8.9e6·e).
template <class T>
inline constexpr T kl_direct_above = T(16);

/// φ(u)/u² = Σ_{n≥2} u^{n−2}/n! of a batch (meant for |u| < kl_series_below).
template <class B>
REGULA_ALWAYS_INLINE B expm1_tail_series(const B& u) noexcept {
  using T = typename B::value_type;
  B s;
  if constexpr (std::is_same_v<T, float>) {
    s = xsimd::fma(u, B(T(1.0 / 40320)), B(T(1.0 / 5040)));
    s = xsimd::fma(u, s, B(T(1.0 / 720)));
    for (T c : {T(1.0 / 120), T(1.0 / 24), T(1.0 / 6), T(0.5)}) s = xsimd::fma(u, s, B(c));
  } else {
    s = B(T(kl_inv_factorial[15]));
    for (int i = 14; i >= 0; --i) s = xsimd::fma(u, s, B(T(kl_inv_factorial[i])));
  }
  return s;
}

/// Scalar twin of expm1_tail_series.
template <class T>
T expm1_tail_series_reference(T u) noexcept {
  T s;
  if constexpr (std::is_same_v<T, float>) {
    s = T(1.0 / 40320) * u + T(1.0 / 5040);
    s = s * u + T(1.0 / 720);
    for (T c : {T(1.0 / 120), T(1.0 / 24), T(1.0 / 6), T(0.5)}) s = s * u + c;
  } else {
    s = T(kl_inv_factorial[15]);
    for (int i = 14; i >= 0; --i) s = s * u + T(kl_inv_factorial[i]);
  }
  return s;
}

/// One batch of the divergence pass at lanes i..i+W of z and v (m of them real): x = kz·(z − mz),
/// u = y − x with y = kv·(v − mv), formed as kl_joint decides (`joint`); e = exp(x), E = e^u,
/// t = expm1(u) (from E, or u + φ(u) by its series for small |u|), w = e·t, f = e·E, and
/// eh = e·φ(u) (expm1_tail) or e·ψ(u), ψ(u) = u·e^u − e^u + 1 = u·t − φ (xexp_tail;
/// 1 + E·(u − 1) for u < −1, where the others would subtract |u| from |u|). Lanes with
/// u > kl_direct_above take f = exp(y). Two exponentials per element. Lanes from m on are zero
/// in e, w, f and eh. With expm1_tail (reverse KL) also er = e·(u − u_ρ) from the logits (see
/// KlRef). `g` receives the value the gradient pass needs: w where |u| < kl_split, f elsewhere.
/// Joint and RefJoint are kl_joint's and ref.joint's values as constants, so that the loops
/// carry no branch on them (kl_pass and kl_combine dispatch once per slice).
template <KlTerm Term, bool Joint, bool RefJoint, class B, class T>
REGULA_ALWAYS_INLINE void kl_batch(const T* z, const T* v, std::size_t m, T mz, T mv, T kz, T kv,
                                   const KlRef<T>& ref, B& e, B& w, B& f, B& eh, B& er,
                                   B& g) noexcept {
  const B zi = load_n<B>(z, m, mz), vi = load_n<B>(v, m, mv);
  const B x = (zi - B(mz)) * B(kz);
  const B u = kl_u(zi, vi, x, mz, mv, kz, kv, Joint);
  const B one(T(1)), big(kl_direct_above<T>);
  const auto direct = u > big;  // false for NaN, which then flows through exp
  e = keep_first(exp_batch(x), m);
  const B E = exp_batch(xsimd::select(direct, big, u));
  const B au = xsimd::abs(u);
  const auto small = au < B(kl_series_below<T>);
  const B ph = u * u * expm1_tail_series(u);
  const B t = xsimd::select(small, u + ph, E - one);
  w = e * t;
  f = e * E;
  if constexpr (Term == KlTerm::expm1_tail) {
    eh = e * xsimd::select(small, ph, t - u);
    er = e * kl_du(zi, vi, x, ref, kz, RefJoint);
  } else if constexpr (Term == KlTerm::xexp_tail) {
    const B large = xsimd::select(u < -one, xsimd::fma(E, u - one, one), xsimd::fma(u, t, u - t));
    eh = e * xsimd::select(small, xsimd::fms(u, t, ph), large);
  }
  if (xsimd::any(direct)) {
    const B fd = keep_first(exp_batch((vi - B(mv)) * B(kv)), m);
    f = xsimd::select(direct, fd, f);
    w = xsimd::select(direct, fd - e, w);
    if constexpr (Term == KlTerm::expm1_tail) {
      eh = xsimd::select(direct, xsimd::fnma(e, u, w), eh);
    } else if constexpr (Term == KlTerm::xexp_tail) {
      eh = xsimd::select(direct, xsimd::fma(u - one, w, e * u), eh);
    }
  }
  g = xsimd::select(au < B(kl_split<T>), w, f);
}

/// kl_pass over [lo, hi) with the forms of u and u − u_ρ fixed.
template <class T, class A, KlTerm Term, bool Joint, bool RefJoint>
REGULA_ALWAYS_INLINE void kl_pass_in(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz,
                                     T mv, T kz, T kv, T* ez, T* gv, KlSums<T>& acc,
                                     const KlRef<T>& ref) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B s(T(0)), sw(T(0)), sf(T(0)), sh(T(0)), sr(T(0));
  for (std::size_t i = lo; i < hi; i += W) {
    const std::size_t m = hi - i;
    B e, w, f, eh(T(0)), er(T(0)), g;
    kl_batch<Term, Joint, RefJoint, B>(z + i, v + i, m, mz, mv, kz, kv, ref, e, w, f, eh, er, g);
    if (ez != nullptr) store_n(ez + i, m, e);
    if (gv != nullptr) store_n(gv + i, m, g);
    s += e;
    sw += w;
    sf += f;
    if constexpr (Term != KlTerm::none) sh += eh;
    if constexpr (Term == KlTerm::expm1_tail) sr += er;
  }
  acc.s += hsum(s);
  acc.w += hsum(sw);
  acc.f += hsum(sf);
  acc.h += hsum(sh);
  acc.r += hsum(sr);
}

/// The divergence pass over [lo, hi): accumulates the sums of kl_batch in SIMD lanes of T;
/// stores e to ez and the gradient's value (w or f) to gv when they are not null. `joint` as
/// kl_joint(mz, mv, kz, kv); `ref` only for expm1_tail.
template <class T, class A, KlTerm Term>
REGULA_ALWAYS_INLINE void kl_pass(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz,
                                  T mv, T kz, T kv, bool joint, T* ez, T* gv, KlSums<T>& acc,
                                  const KlRef<T>& ref = {}) noexcept {
  const bool rj = Term != KlTerm::expm1_tail || ref.joint;
  if (joint && rj) {
    kl_pass_in<T, A, Term, true, true>(z, v, lo, hi, mz, mv, kz, kv, ez, gv, acc, ref);
  } else if (joint) {
    kl_pass_in<T, A, Term, true, false>(z, v, lo, hi, mz, mv, kz, kv, ez, gv, acc, ref);
  } else if (rj) {
    kl_pass_in<T, A, Term, false, true>(z, v, lo, hi, mz, mv, kz, kv, ez, gv, acc, ref);
  } else {
    kl_pass_in<T, A, Term, false, false>(z, v, lo, hi, mz, mv, kz, kv, ez, gv, acc, ref);
  }
}

/// Scalar twin of kl_batch for one element (the same formulas); returns g.
template <class T, KlTerm Term>
T kl_element_reference(T zi, T vi, T mz, T mv, T kz, T kv, bool joint, const KlRef<T>& ref, T& e,
                       T& w, T& f, T& eh, T& er) noexcept {
  const T x = (zi - mz) * kz;
  const T u = kl_u(zi, vi, x, mz, mv, kz, kv, joint);
  const bool direct = u > kl_direct_above<T>;
  e = std::exp(x);
  const T E = std::exp(direct ? kl_direct_above<T> : u);
  const bool small = std::abs(u) < kl_series_below<T>;
  const T ph = u * u * expm1_tail_series_reference(u);
  const T t = small ? u + ph : E - T(1);
  w = e * t;
  f = e * E;
  eh = T(0);
  er = T(0);
  if (Term == KlTerm::expm1_tail) {
    eh = e * (small ? ph : t - u);
    er = e * kl_du(zi, vi, x, ref, kz, ref.joint);
  } else if (Term == KlTerm::xexp_tail) {
    eh = e * (small ? u * t - ph : (u < T(-1) ? T(1) + E * (u - T(1)) : u * t + (u - t)));
  }
  if (direct) {
    f = std::exp((vi - mv) * kv);
    w = f - e;
    eh = Term == KlTerm::expm1_tail ? w - e * u : (u - T(1)) * w + e * u;
  }
  return std::abs(u) < kl_split<T> ? w : f;
}

/// Scalar twin of kl_pass (sums in class order).
template <class T, KlTerm Term>
void kl_pass_reference(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz, T mv, T kz,
                       T kv, bool joint, T* ez, T* gv, KlSums<T>& acc,
                       const KlRef<T>& ref = {}) noexcept {
  for (std::size_t i = lo; i < hi; ++i) {
    T e, w, f, eh, er;
    const T g =
        kl_element_reference<T, Term>(z[i], v[i], mz, mv, kz, kv, joint, ref, e, w, f, eh, er);
    if (ez != nullptr) ez[i] = e;
    if (gv != nullptr) gv[i] = g;
    acc.s += e;
    acc.w += w;
    acc.f += f;
    acc.h += eh;
    acc.r += er;
  }
}

/// M = Σ p·t and what the divergences need of it, from the pass's sums: 1 + M, log1p(M),
/// χ(M) = (1 + M)·log1p(M) − M and M − log1p(M). M comes from Σ e·t (accurate near 0, where
/// q ≈ p) unless M < −½; there 1 + M comes from Σ e·e^u (accurate near 0, where the teacher's
/// mass sits where the student's is not).
struct KlMoments {
  double M = 0.0, onep = 1.0, log1p = 0.0, chi = 0.0, tail = 0.0;
};

inline KlMoments kl_moments(double s, double w, double f) noexcept {
  KlMoments r;
  const double mw = w / s;
  if (!(mw < -0.5)) {  // NaN takes this branch and stays NaN
    r.M = mw;
    r.onep = 1.0 + mw;
    r.log1p = std::log1p(mw);
    r.chi = xlog1p_tail(mw);
    r.tail = log1p_tail(mw);
  } else {
    r.onep = f / s;
    r.M = r.onep - 1.0;
    r.log1p = std::log(r.onep);
    r.chi = r.onep * r.log1p - r.M;
    r.tail = r.M - r.log1p;
  }
  return r;
}

/// Whether the accurate pass should run again around a better centre: the constant in u (the
/// difference of the maxima) is arbitrary, and where it is far from log((Σ e^y)/(Σ e^x)) (a
/// teacher maximum far from the others, so that every u is offset by about the same amount),
/// t and M are not small although q ≈ p over most classes, and χ(M), M − t cancel. The second
/// pass moves the teacher's reference maximum by log1p(M)/k_v, which shifts every u by log1p(M):
/// then M ≈ 0.
inline bool kl_recentre(const KlMoments& mo) noexcept { return std::abs(mo.M) > 0.25; }

/// KL(q ‖ p) of a slice, q_c = p_c·e^{u_c}/(1 + M): Σ q·(u − log1p M) = (Σ p·ψ(u) − χ(M))/(1 + M),
/// never negative. The error of the float sum Σ e·t (a rounding of Σ e·|t|) moves the result
/// only by that times M ~ u: relative accuracy stays where q ≈ p.
inline double kl_forward(double s, double h, const KlMoments& mo) noexcept {
  const double d = (h / s - mo.chi) / mo.onep;
  return d < 0.0 ? 0.0 : d;  // NaN stays NaN
}

/// dz[i] = c·(e_i·K_i − g_i) over [lo, hi) with K = M where |u| < kl_split (g = w) and
/// K = 1 + M elsewhere (g = f): gs-scaled p − q. e is read from dz, g from gv or, when gv is
/// null, recomputed by kl_batch.
template <class T, class A, bool Joint>
REGULA_ALWAYS_INLINE void kl_combine_in(const T* z, const T* v, std::size_t lo, std::size_t hi,
                                        T mz, T mv, T kz, T kv, const T* gv, T cm, T co, T c,
                                        T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B cmb(cm), cob(co), cb(c), split(kl_split<T>);
  for (std::size_t i = lo; i < hi; i += W) {
    const std::size_t m = hi - i;
    const B zi = load_n<B>(z + i, m, mz), vi = load_n<B>(v + i, m, mv);
    const B u = kl_u(zi, vi, B((zi - B(mz)) * B(kz)), mz, mv, kz, kv, Joint);
    B g;
    if (gv != nullptr) {
      g = load_n<B>(gv + i, m, T(0));
    } else {
      B e, w, f, eh, er;
      kl_batch<KlTerm::none, Joint, true, B>(z + i, v + i, m, mz, mv, kz, kv, {}, e, w, f, eh, er,
                                             g);
    }
    const B cK = xsimd::select(xsimd::abs(u) < split, cmb, cob);
    store_n(dz + i, m, B(xsimd::fms(cK, load_n<B>(dz + i, m, T(0)), cb * g)));
  }
}

/// kl_combine_in with the form of u (`joint`, as the pass's) fixed once.
template <class T, class A>
REGULA_ALWAYS_INLINE void kl_combine(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz,
                                     T mv, T kz, T kv, bool joint, const T* gv, T cm, T co, T c,
                                     T* dz) noexcept {
  if (joint) {
    kl_combine_in<T, A, true>(z, v, lo, hi, mz, mv, kz, kv, gv, cm, co, c, dz);
  } else {
    kl_combine_in<T, A, false>(z, v, lo, hi, mz, mv, kz, kv, gv, cm, co, c, dz);
  }
}

/// Scalar twin of kl_combine.
template <class T>
void kl_combine_reference(const T* z, const T* v, std::size_t lo, std::size_t hi, T mz, T mv, T kz,
                          T kv, bool joint, const T* gv, T cm, T co, T c, T* dz) noexcept {
  for (std::size_t i = lo; i < hi; ++i) {
    const T u = kl_u(z[i], v[i], T((z[i] - mz) * kz), mz, mv, kz, kv, joint);
    T g;
    if (gv != nullptr) {
      g = gv[i];
    } else {
      T e, w, f, eh, er;
      g = kl_element_reference<T, KlTerm::none>(z[i], v[i], mz, mv, kz, kv, joint, {}, e, w, f, eh,
                                                er);
    }
    dz[i] = (std::abs(u) < kl_split<T> ? cm : co) * dz[i] - c * g;
  }
}

/// kd_kl_column's cancellation-free path (see there), given the column maxima.
template <class T, class A>
double kd_kl_accurate(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz, T* scratch,
                      T mz, T mv) noexcept {
  detail::KlSums<T> acc;
  T* gv = dz != nullptr ? scratch : nullptr;
  constexpr auto psi = detail::KlTerm::xexp_tail;
  double s = 0.0;
  detail::KlMoments mo;
  bool joint = false;
  for (int pass = 0; pass < 2; ++pass) {
    acc = {};
    joint = detail::kl_joint(mz, mv, kz, kv);
    detail::kl_pass<T, A, psi>(z, v, 0, n, mz, mv, kz, kv, joint, dz, gv, acc);
    s = static_cast<double>(acc.s);
    mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
    if (pass == 1 || !detail::kl_recentre(mo)) break;
    mv = static_cast<T>(static_cast<double>(mv) + mo.log1p / static_cast<double>(kv));
  }
  const double d = detail::kl_forward(s, static_cast<double>(acc.h), mo);
  if (dz != nullptr) {
    const double c = static_cast<double>(gs) * static_cast<double>(kz) / (s * mo.onep);
    const T cm = static_cast<T>(c * mo.M), co = static_cast<T>(c * mo.onep);
    detail::kl_combine<T, A>(z, v, 0, n, mz, mv, kz, kv, joint, gv, cm, co, static_cast<T>(c), dz);
  }
  return d;
}

/// Scalar twin of kd_kl_accurate.
template <class T>
double kd_kl_accurate_reference(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                                T* scratch, T mz, T mv) noexcept {
  detail::KlSums<T> acc;
  double s = 0.0;
  detail::KlMoments mo;
  bool joint = false;
  for (int pass = 0; pass < 2; ++pass) {
    acc = {};
    joint = detail::kl_joint(mz, mv, kz, kv);
    detail::kl_pass_reference<T, detail::KlTerm::xexp_tail>(z, v, 0, n, mz, mv, kz, kv, joint, dz,
                                                            scratch, acc);
    s = static_cast<double>(acc.s);
    mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
    if (pass == 1 || !detail::kl_recentre(mo)) break;
    mv = static_cast<T>(static_cast<double>(mv) + mo.log1p / static_cast<double>(kv));
  }
  const double d = detail::kl_forward(s, static_cast<double>(acc.h), mo);
  if (dz != nullptr) {
    const double c = static_cast<double>(gs) * static_cast<double>(kz) / (s * mo.onep);
    detail::kl_combine_reference<T>(z, v, 0, n, mz, mv, kz, kv, joint, scratch,
                                    static_cast<T>(c * mo.M), static_cast<T>(c * mo.onep),
                                    static_cast<T>(c), dz);
  }
  return d;
}

}  // namespace detail

/// Hinton KD on one column: D = KL(q ‖ p) = Σ_c q_c (log q_c − log p_c) with
/// p = softmax(kz·z), q = softmax(kv·v); gradient gs·kz·(p − q).
///
/// The direct form, D = Σ q·(y − x) + log Σ e^x − log Σ e^y and p − q from the two
/// exponentials (one fused SIMD pass, two exponentials per element), is used when its rounding
/// estimate is at most 2^-15 of D (detail::direct_is_accurate). Otherwise (q ≈ p, or a
/// confident column where both top classes agree) the column is recomputed without
/// cancellation, accurate per element: with u_c = log(q_c/p_c) up to a constant (formed from
/// the logits' difference, detail::kl_batch), one SIMD pass computes e = exp(x) and e^u and
/// accumulates Σ e, Σ e·t, Σ e·e^u and Σ e·ψ(u), t = expm1(u), ψ(u) = u·e^u − e^u + 1 ≥ 0;
/// then D = (Σ p·ψ(u) − χ(M))/(1 + M) (detail::kl_forward) and p − q = p·(M − t)/(1 + M) or
/// p·((1 + M) − e^u)/(1 + M) (detail::kl_combine), none of which subtracts nearly equal
/// numbers. Two exponentials per element, as the direct form. `scratch` (n values, may be null)
/// keeps e·t or e·e^u between the passes; without it they are recomputed. dz and scratch must not
/// overlap z or v. A column whose result is not finite although its logits are (they span past
/// the largest T) is recomputed by detail::kd_kl_wide.
template <class T, class A = default_arch>
double kd_kl_column(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                    T* scratch) noexcept;

namespace detail {

/// kd_kl_column before its test for a non-finite result.
template <class T, class A>
REGULA_ALWAYS_INLINE double kd_kl_column_body(const T* z, const T* v, std::size_t n, T kz, T kv,
                                              T gs, T* dz, T* scratch) noexcept {
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  detail::ExpSums<T> acc;
  T* fv = dz != nullptr ? scratch : nullptr;
  detail::fused_exp<T, A, true>(z, v, 0, n, mz, mv, kz, kv, dz, fv, acc);
  const double sv = static_cast<double>(acc.sv);
  const double d = acc.cross(sv) + std::log(static_cast<double>(acc.sz)) - std::log(sv);
  if (!detail::direct_is_accurate<T, A>(d, acc.mag(sv) + 2.0, n)) {
    return detail::kd_kl_accurate<T, A>(z, v, n, kz, kv, gs, dz, scratch, mz, mv);
  }
  if (dz != nullptr) {
    const T c1 = gs * kz / acc.sz;
    const T c2 = gs * kz / acc.sv;
    detail::combine<T, A>(dz, fv, v, 0, n, mv, kv, c1, c2, dz);
  }
  return d;
}

/// kd_kl_column_reference before its test for a non-finite result.
template <class T>
double kd_kl_column_reference_body(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                                   T* scratch) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  detail::ExpSums<T> acc;
  detail::fused_exp_reference<T, true>(z, v, 0, n, mz, mv, kz, kv, dz, scratch, acc);
  const double sv = static_cast<double>(acc.sv);
  const double d = acc.cross(sv) + std::log(static_cast<double>(acc.sz)) - std::log(sv);
  if (!detail::direct_is_accurate<T, default_arch>(d, acc.mag(sv) + 2.0, n)) {
    return detail::kd_kl_accurate_reference<T>(z, v, n, kz, kv, gs, dz, scratch, mz, mv);
  }
  if (dz != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const T f = scratch != nullptr ? scratch[i] : std::exp((v[i] - mv) * kv);
      dz[i] = gs * kz * (dz[i] / acc.sz - f / acc.sv);
    }
  }
  return d;
}

/// kd_kl_column's or its reference's result d, or where d is not finite the wide fallback.
template <class T>
REGULA_ALWAYS_INLINE double kd_kl_finite(const T* z, const T* v, std::size_t n, T kz, T kv, T gs,
                                         T* dz, double d) noexcept {
  return finite_or_wide(z, v, n, d, &kd_kl_wide<T>, static_cast<wide>(kz), static_cast<wide>(kv),
                        static_cast<wide>(gs), dz);
}

}  // namespace detail

template <class T, class A>
double kd_kl_column(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                    T* scratch) noexcept {
  return detail::kd_kl_finite(z, v, n, kz, kv, gs, dz,
                              detail::kd_kl_column_body<T, A>(z, v, n, kz, kv, gs, dz, scratch));
}

/// Scalar reference of kd_kl_column (the same two paths and the same fallback).
template <class T>
double kd_kl_column_reference(const T* z, const T* v, std::size_t n, T kz, T kv, T gs, T* dz,
                              T* scratch) noexcept {
  return detail::kd_kl_finite(
      z, v, n, kz, kv, gs, dz,
      detail::kd_kl_column_reference_body<T>(z, v, n, kz, kv, gs, dz, scratch));
}

namespace detail {

/// Which weights w a FusedTile's cross sums take: the teacher's f (KL(q ‖ p)), the student's e
/// (KL(p ‖ q)), or none (TV, which needs only e, f and their sums).
enum class TileWeights : unsigned char { teacher, student, none };

/// The direct pass of fused_exp over a tile, one column per lane (kernels/tile.hpp): the column
/// maxima, e = exp(x), f = exp(y) with x = (z − mz)·kz, y = (v − mv)·kv, and in class order
/// Σ e, Σ f and, unless Weights is none, Σ w·y, Σ w·x; then, per lane in double, the sums (S of
/// the weights, and the weighted Σ w·(y − x) over it, `cross`) and the size of the terms (`mag`,
/// as ExpSums::mag), for the kernels' accuracy test.
template <class T, class A, TileWeights Weights>
struct FusedTile {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  static constexpr std::size_t W = B::size;
  B mz, mv;
  B e[tile_rows], f[tile_rows];
  B sz = B(T(0));  // parentheses: braces would take xsimd's initializer-list constructor
  B sv = B(T(0));
  alignas(64) double szd[W], svd[W], cross[W], mag[W];

  /// kz and kv per lane (one temperature factor per column).
  FusedTile(const ColumnTile<T, A>& zt, const ColumnTile<T, A>& vt, std::size_t n, const B& kzb,
            const B& kvb) noexcept
      : mz(zt.row(0)), mv(vt.row(0)) {
    for (std::size_t r = 1; r < n; ++r) {
      mz = xsimd::max(mz, zt.row(r));
      mv = xsimd::max(mv, vt.row(r));
    }
    B wy(T(0)), wx(T(0));
    for (std::size_t r = 0; r < n; ++r) {
      const B x = (zt.row(r) - mz) * kzb;
      const B y = (vt.row(r) - mv) * kvb;
      e[r] = exp_batch(x);
      f[r] = exp_batch(y);
      sz += e[r];
      sv += f[r];
      if constexpr (Weights != TileWeights::none) {
        const B w = Weights == TileWeights::teacher ? f[r] : e[r];
        wy = xsimd::fma(w, y, wy);
        wx = xsimd::fma(w, x, wx);
      }
    }
    if constexpr (Weights == TileWeights::none) return;
    widen_lanes(sz, szd);
    widen_lanes(sv, svd);
    widen_lanes(wy, cross);
    widen_lanes(wx, mag);
    for (std::size_t q = 0; q < W; q += DB::size) {
      const DB sw = DB::load_aligned((Weights == TileWeights::teacher ? svd : szd) + q);
      const DB wyq = DB::load_aligned(cross + q);
      const DB wxq = DB::load_aligned(mag + q);
      ((wyq - wxq) / sw).store_aligned(cross + q);
      ((xsimd::abs(wyq) + xsimd::abs(wxq)) / sw + DB(2.0)).store_aligned(mag + q);
    }
  }
};

}  // namespace detail

namespace detail {

/// kd_kl_tile's lanes with a temperature factor per lane (kzb, kvb; kz[c], kv[c] the scalars of
/// lane c, for its per-column recomputation): logit_std_kd runs every column at its own
/// temperature T·std.
template <class T, class A>
REGULA_ALWAYS_INLINE void kd_kl_tile_lanes(const T* z, std::size_t zs, const T* v, std::size_t vs,
                                           std::size_t n, std::size_t count,
                                           const xsimd::batch<T, A>& kzb,
                                           const xsimd::batch<T, A>& kvb, const T* kz, const T* kv,
                                           T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  alignas(64) T scratch[tile_rows];
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  FusedTile<T, A, TileWeights::teacher> t(zt, vt, n, kzb, kvb);
  // D = Σ q·(y − x) + log Σ e^x − log Σ e^y.
  alignas(64) double dd[W];
  for (std::size_t q = 0; q < W; q += DB::size) {
    (DB::load_aligned(t.cross + q) + log_batch(DB::load_aligned(t.szd + q)) -
     log_batch(DB::load_aligned(t.svd + q)))
        .store_aligned(dd + q);
  }
  if (dz != nullptr) {
    const B c = B(gs) * kzb;
    const B c1 = c / t.sz;
    const B c2 = c / t.sv;
    for (std::size_t r = 0; r < n; ++r) t.e[r] = xsimd::fms(c1, t.e[r], c2 * t.f[r]);
    store_tile(t.e, n, count, dz, dzs);
  }
  for (std::size_t k = 0; k < count; ++k) {
    d[k] = dd[k];
    if (!std::isfinite(d[k]) || !direct_is_accurate_in<T>(d[k], t.mag[k], n, 1)) {
      d[k] = kd_kl_column<T, A>(z + k * zs, v + k * vs, n, kz[k], kv[k], gs,
                                dz != nullptr ? dz + k * dzs : nullptr, scratch);
    }
  }
}

}  // namespace detail

/// kd_kl_column over `count` ≤ W consecutive columns of n ≤ tile_rows classes (kernels/tile.hpp;
/// column k of z at z + k·zs, of v at v + k·vs, of dz at dz + k·dzs when dz is not null):
/// d[k] = column k's divergence. One lane holds one column and runs the direct form (the fused
/// exponentials, their sums in class order); a lane whose rounding estimate fails
/// (direct_is_accurate_in with one lane) or whose result is not finite is recomputed by
/// kd_kl_column, which takes the cancellation-free path or the wide fallback as it would. So
/// every column gets the per-column kernel's accuracy contract; where both take the direct form
/// they agree to a few ulps (the sums' order differs). Double, whose direct form is never
/// accurate enough (direct_is_accurate), goes column by column. dz must not overlap z or v.
template <class T, class A = default_arch>
void kd_kl_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                std::size_t count, T kz, T kv, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  if constexpr (std::is_same_v<T, double>) {
    alignas(64) T scratch[tile_rows];
    for (std::size_t k = 0; k < count; ++k) {
      d[k] = kd_kl_column<T, A>(z + k * zs, v + k * vs, n, kz, kv, gs,
                                dz != nullptr ? dz + k * dzs : nullptr, scratch);
    }
    return;
  }
  T kzs[W], kvs[W];
  for (std::size_t k = 0; k < W; ++k) {
    kzs[k] = kz;
    kvs[k] = kv;
  }
  detail::kd_kl_tile_lanes<T, A>(z, zs, v, vs, n, count, B(kz), B(kv), kzs, kvs, gs, dz, dzs, d);
}

/// Reverse KL on one column: D = KL(p ‖ q) = Σ_c p_c (log p_c − log q_c), p = softmax(k·z),
/// q = softmax(k·v); gradient gs·k·p_c·(r_c − D) with r_c = log p_c − log q_c.
///
/// The loss takes the direct form Σ p·(x − y) − log Σ e^x + log Σ e^y when its rounding estimate
/// allows (as kd_kl_column), else the cancellation-free pass: Σ e·φ(u), φ(u) = expm1(u) − u ≥ 0,
/// and with S = Σ p·φ(u), D = S − (M − log1p M). The gradient's r_c − D = Σ_j p_j·(u_j − u_c)
/// is always formed around the student's top class ρ as Σ_j p_j·(u_j − u_ρ) − (u_c − u_ρ) (the
/// pass accumulates the first sum, its ρ term exactly 0), so that it keeps its accuracy where p
/// concentrates on ρ and r_ρ − D ~ e^{−margin} (the mean Σ p·u would round it away). A column
/// whose result is not finite although its logits are is recomputed by detail::reverse_kl_wide.
template <class T, class A = default_arch>
double reverse_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept;

namespace detail {

/// reverse_kl_column before its test for a non-finite result. Sets grad_ok to whether the sum
/// r = Σ e·(u − u_ρ) of the gradient is finite: where the loss is finite, a difference v − z past
/// the largest T can still give 0·inf there (a class with e = 0).
template <class T, class A>
REGULA_ALWAYS_INLINE double reverse_kl_column_body(const T* z, const T* v, std::size_t n, T k, T gs,
                                                   T* dz, bool& grad_ok) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  detail::ExpSums<T> fast;
  detail::fused_exp<T, A, false>(z, v, 0, n, mz, mv, k, k, dz, nullptr, fast);
  double s = static_cast<double>(fast.sz);
  // Σ p·(x − y) = −cross.
  double d = -fast.cross(s) - std::log(s) + std::log(static_cast<double>(fast.sv));
  const bool direct = detail::direct_is_accurate<T, A>(d, fast.mag(s) + 2.0, n);
  // p_ρ = 1/Σ e: where it is at least ½, r_ρ − D = Σ_{j≠ρ} p_j·(u_j − u_ρ) would cancel in
  // the mean Σ p·u, so the gradient is formed around ρ.
  if (direct && dz != nullptr && s > 2.0) {
    // r_c − D = (x_c − y_c) − Σ p·(x − y) = Σ p·u − u_c: the log-sum-exp offsets cancel.
    // c·e·(off − u) as (2c)·e·(off/2 − u/2), the halves folded into off and k: the same bits
    // (scaling by 2 is exact), but off/2 − u/2 cannot overflow where off − u would (a class far
    // below the maximum, e = 0: 0·inf).
    const T c2 = T(2) * static_cast<T>(static_cast<double>(gs) * static_cast<double>(k) / s);
    const T off = T(0.5) * static_cast<T>(fast.cross(s)), kh = T(0.5) * k;
    const B cb(c2), offb(off), mzb(mz), mvb(mv), kb(kh);
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B u = (B::load_unaligned(v + i) - mvb) * kb - (B::load_unaligned(z + i) - mzb) * kb;
      (cb * B::load_unaligned(dz + i) * (offb - u)).store_unaligned(dz + i);
    }
    for (; i < n; ++i) dz[i] = c2 * dz[i] * (off - ((v[i] - mv) * kh - (z[i] - mz) * kh));
    return d;
  }
  if (direct && dz == nullptr) return d;
  const detail::KlRef<T> ref = detail::kl_ref(z, v, detail::find_first<T, A>(z, n, mz), k);
  // u − u_ρ of lanes i.. with factor kf; the lanes past n hold the reference class (du = 0).
  // (jc: ref.joint as a std::bool_constant, so that the loops below carry no branch on it.)
  const auto du_at = [&](std::size_t i, std::size_t left, T kf, auto jc) noexcept {
    const B zi = detail::load_n<B>(z + i, left, mz), vi = detail::load_n<B>(v + i, left, ref.v);
    return detail::kl_du(zi, vi, B((zi - B(mz)) * B(kf)), ref, kf, decltype(jc)::value);
  };
  T r = T(0);
  if (direct) {
    // Σ e·(u − u_ρ) over the stored e (no exponentials).
    const auto sum = [&](auto jc) noexcept {
      B acc(T(0));
      for (std::size_t i = 0; i < n; i += W) {
        const std::size_t left = n - i;
        acc = xsimd::fma(detail::load_n<B>(dz + i, left, T(0)), du_at(i, left, k, jc), acc);
      }
      return hsum(acc);
    };
    r = ref.joint ? sum(std::true_type{}) : sum(std::false_type{});
  } else {
    detail::KlSums<T> acc;
    detail::KlMoments mo;
    T mvs = mv;
    for (int pass = 0; pass < 2; ++pass) {
      acc = {};
      detail::kl_pass<T, A, detail::KlTerm::expm1_tail>(
          z, v, 0, n, mz, mvs, k, k, detail::kl_joint(mz, mvs, k, k), dz, nullptr, acc, ref);
      s = static_cast<double>(acc.s);
      mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
      if (pass == 1 || !detail::kl_recentre(mo)) break;
      mvs = static_cast<T>(static_cast<double>(mvs) + mo.log1p / static_cast<double>(k));
    }
    d = static_cast<double>(acc.h) / s - mo.tail;
    d = d < 0.0 ? 0.0 : d;  // NaN stays NaN
    r = acc.r;
  }
  if (dz != nullptr) {
    // c·e·(m − du) as (2c)·e·(m/2 − du/2), as in the direct branch above: m − du may overflow
    // at a class with e = 0 while r, the loss and the halves stay finite. A du that overflows
    // itself makes r = Σ e·du NaN or inf: grad_ok.
    grad_ok = std::isfinite(r);
    const T c2 = T(2) * static_cast<T>(static_cast<double>(gs) * static_cast<double>(k) / s);
    const T mh = T(0.5) * static_cast<T>(static_cast<double>(r) / s), kh = T(0.5) * k;
    const B cb(c2), mb(mh);
    const auto write = [&](auto jc) noexcept {
      for (std::size_t i = 0; i < n; i += W) {
        const std::size_t left = n - i;
        const B du = du_at(i, left, kh, jc);
        detail::store_n(dz + i, left, B(cb * detail::load_n<B>(dz + i, left, T(0)) * (mb - du)));
      }
    };
    ref.joint ? write(std::true_type{}) : write(std::false_type{});
  }
  return d;
}

/// reverse_kl_column_reference before its test for a non-finite result (grad_ok as there).
template <class T>
double reverse_kl_column_reference_body(const T* z, const T* v, std::size_t n, T k, T gs, T* dz,
                                        bool& grad_ok) noexcept {
  const T mz = column_max_reference(z, n);
  const T mv = column_max_reference(v, n);
  std::size_t top = 0;
  while (top < n && !(z[top] == mz)) ++top;
  if (top == n) top = 0;
  const detail::KlRef<T> ref = detail::kl_ref(z, v, top, k);
  detail::ExpSums<T> fast;
  detail::fused_exp_reference<T, false, true>(z, v, 0, n, mz, mv, k, k, dz, nullptr, fast, ref);
  double s = static_cast<double>(fast.sz);
  double d = -fast.cross(s) - std::log(s) + std::log(static_cast<double>(fast.sv));
  T r = fast.r;
  if (!detail::direct_is_accurate<T, default_arch>(d, fast.mag(s) + 2.0, n)) {
    detail::KlSums<T> acc;
    detail::KlMoments mo;
    T mvs = mv;
    for (int pass = 0; pass < 2; ++pass) {
      acc = {};
      detail::kl_pass_reference<T, detail::KlTerm::expm1_tail>(
          z, v, 0, n, mz, mvs, k, k, detail::kl_joint(mz, mvs, k, k), dz, nullptr, acc, ref);
      s = static_cast<double>(acc.s);
      mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
      if (pass == 1 || !detail::kl_recentre(mo)) break;
      mvs = static_cast<T>(static_cast<double>(mvs) + mo.log1p / static_cast<double>(k));
    }
    d = static_cast<double>(acc.h) / s - mo.tail;
    d = d < 0.0 ? 0.0 : d;
    r = acc.r;
  }
  if (dz != nullptr) {
    grad_ok = std::isfinite(r);
    const T c2 = T(2) * static_cast<T>(static_cast<double>(gs) * static_cast<double>(k) / s);
    const T mh = T(0.5) * static_cast<T>(static_cast<double>(r) / s), kh = T(0.5) * k;
    for (std::size_t i = 0; i < n; ++i) {
      const T du = detail::kl_du(z[i], v[i], T((z[i] - mz) * kh), ref, kh, ref.joint);
      dz[i] = c2 * dz[i] * (mh - du);
    }
  }
  return d;
}

/// reverse_kl_column's or its reference's result d, or where d or the gradient's r is not
/// finite (grad_ok false) the wide fallback.
template <class T>
REGULA_ALWAYS_INLINE double reverse_kl_finite(const T* z, const T* v, std::size_t n, T k, T gs,
                                              T* dz, double d, bool grad_ok) noexcept {
  if (REGULA_LIKELY(std::isfinite(d) && grad_ok)) return d;
  return recompute_wide(z, v, n, d, &reverse_kl_wide<T>, static_cast<wide>(k),
                        static_cast<wide>(gs), dz);
}

}  // namespace detail

template <class T, class A>
double reverse_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  bool grad_ok = true;
  const double d = detail::reverse_kl_column_body<T, A>(z, v, n, k, gs, dz, grad_ok);
  return detail::reverse_kl_finite(z, v, n, k, gs, dz, d, grad_ok);
}

/// Scalar reference of reverse_kl_column (the same two paths and the same fallback).
template <class T>
double reverse_kl_column_reference(const T* z, const T* v, std::size_t n, T k, T gs,
                                   T* dz) noexcept {
  bool grad_ok = true;
  const double d = detail::reverse_kl_column_reference_body<T>(z, v, n, k, gs, dz, grad_ok);
  return detail::reverse_kl_finite(z, v, n, k, gs, dz, d, grad_ok);
}

/// reverse_kl_column over a tile (the layout and contract of kd_kl_tile): each lane runs the
/// direct form and, where p_ρ < ½ (Σ e > 2), the direct gradient gs·k·p·(Σ p·u − u); a lane whose
/// rounding estimate fails or whose result is not finite is recomputed by reverse_kl_column, and
/// a lane whose gradient is formed around the student's top class (p_ρ ≥ ½) takes its gradient
/// from reverse_kl_column and keeps its own loss, so that the loss is the same with or without
/// dz.
template <class T, class A = default_arch>
void reverse_kl_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                     std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  auto column = [&](std::size_t c) noexcept {
    d[c] = reverse_kl_column<T, A>(z + c * zs, v + c * vs, n, k, gs,
                                   dz != nullptr ? dz + c * dzs : nullptr);
  };
  if constexpr (std::is_same_v<T, double>) {
    for (std::size_t c = 0; c < count; ++c) column(c);
    return;
  }
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  detail::FusedTile<T, A, detail::TileWeights::student> t(zt, vt, n, B(k), B(k));
  // D = Σ p·(x − y) − log Σ e^x + log Σ e^y.
  alignas(64) double dd[W], c2d[W];
  for (std::size_t q = 0; q < W; q += DB::size) {
    const DB sq = DB::load_aligned(t.szd + q);
    (DB(0.0) - DB::load_aligned(t.cross + q) - log_batch(sq) +
     log_batch(DB::load_aligned(t.svd + q)))
        .store_aligned(dd + q);
    (DB(static_cast<double>(gs) * static_cast<double>(k)) / sq).store_aligned(c2d + q);
  }
  if (dz != nullptr) {
    // As reverse_kl_column's direct branch: c·e·(off − u) as (2c)·e·(off/2 − u/2).
    const B c2 = B(T(2)) * narrow_lanes<T, A>(c2d);
    const B off = B(T(0.5)) * narrow_lanes<T, A>(t.cross);
    const B kh(T(0.5) * k);
    for (std::size_t r = 0; r < n; ++r) {
      const B u = (vt.row(r) - t.mv) * kh - (zt.row(r) - t.mz) * kh;
      t.e[r] = c2 * t.e[r] * (off - u);
    }
    store_tile(t.e, n, count, dz, dzs);
  }
  for (std::size_t c = 0; c < count; ++c) {
    d[c] = dd[c];
    if (!std::isfinite(d[c]) || !detail::direct_is_accurate_in<T>(d[c], t.mag[c], n, 1)) {
      column(c);
    } else if (dz != nullptr && !(t.szd[c] > 2.0)) {
      // The loss stays the lane's (the same with or without dz); the gradient, formed around
      // the reference class, comes from the per-column kernel.
      (void)reverse_kl_column<T, A>(z + c * zs, v + c * vs, n, k, gs, dz + c * dzs);
    }
  }
}

/// The two parts of DKD on one column (each without T² or weights).
struct DkdTerms {
  double tckd = 0.0;  ///< KL((q_t, 1 − q_t) ‖ (p_t, 1 − p_t))
  double nckd = 0.0;  ///< KL(q̂ ‖ p̂) over the non-target classes
};

namespace detail {

/// The DKD terms from the non-target sums (kl_pass around the non-target maxima) and the
/// target's shifted student logit xt and u_t = y_t − x_t: the non-target log-sum-exps differ by
/// log1p(M), so logit p_t − logit q_t = log1p(M) − u_t and TCKD is a Bernoulli KL at
/// b = logit q_t without cancellation (bernoulli_kl); NCKD = kl_forward. Sets pt_minus_qt.
inline DkdTerms dkd_assemble(double xt, double ut, double s, double h, const KlMoments& mo,
                             double& pt_minus_qt) noexcept {
  DkdTerms r;
  r.nckd = kl_forward(s, h, mo);
  const double b = xt + ut - std::log(s) - mo.log1p;  // log(q_t/(1 − q_t))
  r.tckd = bernoulli_kl(b, mo.log1p - ut, pt_minus_qt);
  return r;
}

/// dkd_column's cancellation-free path (see there), given the non-target maxima.
template <class T, class A>
DkdTerms dkd_accurate(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha, T beta,
                      T gs, T* dz, T* scratch, T mz, T mv, bool& grad_ok) noexcept {
  detail::KlSums<T> acc;
  T* gv = dz != nullptr ? scratch : nullptr;
  constexpr auto psi = detail::KlTerm::xexp_tail;
  double s = 0.0;
  detail::KlMoments mo;
  bool joint = false;
  for (int pass = 0; pass < 2; ++pass) {
    acc = {};
    joint = detail::kl_joint(mz, mv, k, k);
    detail::kl_pass<T, A, psi>(z, v, 0, t, mz, mv, k, k, joint, dz, gv, acc);
    detail::kl_pass<T, A, psi>(z, v, t + 1, n, mz, mv, k, k, joint, dz, gv, acc);
    s = static_cast<double>(acc.s);
    mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
    if (pass == 1 || !detail::kl_recentre(mo)) break;
    mv = static_cast<T>(static_cast<double>(mv) + mo.log1p / static_cast<double>(k));
  }
  double d = 0.0;
  const T xt = (z[t] - mz) * k;
  const T ut = detail::kl_u(z[t], v[t], xt, mz, mv, k, k, joint);
  const DkdTerms r = detail::dkd_assemble(static_cast<double>(xt), static_cast<double>(ut), s,
                                          static_cast<double>(acc.h), mo, d);
  if (dz != nullptr) {
    // −α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j) = c·(e_j·K_j − g_j) − α·(p_t − q_t)·e_j/s: the
    // constant part folded into the coefficients of e_j.
    const double g = static_cast<double>(gs) * static_cast<double>(k);
    const double a = static_cast<double>(alpha), b = static_cast<double>(beta);
    const double c = g * b / (s * mo.onep);
    const double ca0 = -g * a * d / s;  // c·a0 without dividing by β (which may be 0)
    const T cm = static_cast<T>(c * mo.M + ca0), co = static_cast<T>(c * mo.onep + ca0);
    // Weights and T² near the largest T can carry a coefficient past it (inf·0 where p̂ = q̂).
    grad_ok = std::isfinite(cm) && std::isfinite(co) && std::isfinite(static_cast<T>(c)) &&
              std::isfinite(static_cast<T>(g * a));
    detail::kl_combine<T, A>(z, v, 0, t, mz, mv, k, k, joint, gv, cm, co, static_cast<T>(c), dz);
    detail::kl_combine<T, A>(z, v, t + 1, n, mz, mv, k, k, joint, gv, cm, co, static_cast<T>(c),
                             dz);
    dz[t] = static_cast<T>(g * a * d);
  }
  return r;
}

/// Scalar twin of dkd_accurate.
template <class T>
DkdTerms dkd_accurate_reference(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha,
                                T beta, T gs, T* dz, T* scratch, T mz, T mv,
                                bool& grad_ok) noexcept {
  detail::KlSums<T> acc;
  constexpr auto psi = detail::KlTerm::xexp_tail;
  double s = 0.0;
  detail::KlMoments mo;
  bool joint = false;
  for (int pass = 0; pass < 2; ++pass) {
    acc = {};
    joint = detail::kl_joint(mz, mv, k, k);
    detail::kl_pass_reference<T, psi>(z, v, 0, t, mz, mv, k, k, joint, dz, scratch, acc);
    detail::kl_pass_reference<T, psi>(z, v, t + 1, n, mz, mv, k, k, joint, dz, scratch, acc);
    s = static_cast<double>(acc.s);
    mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
    if (pass == 1 || !detail::kl_recentre(mo)) break;
    mv = static_cast<T>(static_cast<double>(mv) + mo.log1p / static_cast<double>(k));
  }
  double d = 0.0;
  const T xt = (z[t] - mz) * k;
  const T ut = detail::kl_u(z[t], v[t], xt, mz, mv, k, k, joint);
  const DkdTerms r = detail::dkd_assemble(static_cast<double>(xt), static_cast<double>(ut), s,
                                          static_cast<double>(acc.h), mo, d);
  if (dz != nullptr) {
    const double g = static_cast<double>(gs) * static_cast<double>(k);
    const double a = static_cast<double>(alpha), b = static_cast<double>(beta);
    const double c = g * b / (s * mo.onep);
    const double ca0 = -g * a * d / s;  // c·a0 without dividing by β (which may be 0)
    const T cm = static_cast<T>(c * mo.M + ca0), co = static_cast<T>(c * mo.onep + ca0);
    // Weights and T² near the largest T can carry a coefficient past it (inf·0 where p̂ = q̂).
    grad_ok = std::isfinite(cm) && std::isfinite(co) && std::isfinite(static_cast<T>(c)) &&
              std::isfinite(static_cast<T>(g * a));
    detail::kl_combine_reference<T>(z, v, 0, t, mz, mv, k, k, joint, scratch, cm, co,
                                    static_cast<T>(c), dz);
    detail::kl_combine_reference<T>(z, v, t + 1, n, mz, mv, k, k, joint, scratch, cm, co,
                                    static_cast<T>(c), dz);
    dz[t] = static_cast<T>(g * a * d);
  }
  return r;
}

/// The DKD terms of the direct form from the non-target log-sum-exps (relative to the
/// non-target maxima) and the shifted target logits, with the size of their terms for
/// direct_is_accurate (mag_t, mag_n) and p_t − q_t.
inline DkdTerms dkd_direct(double xt, double yt, double lsz, double lsv, double cross_over_sv,
                           double& pt_minus_qt, double& mag_t, double double_ulps) noexcept {
  const double lz = logaddexp(xt, lsz);  // log Σ_all exp, same shift
  const double lv = logaddexp(yt, lsv);
  const double lpt = xt - lz, l1pt = lsz - lz;  // log p_t, log(1 − p_t)
  const double lqt = yt - lv, l1qt = lsv - lv;
  const double qt = std::exp(lqt), q1t = std::exp(l1qt), pt = std::exp(lpt);
  DkdTerms r;
  r.tckd = qt * (lqt - lpt) + q1t * (l1qt - l1pt);
  r.nckd = cross_over_sv + lsz - lsv;
  // In roundings of T: the log-sum-exps' (summed in T) through ∂TCKD/∂log Σ = q_t − p_t
  // (student) and q_t(1 − q_t)·(logit q_t − logit p_t) (teacher); the terms themselves are
  // formed in double (a rounding of double each, double_ulps of T's).
  mag_t = 2.0 * (std::abs(qt - pt) + qt * q1t * std::abs((lqt - l1qt) - (lpt - l1pt))) +
          double_ulps * (qt * std::abs(lqt - lpt) + q1t * std::abs(l1qt - l1pt));
  pt_minus_qt = pt - qt;
  return r;
}

}  // namespace detail

/// Decoupled KD (Zhao et al., CVPR 2022) on one column with target class t < n, n ≥ 2, at
/// inverse temperature k. Returns TCKD and NCKD; writes gs·∂(α·TCKD + β·NCKD)/∂z:
/// gs·k·α·(p_t − q_t) at t and gs·k·(−α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j)) elsewhere.
/// The direct form (one fused pass over the non-target classes, log p_t and log(1 − p_t) from
/// the log-sum-exps in double) is used when both terms pass detail::direct_is_accurate;
/// otherwise the column is recomputed without cancellation: the non-target classes run
/// through kd_kl_column's accurate pass around their own maximum (the target
/// left out, not masked), so neither log p_t nor log(1 − p_t) underflows for confident
/// students; TCKD, p_t − q_t and p̂ − q̂ come without cancellation (detail::dkd_assemble,
/// detail::kl_combine). `scratch` as in kd_kl_column. A column with a term that is not
/// finite although its logits are is recomputed by detail::dkd_wide.
template <class T, class A = default_arch>
DkdTerms dkd_column(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha, T beta,
                    T gs, T* dz, T* scratch) noexcept;

namespace detail {

/// The DKD terms in long double.
struct WideDkdTerms {
  wide tckd = 0.0L, nckd = 0.0L;
};

/// dkd_column's fallback: TCKD = bernoulli_kl(logit q_t, logit p_t − logit q_t), the logits
/// from the non-target log-softmaxes (logit p_t = log p_t − log(1 − p_t) = k·(z_t − m̂) −
/// log Σ_{j≠t} e^{k(z_j − m̂)}); NCKD = Σ_{j≠t} q̂·(log q̂ − log p̂), at least 0; in dz when not
/// null gs·k·α·(p_t − q_t) at t and gs·k·(−α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j)) elsewhere. Also
/// run_dkd's, where α·TCKD + β·NCKD is NaN from terms past double (0·inf, inf − inf).
template <class T>
REGULA_KD_COLD WideDkdTerms dkd_wide(const T* z, const T* v, std::size_t n, std::size_t t, wide k,
                                     wide alpha, wide beta, wide gs, T* dz) noexcept {
  const WideLogSoftmax lp = wide_log_softmax(z, n, k, t), lq = wide_log_softmax(v, n, k, t);
  const wide bq = lq(v[t]), bp = lp(z[t]);  // logit q_t, logit p_t
  WideDkdTerms r;
  wide g = 0.0L;  // p_t − q_t
  r.tckd = bernoulli_kl<wide>(bq, bp - bq, g);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == t) continue;
    const wide q = std::exp(lq(v[i]));
    if (q > 0.0L) r.nckd += q * (lq(v[i]) - lp(z[i]));
  }
  r.nckd = r.nckd < 0.0L ? 0.0L : r.nckd;
  if (dz != nullptr) {
    const wide c = gs * k;
    for (std::size_t i = 0; i < n; ++i) {
      if (i == t) continue;
      const wide p = std::exp(lp(z[i])), q = std::exp(lq(v[i]));
      dz[i] = static_cast<T>(c * (beta * (p - q) - alpha * g * p));
    }
    dz[t] = static_cast<T>(c * alpha * g);
  }
  return r;
}

/// dkd_wide's terms rounded to double.
template <class T>
DkdTerms dkd_wide_terms(const T* z, const T* v, std::size_t n, std::size_t t, wide k, wide alpha,
                        wide beta, wide gs, T* dz) noexcept {
  const WideDkdTerms w = dkd_wide<T>(z, v, n, t, k, alpha, beta, gs, dz);
  return DkdTerms{static_cast<double>(w.tckd), static_cast<double>(w.nckd)};
}

/// α·TCKD + β·NCKD from dkd_wide's terms, in long double, rounded to double (run_dkd's
/// fallback where the sum of the terms in double is NaN).
template <class T>
double dkd_weighted_wide(const T* z, const T* v, std::size_t n, std::size_t t, wide k, wide alpha,
                         wide beta) noexcept {
  const WideDkdTerms w = dkd_wide<T>(z, v, n, t, k, 0.0L, 0.0L, 0.0L, nullptr);
  return static_cast<double>(alpha * w.tckd + beta * w.nckd);
}

/// dkd_column before its test for non-finite terms.
template <class T, class A>
REGULA_ALWAYS_INLINE DkdTerms dkd_column_body(const T* z, const T* v, std::size_t n, std::size_t t,
                                              T k, T alpha, T beta, T gs, T* dz, T* scratch,
                                              bool& grad_ok) noexcept {
  const T mz = detail::max_except<T, A>(z, n, t);
  const T mv = detail::max_except<T, A>(v, n, t);
  detail::ExpSums<T> acc;
  T* fv = dz != nullptr ? scratch : nullptr;
  detail::fused_exp<T, A, true>(z, v, 0, t, mz, mv, k, k, dz, fv, acc);
  detail::fused_exp<T, A, true>(z, v, t + 1, n, mz, mv, k, k, dz, fv, acc);
  double d = 0.0, mag_t = 0.0;
  const double sv = static_cast<double>(acc.sv);
  const DkdTerms r = detail::dkd_direct(
      static_cast<double>((z[t] - mz) * k), static_cast<double>((v[t] - mv) * k),
      std::log(static_cast<double>(acc.sz)), std::log(sv), acc.cross(sv), d, mag_t,
      std::numeric_limits<double>::epsilon() /
          static_cast<double>(std::numeric_limits<T>::epsilon()));
  const double wa = std::abs(static_cast<double>(alpha)), wb = std::abs(static_cast<double>(beta));
  if (!detail::direct_is_accurate<T, A>(wa * r.tckd + wb * r.nckd,
                                        wa * mag_t + wb * (acc.mag(sv) + 2.0), n)) {
    return detail::dkd_accurate<T, A>(z, v, n, t, k, alpha, beta, gs, dz, scratch, mz, mv, grad_ok);
  }
  if (dz != nullptr) {
    const T c1 = gs * k * (beta - alpha * static_cast<T>(d)) / acc.sz;
    const T c2 = gs * k * beta / acc.sv;
    const T ct = gs * k * alpha;
    grad_ok = std::isfinite(c1) && std::isfinite(c2) && std::isfinite(ct);
    detail::combine<T, A>(dz, fv, v, 0, t, mv, k, c1, c2, dz);
    detail::combine<T, A>(dz, fv, v, t + 1, n, mv, k, c1, c2, dz);
    dz[t] = ct * static_cast<T>(d);
  }
  return r;
}

/// dkd_column_reference before its test for non-finite terms.
template <class T>
DkdTerms dkd_column_reference_body(const T* z, const T* v, std::size_t n, std::size_t t, T k,
                                   T alpha, T beta, T gs, T* dz, T* scratch,
                                   bool& grad_ok) noexcept {
  const T mz = detail::max_except_reference(z, n, t);
  const T mv = detail::max_except_reference(v, n, t);
  detail::ExpSums<T> acc;
  detail::fused_exp_reference<T, true>(z, v, 0, t, mz, mv, k, k, dz, scratch, acc);
  detail::fused_exp_reference<T, true>(z, v, t + 1, n, mz, mv, k, k, dz, scratch, acc);
  double d = 0.0, mag_t = 0.0;
  const double sv = static_cast<double>(acc.sv);
  const DkdTerms r = detail::dkd_direct(
      static_cast<double>((z[t] - mz) * k), static_cast<double>((v[t] - mv) * k),
      std::log(static_cast<double>(acc.sz)), std::log(sv), acc.cross(sv), d, mag_t,
      std::numeric_limits<double>::epsilon() /
          static_cast<double>(std::numeric_limits<T>::epsilon()));
  const double wa = std::abs(static_cast<double>(alpha)), wb = std::abs(static_cast<double>(beta));
  if (!detail::direct_is_accurate<T, default_arch>(wa * r.tckd + wb * r.nckd,
                                                   wa * mag_t + wb * (acc.mag(sv) + 2.0), n)) {
    return detail::dkd_accurate_reference<T>(z, v, n, t, k, alpha, beta, gs, dz, scratch, mz, mv,
                                             grad_ok);
  }
  if (dz != nullptr) {
    // The same test as dkd_column_body's, on the coefficients that form its gradient.
    const T ct = gs * k * alpha;
    grad_ok = std::isfinite(gs * k * (beta - alpha * static_cast<T>(d)) / acc.sz) &&
              std::isfinite(gs * k * beta / acc.sv) && std::isfinite(ct);
    for (std::size_t i = 0; i < n; ++i) {
      if (i == t) continue;
      const T f = scratch != nullptr ? scratch[i] : std::exp((v[i] - mv) * k);
      const T ph = dz[i] / acc.sz, qh = f / acc.sv;
      dz[i] = gs * k * (-alpha * static_cast<T>(d) * ph + beta * (ph - qh));
    }
    dz[t] = ct * static_cast<T>(d);
  }
  return r;
}

/// dkd_column's or its reference's terms r, or where one is not finite, or a coefficient of the
/// gradient is not (grad_ok false), the wide fallback.
template <class T>
REGULA_ALWAYS_INLINE DkdTerms dkd_finite(const T* z, const T* v, std::size_t n, std::size_t t, T k,
                                         T alpha, T beta, T gs, T* dz, DkdTerms r,
                                         bool grad_ok) noexcept {
  const bool terms_ok = std::isfinite(r.tckd) && std::isfinite(r.nckd);
  if (REGULA_LIKELY(terms_ok && grad_ok)) return r;
  const DkdTerms w =
      recompute_wide(z, v, n, r, &dkd_wide_terms<T>, t, static_cast<wide>(k),
                     static_cast<wide>(alpha), static_cast<wide>(beta), static_cast<wide>(gs), dz);
  // Where only a gradient coefficient passed the largest T, the normal path's terms are finite
  // and keep their relative accuracy (formed from the logits' differences), which the wide
  // log-softmaxes lose for terms below their ε: the wide path gave TCKD = NCKD = 0 for a column
  // whose terms are 1e-71 at T = 1e20 (fuzz finding dkd-wide-terms-underflow). Only dz is taken
  // from it then.
  return terms_ok ? r : w;
}

}  // namespace detail

template <class T, class A>
DkdTerms dkd_column(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha, T beta,
                    T gs, T* dz, T* scratch) noexcept {
  bool grad_ok = true;
  const DkdTerms r =
      detail::dkd_column_body<T, A>(z, v, n, t, k, alpha, beta, gs, dz, scratch, grad_ok);
  return detail::dkd_finite(z, v, n, t, k, alpha, beta, gs, dz, r, grad_ok);
}

/// Scalar reference of dkd_column (the same two paths and the same fallback).
template <class T>
DkdTerms dkd_column_reference(const T* z, const T* v, std::size_t n, std::size_t t, T k, T alpha,
                              T beta, T gs, T* dz, T* scratch) noexcept {
  bool grad_ok = true;
  const DkdTerms r =
      detail::dkd_column_reference_body<T>(z, v, n, t, k, alpha, beta, gs, dz, scratch, grad_ok);
  return detail::dkd_finite(z, v, n, t, k, alpha, beta, gs, dz, r, grad_ok);
}

/// dkd_column over `count` ≤ W consecutive columns of n ≤ tile_rows classes (the layout of
/// kd_kl_tile; column k's target class is targets[k] < n): r[k] = column k's terms, and the
/// gradient in dz when not null. One lane holds one column and runs dkd_column's direct form:
/// the non-target maxima, the fused exponentials of the non-target classes and their sums in
/// class order (the target's row masked out), then detail::dkd_direct's finish in double lanes.
/// A lane whose rounding test fails (detail::direct_is_accurate_in with one lane), whose terms
/// or gradient coefficients are not finite is recomputed by dkd_column, which takes its
/// cancellation-free path or its wide fallback as it would: every column keeps dkd_column's
/// accuracy contract, and where both take the direct form they agree to a few ulps. Double,
/// whose direct form is never accurate enough, goes column by column. dz must not overlap z or v.
template <class T, class A = default_arch>
void dkd_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
              std::size_t count, const std::int64_t* targets, T k, T alpha, T beta, T gs, T* dz,
              std::size_t dzs, DkdTerms* r) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t WD = DB::size;
  alignas(64) T scratch[tile_rows];
  auto column = [&](std::size_t c) noexcept {
    r[c] = dkd_column<T, A>(z + c * zs, v + c * vs, n, static_cast<std::size_t>(targets[c]), k,
                            alpha, beta, gs, dz != nullptr ? dz + c * dzs : nullptr, scratch);
  };
  if constexpr (std::is_same_v<T, double>) {
    for (std::size_t c = 0; c < count; ++c) column(c);
    return;
  }
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  alignas(64) T tl[W];
  for (std::size_t c = 0; c < W; ++c) tl[c] = static_cast<T>(targets[c < count ? c : 0]);
  const B tb = B::load_aligned(tl);
  const B ninf(-std::numeric_limits<T>::infinity());
  // The non-target maxima and the target's logits.
  B mz = ninf, mv = ninf, zt_t = B(T(0)), vt_t = B(T(0));
  for (std::size_t row = 0; row < n; ++row) {
    const auto is_t = tb == B(static_cast<T>(row));
    mz = xsimd::select(is_t, mz, xsimd::max(mz, zt.row(row)));
    mv = xsimd::select(is_t, mv, xsimd::max(mv, vt.row(row)));
    zt_t = xsimd::select(is_t, zt.row(row), zt_t);
    vt_t = xsimd::select(is_t, vt.row(row), vt_t);
  }
  const B kb(k), zero(T(0));
  B e[tile_rows], f[tile_rows];
  B sz = zero, sv = zero, wy = zero, wx = zero;
  for (std::size_t row = 0; row < n; ++row) {
    const auto is_t = tb == B(static_cast<T>(row));
    const B x = (zt.row(row) - mz) * kb;
    const B y = (vt.row(row) - mv) * kb;
    e[row] = xsimd::select(is_t, zero, exp_batch(x));
    f[row] = xsimd::select(is_t, zero, exp_batch(y));
    sz += e[row];
    sv += f[row];
    wy = xsimd::fma(f[row], xsimd::select(is_t, zero, y), wy);
    wx = xsimd::fma(f[row], xsimd::select(is_t, zero, x), wx);
  }
  alignas(64) double xtd[W], ytd[W], szd[W], svd[W], wyd[W], wxd[W], dd[W], tck[W], nck[W], test[W],
      size[W];
  widen_lanes(B((zt_t - mz) * kb), xtd);
  widen_lanes(B((vt_t - mv) * kb), ytd);
  widen_lanes(sz, szd);
  widen_lanes(sv, svd);
  widen_lanes(wy, wyd);
  widen_lanes(wx, wxd);
  const double ulps = std::numeric_limits<double>::epsilon() /
                      static_cast<double>(std::numeric_limits<T>::epsilon());
  const DB wa(std::abs(static_cast<double>(alpha))), wb(std::abs(static_cast<double>(beta)));
  const DB two(2.0);
  auto logaddexp = [&](const DB& a, const DB& b) noexcept {
    return xsimd::max(a, b) + xsimd::log1p(exp_batch(DB(0.0) - xsimd::abs(a - b)));
  };
  for (std::size_t q = 0; q < W; q += WD) {
    // detail::dkd_direct in double lanes.
    const DB xt = DB::load_aligned(xtd + q), yt = DB::load_aligned(ytd + q);
    const DB sv_ = DB::load_aligned(svd + q);
    const DB lsz = log_batch(DB::load_aligned(szd + q)), lsv = log_batch(sv_);
    const DB wyq = DB::load_aligned(wyd + q), wxq = DB::load_aligned(wxd + q);
    const DB lz = logaddexp(xt, lsz), lv = logaddexp(yt, lsv);
    const DB lpt = xt - lz, l1pt = lsz - lz, lqt = yt - lv, l1qt = lsv - lv;
    const DB qt = exp_batch(lqt), q1t = exp_batch(l1qt), pt = exp_batch(lpt);
    const DB tckd = qt * (lqt - lpt) + q1t * (l1qt - l1pt);
    const DB nckd = (wyq - wxq) / sv_ + lsz - lsv;
    const DB mag_t =
        two * (xsimd::abs(qt - pt) + qt * q1t * xsimd::abs((lqt - l1qt) - (lpt - l1pt))) +
        DB(ulps) * (qt * xsimd::abs(lqt - lpt) + q1t * xsimd::abs(l1qt - l1pt));
    const DB mag_n = (xsimd::abs(wyq) + xsimd::abs(wxq)) / sv_ + two;
    tckd.store_aligned(tck + q);
    nckd.store_aligned(nck + q);
    (pt - qt).store_aligned(dd + q);
    (wa * tckd + wb * nckd).store_aligned(test + q);
    (wa * mag_t + wb * mag_n).store_aligned(size + q);
  }
  bool grad_ok[W];
  for (std::size_t c = 0; c < W; ++c) grad_ok[c] = true;
  if (dz != nullptr) {
    const B d = narrow_lanes<T, A>(dd);
    const B c1 = B(gs * k) * (B(beta) - B(alpha) * d) / sz;
    const B c2 = B(gs * k * beta) / sv;
    const B ct(gs * k * alpha);
    for (std::size_t row = 0; row < n; ++row) {
      e[row] =
          xsimd::select(tb == B(static_cast<T>(row)), ct * d, xsimd::fms(c1, e[row], c2 * f[row]));
    }
    store_tile(e, n, count, dz, dzs);
    alignas(64) T c1t[W], c2t[W];
    c1.store_aligned(c1t);
    c2.store_aligned(c2t);
    for (std::size_t c = 0; c < W; ++c) grad_ok[c] = std::isfinite(c1t[c]) && std::isfinite(c2t[c]);
    if (!std::isfinite(gs * k * alpha)) {
      for (std::size_t c = 0; c < W; ++c) grad_ok[c] = false;
    }
  }
  for (std::size_t c = 0; c < count; ++c) {
    r[c].tckd = tck[c];
    r[c].nckd = nck[c];
    if (!grad_ok[c] || !std::isfinite(tck[c]) || !std::isfinite(nck[c]) ||
        !detail::direct_is_accurate_in<T>(test[c], size[c], n, 1)) {
      column(c);
    }
  }
}

namespace detail {

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
    const B e = exp_batch((B::load_unaligned(z + i) - mzb) * kb);
    const B f = exp_batch((B::load_unaligned(v + i) - mvb) * kb);
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
/// q underflows); g is used relative to the student's top class (see the body). Three passes over
/// the column: (1) the exponentials and their sums (student's kept in dz, teacher's in scratch);
/// (2) ℓ, g and ⟨p, g⟩, p·g kept in scratch (in dz without scratch); (3) the gradient. Without dz
/// the exponentials are recomputed in pass 2, without scratch the teacher's in pass 2 and the
/// student's in pass 3. No allocation.
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
  const T dl =
      static_cast<T>(std::log(static_cast<double>(sz)) - std::log(static_cast<double>(sv)));
  const B mzb(mz), mvb(mv), kb(k), iszb(isz), isvb(isv), dlb(dl), mzvb(mz - mv);
  T* pg = fv != nullptr ? fv : dz;  // where p·g goes between passes 2 and 3 (null: loss only)
  // Where the student's top class ρ holds at least half the mass (p_ρ = 1/Σ e ≥ ½), g is taken
  // relative to its g_ρ: p_c·(g_c − ⟨p, g⟩) = p_c·((g_c − g_ρ) − ⟨p, g − g_ρ⟩), whose ρ term is
  // then exactly 0, so that the top element −p_ρ·Σ_{j≠ρ} p_j·(g_j − g_ρ) keeps its accuracy
  // where p_ρ ≈ 1.
  B gref(T(0));
  if (dz != nullptr && sz <= T(2)) {
    const std::size_t top = find_first<T, A>(z, n, mz);
    const B zt(z[top]), vt(v[top]);
    const B et = exp_batch((zt - mzb) * kb), ft = exp_batch((vt - mvb) * kb);
    B lt;
    elem(et * iszb, ft * isvb, xsimd::fms((zt - vt) - mzvb, kb, dlb), lt, gref);
  }
  B lacc(T(0)), dacc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B zi = load_n<B>(z + i, m, mz), vi = load_n<B>(v + i, m, mv);
    const B e = dz != nullptr ? load_n<B>(dz + i, m, T(0)) : exp_batch((zi - mzb) * kb);
    const B f = fv != nullptr ? load_n<B>(fv + i, m, T(0)) : exp_batch((vi - mvb) * kb);
    const B p = e * iszb;
    B l, g;
    // d from the logits' difference: exact-ish where z ≈ v (the maxima are close then too).
    elem(p, f * isvb, xsimd::fms((zi - vi) - mzvb, kb, dlb), l, g);
    const B pgv = keep_first(p * (g - gref), m);
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

}  // namespace detail

/// Jensen–Shannon on one column: D = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, p = softmax(k·z),
/// q = softmax(k·v); gradient gs·k·p_c·(g_c − ⟨p, g⟩), g_c = ½ log(p_c/m_c).
///
/// SIMD in T, everything per class from d = log p − log q = k(z − v − max z + max v) − (log Σ e^x
/// − log Σ e^y) (accurate where z ≈ v) and ρ = min(p, q)/max(p, q) = e^{−|d|} = 1 + expm1(−|d|):
/// with |r| = |p − q|/(p + q) = (1 − ρ)/(1 + ρ), the class's term is ¼(p + q)·h(|r|),
/// h(r) = (1+r)log(1+r) + (1−r)log(1−r) = 2(ln 2 − log(1 + ρ)) − (1 − |r|)·|d|, by its series
/// r² + r⁴/6 + r⁶/15 + … for small |r| (no cancellation when p ≈ q). The gradient uses
/// g_c = −½(max(−d, 0) + log((1 + ρ)/2)), log((1 + ρ)/2) = log cosh(|d|/2) − |d|/2: g is ~d/4 near
/// p = q without a constant of size ½ln 2 in it (whose rounding g − ⟨p, g⟩ would keep), finite
/// when p or q underflows. `scratch` (n values, may be null)
/// keeps the teacher's exponentials between passes; dz and scratch must not overlap z or v. A
/// column whose result is not finite although its logits are is recomputed by detail::js_wide.
template <class T, class A = default_arch>
double js_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept;

namespace detail {

/// js_column's per-class terms for detail::pq_column (see js_column). A functor rather than
/// a lambda so that its call operator is always inlined, at both of pq_column's call sites.
template <class B>
struct JsElem {
  using T = typename B::value_type;
  REGULA_ALWAYS_INLINE void operator()(const B& p, const B& q, const B& d, B& l,
                                       B& g) const noexcept {
    // Below this |r| the series (through r¹²) is exact to the type's precision.
    const B series_below(std::is_same_v<T, float> ? T(0.25) : T(0.0625));
    const B one(T(1)), two(T(2)), zero(T(0));
    const B ad = xsimd::abs(d);
    const B em = xsimd::expm1(-ad);      // ρ − 1
    const B i2 = one / (two + em);       // 1/(1 + ρ)
    const B ra = -em * i2;               // |r|
    const B om = two * (one + em) * i2;  // 1 − |r|
    // log((1 + ρ)/2) = log cosh(|d|/2) − |d|/2 ≤ 0: by the series of log cosh where the
    // series of h applies (|d|/2 < 0.26, no cancellation: log cosh y ≤ y²/2), else the direct
    // log, whose argument is below 0.8 there (one log: cheaper than log1p's two divisions).
    const auto small = ra < series_below;
    const B y = T(0.5) * ad, y2 = y * y;
    const B lc =
        y2 * xsimd::fma(xsimd::fma(xsimd::fma(xsimd::fma(xsimd::fma(y2, B(T(-691) / T(935550)),
                                                                    B(T(31) / T(14175))),
                                                         y2, B(T(-17) / T(2520))),
                                              y2, B(T(1) / T(45))),
                                   y2, B(T(-1) / T(12))),
                        y2, B(T(0.5)));
    const B tp = xsimd::select(small, lc - y, log_batch(one + T(0.5) * em));
    const B u = ra * ra;
    const B poly =
        xsimd::fma(xsimd::fma(xsimd::fma(xsimd::fma(xsimd::fma(u, B(T(1) / T(66)), B(T(1) / T(45))),
                                                    u, B(T(1) / T(28))),
                                         u, B(T(1) / T(15))),
                              u, B(T(1) / T(6))),
                   u, one);
    const B h = xsimd::select(small, u * poly, xsimd::fnma(two, tp, -(om * ad)));
    l = T(0.25) * (p + q) * h;
    g = T(-0.5) * (xsimd::max(-d, zero) + tp);
  }
};

}  // namespace detail

template <class T, class A>
double js_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept {
  const double loss =
      detail::pq_column<T, A>(z, v, n, k, gs, dz, scratch, detail::JsElem<xsimd::batch<T, A>>{});
  return detail::finite_or_wide(z, v, n, loss, &detail::js_wide<T>, static_cast<detail::wide>(k),
                                static_cast<detail::wide>(gs), dz);
}

/// Scalar reference of js_column, per element in double (probabilities from log-sum-exp,
/// log m_c = logaddexp(log p_c, log q_c) − ln 2), and js_column's fallback.
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
    const double lm = detail::logaddexp(lp, lq) - ln2;
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
  return detail::finite_or_wide(z, v, n, loss, &detail::js_wide<T>, static_cast<detail::wide>(k),
                                static_cast<detail::wide>(gs), dz);
}

namespace detail {

/// detail::pq_column over a tile (the layout and contract of kd_kl_tile), one column per lane:
/// the maxima, the exponentials and their sums, d = log p − log q from the logits' difference,
/// `elem`'s ℓ and g in class order, g relative to the student's top class where that class holds
/// at least half the mass (as pq_column), and the gradient gs·k·(p·(g − g_ρ) − ⟨p, g − g_ρ⟩·p).
/// A lane whose result is not finite is recomputed by `column(c)` (the per-column kernel and its
/// wide fallback). Every lane computes what pq_column computes, with the sums in another order.
template <class T, class A, class Elem, class Column>
REGULA_ALWAYS_INLINE void pq_tile(const T* z, std::size_t zs, const T* v, std::size_t vs,
                                  std::size_t n, std::size_t count, T k, T gs, T* dz,
                                  std::size_t dzs, double* d, Elem&& elem,
                                  Column&& column) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  const B kb(k);
  B mz = zt.row(0), mv = vt.row(0);
  for (std::size_t r = 1; r < n; ++r) {
    mz = xsimd::max(mz, zt.row(r));
    mv = xsimd::max(mv, vt.row(r));
  }
  B e[tile_rows], f[tile_rows];
  B sz = B(T(0)), sv = B(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    e[r] = exp_batch((zt.row(r) - mz) * kb);
    f[r] = exp_batch((vt.row(r) - mv) * kb);
    sz += e[r];
    sv += f[r];
  }
  // dl = log Σ e − log Σ f in double, rounded to T, as pq_column's.
  B dl;
  if constexpr (std::is_same_v<T, double>) {
    dl = log_batch(sz) - log_batch(sv);
  } else {
    alignas(64) double lz[W], lv[W];
    widen_lanes(sz, lz);
    widen_lanes(sv, lv);
    for (std::size_t q = 0; q < W; q += DB::size) {
      (log_batch(DB::load_aligned(lz + q)) - log_batch(DB::load_aligned(lv + q)))
          .store_aligned(lz + q);
    }
    dl = narrow_lanes<T, A>(lz);
  }
  const B isz = B(T(1)) / sz, isv = B(T(1)) / sv, mzv = mz - mv;
  B gref = B(T(0));
  if (dz != nullptr) {
    // The student's top class ρ of each lane (its first maximum), whose g is the reference
    // where p_ρ ≥ ½.
    B ztop = zt.row(0), vtop = vt.row(0);
    auto found = zt.row(0) == mz;
    for (std::size_t r = 1; r < n; ++r) {
      const auto here = !found && (zt.row(r) == mz);
      ztop = xsimd::select(here, zt.row(r), ztop);
      vtop = xsimd::select(here, vt.row(r), vtop);
      found = found || here;
    }
    B lt, gt;
    elem(exp_batch((ztop - mz) * kb) * isz, exp_batch((vtop - mv) * kb) * isv,
         xsimd::fms((ztop - vtop) - mzv, kb, dl), lt, gt);
    gref = xsimd::select(sz <= B(T(2)), gt, B(T(0)));
  }
  B lacc = B(T(0)), dacc = B(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    const B p = e[r] * isz;
    B l, g;
    elem(p, f[r] * isv, xsimd::fms((zt.row(r) - vt.row(r)) - mzv, kb, dl), l, g);
    lacc += l;
    f[r] = p * (g - gref);  // p·g, kept for the gradient
    dacc += f[r];
  }
  if (dz != nullptr) {
    const B c1(gs * k);
    const B c2 = c1 * dacc * isz;
    for (std::size_t r = 0; r < n; ++r) e[r] = xsimd::fms(c1, f[r], c2 * e[r]);
    store_tile(e, n, count, dz, dzs);
  }
  finish_lanes(lacc, count, d, column);
}

}  // namespace detail

/// js_column over a tile (the layout and contract of kd_kl_tile; float and double): each lane
/// computes what js_column computes (detail::pq_tile with js_column's per-class terms), so every
/// column keeps js_column's accuracy, to a few ulps of it (the sums run in another order); a
/// lane whose result is not finite is recomputed by js_column.
template <class T, class A = default_arch>
void js_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
             std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  alignas(64) T scratch[tile_rows];
  detail::pq_tile<T, A>(z, zs, v, vs, n, count, k, gs, dz, dzs, d,
                        detail::JsElem<xsimd::batch<T, A>>{}, [&](std::size_t c) noexcept {
                          d[c] = js_column<T, A>(z + c * zs, v + c * vs, n, k, gs,
                                                 dz != nullptr ? dz + c * dzs : nullptr, scratch);
                        });
}

namespace detail {

/// TV's sums over a column's terms(i, m, p, p − q, jc) (p zero past m): returns D = ½Σ|p − q|
/// and sets the student's masses where p > q, p < q and p = q (a NaN difference makes them NaN).
template <class T, class A, class Terms, class J>
REGULA_ALWAYS_INLINE double tv_sums(const Terms& terms, J jc, std::size_t n, T& pp, T& pn,
                                    T& p0) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B zero(T(0));
  B lacc(T(0)), pos(T(0)), neg(T(0)), tie(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    B p, diff;
    terms(i, n - i, p, diff, jc);
    lacc += xsimd::abs(diff);
    pos += xsimd::select(diff > zero, p, zero);
    neg += xsimd::select(diff < zero, p, zero);
    tie += xsimd::select(diff == zero, p, zero);
    tie += diff * T(0);  // a NaN difference makes every coefficient NaN
  }
  pp = hsum(pos);
  pn = hsum(neg);
  p0 = hsum(tie);
  return 0.5 * static_cast<double>(hsum(lacc));
}

/// TV's (sub)gradient gs·k·p·(s − ⟨p, s⟩) from the masses of tv_sums (see tv_column).
template <class T, class A, class Terms, class J>
REGULA_ALWAYS_INLINE void tv_gradient(const Terms& terms, J jc, std::size_t n, T pp, T pn, T p0,
                                      T gs, T k, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B zero(T(0));
  const B cpos(pn + T(0.5) * p0), cneg(-(pp + T(0.5) * p0)), czero(T(0.5) * (pn - pp));
  const B c(gs * k);
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    B p, diff;
    terms(i, m, p, diff, jc);
    const B coef =
        xsimd::select(diff > zero, cpos, xsimd::select(diff < zero, cneg, czero + diff * T(0)));
    detail::store_n(dz + i, m, B(c * p * coef));
  }
}

/// tv_accurate's loss and gradient over the column's terms.
template <class T, class A, class Terms, class J>
REGULA_ALWAYS_INLINE double tv_finish(const Terms& terms, J jc, std::size_t n, T gs, T k,
                                      T* dz) noexcept {
  T pp, pn, p0;
  const double loss = tv_sums<T, A>(terms, jc, n, pp, pn, p0);
  if (dz != nullptr) tv_gradient<T, A>(terms, jc, n, pp, pn, p0, gs, k, dz);
  return loss;
}

/// tv_column's cancellation-free path (see there), given the column maxima.
template <class T, class A>
double tv_accurate(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch, T mz,
                   T mv) noexcept {
  using B = xsimd::batch<T, A>;
  T* gv = dz != nullptr ? scratch : nullptr;
  detail::KlSums<T> acc;
  double s = 0.0;
  detail::KlMoments mo;
  bool joint = false;
  for (int pass = 0; pass < 2; ++pass) {
    acc = {};
    joint = detail::kl_joint(mz, mv, k, k);
    detail::kl_pass<T, A, detail::KlTerm::none>(z, v, 0, n, mz, mv, k, k, joint, dz, gv, acc);
    s = static_cast<double>(acc.s);
    mo = detail::kl_moments(s, static_cast<double>(acc.w), static_cast<double>(acc.f));
    if (pass == 1 || !detail::kl_recentre(mo)) break;
    mv = static_cast<T>(static_cast<double>(mv) + mo.log1p / static_cast<double>(k));
  }
  const B Mb(static_cast<T>(mo.M)), Ob(static_cast<T>(mo.onep)), iszb(T(1) / acc.s);
  const B cq(static_cast<T>(1.0 / (s * mo.onep))), split(detail::kl_split<T>);
  // p and p − q of lanes i..i+m (detail::kl_combine's forms): e from dz and the stored w or
  // f from scratch, or both recomputed.
  // (jc: joint as a std::bool_constant, so that the loops below carry no branch on it.)
  const auto terms = [&](std::size_t i, std::size_t m, B& p, B& diff, auto jc) noexcept {
    constexpr bool J = decltype(jc)::value;
    B e, g;
    if (gv != nullptr) {
      e = detail::load_n<B>(dz + i, m, T(0));
      g = detail::load_n<B>(gv + i, m, T(0));
    } else {
      B w, f, eh, er;
      detail::kl_batch<detail::KlTerm::none, J, true, B>(z + i, v + i, m, mz, mv, k, k, {}, e, w, f,
                                                         eh, er, g);
    }
    const B zi = detail::load_n<B>(z + i, m, mz), vi = detail::load_n<B>(v + i, m, mv);
    const B u = detail::kl_u(zi, vi, B((zi - B(mz)) * B(k)), mz, mv, k, k, J);
    p = detail::keep_first(e * iszb, m);
    diff = xsimd::fms(e, xsimd::select(xsimd::abs(u) < split, Mb, Ob), g) * cq;
  };
  return joint ? tv_finish<T, A>(terms, std::true_type{}, n, gs, k, dz)
               : tv_finish<T, A>(terms, std::false_type{}, n, gs, k, dz);
}

}  // namespace detail

/// Total variation on one column: D = ½ Σ_c |p_c − q_c|; (sub)gradient gs·k·p_c·(s_c − ⟨p, s⟩)
/// with s_c = ½·sign(p_c − q_c), sign(0) = 0. SIMD in T. p − q is the difference of the two
/// exponentials when D passes detail::direct_is_accurate, else the column is recomputed with
/// p − q formed as in kd_kl_column, p_c·(M − t_c)/(1 + M) with t = expm1(u) and u the log-ratio
/// from the logits' difference, which keeps its relative accuracy (and its sign) where q ≈ p. With
/// P₊, P₋, P₀ the student's mass where p > q, p < q, p = q (they sum to 1): s_c − ⟨p, s⟩ = P₋ +
/// ½P₀, −(P₊ + ½P₀) or ½(P₋ − P₊) for s_c = ½, −½, 0, which avoids the cancellation of ½ − ⟨p, s⟩
/// when p concentrates where p > q. `scratch` (n values, may be null) keeps e·t between the
/// passes; dz and scratch must not overlap z or v. A column whose result is not finite
/// although its logits are is recomputed by detail::tv_wide.
template <class T, class A = default_arch>
double tv_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept;

namespace detail {

/// tv_column before its test for a non-finite result.
template <class T, class A>
REGULA_ALWAYS_INLINE double tv_column_body(const T* z, const T* v, std::size_t n, T k, T gs, T* dz,
                                           T* scratch) noexcept {
  using B = xsimd::batch<T, A>;
  const T mz = column_max<T, A>(z, n);
  const T mv = column_max<T, A>(v, n);
  T* fv = dz != nullptr ? scratch : nullptr;
  T sz = T(0), sv = T(0);
  detail::exp_sums<T, A>(z, v, n, mz, mv, k, dz, fv, sz, sv);
  const B mzb(mz), mvb(mv), kb(k), iszb(T(1) / sz), isvb(T(1) / sv);
  // p and p − q of lanes i..i+m from the two exponentials (stored by exp_sums or recomputed);
  // with `zeroed` (the sums) p and q are zero past m, the gradient stores only m lanes.
  const auto terms = [&](std::size_t i, std::size_t m, B& p, B& diff, auto zeroed) noexcept {
    const B e = dz != nullptr ? detail::load_n<B>(dz + i, m, T(0))
                              : exp_batch((detail::load_n<B>(z + i, m, mz) - mzb) * kb);
    const B f = fv != nullptr ? detail::load_n<B>(fv + i, m, T(0))
                              : exp_batch((detail::load_n<B>(v + i, m, mv) - mvb) * kb);
    if constexpr (decltype(zeroed)::value) {
      p = detail::keep_first(e * iszb, m);
      diff = p - detail::keep_first(f * isvb, m);
    } else {
      p = e * iszb;
      diff = p - f * isvb;
    }
  };
  T pp, pn, p0;
  const double loss = detail::tv_sums<T, A>(terms, std::true_type{}, n, pp, pn, p0);
  // Σ|p − q| has no cancellation, but each |p_c − q_c| carries roundings of p_c and q_c.
  if (!detail::direct_is_accurate<T, A>(loss, 2.0, n)) {
    return detail::tv_accurate<T, A>(z, v, n, k, gs, dz, scratch, mz, mv);
  }
  if (dz != nullptr) detail::tv_gradient<T, A>(terms, std::false_type{}, n, pp, pn, p0, gs, k, dz);
  return loss;
}

}  // namespace detail

template <class T, class A>
double tv_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* scratch) noexcept {
  const double loss = detail::tv_column_body<T, A>(z, v, n, k, gs, dz, scratch);
  return detail::finite_or_wide(z, v, n, loss, &detail::tv_wide<T>, static_cast<detail::wide>(k),
                                static_cast<detail::wide>(gs), dz);
}

/// tv_column over a tile (the layout and contract of kd_kl_tile): each lane forms p and p − q from
/// the fused exponentials, D = ½ Σ|p − q| and the masses of p where p − q is positive, negative
/// or zero, in class order, and the (sub)gradient gs·k·p·(s − ⟨p, s⟩) from them, as tv_column's
/// direct path; a lane whose rounding test fails or whose result is not finite is recomputed by
/// tv_column.
template <class T, class A = default_arch>
void tv_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
             std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  alignas(64) T scratch[tile_rows];
  auto column = [&](std::size_t c) noexcept {
    d[c] = tv_column<T, A>(z + c * zs, v + c * vs, n, k, gs, dz != nullptr ? dz + c * dzs : nullptr,
                           scratch);
  };
  if constexpr (std::is_same_v<T, double>) {
    for (std::size_t c = 0; c < count; ++c) column(c);
    return;
  }
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  detail::FusedTile<T, A, detail::TileWeights::none> t(zt, vt, n, B(k), B(k));
  const B zero(T(0));
  const B isz = B(T(1)) / t.sz, isv = B(T(1)) / t.sv;
  B diff[tile_rows];
  B l(T(0)), pos(T(0)), neg(T(0)), tie(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    t.e[r] *= isz;  // p
    diff[r] = t.e[r] - t.f[r] * isv;
    l += xsimd::abs(diff[r]);
    pos += xsimd::select(diff[r] > zero, t.e[r], zero);
    neg += xsimd::select(diff[r] < zero, t.e[r], zero);
    tie += xsimd::select(diff[r] == zero, t.e[r], zero);
    tie += diff[r] * T(0);  // a NaN difference makes every coefficient NaN
  }
  alignas(64) T lt[W];
  l.store_aligned(lt);
  if (dz != nullptr) {
    const B cpos = neg + B(T(0.5)) * tie, cneg = -(pos + B(T(0.5)) * tie);
    const B czero = B(T(0.5)) * (neg - pos);
    const B c(gs * k);
    for (std::size_t r = 0; r < n; ++r) {
      const B coef = xsimd::select(diff[r] > zero, cpos,
                                   xsimd::select(diff[r] < zero, cneg, czero + diff[r] * T(0)));
      t.e[r] = c * t.e[r] * coef;
    }
    store_tile(t.e, n, count, dz, dzs);
  }
  for (std::size_t c = 0; c < count; ++c) {
    d[c] = 0.5 * static_cast<double>(lt[c]);
    if (!std::isfinite(d[c]) || !detail::direct_is_accurate_in<T>(d[c], 2.0, n, 1)) column(c);
  }
}

/// Scalar reference of tv_column, per element in double, and tv_column's fallback.
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
  return detail::finite_or_wide(z, v, n, loss, &detail::tv_wide<T>, static_cast<detail::wide>(k),
                                static_cast<detail::wide>(gs), dz);
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
  double s = static_cast<double>(hsum(acc));
  for (; i < n; ++i) {
    const T d = z[i] - v[i];
    s += static_cast<double>(d * d);
    if (dz != nullptr) dz[i] = gs * T(2) * d;
  }
  return s;
}

namespace detail {

/// One batch of BinaryKL: ℓ = KL(Bern(σ(b)) ‖ Bern(σ(a))) and g = σ(a) − σ(b), given also
/// d = a − b formed from the logits' difference (k·(z − v), exact where z ≈ v, which the
/// difference of the rounded a and b is not).
///
/// ℓ is unchanged and g changes sign under (a, b) → (−a, −b), so the lanes are first turned to
/// b ≤ 0 (σ(b) ≤ ½). Where then |δ| ≤ 16 and b ≥ −64 (almost always), with δ = a − b and
/// u = σ(b)·expm1(δ) (so that 1 + e^a = (1 + e^b)(1 + u)): g = (1 − σ(b))·u/(1 + u) and
/// ℓ = log1p(u) − σ(b)·δ, which is the Bernoulli cumulant series Σ_{m≥2} κ_m δ^m/m! (κ₂ = σ(1−σ),
/// …), summed through δ⁷ for small |δ| where the two terms would cancel. The other lanes are
/// only evaluated for batches that have one: for |δ| ≤ 16 and b < −64 the same forms with
/// σ(b) = e^b/(1 + e^b) (e^{−b} would overflow); for |δ| > 16 the form of
/// detail::bernoulli_kl's |δ| > 1 branch, ℓ = σ(b)·ℓ₁ + σ(−b)·ℓ₂ with ℓ₁ = sp(−a) − sp(−b),
/// ℓ₂ = sp(a) − sp(b) (sp = softplus), g = σ(a) − σ(b): no term of the size of |a| cancels
/// (σ(b)(b − a) + sp(a) − sp(b) does where σ(b) rounds to 1 and a is far beyond b), and
/// nothing forms 0·inf or inf − inf for finite a and b.
/// binary_kl_batch's ℓ and g (sign restored) of lanes with |δ| ≤ 16, given the turned δ, its
/// absolute value, σ(b) = sb and 1 − σ(b) = sbc.
template <class B, class M>
REGULA_ALWAYS_INLINE void binary_kl_near(const B& delta, const B& ad, const M& flip, const B& sb,
                                         const B& sbc, B& ln, B& gn) noexcept {
  using T = typename B::value_type;
  const B one(T(1));
  const B u = sb * xsimd::expm1(delta);
  const B w = one + u;
  const B iw = one / w;
  const B l1pu = log_batch(w) + (u - (w - one)) * iw;  // log1p(u) from the rounded 1 + u
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
  ln = xsimd::select(ad < series_below, delta * delta * ser, xsimd::fnma(sb, delta, l1pu));
  const B gf = sbc * u * iw;
  gn = xsimd::select(flip, -gf, gf);
}

template <class B>
REGULA_ALWAYS_INLINE void binary_kl_batch(const B& a, const B& b, const B& d, B& l, B& g) noexcept {
  using T = typename B::value_type;
  const B one(T(1)), zero(T(0)), sixteen(T(16));
  const auto flip = b > zero;
  const B bs = xsimd::select(flip, -b, b);
  const B delta = xsimd::select(flip, -d, d);
  const B ad = xsimd::abs(delta);
  const auto fast = (ad <= sixteen) && (bs >= B(T(-64)));
  const B eb = exp_batch(-bs);
  const B sb = one / (one + eb);  // σ(b) ≤ ½
  binary_kl_near(delta, ad, flip, sb, eb * sb, l, g);
  if (xsimd::all(fast)) return;
  const B ep = exp_batch(bs);  // e^b ≤ 1
  const B ip = one / (one + ep);
  const B s = ep * ip;  // σ(b) for any b ≤ 0; ip = σ(−b)
  B lnear, gnear;
  binary_kl_near(delta, ad, flip, s, ip, lnear, gnear);
  // |δ| > 16: a turned as b; sp(a) = a⁺ + log1p(e^{−|a|}), sp(−a) = log1p(e^{−|a|}) for a > 0.
  const B as = xsimd::select(flip, -a, a);
  const B ea = exp_batch(-xsimd::abs(as));
  const B la = xsimd::log1p(ea), lb = xsimd::log1p(ep);  // lb = sp(b)
  const auto apos = as > zero;
  const B l2 = xsimd::select(apos, as + la, la) - lb;
  const B l1 = xsimd::select(apos, (la + bs) - lb, l2 - delta);  // a ≤ 0: |ℓ₂| ≤ |δ|/2
  const B lf = xsimd::fma(s, l1, ip * l2);
  const B lfar = xsimd::select(lf < zero, zero, lf);  // a last guard; NaN stays NaN
  const B ia = one / (one + ea);
  const B gfar = xsimd::select(apos, ia, ea * ia) - s;
  const auto far = ad > sixteen;  // false for NaN, which then flows through `near`
  l = xsimd::select(fast, l, xsimd::select(far, lfar, lnear));
  g = xsimd::select(fast, g, xsimd::select(far, xsimd::select(flip, -gfar, gfar), gnear));
}

/// binary_kl_column's fallback: Σ_c bernoulli_kl in long double of b = k·v_c, δ = k·(z_c − v_c),
/// and gs·k·(σ(k·z) − σ(k·v)) in dz when not null.
template <class T>
REGULA_KD_COLD double binary_kl_wide(const T* z, const T* v, std::size_t n, wide k, wide gs,
                                     T* dz) noexcept {
  wide s = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const wide zi = static_cast<wide>(z[i]), vi = static_cast<wide>(v[i]);
    wide g = 0.0L;
    s += bernoulli_kl<wide>(k * vi, k * (zi - vi), g);
    if (dz != nullptr) dz[i] = static_cast<T>(gs * k * g);
  }
  return static_cast<double>(s);
}

/// binary_kl_norm_column's fallback: Σ_c log cosh u_c in long double, u = k·(z − v)/2
/// (log1p(t²/(2(1 + t))), t = expm1(|u|), below |u| = 40; |u| − ln 2 + log1p(e^{−2|u|}) above),
/// and gs·(k/2)·tanh(u) in dz when not null.
template <class T>
REGULA_KD_COLD double binary_kl_norm_wide(const T* z, const T* v, std::size_t n, wide k, wide gs,
                                          T* dz) noexcept {
  const wide ln2 = 0.693147180559945309417232121458176568L;
  wide s = 0.0L;
  for (std::size_t i = 0; i < n; ++i) {
    const wide u = 0.5L * k * (static_cast<wide>(z[i]) - static_cast<wide>(v[i]));
    const wide au = std::fabs(u);
    if (au < 40.0L) {
      const wide t = std::expm1(au);
      s += std::log1p(t * t / (2.0L * (1.0L + t)));
    } else {
      s += (au - ln2) + std::log1p(std::exp(-2.0L * au));
    }
    if (dz != nullptr) dz[i] = static_cast<T>(gs * 0.5L * k * std::tanh(u));
  }
  return static_cast<double>(s);
}

}  // namespace detail

/// Binary KL (DHKD's BinaryKL) on one column: D = Σ_c KL(Bern(σ(k·v_c)) ‖ Bern(σ(k·z_c))),
/// gradient gs·k·(σ(k·z) − σ(k·v)); SIMD in T, never negative and never NaN for finite logits
/// (formulas at detail::binary_kl_batch). A column whose result is not finite although its
/// logits are (k·z or a term past the largest T) is recomputed by detail::binary_kl_wide.
template <class T, class A = default_arch>
double binary_kl_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B kb(k), gkb(gs * k);
  B acc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B zi = detail::load_n<B>(z + i, m, T(0)), vi = detail::load_n<B>(v + i, m, T(0));
    B l, g;
    detail::binary_kl_batch(zi * kb, vi * kb, (zi - vi) * kb, l, g);
    acc += detail::keep_first(l, m);
    if (dz != nullptr) detail::store_n(dz + i, m, B(gkb * g));
  }
  return detail::finite_or_wide(z, v, n, static_cast<double>(hsum(acc)), &detail::binary_kl_wide<T>,
                                static_cast<detail::wide>(k), static_cast<detail::wide>(gs), dz);
}

/// Scalar reference of binary_kl_column, per element in double: KL = σ(b)·(softplus(−a) −
/// softplus(−b)) + σ(−b)·(softplus(a) − softplus(b)) with a = k·z, b = k·v (the definition
/// σ(b)·log(σ(b)/σ(a)) + (1 − σ(b))·log((1 − σ(b))/(1 − σ(a))), whose terms stay finite for
/// finite a and b), and binary_kl_column's fallback.
template <class T>
double binary_kl_column_reference(const T* z, const T* v, std::size_t n, T k, T gs,
                                  T* dz) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(z[i] * k), b = static_cast<double>(v[i] * k);
    const auto softplus = [](double x) {
      return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    };
    const auto sigmoid = [](double x) {
      return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    };
    const double sb = sigmoid(b);
    s += sb * (softplus(-a) - softplus(-b)) + sigmoid(-b) * (softplus(a) - softplus(b));
    if (dz != nullptr) dz[i] = static_cast<T>(static_cast<double>(gs * k) * (sigmoid(a) - sb));
  }
  return detail::finite_or_wide(z, v, n, s, &detail::binary_kl_wide<T>,
                                static_cast<detail::wide>(k), static_cast<detail::wide>(gs), dz);
}

namespace detail {

/// One batch of BinaryKL-Norm's terms at u (binary_kl_norm_column): lc = log cosh u and
/// th = tanh u.
template <class B>
REGULA_ALWAYS_INLINE void binary_kl_norm_batch(const B& u, B& lc, B& th) noexcept {
  using T = typename B::value_type;
  const B one(T(1)), two(T(2)), zero(T(0));
  const B big(std::is_same_v<T, float> ? T(9) : T(19));
  const B ln2(T(0.69314718055994530942));
  const B au = xsimd::abs(u);
  const auto large = au > big;  // false for NaN, which then flows through expm1
  const B t = xsimd::expm1(xsimd::select(large, big, au));
  const B w = t * (t + two);  // e^{2|u|} − 1
  lc = xsimd::select(large, au - ln2, xsimd::log1p(t * t / (two * (one + t))));
  const B ta = xsimd::select(large, one, w / (w + two));
  th = xsimd::select(u < zero, -ta, ta);
}

}  // namespace detail

/// BinaryKL-Norm (DHKD) on one column: D = Σ_c log cosh(u_c), u = k·(z − v)/2, i.e. DHKD's
/// Bernoulli KL of σ(k·(z − v)) from ½ before its clamp; gradient gs·(k/2)·tanh(u). SIMD in T:
/// with t = expm1(|u|), log cosh u = log1p(t²/(2(1 + t))) and tanh|u| = t(t + 2)/(t(t + 2) + 2),
/// accurate for small u (cosh u − 1 without cancellation); above |u| = 9 (float) or 19 (double)
/// tanh|u| rounds to 1 and log cosh u = |u| − ln 2 to the type's precision. Finite for any
/// finite u; a column whose result is not finite although its logits are (u past the largest
/// T) is recomputed by detail::binary_kl_norm_wide.
template <class T, class A = default_arch>
double binary_kl_norm_column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B hb(T(0.5) * k), ghb(gs * T(0.5) * k);
  B acc(T(0));
  for (std::size_t i = 0; i < n; i += W) {
    const std::size_t m = n - i;
    const B u = hb * (detail::load_n<B>(z + i, m, T(0)) - detail::load_n<B>(v + i, m, T(0)));
    B lc, th;
    detail::binary_kl_norm_batch(u, lc, th);
    acc += detail::keep_first(lc, m);
    if (dz != nullptr) detail::store_n(dz + i, m, B(ghb * th));
  }
  return detail::finite_or_wide(z, v, n, static_cast<double>(hsum(acc)),
                                &detail::binary_kl_norm_wide<T>, static_cast<detail::wide>(k),
                                static_cast<detail::wide>(gs), dz);
}

/// Scalar reference of binary_kl_norm_column, per element in double: |u| + log1p(exp(−2|u|))
/// − ln 2 and tanh(u), and binary_kl_norm_column's fallback.
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
  return detail::finite_or_wide(z, v, n, s, &detail::binary_kl_norm_wide<T>,
                                static_cast<detail::wide>(k), static_cast<detail::wide>(gs), dz);
}

namespace detail {

/// The cross-column kernels of the losses that are sums of per-class terms (BinaryKL,
/// BinaryKL-Norm, logit MSE) over a tile (the layout of kd_kl_tile; float and double): lane c's
/// loss d[c] = Σ_r ℓ_r in class order and its gradient g_r, from `elem(z_r, v_r, ℓ, g)` on the
/// rows, the same per-element operations as the per-column kernel: every gradient element is
/// the per-column kernel's, bit for bit, and the loss agrees to a few ulps (another order of
/// the sum). A lane whose loss is not finite is recomputed by `column(c)`.
template <class T, class A, class Elem, class Column>
REGULA_ALWAYS_INLINE void sum_tile(const T* z, std::size_t zs, const T* v, std::size_t vs,
                                   std::size_t n, std::size_t count, T* dz, std::size_t dzs,
                                   double* d, Elem&& elem, Column&& column) noexcept {
  using B = xsimd::batch<T, A>;
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> vt(v, vs, n, count);
  B g[tile_rows];
  B acc = B(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    B l;
    elem(zt.row(r), vt.row(r), l, g[r]);
    acc += l;
  }
  if (dz != nullptr) store_tile(g, n, count, dz, dzs);
  finish_lanes(acc, count, d, column);
}

}  // namespace detail

/// binary_kl_column over a tile (detail::sum_tile): gradients bitwise binary_kl_column's.
template <class T, class A = default_arch>
void binary_kl_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                    std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  const B kb(k), gkb(gs * k);
  detail::sum_tile<T, A>(
      z, zs, v, vs, n, count, dz, dzs, d,
      [&](const B& zi, const B& vi, B& l, B& g) noexcept {
        detail::binary_kl_batch(zi * kb, vi * kb, (zi - vi) * kb, l, g);
        g = gkb * g;
      },
      [&](std::size_t c) noexcept {
        d[c] = binary_kl_column<T, A>(z + c * zs, v + c * vs, n, k, gs,
                                      dz != nullptr ? dz + c * dzs : nullptr);
      });
}

/// binary_kl_norm_column over a tile (detail::sum_tile): gradients bitwise
/// binary_kl_norm_column's.
template <class T, class A = default_arch>
void binary_kl_norm_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                         std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  const B hb(T(0.5) * k), ghb(gs * T(0.5) * k);
  detail::sum_tile<T, A>(
      z, zs, v, vs, n, count, dz, dzs, d,
      [&](const B& zi, const B& vi, B& l, B& g) noexcept {
        detail::binary_kl_norm_batch(B(hb * (zi - vi)), l, g);
        g = ghb * g;
      },
      [&](std::size_t c) noexcept {
        d[c] = binary_kl_norm_column<T, A>(z + c * zs, v + c * vs, n, k, gs,
                                           dz != nullptr ? dz + c * dzs : nullptr);
      });
}

/// logit_mse_column over a tile (detail::sum_tile): gradients bitwise logit_mse_column's.
template <class T, class A = default_arch>
void logit_mse_tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                    std::size_t count, T gs, T* dz, std::size_t dzs, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  const B g2(gs * T(2));
  detail::sum_tile<T, A>(
      z, zs, v, vs, n, count, dz, dzs, d,
      [&](const B& zi, const B& vi, B& l, B& g) noexcept {
        const B e = zi - vi;
        l = e * e;
        g = g2 * e;
      },
      [&](std::size_t c) noexcept {
        d[c] = logit_mse_column<T, A>(z + c * zs, v + c * vs, n, gs,
                                      dz != nullptr ? dz + c * dzs : nullptr);
      });
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_KD_HPP
