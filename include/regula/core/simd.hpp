/// @file
/// SIMD helpers over xsimd 8 batches: the few operations xsimd 8.1 does not offer portably (the
/// high half of a 32×32-bit product, an unsigned minimum, lane masks to and from bit fields,
/// float-to-double widening, streaming stores, a register barrier), and `default_arch`, the best
/// instruction set the user's `-m` flags enable. The kernels' only intrinsics and inline asm
/// are here.
///
/// Each helper is written in xsimd's own manner: one overload per instruction set in
/// `simd::detail`, selected by the architecture tag (`xsimd::kernel::requires_arch`, the most
/// derived base of the batch's architecture wins), and a generic lane-by-lane overload that every
/// other architecture takes. Each overload computes the same lanes, so every kernel built on them
/// gives identical bits on every instruction set.
#ifndef REGULA_CORE_SIMD_HPP
#define REGULA_CORE_SIMD_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "regula/config.hpp"

namespace regula {

/// The instruction set regula's header-only kernels are compiled for: the best one enabled by
/// the compiler flags of the translation unit (e.g. AVX-512 with `-march=native` on a recent
/// x86, SSE2 for plain x86-64).
using default_arch = xsimd::default_arch;

namespace simd {

template <class T, class A = default_arch>
/// An xsimd batch of T for architecture A.
using batch = xsimd::batch<T, A>;

template <class T, class A = default_arch>
/// The number of lanes of batch<T, A>.
inline constexpr std::size_t width = xsimd::batch<T, A>::size;

/// Whether architecture A is, or derives from, Base (for kernels whose choice of algorithm, not
/// just of instruction, depends on the instruction set).
template <class A, class Base>
inline constexpr bool is_arch_v = std::is_base_of_v<Base, A>;

namespace detail {

template <class A>
using requires_arch = xsimd::kernel::requires_arch<A>;
template <class A>
using u32 = xsimd::batch<std::uint32_t, A>;

// mulhi: lane-wise high 32 bits of a·m.

template <class A>
REGULA_ALWAYS_INLINE u32<A> mulhi(const u32<A>& a, std::uint32_t m,
                                  requires_arch<xsimd::generic>) noexcept {
  alignas(64) std::uint32_t v[u32<A>::size];
  a.store_aligned(v);
  for (std::uint32_t& x : v) x = static_cast<std::uint32_t>((std::uint64_t{x} * m) >> 32);
  return u32<A>::load_aligned(v);
}

#if XSIMD_WITH_SSE2
template <class A>
REGULA_ALWAYS_INLINE u32<A> mulhi(const u32<A>& a, std::uint32_t m,
                                  requires_arch<xsimd::sse2>) noexcept {
  const __m128i x = a;
  const __m128i mm = _mm_set1_epi32(static_cast<int>(m));
  const __m128i even = _mm_mul_epu32(x, mm);
  const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(x, 32), mm);
  const __m128i hi_mask = _mm_set_epi32(-1, 0, -1, 0);
  return _mm_or_si128(_mm_srli_epi64(even, 32), _mm_and_si128(odd, hi_mask));
}
#endif

#if XSIMD_WITH_AVX2
template <class A>
REGULA_ALWAYS_INLINE u32<A> mulhi(const u32<A>& a, std::uint32_t m,
                                  requires_arch<xsimd::avx2>) noexcept {
  const __m256i x = a;
  const __m256i mm = _mm256_set1_epi32(static_cast<int>(m));
  const __m256i even = _mm256_mul_epu32(x, mm);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE u32<A> mulhi(const u32<A>& a, std::uint32_t m,
                                  requires_arch<xsimd::avx512f>) noexcept {
  const __m512i x = a;
  const __m512i mm = _mm512_set1_epi32(static_cast<int>(m));
  const __m512i even = _mm512_mul_epu32(x, mm);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);
  return _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(even, 32), odd);
}
#endif

// mulhilo: both halves of a·m from the same two widening multiplies.

template <class A>
REGULA_ALWAYS_INLINE void mulhilo(const u32<A>& a, std::uint32_t m, u32<A>& hi, u32<A>& lo,
                                  requires_arch<xsimd::generic>) noexcept {
  hi = mulhi(a, m, A{});
  lo = a * u32<A>(m);
}

#if XSIMD_WITH_AVX2
template <class A>
REGULA_ALWAYS_INLINE void mulhilo(const u32<A>& a, std::uint32_t m, u32<A>& hi, u32<A>& lo,
                                  requires_arch<xsimd::avx2>) noexcept {
  const __m256i x = a;
  const __m256i mm = _mm256_set1_epi32(static_cast<int>(m));
  const __m256i even = _mm256_mul_epu32(x, mm);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE void mulhilo(const u32<A>& a, std::uint32_t m, u32<A>& hi, u32<A>& lo,
                                  requires_arch<xsimd::avx512f>) noexcept {
  const __m512i x = a;
  const __m512i mm = _mm512_set1_epi32(static_cast<int>(m));
  const __m512i even = _mm512_mul_epu32(x, mm);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);
  hi = _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, _mm512_slli_epi64(odd, 32));
}
#endif

