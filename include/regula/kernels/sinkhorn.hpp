/// @file
/// The raw kernels of Sinkhorn KD (losses/sinkhorn_kd.hpp): the log-domain Sinkhorn half-steps,
/// the L1 cost between softened columns (as Σa + Σb − 2·Σ min(a, b) in a 4 × 4 register tile),
/// the sign sums of its backward, and the plan and adjoint columns of the unrolled gradient.
/// Raw pointers, SIMD through xsimd, each with a scalar reference twin at the end of the file,
/// compared in the per-ISA tests (tests/kernels/sinkhorn_cases.hpp).
#ifndef REGULA_KERNELS_SINKHORN_HPP
#define REGULA_KERNELS_SINKHORN_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "regula/core/simd.hpp"
#include "regula/kernels/exp_log.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/kernels/reduce.hpp"

namespace regula {

namespace kernels {

/// One half-step of Sinkhorn in the scaling domain over an n × n matrix K (column-major, columns
/// j): s = K·x with x = exp(in) when `in_is_potential` (in holds potentials), else x = in (in
/// holds scalings); then out = −log s (the new potentials) and scaling = 1/s = exp(out) for the
/// next half-step. SIMD over rows: one axpy per column of K, so no horizontal sums. `scaling`
/// and `out` must not alias `in` or K.
template <class T, class A = default_arch>
void sinkhorn_scaled_half(const T* k, std::size_t n, const T* in, bool in_is_potential, T* scaling,
                          T* out) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  for (std::size_t i = 0; i < n; ++i) out[i] = T(0);  // s accumulates in out
  for (std::size_t j = 0; j < n; ++j) {
    const T xj = in_is_potential ? std::exp(in[j]) : in[j];
    const B xb(xj);
    const T* kc = k + j * n;
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      xsimd::fma(B::load_unaligned(kc + i), xb, B::load_unaligned(out + i))
          .store_unaligned(out + i);
    }
    for (; i < n; ++i) out[i] += kc[i] * xj;
  }
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B sb = B::load_unaligned(out + i);
    (B(T(1)) / sb).store_unaligned(scaling + i);
    (-log_batch(sb)).store_unaligned(out + i);
  }
  for (; i < n; ++i) {
    scaling[i] = T(1) / out[i];
    out[i] = -std::log(out[i]);
  }
}

/// out_i = −LSE_j(pot_j − w(i, j)·ie) for m rows at once, w(i, j) = w[j·ldw + i], over n ≥ 1
/// values of j: SIMD across rows (lanes are rows i), so there is no horizontal reduction. Two
/// passes over j per batch of rows: the maximum, then Σ exp(x − max) and one vector log. A row
/// whose terms are all −inf gives +inf; NaN gives NaN.
template <class T, class A = default_arch>
void neg_lse_rows(const T* w, std::size_t ldw, std::size_t m, const T* pot, std::size_t n, T ie,
                  T* out) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B ieb(ie), ninf(-std::numeric_limits<T>::infinity());
  for (std::size_t i = 0; i < m; i += W) {
    const std::size_t left = m - i;
    const auto row = [&](std::size_t j) noexcept {
      return xsimd::fnma(detail::load_n<B>(w + j * ldw + i, left, T(0)), ieb, B(pot[j]));
    };
    B mx = row(0);
    for (std::size_t j = 1; j < n; ++j) mx = xsimd::max(mx, row(j));
    // A NaN term may be skipped by max; exp(NaN − mx) brings it back into the sum.
    const B mb = xsimd::select(mx == ninf, B(T(0)), mx);
    B sum(T(0));
    for (std::size_t j = 0; j < n; ++j) sum += exp_batch(row(j) - mb);
    detail::store_n(out + i, left, B(-(mb + log_batch(sum))));
  }
}

/// Σ_c a[c] over n values, accumulated in the lane order of min_sum_4x4 (so that a column
/// compared with itself gives Σ min(a, a) = Σ a bit for bit).
template <class T, class A = default_arch>
T lane_sum(const T* a, std::size_t n) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B s(T(0));
  std::size_t c = 0;
  for (; c + W <= n; c += W) s += B::load_unaligned(a + c);
  T t = hsum(s);
  for (; c < n; ++c) t += a[c];
  return t;
}

