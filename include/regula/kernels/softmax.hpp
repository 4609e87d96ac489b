/// @file
/// Raw-pointer softmax and log-softmax kernels over one column (one sample's n logits), forward
/// and vector–Jacobian product, each with a scalar reference twin.
///
/// Numerics: the maximum m is subtracted before exponentiating, so no finite input overflows;
/// Σ exp(z − m) is accumulated in T, in SIMD lanes (two batches of lanes, the last partial block
/// padded with −inf, then a pairwise lane sum). The reference twins sum left to right; both
/// agree to a few ulps.
/// NaN anywhere in a column gives NaN in every output of that column; +inf gives NaN (inf − inf),
/// as in PyTorch.
#ifndef REGULA_KERNELS_SOFTMAX_HPP
#define REGULA_KERNELS_SOFTMAX_HPP

#include <cmath>
#include <cstddef>
#include <limits>

#include "regula/core/simd.hpp"
#include "regula/kernels/exp_log.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/tile.hpp"

namespace regula::kernels {

/// max_i z_i over n ≥ 1 values (−inf for n = 0).
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE T column_max(const T* z, std::size_t n) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T m = -std::numeric_limits<T>::infinity();
  if (n >= W) {
    B m0 = B::load_unaligned(z);
    B m1 = m0;
    for (i = W; i + 2 * W <= n; i += 2 * W) {
      m0 = xsimd::max(m0, B::load_unaligned(z + i));
      m1 = xsimd::max(m1, B::load_unaligned(z + i + W));
    }
    for (; i + W <= n; i += W) m0 = xsimd::max(m0, B::load_unaligned(z + i));
    m = hmax(xsimd::max(m0, m1));
  }
  for (; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

/// Scalar reference of column_max.
template <class T>
T column_max_reference(const T* z, std::size_t n) noexcept {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  return m;
}

/// S = Σ_i exp(z_i − m), in T; also writes e_i = exp(z_i − m) when `e` is not null (e may be z).
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE T sum_exp(const T* z, std::size_t n, T m, T* e) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B mb(m);
  B s0(T(0));
  B s1(T(0));
  std::size_t i = 0;
  if (e != nullptr) {
    for (; i + 2 * W <= n; i += 2 * W) {
      const B e0 = exp_batch(B::load_unaligned(z + i) - mb);
      const B e1 = exp_batch(B::load_unaligned(z + i + W) - mb);
      e0.store_unaligned(e + i);
      e1.store_unaligned(e + i + W);
      s0 += e0;
      s1 += e1;
    }
    for (; i + W <= n; i += W) {
      const B e0 = exp_batch(B::load_unaligned(z + i) - mb);
      e0.store_unaligned(e + i);
      s0 += e0;
    }
  } else {
    for (; i + 2 * W <= n; i += 2 * W) {
      s0 += exp_batch(B::load_unaligned(z + i) - mb);
      s1 += exp_batch(B::load_unaligned(z + i + W) - mb);
    }
    for (; i + W <= n; i += W) s0 += exp_batch(B::load_unaligned(z + i) - mb);
  }
  if (i < n) {
    // The partial last block in SIMD, padded with −inf (exp(−inf − m) = 0).
    const B e0 = exp_batch(load_tail<T, A>(z + i, n - i, -std::numeric_limits<T>::infinity()) - mb);
    if (e != nullptr) store_tail(e0, e + i, n - i);
    s1 += e0;
  }
  return hsum(s0 + s1);
}

/// Scalar reference of sum_exp (left-to-right sum).
template <class T>
T sum_exp_reference(const T* z, std::size_t n, T m, T* e) noexcept {
  T s = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T ei = std::exp(z[i] - m);
    if (e != nullptr) e[i] = ei;
    s += ei;
  }
  return s;
}