// store_stream: a non-temporal store where the instruction set has one.

template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v,
                                       requires_arch<xsimd::generic>) noexcept {
  v.store_aligned(p);
}

#if XSIMD_WITH_SSE2
template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v,
                                       requires_arch<xsimd::sse2>) noexcept {
  if constexpr (sizeof(T) == 4) {
    _mm_stream_ps(p, v);
  } else {
    _mm_stream_pd(p, v);
  }
}
#endif

#if XSIMD_WITH_AVX
template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v,
                                       requires_arch<xsimd::avx>) noexcept {
  if constexpr (sizeof(T) == 4) {
    _mm256_stream_ps(p, v);
  } else {
    _mm256_stream_pd(p, v);
  }
}
#endif

#if XSIMD_WITH_AVX512F
template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v,
                                       requires_arch<xsimd::avx512f>) noexcept {
  if constexpr (sizeof(T) == 4) {
    _mm512_stream_ps(p, v);
  } else {
    _mm512_stream_pd(p, v);
  }
}
#endif

// times_pow2: p·2^n for float lanes, n integral in [−150, 129] (as float and as int32 lanes) and
// p in [1/2, 2), with the one rounding of an exact product, so that subnormal and overflowing
// results are right. Generic: n added to p's exponent field when every lane's result is
// normal (|n| ≤ 125), else two exact powers of two, 2^⌊n/2⌋·2^(n−⌊n/2⌋); AVX-512: vscalefps.
// Every overload gives the same bits.

template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> times_pow2(const xsimd::batch<float, A>& p,
                                                       const xsimd::batch<float, A>& n,
                                                       const xsimd::batch<std::int32_t, A>& ni,
                                                       requires_arch<xsimd::generic>) noexcept {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  if (REGULA_LIKELY(xsimd::all(xsimd::abs(n) <= B(125.0f)))) {
    return xsimd::bitwise_cast<B>(xsimd::bitwise_cast<I>(p) + (ni << 23));
  }
  const I n1 = ni >> 1;
  const I n2 = ni - n1;
  return (p * xsimd::bitwise_cast<B>((n1 + I(127)) << 23)) *
         xsimd::bitwise_cast<B>((n2 + I(127)) << 23);
}

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> times_pow2(const xsimd::batch<float, A>& p,
                                                       const xsimd::batch<float, A>& n,
                                                       const xsimd::batch<std::int32_t, A>&,
                                                       requires_arch<xsimd::avx512f>) noexcept {
  return _mm512_scalef_ps(p, n);
}
#endif

// to_bits: bit i is lane i of a mask of 32-bit lanes.

template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b,
                                           requires_arch<xsimd::generic>) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) bool v[W];
  b.store_aligned(v);
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < W; ++i) bits |= std::uint64_t{v[i]} << i;
  return bits;
}

