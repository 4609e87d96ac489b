/// @file
/// Raw-pointer StableMax and log-StableMax kernels over one column, forward and vector–Jacobian
/// product, each with a scalar reference twin (Prieto et al., "Grokking at the Edge of
/// Numerical Stability", ICLR 2025).
///
/// s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0, i.e. s(x) = a or 1/a with a = 1 + |x|; no
/// exponential is involved. r(x) = s'(x)/s(x) = 1/(1 + |x|) on both branches, and s·r is 1 for
/// x ≥ 0 and s² for x < 0.
///
/// Numerics: s is evaluated in T; S = Σ s is accumulated in double (float lanes are widened),
/// as the authors' code, which casts the logits to float64 first. log s uses log1p(|x|), so it
/// is accurate near 0. Finite inputs of any magnitude give finite outputs (s(±1e30) is 1e30 or
/// 1e−30 in float); ±inf gives NaN where inf/inf arises; NaN gives NaN.
#ifndef REGULA_KERNELS_STABLEMAX_HPP
#define REGULA_KERNELS_STABLEMAX_HPP

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "regula/core/simd.hpp"
#include "regula/kernels/exp_log.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/tile.hpp"

namespace regula::kernels {

/// s(x) = x + 1 for x ≥ 0, 1/(1 − x) for x < 0 (NaN for NaN).
template <class T>
REGULA_ALWAYS_INLINE T stablemax_s(T x) noexcept {
  const T a = T(1) + std::abs(x);
  return x >= T(0) ? a : T(1) / a;
}

/// log s(x) = ±log1p(|x|).
template <class T>
REGULA_ALWAYS_INLINE T stablemax_log_s(T x) noexcept {
  const T l = std::log1p(std::abs(x));
  return x >= T(0) ? l : -l;
}

/// r(x) = s'(x)/s(x) = 1/(1 + |x|).
template <class T>
REGULA_ALWAYS_INLINE T stablemax_r(T x) noexcept {
  return T(1) / (T(1) + std::abs(x));
}

/// 1/a for a ≥ 1: for float, the hardware reciprocal estimate refined by one Newton step
/// (within 2 ulps, a few times cheaper than a division); for double, a division.
/// The estimate (rcpps) flushes to 0 once 1/a is subnormal (a ≳ 2^126), which made
/// StableMax of logits ≤ −1e38 zero and its log −inf; a batch holding such an a (never in
/// ordinary use, so the branch costs one compare) redoes those lanes scaled by 2^−64 before and
/// after, so every finite a ≥ 1 gets its reciprocal (subnormal where it is).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> stablemax_recip(const xsimd::batch<T, A>& a) noexcept {
  using B = xsimd::batch<T, A>;
  if constexpr (std::is_same_v<T, float>) {
    const B x0 = xsimd::reciprocal(a);
    B r = xsimd::fma(x0, xsimd::fnma(a, x0, B(T(1))), x0);
    const auto big = a > B(0x1p100f);
    if (REGULA_UNLIKELY(xsimd::any(big))) {
      const B scale = xsimd::select(big, B(0x1p-64f), B(1.0f));
      const B as = a * scale;
      const B x1 = xsimd::reciprocal(as);
      r = xsimd::select(big, xsimd::fma(x1, xsimd::fnma(as, x1, B(T(1))), x1) * scale, r);
    }
    return r;
  } else {
    return B(T(1)) / a;
  }
}

/// SIMD s(x).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> stablemax_s(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B a = B(T(1)) + xsimd::abs(x);
  return xsimd::select(x >= B(T(0)), a, B(T(1)) / a);
}

/// SIMD log s(x) = ±log1p(|x|).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> stablemax_log_s(const xsimd::batch<T, A>& x) noexcept {
  using B = xsimd::batch<T, A>;
  const B l = xsimd::log1p(xsimd::abs(x));
  return xsimd::select(x >= B(T(0)), l, -l);
}

/// S = Σ s(z_i) accumulated in double; writes s(z_i) to `s` when it is not null (s may be z).
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE double sum_s(const T* z, std::size_t n, T* s) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> acc;
  std::size_t i = 0;
  if (s != nullptr) {
    for (; i + W <= n; i += W) {
      stablemax_s(B::load_unaligned(z + i)).store_unaligned(s + i);
      acc.add_stored(s + i);  // widening loads of what was just stored
    }
  } else {
    for (; i + W <= n; i += W) acc.add(stablemax_s(B::load_unaligned(z + i)));
  }
  double sum = acc.sum();
  for (; i < n; ++i) {
    const T si = stablemax_s(z[i]);
    if (s != nullptr) s[i] = si;
    sum += static_cast<double>(si);
  }
  return sum;
}