/// y = softmax(z) = exp(z − m) / Σ exp(z − m) over n ≥ 1 values; y may be z.
template <class T, class A = default_arch>
void softmax_column(const T* z, std::size_t n, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const T inv = T(1) / sum_exp<T, A>(z, n, m, y);
  const B ib(inv);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (B::load_unaligned(y + i) * ib).store_unaligned(y + i);
  for (; i < n; ++i) y[i] *= inv;
}

/// Scalar reference of softmax_column.
template <class T>
void softmax_column_reference(const T* z, std::size_t n, T* y) noexcept {
  const T m = column_max_reference(z, n);
  const T inv = T(1) / sum_exp_reference(z, n, m, y);
  for (std::size_t i = 0; i < n; ++i) y[i] *= inv;
}

/// y = log_softmax(z) = (z − m) − log Σ exp(z − m) over n ≥ 1 values; y may be z.
template <class T, class A = default_arch>
void log_softmax_column(const T* z, std::size_t n, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const T m = column_max<T, A>(z, n);
  const T ls = std::log(sum_exp<T, A>(z, n, m, static_cast<T*>(nullptr)));
  const B mb(m);
  const B lb(ls);
  std::size_t i = 0;
  for (; i + W <= n; i += W) ((B::load_unaligned(z + i) - mb) - lb).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = (z[i] - m) - ls;
}

/// Scalar reference of log_softmax_column.
template <class T>
void log_softmax_column_reference(const T* z, std::size_t n, T* y) noexcept {
  const T m = column_max_reference(z, n);
  const T ls = std::log(sum_exp_reference(z, n, m, static_cast<T*>(nullptr)));
  for (std::size_t i = 0; i < n; ++i) y[i] = (z[i] - m) - ls;
}

/// Vector–Jacobian product of softmax: dz = y ⊙ (dy − ⟨dy, y⟩), y = softmax(z). dz may be dy.
template <class T, class A = default_arch>
void softmax_backward_column(const T* y, const T* dy, std::size_t n, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B d0(T(0));
  B d1(T(0));
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    d0 = xsimd::fma(B::load_unaligned(y + i), B::load_unaligned(dy + i), d0);
    d1 = xsimd::fma(B::load_unaligned(y + i + W), B::load_unaligned(dy + i + W), d1);
  }
  for (; i + W <= n; i += W)
    d0 = xsimd::fma(B::load_unaligned(y + i), B::load_unaligned(dy + i), d0);
  T dot = hsum(d0 + d1);
  for (; i < n; ++i) dot += y[i] * dy[i];
  const B db(dot);
  for (i = 0; i + W <= n; i += W) {
    (B::load_unaligned(y + i) * (B::load_unaligned(dy + i) - db)).store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = y[i] * (dy[i] - dot);
}

/// Scalar reference of softmax_backward_column.
template <class T>
void softmax_backward_column_reference(const T* y, const T* dy, std::size_t n, T* dz) noexcept {
  T dot = T(0);
  for (std::size_t i = 0; i < n; ++i) dot += y[i] * dy[i];
  for (std::size_t i = 0; i < n; ++i) dz[i] = y[i] * (dy[i] - dot);
}

/// Vector–Jacobian product of log-softmax: dz = dy − exp(y)·Σ dy, y = log_softmax(z).
/// dz may be dy.
template <class T, class A = default_arch>
void log_softmax_backward_column(const T* y, const T* dy, std::size_t n, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B s0(T(0));
  B s1(T(0));
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    s0 += B::load_unaligned(dy + i);
    s1 += B::load_unaligned(dy + i + W);
  }
  for (; i + W <= n; i += W) s0 += B::load_unaligned(dy + i);
  T sum = hsum(s0 + s1);
  for (; i < n; ++i) sum += dy[i];
  const B sb(sum);
  for (i = 0; i + W <= n; i += W) {
    xsimd::fnma(exp_batch(B::load_unaligned(y + i)), sb, B::load_unaligned(dy + i))
        .store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = dy[i] - std::exp(y[i]) * sum;
}