#if XSIMD_WITH_SSE2
template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b,
                                           requires_arch<xsimd::sse2>) noexcept {
  const __m128i r = b;
  return static_cast<std::uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(r)));
}
#endif

#if XSIMD_WITH_AVX2
template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b,
                                           requires_arch<xsimd::avx2>) noexcept {
  const __m256i r = b;
  return static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(r)));
}
#endif

#if XSIMD_WITH_AVX512F
template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b,
                                           requires_arch<xsimd::avx512f>) noexcept {
  return static_cast<std::uint64_t>(static_cast<__mmask16>(b));
}
#endif

/// Integer lanes of T's width, all ones where bit i of `bits` is set: broadcast the field, keep
/// lane i's bit, compare with zero (the usual mask expansion without a lookup table).
template <class T, class A>
REGULA_ALWAYS_INLINE auto expand_bits(std::uint64_t bits) noexcept {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  using UB = xsimd::batch<U, A>;
  constexpr std::size_t W = UB::size;
  alignas(64) U lane_bit[W];
  for (std::size_t i = 0; i < W; ++i) lane_bit[i] = U{1} << i;
  const UB sel = UB(static_cast<U>(bits)) & UB::load_aligned(lane_bit);
  return static_cast<typename UB::register_type>(xsimd::bitwise_cast(sel != UB(U{0})));
}

// from_bits: the lane mask whose lane i is bit i.

template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits,
                                                       requires_arch<xsimd::generic>) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) bool v[W];
  for (std::size_t i = 0; i < W; ++i) v[i] = ((bits >> i) & 1U) != 0;
  return xsimd::batch_bool<T, A>::load_aligned(v);
}

#if XSIMD_WITH_SSE2
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits,
                                                       requires_arch<xsimd::sse2>) noexcept {
  const __m128i r = expand_bits<T, A>(bits);
  if constexpr (sizeof(T) == 4) {
    return xsimd::batch_bool<T, A>(_mm_castsi128_ps(r));
  } else {
    return xsimd::batch_bool<T, A>(_mm_castsi128_pd(r));
  }
}
#endif

#if XSIMD_WITH_AVX2
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits,
                                                       requires_arch<xsimd::avx2>) noexcept {
  const __m256i r = expand_bits<T, A>(bits);
  if constexpr (sizeof(T) == 4) {
    return xsimd::batch_bool<T, A>(_mm256_castsi256_ps(r));
  } else {
    return xsimd::batch_bool<T, A>(_mm256_castsi256_pd(r));
  }
}
#endif

#if XSIMD_WITH_AVX512F
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits,
                                                       requires_arch<xsimd::avx512f>) noexcept {
  using reg = typename xsimd::batch_bool<T, A>::register_type;
  return xsimd::batch_bool<T, A>(static_cast<reg>(bits));
}
#endif

// add_widened: float lanes converted to double and added to two double accumulators, the low
// half of the lanes to lo and the high half to hi (lane order kept within each).

template <class A>
REGULA_ALWAYS_INLINE void add_widened(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                                      xsimd::batch<double, A>& hi,
                                      requires_arch<xsimd::generic>) noexcept {
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = xsimd::batch<float, A>::size;
  constexpr std::size_t WD = DB::size;
  alignas(64) float v[W];
  alignas(64) double d[W];
  x.store_aligned(v);
  for (std::size_t i = 0; i < W; ++i) d[i] = static_cast<double>(v[i]);
  for (std::size_t k = 0; k < W; k += 2 * WD) {
    lo += DB::load_aligned(d + k);
    if (k + WD < W) hi += DB::load_aligned(d + k + WD);
  }
}

#if XSIMD_WITH_SSE2
template <class A>
REGULA_ALWAYS_INLINE void add_widened(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                                      xsimd::batch<double, A>& hi,
                                      requires_arch<xsimd::sse2>) noexcept {
  using DB = xsimd::batch<double, A>;
  const __m128 f = x;
  lo += DB(_mm_cvtps_pd(f));
  hi += DB(_mm_cvtps_pd(_mm_movehl_ps(f, f)));
}
#endif