namespace detail {

/// Whether min_sum_4x4 compares float bit patterns as unsigned integers on A (AVX2, AVX-512).
template <class T, class A>
inline constexpr bool integer_min_v = std::is_same_v<T, float> &&
                                      (simd::is_arch_v<A, xsimd::avx2> ||
                                       simd::is_arch_v<A, xsimd::avx512f>);

}  // namespace detail

/// Σ_c min(a_r[c], b_k[c]) for four columns a_0..a_3 against four columns b_0..b_3 of
/// non-negative values (out[4·r + k]): a 4 × 4 register tile, so each column of B is read once
/// per four columns of A. For non-negative a, b: ‖a − b‖₁ = Σa + Σb − 2·Σ min(a, b), two
/// operations per pair and class instead of three. For float on AVX2 and AVX-512 the minimum
/// compares the bit patterns as unsigned integers (the same order for non-negative IEEE values),
/// which runs on the integer units and leaves the FP units to the adds: 1.5× the throughput of
/// a float minimum on AMD Zen 4. NaN lanes may be dropped by the minimum; callers get NaN from
/// the column sums.
template <class T, class A = default_arch>
void min_sum_4x4(const T* const* a, const T* const* b, std::size_t n, T* out) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  B s[16];
  for (auto& x : s) x = B(T(0));
  std::size_t c = 0;
  if constexpr (detail::integer_min_v<T, A>) {
    using U = xsimd::batch<std::uint32_t, A>;
    // simd::opaque keeps each loaded batch in a register: without it GCC 12 reloads every
    // operand from memory for each of the 16 minima (twice the loads, and slower).
    const auto ld = [](const T* p) noexcept {
      return simd::opaque(xsimd::bitwise_cast<U>(B::load_unaligned(p)));
    };
    for (; c + W <= n; c += W) {
      const U a0 = ld(a[0] + c), a1 = ld(a[1] + c), a2 = ld(a[2] + c), a3 = ld(a[3] + c);
      for (std::size_t k = 0; k < 4; ++k) {
        const U bk = ld(b[k] + c);
        s[k] += xsimd::bitwise_cast<B>(simd::umin(a0, bk));
        s[4 + k] += xsimd::bitwise_cast<B>(simd::umin(a1, bk));
        s[8 + k] += xsimd::bitwise_cast<B>(simd::umin(a2, bk));
        s[12 + k] += xsimd::bitwise_cast<B>(simd::umin(a3, bk));
      }
    }
  } else {
    for (; c + W <= n; c += W) {
      const B a0 = B::load_unaligned(a[0] + c), a1 = B::load_unaligned(a[1] + c);
      const B a2 = B::load_unaligned(a[2] + c), a3 = B::load_unaligned(a[3] + c);
      for (std::size_t k = 0; k < 4; ++k) {
        const B bk = B::load_unaligned(b[k] + c);
        s[k] += xsimd::min(a0, bk);
        s[4 + k] += xsimd::min(a1, bk);
        s[8 + k] += xsimd::min(a2, bk);
        s[12 + k] += xsimd::min(a3, bk);
      }
    }
  }
  for (std::size_t r = 0; r < 4; ++r) {
    for (std::size_t k = 0; k < 4; ++k) {
      T t = hsum(s[4 * r + k]);
      for (std::size_t cc = c; cc < n; ++cc) t += std::min(a[r][cc], b[k][cc]);
      out[4 * r + k] = t;
    }
  }
}

