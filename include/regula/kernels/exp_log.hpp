/// @file
/// The exponential and the logarithm of a SIMD batch, regula's own for float (the kernels'
/// exp-bound passes use them; double goes to xsimd).
///
/// exp_batch:  e^x = 2^n · e^r,   n = round(x / ln 2),   r = x − n·ln 2 ∈ [−ln2/2, ln2/2],
///
/// n by the round-to-nearest of adding 1.5·2^23 (one FMA, which also leaves n in the low bits
/// of the sum), r by two FMAs against ln 2 split in a 15-bit head and its tail (Cody–Waite,
/// n·ln2_hi exact for |n| < 2^8), e^r = 1 + r + r²·P(r) with P the degree-5 minimax polynomial of
/// Moshier's Cephes expf, and 2^n applied with one rounding (simd::times_pow2: vscalefps on
/// AVX-512, else the exponent field, or two exact powers of two where a lane's result is
/// subnormal or overflows), so that the results down to −103.97 (subnormal) and the overflow to
/// +inf (x > 88.72) are right without a select.
///
/// Accuracy: at most 1 ulp from e^x rounded to float for every one of the 2^32 floats x (against
/// std::exp in double; scripts/check_exp_log.cpp, run for SSE2, AVX2 and AVX-512), and the
/// tests check the subnormal range, the boundaries and a stride of the rest per instruction set
/// (tests/kernels/exp_log_cases.hpp); +inf above ln(FLT_MAX), +0 below −103.98, NaN for NaN.
/// xsimd 8.1's float exp returns 0 below −88.38 where the result is subnormal (up to 5.9e6 ulp
/// off at −87.68). Bits can differ between instruction sets without FMA (SSE2 rounds a·b + c
/// twice), as xsimd's do.
///
/// log_batch:  log x = e·ln 2 + log(1 + f),   x = 2^e·(1 + f),   1 + f ∈ [√½, √2),
///
/// e and 1 + f from the bits of x (subnormal x first scaled by 2^25), log(1 + f) = f − f²/2 +
/// f³·Q(f) with Q the degree-8 polynomial of Cephes' logf, e·ln 2 added in two parts. At most
/// 1 ulp for every positive float (the same check); log 0 = −inf, log of a negative number or NaN
/// is NaN, log inf = inf.
#ifndef REGULA_KERNELS_EXP_LOG_HPP
#define REGULA_KERNELS_EXP_LOG_HPP

#include <cstdint>
#include <limits>

#include "regula/core/simd.hpp"