#if XSIMD_WITH_AVX
template <class A>
REGULA_ALWAYS_INLINE void add_widened(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                                      xsimd::batch<double, A>& hi,
                                      requires_arch<xsimd::avx>) noexcept {
  using DB = xsimd::batch<double, A>;
  const __m256 f = x;
  lo += DB(_mm256_cvtps_pd(_mm256_castps256_ps128(f)));
  hi += DB(_mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE void add_widened(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                                      xsimd::batch<double, A>& hi,
                                      requires_arch<xsimd::avx512f>) noexcept {
  using DB = xsimd::batch<double, A>;
  // The maskz forms: GCC 12's unmasked ones start from an "undefined" register that trips
  // -Wuninitialized.
  const __m512d f = _mm512_castps_pd(x);
  lo += DB(_mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, f, 0))));
  hi += DB(_mm512_maskz_cvtps_pd(0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, f, 1))));
}
#endif

// add_widened_load: the same for the W floats at p, with widening loads where there are some.

template <class A>
REGULA_ALWAYS_INLINE void add_widened_load(const float* p, xsimd::batch<double, A>& lo,
                                           xsimd::batch<double, A>& hi,
                                           requires_arch<xsimd::generic>) noexcept {
  add_widened(xsimd::batch<float, A>::load_unaligned(p), lo, hi, A{});
}

#if XSIMD_WITH_AVX
template <class A>
REGULA_ALWAYS_INLINE void add_widened_load(const float* p, xsimd::batch<double, A>& lo,
                                           xsimd::batch<double, A>& hi,
                                           requires_arch<xsimd::avx>) noexcept {
  using DB = xsimd::batch<double, A>;
  lo += DB(_mm256_cvtps_pd(_mm_loadu_ps(p)));
  hi += DB(_mm256_cvtps_pd(_mm_loadu_ps(p + 4)));
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE void add_widened_load(const float* p, xsimd::batch<double, A>& lo,
                                           xsimd::batch<double, A>& hi,
                                           requires_arch<xsimd::avx512f>) noexcept {
  using DB = xsimd::batch<double, A>;
  lo += DB(_mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(p)));
  hi += DB(_mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(p + 8)));
}
#endif

// umin: lane-wise unsigned minimum (xsimd 8.1 has no vector one on x86).

template <class A>
REGULA_ALWAYS_INLINE u32<A> umin(const u32<A>& x, const u32<A>& y,
                                 requires_arch<xsimd::generic>) noexcept {
  return xsimd::min(x, y);
}

#if XSIMD_WITH_AVX2
template <class A>
REGULA_ALWAYS_INLINE u32<A> umin(const u32<A>& x, const u32<A>& y,
                                 requires_arch<xsimd::avx2>) noexcept {
  return _mm256_min_epu32(x, y);
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
REGULA_ALWAYS_INLINE u32<A> umin(const u32<A>& x, const u32<A>& y,
                                 requires_arch<xsimd::avx512f>) noexcept {
  return _mm512_min_epu32(x, y);
}
#endif

}  // namespace detail

/// Returns v unchanged, but as a value the compiler must have materialized in a register at this
/// point (an empty asm with a register operand). A product passed through it is rounded to its
/// type and cannot be fused with a following addition into a multiply-add: GCC contracts
/// `a * x + b` into an FMA whenever the target has one (-ffp-contract=fast is its default outside
/// ISO mode, and it applies to the vector types behind xsimd's operators too), so without this
/// barrier the same source rounds once on AVX2 and twice on SSE2. A loaded batch passed through it
/// stays in a register rather than being reloaded from memory at every use.
template <class V>
REGULA_ALWAYS_INLINE V opaque(V v) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
  __asm__("" : "+v"(v));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__SSE2__)
  __asm__("" : "+x"(v));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#elif defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+m"(v));