/// Scalar reference of sum_s (left to right, in double).
template <class T>
double sum_s_reference(const T* z, std::size_t n, T* s) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const T si = stablemax_s(z[i]);
    if (s != nullptr) s[i] = si;
    sum += static_cast<double>(si);
  }
  return sum;
}

/// y = StableMax(z) = s(z)/Σ s(z) over n ≥ 1 values; y may be z.
template <class T, class A = default_arch>
void stablemax_column(const T* z, std::size_t n, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T inv = static_cast<T>(1.0 / sum_s<T, A>(z, n, y));
  const B ib(inv);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (B::load_unaligned(y + i) * ib).store_unaligned(y + i);
  for (; i < n; ++i) y[i] *= inv;
}

/// Scalar reference of stablemax_column.
template <class T>
void stablemax_column_reference(const T* z, std::size_t n, T* y) noexcept {
  const T inv = static_cast<T>(1.0 / sum_s_reference(z, n, y));
  for (std::size_t i = 0; i < n; ++i) y[i] *= inv;
}

/// y = log StableMax(z) = log s(z) − log Σ s(z) (never the log of a ratio); y may be z.
template <class T, class A = default_arch>
void log_stablemax_column(const T* z, std::size_t n, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T ls = static_cast<T>(std::log(sum_s<T, A>(z, n, static_cast<T*>(nullptr))));
  const B lb(ls);
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    (stablemax_log_s(B::load_unaligned(z + i)) - lb).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = stablemax_log_s(z[i]) - ls;
}

/// Scalar reference of log_stablemax_column.
template <class T>
void log_stablemax_column_reference(const T* z, std::size_t n, T* y) noexcept {
  const T ls = static_cast<T>(std::log(sum_s_reference(z, n, static_cast<T*>(nullptr))));
  for (std::size_t i = 0; i < n; ++i) y[i] = stablemax_log_s(z[i]) - ls;
}

/// Vector–Jacobian product of StableMax at z with y = StableMax(z):
/// dz_j = r(z_j)·y_j·(dy_j − ⟨dy, y⟩), the dot product accumulated in double. dz may be dy.
template <class T, class A = default_arch>
void stablemax_backward_column(const T* z, const T* y, const T* dy, std::size_t n, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> acc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) acc.add(B::load_unaligned(y + i) * B::load_unaligned(dy + i));
  double dot = acc.sum();
  for (; i < n; ++i) dot += static_cast<double>(y[i] * dy[i]);
  const T d = static_cast<T>(dot);
  const B db(d);
  const B one(T(1));
  for (i = 0; i + W <= n; i += W) {
    const B r = one / (one + xsimd::abs(B::load_unaligned(z + i)));
    (r * B::load_unaligned(y + i) * (B::load_unaligned(dy + i) - db)).store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = stablemax_r(z[i]) * y[i] * (dy[i] - d);
}

/// Scalar reference of stablemax_backward_column.
template <class T>
void stablemax_backward_column_reference(const T* z, const T* y, const T* dy, std::size_t n,
                                         T* dz) noexcept {
  double dot = 0.0;
  for (std::size_t i = 0; i < n; ++i) dot += static_cast<double>(y[i] * dy[i]);
  const T d = static_cast<T>(dot);
  for (std::size_t i = 0; i < n; ++i) dz[i] = stablemax_r(z[i]) * y[i] * (dy[i] - d);
}

/// Vector–Jacobian product of log-StableMax at z with y = log StableMax(z):
/// dz_j = r(z_j)·(dy_j − exp(y_j)·Σ dy), the sum accumulated in double. dz may be dy.
template <class T, class A = default_arch>
void log_stablemax_backward_column(const T* z, const T* y, const T* dy, std::size_t n,
                                   T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> acc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) acc.add(B::load_unaligned(dy + i));
  double sum = acc.sum();
  for (; i < n; ++i) sum += static_cast<double>(dy[i]);
  const T s = static_cast<T>(sum);
  const B sb(s);
  const B one(T(1));
  for (i = 0; i + W <= n; i += W) {
    const B r = one / (one + xsimd::abs(B::load_unaligned(z + i)));
    (r * xsimd::fnma(exp_batch(B::load_unaligned(y + i)), sb, B::load_unaligned(dy + i)))
        .store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = stablemax_r(z[i]) * (dy[i] - std::exp(y[i]) * s);
}