namespace regula::kernels {

/// e^x lane by lane (float: regula's own, see the file comment).
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> exp_batch(const xsimd::batch<float, A>& x) noexcept {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  // The clamp keeps n within [−150, 129] (e^x is 0 or inf beyond); with the input as the second
  // operand of min and max, a NaN passes through both.
  const B xc = xsimd::max(B(-104.0f), xsimd::min(B(89.0f), x));
  const B magic(0x1.8p23f);
  const B t = xsimd::fma(xc, B(0x1.715476p0f), magic);  // x·log2(e) + 1.5·2^23, rounded
  const B n = t - magic;
  B r = xsimd::fnma(n, B(0x1.62e4p-1f), xc);  // ln2_hi = 0.693145751953125 (15 bits)
  r = xsimd::fnma(n, B(0x1.7f7d1cp-20f), r);  // ln2_lo = ln 2 − ln2_hi
  B p(1.9875691500e-4f);
  p = xsimd::fma(p, r, B(1.3981999507e-3f));
  p = xsimd::fma(p, r, B(8.3334519073e-3f));
  p = xsimd::fma(p, r, B(4.1665795894e-2f));
  p = xsimd::fma(p, r, B(1.6666665459e-1f));
  p = xsimd::fma(p, r, B(5.0000001201e-1f));
  p = xsimd::fma(p, r * r, r) + B(1.0f);
  // n also as an integer, from the low bits of t.
  const I ni = xsimd::bitwise_cast<I>(t) - I(0x4B400000);
  return simd::times_pow2(p, n, ni);
}

namespace detail {

/// log x for x positive and normal (or scaled so, with `e_shift` subtracted from its exponent).
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> log_normal(
    const xsimd::batch<float, A>& x, const xsimd::batch<float, A>& e_shift) noexcept {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  // The bits shifted so that the mantissas from √2 up carry into the exponent: 1 + f ∈ [√½, √2).
  const I bits = xsimd::bitwise_cast<I>(x) + I(0x3F800000 - 0x3F3504F3);
  const B e = xsimd::to_float((bits >> 23) - I(127)) - e_shift;
  const B f = xsimd::bitwise_cast<B>((bits & I(0x007FFFFF)) + I(0x3F3504F3)) - B(1.0f);
  const B z = f * f;
  // Q(f) by Estrin's scheme: four independent pairs, then their combination in z and z².
  const B q01 = xsimd::fma(B(-2.4999993993e-1f), f, B(3.3333331174e-1f));
  const B q23 = xsimd::fma(B(-1.6668057665e-1f), f, B(2.0000714765e-1f));
  const B q45 = xsimd::fma(B(-1.2420140846e-1f), f, B(1.4249322787e-1f));
  const B q67 = xsimd::fma(B(-1.1514610310e-1f), f, B(1.1676998740e-1f));
  const B z2 = z * z;
  const B lo = xsimd::fma(q23, z, q01);
  const B hi = xsimd::fma(xsimd::fma(B(7.0376836292e-2f), z, q67), z, q45);
  const B q = xsimd::fma(hi, z2, lo);
  B y = q * (f * z);
  y = xsimd::fma(e, B(-2.12194440e-4f), y);  // e·(ln 2 − ln2_hi)
  y = xsimd::fnma(B(0.5f), z, y);
  return xsimd::fma(e, B(0.693359375f), f + y);  // ln2_hi = 0.693359375 (9 bits)
}

}  // namespace detail

/// log x lane by lane (float: regula's own, see the file comment).
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> log_batch(const xsimd::batch<float, A>& x) noexcept {
  using B = xsimd::batch<float, A>;
  constexpr float inf = std::numeric_limits<float>::infinity();
  // One test for the usual case, every lane positive, normal and finite.
  if (REGULA_LIKELY(xsimd::all((x >= B(0x1p-126f)) && (x < B(inf))))) {
    return detail::log_normal(x, B(0.0f));
  }
  // Subnormal inputs scaled by 2^25 into the normal range; log 0 = −inf, negative or NaN → NaN,
  // +inf → +inf.
  const auto sub = x < B(0x1p-126f);
  B l = detail::log_normal(xsimd::select(sub, x * B(0x1p25f), x),
                           xsimd::select(sub, B(25.0f), B(0.0f)));
  l = xsimd::select(x == B(0.0f), B(-inf), l);
  l = xsimd::select(x < B(0.0f) || xsimd::isnan(x), B(std::numeric_limits<float>::quiet_NaN()), l);
  return xsimd::select(x == B(inf), x, l);
}

/// log x lane by lane (double: xsimd::log, with subnormal inputs scaled into the normal range:
/// log x = log(2⁵⁴·x) − 54·ln 2). xsimd 8.1's double log reads a subnormal's exponent field as
/// the smallest one, so it was up to 37 too low there (log 1.1e-308 gave −746.1, not −709.1),
/// and a cross-entropy whose S is subnormal (StableMax of logits at the lowest double) lost its
/// loss to the clamp at 0.
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<double, A> log_batch(const xsimd::batch<double, A>& x) noexcept {
  using B = xsimd::batch<double, A>;
  const auto sub = x < B(std::numeric_limits<double>::min()) && x > B(0.0);
  const B l = xsimd::log(xsimd::select(sub, x * B(0x1p54), x));
  // 54·ln 2 rounded once: its error (4e-15) is below half an ulp of any result here (|l| > 708).
  return xsimd::select(sub, l - B(37.42994775023705), l);
}

/// e^x lane by lane (double: xsimd::exp).
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<double, A> exp_batch(const xsimd::batch<double, A>& x) noexcept {
  return xsimd::exp(x);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_EXP_LOG_HPP
