// The cross-column cross-entropy kernels (softmax_xent_hard_tile, stablemax_xent_hard_tile)
// against the per-column kernels and a long-double reference, per element, for every head width
// they take and ragged tiles, in the random, confident and collapsed regimes. Compiled for each
// instruction set by test_isa.cpp and for the default one by test_cross_entropy.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "regula/kernels/cross_entropy.hpp"

#include "support/catch.hpp"

namespace xent_cases {

// Column k's logits: regime 0 random in [-4, 4), 1 confident (the label 30 above the rest),
// 2 collapsed (all equal), 3 large (±1e4 spread, label on top).
template <class T>
std::vector<T> logits(std::size_t n, std::size_t cols, int regime,
                      const std::vector<std::int64_t>& y) {
  std::vector<T> z(n * cols);
  std::uint64_t s =
      0x9E3779B97F4A7C15ULL * (n + 7 * cols + 31 * static_cast<std::uint64_t>(regime));
  for (std::size_t k = 0; k < cols; ++k) {
    for (std::size_t r = 0; r < n; ++r) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      const double u = static_cast<double>(s >> 11) * 0x1.0p-53;  // [0, 1)
      double v = 8.0 * u - 4.0;
      if (regime == 2) v = 0.5;
      if (regime == 3) v = 2e4 * u - 1e4;
      if (static_cast<std::int64_t>(r) == y[k]) {
        if (regime == 1) v = 30.0;
        if (regime == 3) v = 1.5e4;
      }
      z[k * n + r] = static_cast<T>(v);
    }
  }
  return z;
}

}  // namespace xent_cases

namespace xent_cases {

// Long-double reference of one column with target q = β·1 + e_y (γ = 1): ℓ = Σ_j q_j·log(S/s_j)
// and g·∂ℓ/∂z = g·r ⊙ ((nβ + 1)·s/S − q) (softmax: s = e^{z−m}, r = 1; StableMax: r_j·s_j =
// min(s_j, 1)²), the label's element g·r_y·((n − 1)·β·s_y − (β + 1)·R)/S, R = Σ_{j≠y} s_j.
template <regula::Normalizer Norm, class T>
// `size` = Σ_j β·(|log S| + |log s_j|), the size of the smoothing terms, which may cancel in
// any implementation (to 0 for one class).
long double reference(const T* z, std::size_t n, std::size_t y, T beta, T g, long double* dz,
                      long double& size) {
  using L = long double;
  L m = static_cast<L>(z[0]);
  for (std::size_t r = 1; r < n; ++r) m = std::max(m, static_cast<L>(z[r]));
  std::vector<L> s(n);
  L S = 0, R = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const L x = static_cast<L>(z[r]);
    if constexpr (Norm == regula::Normalizer::softmax) {
      s[r] = std::exp(x - m);
    } else {
      s[r] = x >= 0 ? 1 + x : 1 / (1 - x);
    }
    S += s[r];
    if (r != y) R += s[r];
  }
  const L b = static_cast<L>(beta), a = static_cast<L>(n) * b;
  L loss = std::log1p(R / s[y]);
  size = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const L x = static_cast<L>(z[r]);
    const L rr = Norm == regula::Normalizer::softmax ? L(1) : 1 / (1 + std::abs(x));
    if (b != 0) {
      // log s from the logits: s itself may underflow even in long double (regime 3).
      const L log_s =
          Norm == regula::Normalizer::softmax ? x - m : (x >= 0 ? std::log1p(x) : -std::log1p(-x));
      loss += b * (std::log(S) - log_s);
      size += b * (std::abs(std::log(S)) + std::abs(log_s));
    }
    dz[r] = r == y ? static_cast<L>(g) * rr * (static_cast<L>(n - 1) * b * s[r] - (b + 1) * R) / S
                   : static_cast<L>(g) * rr * ((a + 1) * s[r] / S - b);
  }
  return loss;
}

// The relative condition of the normalizer's element r: |z_r − m| for softmax's exp(z − m) (the
// rounding of z − m alone moves e_r that much, in every implementation), at most 1 for s(z).
template <regula::Normalizer Norm, class T>
long double condition(const T* z, std::size_t n, std::size_t r) {
  if constexpr (Norm == regula::Normalizer::softmax) {
    long double m = static_cast<long double>(z[0]);
    for (std::size_t k = 1; k < n; ++k) m = std::max(m, static_cast<long double>(z[k]));
    return m - static_cast<long double>(z[r]);
  } else {
    return 1;
  }
}