/// The sign-weighted sums of the cost's backward for four columns a_0..a_3 (rows i of W̄):
/// acc_r[c] = Σ_{j<m} w[4j + r]·sign(a_r[c] − b_j[c]) (sign(0) = 0, NaN counts 0) over n
/// values, b_j = b + j·ldb, w packed four weights per j. Register tile of 4 columns × 2 batches
/// of classes, all m columns of b streamed through it, so each accumulator is stored once: per
/// pair and class two compares and two masked adds (the compares into mask registers bound it
/// on AMD Zen 4). Only rows r < rows are written.
template <class T, class A = default_arch>
void sign_accumulate_4(const T* const* a, std::size_t rows, const T* b, std::size_t ldb,
                       std::size_t m, const T* w, std::size_t n, T* const* acc) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const auto weight = [&](std::size_t j, std::size_t r) noexcept { return B(w[4 * j + r]); };
  const auto step = [](B& s, const B& x, const B& y, const B& wr) noexcept {
    s = xsimd::select(x > y, s + wr, s);
    s = xsimd::select(x < y, s - wr, s);
  };
  std::size_t c = 0;
  for (; c + 2 * W <= n; c += 2 * W) {
    B x[8], s[8];
    for (std::size_t r = 0; r < 4; ++r) {
      x[2 * r] = B::load_unaligned(a[r] + c);
      x[2 * r + 1] = B::load_unaligned(a[r] + c + W);
      s[2 * r] = s[2 * r + 1] = B(T(0));
    }
    for (std::size_t j = 0; j < m; ++j) {
      const T* bj = b + j * ldb + c;
      const B y0 = B::load_unaligned(bj), y1 = B::load_unaligned(bj + W);
      for (std::size_t r = 0; r < 4; ++r) {
        const B wr = weight(j, r);
        step(s[2 * r], x[2 * r], y0, wr);
        step(s[2 * r + 1], x[2 * r + 1], y1, wr);
      }
    }
    for (std::size_t r = 0; r < rows; ++r) {
      s[2 * r].store_unaligned(acc[r] + c);
      s[2 * r + 1].store_unaligned(acc[r] + c + W);
    }
  }
  for (; c < n; c += W) {  // last batch, padded: 0 against 0 adds nothing
    const std::size_t left = n - c;
    B x[4], s[4];
    for (std::size_t r = 0; r < 4; ++r) {
      x[r] = detail::load_n<B>(a[r] + c, left, T(0));
      s[r] = B(T(0));
    }
    for (std::size_t j = 0; j < m; ++j) {
      const B y = detail::load_n<B>(b + j * ldb + c, left, T(0));
      for (std::size_t r = 0; r < 4; ++r) step(s[r], x[r], y, weight(j, r));
    }
    for (std::size_t r = 0; r < rows; ++r) detail::store_n(acc[r] + c, left, s[r]);
  }
}

/// One column j of the plan: p_i = exp(f_i + gj − w_i·ie), and rowsum_i += p_i·w_i, over n
/// values.
template <class T, class A = default_arch>
void sinkhorn_plan_column(const T* w, const T* f, T gj, T ie, std::size_t n, T* p,
                          T* rowsum) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B gjb(gj), ieb(ie);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B wi = B::load_unaligned(w + i);
    const B q = exp_batch(xsimd::fnma(wi, ieb, B::load_unaligned(f + i) + gjb));
    q.store_unaligned(p + i);
    xsimd::fma(q, wi, B::load_unaligned(rowsum + i)).store_unaligned(rowsum + i);
  }
  for (; i < n; ++i) {
    p[i] = std::exp(f[i] + gj - w[i] * ie);
    rowsum[i] += p[i] * w[i];
  }
}

/// Column step of the unrolled backward: q_i = exp(f_i + gj − w_i·ie);
/// wb_i += gb·ie·q_i and fbar_i −= gb·q_i over n values.
template <class T, class A = default_arch>
void sinkhorn_col_adjoint(const T* w, const T* f, T gj, T ie, T gb, std::size_t n, T* wb,
                          T* fbar) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B gjb(gj), ieb(ie), ab(gb * ie), gbb(gb);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B q =
        exp_batch(xsimd::fnma(B::load_unaligned(w + i), ieb, B::load_unaligned(f + i) + gjb));
    xsimd::fma(ab, q, B::load_unaligned(wb + i)).store_unaligned(wb + i);
    xsimd::fnma(gbb, q, B::load_unaligned(fbar + i)).store_unaligned(fbar + i);
  }
  for (; i < n; ++i) {
    const T q = std::exp(f[i] + gj - w[i] * ie);
    wb[i] += gb * ie * q;
    fbar[i] -= gb * q;
  }
}