/// Scalar reference of log_softmax_backward_column.
template <class T>
void log_softmax_backward_column_reference(const T* y, const T* dy, std::size_t n, T* dz) noexcept {
  T sum = T(0);
  for (std::size_t i = 0; i < n; ++i) sum += dy[i];
  for (std::size_t i = 0; i < n; ++i) dz[i] = dy[i] - std::exp(y[i]) * sum;
}

// The cross-column kernels (kernels/tile.hpp): the column kernels above over `count` ≤ W
// consecutive columns of n ≤ tile_rows values, one column per lane (column k of an input at
// x + k·xs, of the output at y + k·ys; an output may be an input with the same layout, as every
// input is read before the output is written). The per-lane arithmetic is the column kernel's;
// the sums run in class order instead of SIMD blocks, and log S is log_batch's, so the two
// agree to a few ulps.

/// softmax_column over a tile.
template <class T, class A = default_arch>
void softmax_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count, T* y,
                  std::size_t ys) noexcept {
  using B = xsimd::batch<T, A>;
  const ColumnTile<T, A> tile(z, zs, n, count);
  B e[tile_rows];
  B m = tile.row(0);
  for (std::size_t r = 1; r < n; ++r) m = xsimd::max(m, tile.row(r));
  B S(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    e[r] = exp_batch(tile.row(r) - m);
    S += e[r];
  }
  const B inv = B(T(1)) / S;
  for (std::size_t r = 0; r < n; ++r) e[r] *= inv;
  store_tile(e, n, count, y, ys);
}

/// log_softmax_column over a tile.
template <class T, class A = default_arch>
void log_softmax_tile(const T* z, std::size_t zs, std::size_t n, std::size_t count, T* y,
                      std::size_t ys) noexcept {
  using B = xsimd::batch<T, A>;
  const ColumnTile<T, A> tile(z, zs, n, count);
  B d[tile_rows];
  B m = tile.row(0);
  for (std::size_t r = 1; r < n; ++r) m = xsimd::max(m, tile.row(r));
  B S(T(0));
  for (std::size_t r = 0; r < n; ++r) {
    d[r] = tile.row(r) - m;
    S += exp_batch(d[r]);
  }
  const B ls = log_batch(S);
  for (std::size_t r = 0; r < n; ++r) d[r] -= ls;
  store_tile(d, n, count, y, ys);
}

/// softmax_backward_column over a tile (y, dy and dz with their own strides).
template <class T, class A = default_arch>
void softmax_backward_tile(const T* y, std::size_t ys, const T* dy, std::size_t dys, std::size_t n,
                           std::size_t count, T* dz, std::size_t dzs) noexcept {
  using B = xsimd::batch<T, A>;
  const ColumnTile<T, A> yt(y, ys, n, count);
  const ColumnTile<T, A> dyt(dy, dys, n, count);
  B dot(T(0));
  for (std::size_t r = 0; r < n; ++r) dot = xsimd::fma(yt.row(r), dyt.row(r), dot);
  B out[tile_rows];
  for (std::size_t r = 0; r < n; ++r) out[r] = yt.row(r) * (dyt.row(r) - dot);
  store_tile(out, n, count, dz, dzs);
}

/// log_softmax_backward_column over a tile.
template <class T, class A = default_arch>
void log_softmax_backward_tile(const T* y, std::size_t ys, const T* dy, std::size_t dys,
                               std::size_t n, std::size_t count, T* dz, std::size_t dzs) noexcept {
  using B = xsimd::batch<T, A>;
  const ColumnTile<T, A> yt(y, ys, n, count);
  const ColumnTile<T, A> dyt(dy, dys, n, count);
  B sum(T(0));
  for (std::size_t r = 0; r < n; ++r) sum += dyt.row(r);
  B out[tile_rows];
  for (std::size_t r = 0; r < n; ++r) out[r] = xsimd::fnma(exp_batch(yt.row(r)), sum, dyt.row(r));
  store_tile(out, n, count, dz, dzs);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_SOFTMAX_HPP