template <regula::Normalizer Norm, class T>
void check_tile() {
  using regula::kernels::XentTerms;
  constexpr std::size_t W = xsimd::batch<T, regula::default_arch>::size;
  const T eps = std::numeric_limits<T>::epsilon();
  const T g = T(1) / T(3);
  const T gamma = T(1);
  constexpr std::size_t widths[] = {1, 2, 3, 5, 10, 16, 17, 31, 32};
  for (const std::size_t n : widths) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, W}) {
      if (count > W) continue;
      for (const int regime : {0, 1, 2, 3}) {
        for (const T beta : {T(0), T(0.1) / static_cast<T>(n)}) {  // label smoothing 0 and 0.1
          INFO("n " << n << ", count " << count << ", regime " << regime << ", W " << W << ", beta "
                    << beta);
          std::vector<std::int64_t> y(count);
          for (std::size_t k = 0; k < count; ++k) y[k] = static_cast<std::int64_t>((k * 7 + 3) % n);
          const auto z = logits<T>(n, count, regime, y);
          // One column past the tile holds a sentinel: the kernel writes `count` columns only.
          std::vector<T> dz(n * (count + 1), T(-7)), dz_col(n * count);
          XentTerms terms[16];
          regula::kernels::xent_hard_tile<Norm, T>(z.data(), n, n, count, y.data(), beta, gamma, g,
                                                   dz.data(), n, terms);
          XentTerms no_dz[16];
          regula::kernels::xent_hard_tile<Norm, T>(z.data(), n, n, count, y.data(), beta, gamma, g,
                                                   static_cast<T*>(nullptr), n, no_dz);
          for (std::size_t r = 0; r < n; ++r) CHECK(dz[count * n + r] == T(-7));
          std::vector<long double> ref(n);
          for (std::size_t k = 0; k < count; ++k) {
            const T* zk = z.data() + k * n;
            const auto yk = static_cast<std::size_t>(y[k]);
            const XentTerms col = regula::kernels::xent_hard_terms<Norm, T>(
                zk, n, yk, beta, gamma, g, dz_col.data() + k * n);
            long double size_ref = 0;
            const long double loss_ref = reference<Norm>(zk, n, yk, beta, g, ref.data(), size_ref);
            const double loss = regula::kernels::xent_finish(terms[k]);
            CHECK(loss == regula::kernels::xent_finish(no_dz[k]));  // the same with or without dz
            CHECK(terms[k].kind == col.kind);
            long double span = 0;
            for (std::size_t r = 0; r < n; ++r) span = std::max(span, condition<Norm>(zk, n, r));
            const double tol_loss = 8.0 * (static_cast<double>(n) + static_cast<double>(span)) *
                                    static_cast<double>(eps);
            CHECK(std::abs(static_cast<long double>(loss) - loss_ref) <=
                  static_cast<long double>(tol_loss) * (loss_ref + size_ref) + 1e-300L);
            CHECK(std::abs(loss - regula::kernels::xent_finish(col)) <=
                  tol_loss * std::abs(loss) + 1e-300);
            for (std::size_t r = 0; r < n; ++r) {
              const T d = dz[k * n + r];
              const long double floor = static_cast<long double>(std::numeric_limits<T>::min());
              INFO("column " << k << ", class " << r << ": " << d << " vs "
                             << static_cast<double>(ref[r]));
              const long double cond = 1 + condition<Norm>(zk, n, r);
              // With smoothing an element other than the label's is the difference of g·r·(nβ +
              // 1)·s/S and g·r·β: accurate on the scale of its terms (as the per-column kernel).
              const long double rr =
                  Norm == regula::Normalizer::softmax
                      ? 1.0L
                      : 1.0L / (1.0L + std::abs(static_cast<long double>(zk[r])));
              const long double size = std::abs(ref[r]) + (r != static_cast<std::size_t>(yk)
                                                               ? static_cast<long double>(g) * rr *
                                                                     static_cast<long double>(beta)
                                                               : 0.0L);
              CHECK(std::abs(static_cast<long double>(d) - ref[r]) <=
                    16 * static_cast<long double>(eps) * cond * size + floor);
              const T dc = dz_col[k * n + r];
              CHECK(std::abs(d - dc) <=
                    T(32) * eps * static_cast<T>(size) + std::numeric_limits<T>::min());
            }
          }
        }
      }
    }
  }
}

}  // namespace xent_cases

TEMPLATE_TEST_CASE(
    "The cross-column softmax cross-entropy kernel matches the per-column one and a "
    "long-double reference per element",
    "[kernels][cross_entropy][simd]", float, double) {
  xent_cases::check_tile<regula::Normalizer::softmax, TestType>();
}

TEMPLATE_TEST_CASE(
    "The cross-column StableMax cross-entropy kernel matches the per-column one and a "
    "long-double reference per element",
    "[kernels][cross_entropy][stablemax][simd]", float, double) {
  xent_cases::check_tile<regula::Normalizer::stablemax, TestType>();
}