#endif
  return v;
}

/// opaque() for an xsimd batch, through its native register.
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> opaque(const xsimd::batch<T, A>& v) noexcept {
  return xsimd::batch<T, A>(opaque(static_cast<typename xsimd::batch<T, A>::register_type>(v)));
}

/// p·2^n for float lanes, n integral in [−150, 129] given as float n and int32 ni, p in [1/2, 2):
/// the exact product rounded once (subnormal and infinite results included), the same bits on
/// every instruction set.
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<float, A> times_pow2(
    const xsimd::batch<float, A>& p, const xsimd::batch<float, A>& n,
    const xsimd::batch<std::int32_t, A>& ni) noexcept {
  return detail::times_pow2(p, n, ni, A{});
}

/// Lane-wise unsigned minimum of 32-bit lanes.
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<std::uint32_t, A> umin(
    const xsimd::batch<std::uint32_t, A>& x, const xsimd::batch<std::uint32_t, A>& y) noexcept {
  return detail::umin(x, y, A{});
}

/// Adds the float lanes of x, converted to double, to two double accumulators: the low half of
/// the lanes to lo, the high half to hi (exact; the same sums on every instruction set).
template <class A>
REGULA_ALWAYS_INLINE void add_widened(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                                      xsimd::batch<double, A>& hi) noexcept {
  detail::add_widened(x, lo, hi, A{});
}

/// add_widened of the batch of floats at p (unaligned), with widening loads where the
/// instruction set has them.
template <class A>
REGULA_ALWAYS_INLINE void add_widened_load(const float* p, xsimd::batch<double, A>& lo,
                                           xsimd::batch<double, A>& hi) noexcept {
  detail::add_widened_load(p, lo, hi, A{});
}

/// Lane-wise high 32 bits of the 64-bit product `a * m`.
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<std::uint32_t, A> mulhi(const xsimd::batch<std::uint32_t, A>& a,
                                                          std::uint32_t m) noexcept {
  return detail::mulhi(a, m, A{});
}

/// Lane-wise high and low 32 bits of the 64-bit product `a * m`, from the same two widening
/// multiplies (cheaper than mulhi plus a 32-bit mullo on x86).
template <class A>
REGULA_ALWAYS_INLINE void mulhilo(const xsimd::batch<std::uint32_t, A>& a, std::uint32_t m,
                                  xsimd::batch<std::uint32_t, A>& hi,
                                  xsimd::batch<std::uint32_t, A>& lo) noexcept {
  detail::mulhilo(a, m, hi, lo, A{});
}

/// Stores `v` at `p` with a non-temporal (streaming) store where the instruction set has one,
/// bypassing the caches: for outputs much larger than the caches, it saves the read-for-ownership
/// of every written line. @pre p is aligned to the batch size. Call store_fence() after a
/// sequence of streaming stores.
template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v) noexcept {
  detail::store_stream(p, v, A{});
}

/// Orders preceding streaming stores before any later store (sfence on x86).
REGULA_ALWAYS_INLINE void store_fence() noexcept {
#if XSIMD_WITH_SSE2
  _mm_sfence();
#endif
}

/// Bit i of the result is lane i of `b` (as `_mm_movemask_ps`); lanes are 32-bit.
template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b) noexcept {
  static_assert(sizeof(T) == 4, "to_bits: 32-bit lanes only");
  return detail::to_bits(b, A{});
}

/// Integer lanes of T's width, all ones where bit i of `bits` is set (see detail::expand_bits).
template <class T, class A>
REGULA_ALWAYS_INLINE auto expand_bits(std::uint64_t bits) noexcept {
  return detail::expand_bits<T, A>(bits);
}

/// The lane mask whose lane i is bit i of `bits` (the inverse of to_bits, for T's lanes).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits) noexcept {
  return detail::from_bits<T, A>(bits, A{});
}

}  // namespace simd
}  // namespace regula

#endif  // REGULA_CORE_SIMD_HPP