/// Scalar reference of log_stablemax_backward_column.
template <class T>
void log_stablemax_backward_column_reference(const T* z, const T* y, const T* dy, std::size_t n,
                                             T* dz) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(dy[i]);
  const T s = static_cast<T>(sum);
  for (std::size_t i = 0; i < n; ++i) dz[i] = stablemax_r(z[i]) * (dy[i] - std::exp(y[i]) * s);
}

// The cross-column kernels (kernels/tile.hpp): the column kernels above over `count` ≤ W
// consecutive columns of n ≤ tile_rows values, one column per lane, with the layout and aliasing
// contract of softmax_tile. The per-lane arithmetic is the column kernel's; the double sums run
// in class order instead of SIMD blocks, and log S is log_batch's, so the two agree to a few
// ulps.

/// stablemax_column over a tile.
template <class T, class A = default_arch>
void stablemax_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count, T* y,
                    std::size_t ys) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  const ColumnTile<T, A> tile(z, zs, n, count);
  B s[tile_rows];
  LaneSums<T, A> S;
  for (std::size_t r = 0; r < n; ++r) {
    s[r] = stablemax_s(tile.row(r));
    S.add(s[r]);
  }
  alignas(64) double inv[W];
  S.store(inv);
  for (std::size_t q = 0; q < W; q += DB::size)
    (DB(1.0) / DB::load_aligned(inv + q)).store_aligned(inv + q);
  const B ib = narrow_lanes<T, A>(inv);
  for (std::size_t r = 0; r < n; ++r) s[r] *= ib;
  store_tile(s, n, count, y, ys);
}

/// log_stablemax_column over a tile.
template <class T, class A = default_arch>
void log_stablemax_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count, T* y,
                        std::size_t ys) noexcept {
  using B = xsimd::batch<T, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  const ColumnTile<T, A> tile(z, zs, n, count);
  LaneSums<T, A> S;
  for (std::size_t r = 0; r < n; ++r) S.add(stablemax_s(tile.row(r)));
  alignas(64) double ls[W];
  S.store(ls);
  for (std::size_t q = 0; q < W; q += DB::size)
    log_batch(DB::load_aligned(ls + q)).store_aligned(ls + q);
  const B lb = narrow_lanes<T, A>(ls);
  B out[tile_rows];
  for (std::size_t r = 0; r < n; ++r) out[r] = stablemax_log_s(tile.row(r)) - lb;
  store_tile(out, n, count, y, ys);
}

/// stablemax_backward_column over a tile (z, y, dy and dz with their own strides).
template <class T, class A = default_arch>
void stablemax_backward_tile(const T* z, std::size_t zs, const T* y, std::size_t ys, const T* dy,
                             std::size_t dys, std::size_t n, std::size_t count, T* dz,
                             std::size_t dzs) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> yt(y, ys, n, count);
  const ColumnTile<T, A> dyt(dy, dys, n, count);
  LaneSums<T, A> dot;
  for (std::size_t r = 0; r < n; ++r) dot.add(yt.row(r) * dyt.row(r));
  alignas(64) double d[W];
  dot.store(d);
  const B db = narrow_lanes<T, A>(d);
  const B one(T(1));
  B out[tile_rows];
  for (std::size_t r = 0; r < n; ++r) {
    const B rr = one / (one + xsimd::abs(zt.row(r)));
    out[r] = rr * yt.row(r) * (dyt.row(r) - db);
  }
  store_tile(out, n, count, dz, dzs);
}

/// log_stablemax_backward_column over a tile.
template <class T, class A = default_arch>
void log_stablemax_backward_tile(const T* z, std::size_t zs, const T* y, std::size_t ys,
                                 const T* dy, std::size_t dys, std::size_t n, std::size_t count,
                                 T* dz, std::size_t dzs) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const ColumnTile<T, A> zt(z, zs, n, count);
  const ColumnTile<T, A> yt(y, ys, n, count);
  const ColumnTile<T, A> dyt(dy, dys, n, count);
  LaneSums<T, A> sum;
  for (std::size_t r = 0; r < n; ++r) sum.add(dyt.row(r));
  alignas(64) double d[W];
  sum.store(d);
  const B sb = narrow_lanes<T, A>(d);
  const B one(T(1));
  B out[tile_rows];
  for (std::size_t r = 0; r < n; ++r) {
    const B rr = one / (one + xsimd::abs(zt.row(r)));
    out[r] = rr * xsimd::fnma(exp_batch(yt.row(r)), sb, dyt.row(r));
  }
  store_tile(out, n, count, dz, dzs);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_STABLEMAX_HPP
