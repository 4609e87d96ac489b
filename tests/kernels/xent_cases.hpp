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

// Long-double reference of one column with target q_j = β_j + [j = y]·w_y, β_j = β·w_j (class
// weights w, all ones when null; γ = 1): ℓ = Σ_j q_j·log(S/s_j) and g·∂ℓ/∂z = g·r ⊙ (a·s/S − q),
// a = Σ_j q_j (softmax: s = e^{z−m}, r = 1; StableMax: r_j·s_j = min(s_j, 1)²), the label's
// element g·r_y·((a − q_y)·s_y − q_y·R)/S, R = Σ_{j≠y} s_j. `size` = Σ_j β_j·(|log S| + |log
// s_j|), the size of the smoothing terms, which may cancel in any implementation (to 0 for one
// class); dz_size[r] the size of element r's two terms, which cancel where the smoothed target
// is nearly met (the label's (a − q_y)·s_y against q_y·R): a rounding of s or of R in any
// implementation moves the element by eps on that scale.
template <regula::Normalizer Norm, class T>
long double reference(const T* z, std::size_t n, std::size_t y, T beta, const T* weight, T g,
                      long double* dz, long double* dz_size, long double& size) {
  using L = long double;
  L m = static_cast<L>(z[0]);
  for (std::size_t r = 1; r < n; ++r) m = std::max(m, static_cast<L>(z[r]));
  std::vector<L> s(n), q(n);
  L S = 0, R = 0, a = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const L x = static_cast<L>(z[r]);
    if constexpr (Norm == regula::Normalizer::softmax) {
      s[r] = std::exp(x - m);
    } else {
      s[r] = x >= 0 ? 1 + x : 1 / (1 - x);
    }
    S += s[r];
    if (r != y) R += s[r];
    const L w = weight != nullptr ? static_cast<L>(weight[r]) : L(1);
    q[r] = static_cast<L>(beta) * w;
    a += q[r];
  }
  const L wy = weight != nullptr ? static_cast<L>(weight[y]) : L(1);
  q[y] += wy;
  a += wy;
  L loss = wy * std::log1p(R / s[y]);
  size = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const L x = static_cast<L>(z[r]);
    const L rr = Norm == regula::Normalizer::softmax ? L(1) : 1 / (1 + std::abs(x));
    const L b = q[r] - (r == y ? wy : L(0));  // β_r
    if (b != 0) {
      // log s from the logits: s itself may underflow even in long double (regime 3).
      const L log_s =
          Norm == regula::Normalizer::softmax ? x - m : (x >= 0 ? std::log1p(x) : -std::log1p(-x));
      loss += b * (std::log(S) - log_s);
      size += b * (std::abs(std::log(S)) + std::abs(log_s));
    }
    const L gr = static_cast<L>(g) * rr;
    dz[r] = r == y ? gr * ((a - q[r]) * s[r] - q[r] * R) / S : gr * (a * s[r] / S - q[r]);
    dz_size[r] = r == y ? gr * ((a - q[r]) * s[r] + q[r] * R) / S : gr * (a * s[r] / S + q[r]);
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
          for (const bool weighted : {false, true}) {
            INFO("n " << n << ", count " << count << ", regime " << regime << ", W " << W
                      << ", beta " << beta << ", weighted " << weighted);
            // Class weights with a zero among them (a label of weight 0 keeps the smoothing part).
            std::vector<T> wv(n);
            for (std::size_t r = 0; r < n; ++r)
              wv[r] = r % 4 == 2 ? T(0) : static_cast<T>(0.25 + 0.5 * static_cast<double>(r % 5));
            const T* w = weighted ? wv.data() : nullptr;
            std::vector<std::int64_t> y(count);
            for (std::size_t k = 0; k < count; ++k)
              y[k] = static_cast<std::int64_t>((k * 7 + 3) % n);
            const auto z = logits<T>(n, count, regime, y);
            // One column past the tile holds a sentinel: the kernel writes `count` columns only.
            std::vector<T> dz(n * (count + 1), T(-7)), dz_col(n * count);
            XentTerms terms[16];
            regula::kernels::xent_hard_tile<Norm, T>(z.data(), n, n, count, y.data(), w, beta,
                                                     gamma, g, dz.data(), n, terms);
            XentTerms no_dz[16];
            regula::kernels::xent_hard_tile<Norm, T>(z.data(), n, n, count, y.data(), w, beta,
                                                     gamma, g, static_cast<T*>(nullptr), n, no_dz);
            for (std::size_t r = 0; r < n; ++r) CHECK(dz[count * n + r] == T(-7));
            std::vector<long double> ref(n), ref_size(n);
            for (std::size_t k = 0; k < count; ++k) {
              const T* zk = z.data() + k * n;
              const auto yk = static_cast<std::size_t>(y[k]);
              // The per-column kernel: the hard-label one without weights, the general one
              // (softmax_xent, stablemax_xent) with them.
              double loss_col;
              if (weighted) {
                regula::kernels::XentTarget<T> t;
                t.weight = w;
                t.label = y[k];
                t.beta = beta;
                t.gamma = gamma;
                loss_col =
                    regula::kernels::xent_column<Norm, T>(zk, n, t, g, dz_col.data() + k * n);
              } else {
                const XentTerms col = regula::kernels::xent_hard_terms<Norm, T>(
                    zk, n, yk, beta, gamma, g, dz_col.data() + k * n);
                CHECK(terms[k].kind == col.kind);
                loss_col = regula::kernels::xent_finish(col);
              }
              long double size_ref = 0;
              const long double loss_ref =
                  reference<Norm>(zk, n, yk, beta, w, g, ref.data(), ref_size.data(), size_ref);
              const double loss = regula::kernels::xent_finish(terms[k]);
              CHECK(loss == regula::kernels::xent_finish(no_dz[k]));  // the same with or without dz
              long double span = 0;
              for (std::size_t r = 0; r < n; ++r) span = std::max(span, condition<Norm>(zk, n, r));
              const double tol_loss = 8.0 * (static_cast<double>(n) + static_cast<double>(span)) *
                                      static_cast<double>(eps);
              CHECK(std::abs(static_cast<long double>(loss) - loss_ref) <=
                    static_cast<long double>(tol_loss) * (loss_ref + size_ref) + 1e-300L);
              CHECK(std::abs(loss - loss_col) <=
                    tol_loss * (std::abs(loss) + static_cast<double>(size_ref)) + 1e-300);
              for (std::size_t r = 0; r < n; ++r) {
                const T d = dz[k * n + r];
                const long double floor = static_cast<long double>(std::numeric_limits<T>::min());
                INFO("column " << k << ", class " << r << ": " << d << " vs "
                               << static_cast<double>(ref[r]));
                const long double cond = 1 + condition<Norm>(zk, n, r);
                // Each element is a difference of two terms (see reference): accurate on the
                // scale of those terms, as the per-column kernel.
                const long double rr =
                    Norm == regula::Normalizer::softmax
                        ? 1.0L
                        : 1.0L / (1.0L + std::abs(static_cast<long double>(zk[r])));
                const long double wr = w != nullptr ? static_cast<long double>(w[r]) : 1.0L;
                const long double size = ref_size[r];
                CHECK(std::abs(static_cast<long double>(d) - ref[r]) <=
                      16 * static_cast<long double>(eps) * cond * size + floor);
                // The general per-column kernel forms every element as g·r·(a·s/S − q_r) away
                // from the column's largest class: accurate on the scale of those terms.
                const long double qr = weighted
                                           ? static_cast<long double>(g) * rr *
                                                 (static_cast<long double>(beta) * wr +
                                                  (r == static_cast<std::size_t>(yk) ? wr : 0.0L))
                                           : 0.0L;
                const T dc = dz_col[k * n + r];
                CHECK(std::abs(d - dc) <=
                      T(32) * eps * static_cast<T>(size + qr) + std::numeric_limits<T>::min());
              }
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