/// Row step of the unrolled backward for one column j: r_i = exp(f_i + gj − w_i·ie);
/// wb_i += ie·fbar_i·r_i; returns Σ_i fbar_i·r_i.
template <class T, class A = default_arch>
T sinkhorn_row_adjoint(const T* w, const T* f, T gj, T ie, const T* fbar, std::size_t n,
                       T* wb) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B gjb(gj), ieb(ie);
  B acc(T(0));
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B r =
        exp_batch(xsimd::fnma(B::load_unaligned(w + i), ieb, B::load_unaligned(f + i) + gjb));
    const B fr = B::load_unaligned(fbar + i) * r;
    xsimd::fma(ieb, fr, B::load_unaligned(wb + i)).store_unaligned(wb + i);
    acc += fr;
  }
  T s = hsum(acc);
  for (; i < n; ++i) {
    const T fr = fbar[i] * std::exp(f[i] + gj - w[i] * ie);
    wb[i] += ie * fr;
    s += fr;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Scalar reference twins, one per kernel above, written from the definitions (the per-ISA tests
// compare each kernel with its twin).

/// Reference of sinkhorn_scaled_half: s_i = Σ_j K(i, j)·x_j, scaling_i = 1/s_i, out_i = −log s_i.
template <class T>
void sinkhorn_scaled_half_reference(const T* k, std::size_t n, const T* in, bool in_is_potential,
                                    T* scaling, T* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    T s = T(0);
    for (std::size_t j = 0; j < n; ++j)
      s += k[j * n + i] * (in_is_potential ? std::exp(in[j]) : in[j]);
    scaling[i] = T(1) / s;
    out[i] = -std::log(s);
  }
}

/// Reference of neg_lse_rows: out_i = −log Σ_j exp(pot_j − w(i, j)·ie), around the maximum.
template <class T>
void neg_lse_rows_reference(const T* w, std::size_t ldw, std::size_t m, const T* pot, std::size_t n,
                            T ie, T* out) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    T mx = -std::numeric_limits<T>::infinity();
    for (std::size_t j = 0; j < n; ++j) mx = std::max(mx, pot[j] - w[j * ldw + i] * ie);
    const T mb = mx == -std::numeric_limits<T>::infinity() ? T(0) : mx;
    T sum = T(0);
    for (std::size_t j = 0; j < n; ++j) sum += std::exp(pot[j] - w[j * ldw + i] * ie - mb);
    out[i] = -(mb + std::log(sum));
  }
}

/// Reference of lane_sum: Σ a in index order.
template <class T>
T lane_sum_reference(const T* a, std::size_t n) noexcept {
  T s = T(0);
  for (std::size_t c = 0; c < n; ++c) s += a[c];
  return s;
}

/// Reference of min_sum_4x4: out[4·r + k] = Σ_c min(a_r[c], b_k[c]).
template <class T>
void min_sum_4x4_reference(const T* const* a, const T* const* b, std::size_t n, T* out) noexcept {
  for (std::size_t r = 0; r < 4; ++r) {
    for (std::size_t k = 0; k < 4; ++k) {
      T t = T(0);
      for (std::size_t c = 0; c < n; ++c) t += std::min(a[r][c], b[k][c]);
      out[4 * r + k] = t;
    }
  }
}

/// Reference of sign_accumulate_4: acc_r[c] = Σ_j w[4j + r]·sign(a_r[c] − b_j[c]), r < rows.
template <class T>
void sign_accumulate_4_reference(const T* const* a, std::size_t rows, const T* b, std::size_t ldb,
                                 std::size_t m, const T* w, std::size_t n, T* const* acc) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < n; ++c) {
      T s = T(0);
      for (std::size_t j = 0; j < m; ++j) {
        const T x = a[r][c], y = b[j * ldb + c];
        if (x > y) s += w[4 * j + r];
        if (x < y) s -= w[4 * j + r];
      }
      acc[r][c] = s;
    }
  }
}

/// Reference of sinkhorn_plan_column.
template <class T>
void sinkhorn_plan_column_reference(const T* w, const T* f, T gj, T ie, std::size_t n, T* p,
                                    T* rowsum) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = std::exp(f[i] + gj - w[i] * ie);
    rowsum[i] += p[i] * w[i];
  }
}

/// Reference of sinkhorn_col_adjoint.
template <class T>
void sinkhorn_col_adjoint_reference(const T* w, const T* f, T gj, T ie, T gb, std::size_t n, T* wb,
                                    T* fbar) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T q = std::exp(f[i] + gj - w[i] * ie);
    wb[i] += gb * ie * q;
    fbar[i] -= gb * q;
  }
}

/// Reference of sinkhorn_row_adjoint.
template <class T>
T sinkhorn_row_adjoint_reference(const T* w, const T* f, T gj, T ie, const T* fbar, std::size_t n,
                                 T* wb) noexcept {
  T s = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T fr = fbar[i] * std::exp(f[i] + gj - w[i] * ie);
    wb[i] += ie * fr;
    s += fr;
  }
  return s;
}

}  // namespace kernels

}  // namespace regula

#endif  // REGULA_KERNELS_SINKHORN_HPP
