// SIMD-versus-scalar cases of the distillation kernels (kernels/kd.hpp) on ragged sizes,
// compiled once per instruction set (tests/kernels/test_isa.cpp) and in the default build
// (tests/kernels/test_kd.cpp).
#ifndef REGULA_TESTS_KERNELS_KD_CASES_HPP
#define REGULA_TESTS_KERNELS_KD_CASES_HPP

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "regula/kernels/kd.hpp"

#include "support/catch.hpp"

namespace regula::test::kd_kernels {

template <class T>
std::vector<T> data(std::size_t n, unsigned salt, double scale) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = std::sin(1.3 * static_cast<double>(i) + salt) * 43758.5453;
    x[i] = static_cast<T>(scale * (2.0 * (u - std::floor(u)) - 1.0));
  }
  return x;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    w = std::max(w, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) /
                        std::max(1e-3, std::abs(static_cast<double>(b[i]))));
  }
  return w;
}

TEMPLATE_TEST_CASE("KD kernels agree with their scalar references", "[kernels][kd]", float,
                   double) {
  using T = TestType;
  namespace k = regula::kernels;
  constexpr std::size_t W = regula::simd::width<T>;
  for (std::size_t n :
       {std::size_t{2}, W - 1, W, W + 1, 2 * W + 3, std::size_t{100}, std::size_t{1000}}) {
    if (n < 2) continue;
    CAPTURE(n);
    const auto z = data<T>(n, 1, 6.0), v = data<T>(n, 2, 6.0);
    std::vector<T> a(n), b(n), sa(n), sb(n);
    const T kz = T(0.25), kv = T(0.5), gs = T(0.75);
    for (bool with_scratch : {true, false}) {
      const double la = k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, a.data(),
                                           with_scratch ? sa.data() : nullptr);
      const double lb = k::kd_kl_column_reference<T>(z.data(), v.data(), n, kz, kv, gs, b.data(),
                                                     with_scratch ? sb.data() : nullptr);
      CHECK(la == Approx(lb).epsilon(tol<T>()).margin(tol<T>()));
      CHECK(max_rel(a, b) < tol<T>());
      for (std::size_t t : {std::size_t{0}, n / 2, n - 1}) {
        const auto ra = k::dkd_column<T>(z.data(), v.data(), n, t, kz, T(1), T(8), gs, a.data(),
                                         with_scratch ? sa.data() : nullptr);
        const auto rb = k::dkd_column_reference<T>(z.data(), v.data(), n, t, kz, T(1), T(8), gs,
                                                   b.data(), with_scratch ? sb.data() : nullptr);
        CHECK(ra.tckd == Approx(rb.tckd).epsilon(tol<T>()).margin(tol<T>()));
        CHECK(ra.nckd == Approx(rb.nckd).epsilon(tol<T>()).margin(tol<T>()));
        CHECK(max_rel(a, b) < tol<T>());
      }
    }
    const double ra = k::reverse_kl_column<T>(z.data(), v.data(), n, kz, gs, a.data());
    const double rb = k::reverse_kl_column_reference<T>(z.data(), v.data(), n, kz, gs, b.data());
    CHECK(ra == Approx(rb).epsilon(tol<T>()).margin(tol<T>()));
    CHECK(max_rel(a, b) < tol<T>());
    // Loss-only calls give the same value.
    const double lk = k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, a.data(), sa.data());
    CHECK(k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, nullptr, nullptr) ==
          Approx(lk).epsilon(1e-12));
  }
}

// The cross-column KD kernels (kd_kl_tile, reverse_kl_tile, tv_tile, js_tile, binary_kl_tile,
// binary_kl_norm_tile, logit_mse_tile) against their per-column kernels, per column and
// element: on
// tiles of every head width it takes, ragged and strided, with columns that take the direct
// form (random), the cancellation-free path (teacher = student + tiny noise, confident columns
// whose top classes agree), the wide fallback (logits spanning past the largest T) and NaN.
// Columns that fall back get the per-column kernel's own bits; direct ones agree to a few ulps,
// and the gradients of the per-class sums (BinaryKL, BinaryKL-Norm, logit MSE) bit for bit.
// Modes: 0 kd_kl, 1 reverse_kl, 2 total variation, 3 JS, 4 BinaryKL, 5 BinaryKL-Norm,
// 6 logit MSE.
template <class T, int Mode>
void check_kd_tile() {
  constexpr bool Reverse = Mode == 1 || Mode == 3;  // gradient terms of the size p·(|r| + D + 1)
  constexpr bool Elementwise = Mode >= 4;
  namespace k = regula::kernels;
  constexpr std::size_t W = regula::simd::width<T>;
  const T M = std::numeric_limits<T>::max();
  const double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{10},
                              std::size_t{17}, std::size_t{32}}) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{5}, W}) {
      if (count > W) continue;
      const std::size_t s = n + 3;  // strided: three rows of padding per column
      std::vector<T> z(s * count, T(-5)), v(s * count, T(-5));
      for (std::size_t c = 0; c < count; ++c) {
        const auto zc = data<T>(n, static_cast<unsigned>(3 * c + 1), 6.0);
        const auto vc = data<T>(n, static_cast<unsigned>(3 * c + 2), 6.0);
        for (std::size_t r = 0; r < n; ++r) {
          T zr = zc[r], vr = vc[r];
          switch (c % 5) {
            case 1:  // nearly equal: the cancellation-free path
              vr = zr + T(1e-3) * vc[r];
              break;
            case 2:  // confident, top classes agree
              if (r == 0) zr = vr = T(25);
              break;
            case 3:  // past the largest T: the wide fallback
              if (r < 2 && n >= 2) zr = r == 0 ? M : -M;
              break;
            case 4:  // NaN in the teacher
              if (r == n / 2) vr = std::numeric_limits<T>::quiet_NaN();
              break;
            default:
              break;
          }
          z[c * s + r] = zr;
          v[c * s + r] = vr;
        }
      }
      CAPTURE(n, count);
      const T kk = T(0.5), gs = T(0.75);
      std::vector<T> dz(s * count, T(7)), dcol(n), scratch(n);
      double d[64], d_nodz[64];
      T* const none = nullptr;
      if constexpr (Mode == 6) {
        k::logit_mse_tile<T>(z.data(), s, v.data(), s, n, count, gs, dz.data(), s, d);
        k::logit_mse_tile<T>(z.data(), s, v.data(), s, n, count, gs, none, s, d_nodz);
      } else if constexpr (Mode == 5) {
        k::binary_kl_norm_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, dz.data(), s, d);
        k::binary_kl_norm_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, none, s, d_nodz);
      } else if constexpr (Mode == 4) {
        k::binary_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, dz.data(), s, d);
        k::binary_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, none, s, d_nodz);
      } else if constexpr (Mode == 3) {
        k::js_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, dz.data(), s, d);
        k::js_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, none, s, d_nodz);
      } else if constexpr (Mode == 2) {
        k::tv_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, dz.data(), s, d);
        k::tv_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, static_cast<T*>(nullptr), s,
                      d_nodz);
      } else if constexpr (Mode == 1) {
        k::reverse_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, dz.data(), s, d);
        k::reverse_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, gs, static_cast<T*>(nullptr),
                              s, d_nodz);
      } else {
        k::kd_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, kk, gs, dz.data(), s, d);
        k::kd_kl_tile<T>(z.data(), s, v.data(), s, n, count, kk, kk, gs, static_cast<T*>(nullptr),
                         s, d_nodz);
      }
      for (std::size_t c = 0; c < count; ++c) {
        CAPTURE(c);
        double dc;
        const T* zc = z.data() + c * s;
        const T* vc = v.data() + c * s;
        if constexpr (Mode == 6) {
          dc = k::logit_mse_column<T>(zc, vc, n, gs, dcol.data());
        } else if constexpr (Mode == 5) {
          dc = k::binary_kl_norm_column<T>(zc, vc, n, kk, gs, dcol.data());
        } else if constexpr (Mode == 4) {
          dc = k::binary_kl_column<T>(zc, vc, n, kk, gs, dcol.data());
        } else if constexpr (Mode == 3) {
          dc = k::js_column<T>(zc, vc, n, kk, gs, dcol.data(), scratch.data());
        } else if constexpr (Mode == 2) {
          dc = k::tv_column<T>(z.data() + c * s, v.data() + c * s, n, kk, gs, dcol.data(),
                               scratch.data());
        } else if constexpr (Mode == 1) {
          dc = k::reverse_kl_column<T>(z.data() + c * s, v.data() + c * s, n, kk, gs, dcol.data());
        } else {
          dc = k::kd_kl_column<T>(z.data() + c * s, v.data() + c * s, n, kk, kk, gs, dcol.data(),
                                  scratch.data());
        }
        if (std::isnan(dc)) {
          CHECK(std::isnan(d[c]));
          CHECK(std::isnan(d_nodz[c]));
          continue;
        }
        CHECK(d[c] == d_nodz[c]);  // the same with or without the gradient
        CHECK(d[c] >= 0.0);
        if (std::isinf(dc)) {  // logit MSE past the largest T: +inf, as the column's
          CHECK(d[c] == dc);
          continue;
        }
        CHECK(std::abs(d[c] - dc) <= 64 * eps * dc + 1e-300);
        if constexpr (Elementwise) {
          for (std::size_t r = 0; r < n; ++r) {
            INFO("row " << r);
            CHECK(dz[c * s + r] == dcol[r]);
          }
          for (std::size_t r = n; r < s; ++r) CHECK(dz[c * s + r] == T(7));
          continue;
        }
        // Each gradient element gs·k·(p − q) on the scale of its two terms.
        double sz = 0, sv = 0, mz = -std::numeric_limits<double>::infinity(), mv = mz;
        for (std::size_t r = 0; r < n; ++r) {
          mz = std::max(mz, static_cast<double>(z[c * s + r]));
          mv = std::max(mv, static_cast<double>(v[c * s + r]));
        }
        for (std::size_t r = 0; r < n; ++r) {
          sz += std::exp(static_cast<double>(kk) * (static_cast<double>(z[c * s + r]) - mz));
          sv += std::exp(static_cast<double>(kk) * (static_cast<double>(v[c * s + r]) - mv));
        }
        for (std::size_t r = 0; r < n; ++r) {
          const double p =
              std::exp(static_cast<double>(kk) * (static_cast<double>(z[c * s + r]) - mz)) / sz;
          const double q =
              std::exp(static_cast<double>(kk) * (static_cast<double>(v[c * s + r]) - mv)) / sv;
          // kd_kl: gs·k·(p − q); reverse KL: gs·k·p·(r − D), r = log p − log q, whose terms are
          // of the size p·(|r| + D + 1).
          const double lr = p > 0 && q > 0 ? std::abs(std::log(p / q)) : 0.0;
          const double size = Reverse ? p * (lr + dc + 1.0) : p + q;
          const double scale = static_cast<double>(gs * kk) * (std::isfinite(size) ? size : 1.0);
          INFO("row " << r << ": " << dz[c * s + r] << " vs " << dcol[r]);
          CHECK(std::abs(static_cast<double>(dz[c * s + r]) - static_cast<double>(dcol[r])) <=
                64 * eps * scale + static_cast<double>(std::numeric_limits<T>::min()));
        }
        for (std::size_t r = n; r < s; ++r) CHECK(dz[c * s + r] == T(7));  // padding untouched
      }
    }
  }
}

// The cross-column DKD kernel (dkd_tile) against dkd_column, per column and element, on the
// regimes of check_kd_tile, with targets on every row: TCKD, NCKD and every gradient element
// each to a few ulps of its own size.
template <class T>
void check_dkd_tile() {
  namespace k = regula::kernels;
  constexpr std::size_t W = regula::simd::width<T>;
  const T M = std::numeric_limits<T>::max();
  const double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  for (const std::size_t n :
       {std::size_t{2}, std::size_t{3}, std::size_t{10}, std::size_t{17}, std::size_t{32}}) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{5}, W}) {
      if (count > W) continue;
      const std::size_t s = n + 2;
      std::vector<T> z(s * count, T(-5)), v(s * count, T(-5));
      std::vector<std::int64_t> t(count);
      for (std::size_t c = 0; c < count; ++c) {
        t[c] = static_cast<std::int64_t>((3 * c + 1) % n);
        const auto zc = data<T>(n, static_cast<unsigned>(5 * c + 1), 6.0);
        const auto vc = data<T>(n, static_cast<unsigned>(5 * c + 2), 6.0);
        for (std::size_t r = 0; r < n; ++r) {
          T zr = zc[r], vr = vc[r];
          const bool target = static_cast<std::int64_t>(r) == t[c];
          switch (c % 6) {
            case 1:  // nearly equal: the cancellation-free path
              vr = zr + T(1e-3) * vc[r];
              break;
            case 2:  // confident on the target, student and teacher agree
              if (target) zr = vr = T(25);
              break;
            case 3:  // past the largest T: the wide fallback
              if (r < 2) zr = r == 0 ? M : -M;
              break;
            case 4:  // NaN in the teacher
              if (r == n / 2) vr = std::numeric_limits<T>::quiet_NaN();
              break;
            case 5:  // confident on a non-target class
              if (!target && r == (static_cast<std::size_t>(t[c]) + 1) % n) zr = vr = T(20);
              break;
            default:
              break;
          }
          z[c * s + r] = zr;
          v[c * s + r] = vr;
        }
      }
      CAPTURE(n, count);
      const T kk = T(0.5), alpha = T(1), beta = T(8), gs = T(0.75);
      std::vector<T> dz(s * count, T(7)), dcol(n), scratch(n);
      k::DkdTerms r[64], r_nodz[64];
      k::dkd_tile<T>(z.data(), s, v.data(), s, n, count, t.data(), kk, alpha, beta, gs, dz.data(),
                     s, r);
      k::dkd_tile<T>(z.data(), s, v.data(), s, n, count, t.data(), kk, alpha, beta, gs,
                     static_cast<T*>(nullptr), s, r_nodz);
      for (std::size_t c = 0; c < count; ++c) {
        CAPTURE(c);
        const auto tc = static_cast<std::size_t>(t[c]);
        const k::DkdTerms rc = k::dkd_column<T>(z.data() + c * s, v.data() + c * s, n, tc, kk,
                                                alpha, beta, gs, dcol.data(), scratch.data());
        if (std::isnan(rc.tckd) || std::isnan(rc.nckd)) {
          CHECK((std::isnan(r[c].tckd) || std::isnan(r[c].nckd)));
          continue;
        }
        CHECK(r[c].tckd == r_nodz[c].tckd);
        CHECK(r[c].nckd == r_nodz[c].nckd);
        CHECK(r[c].tckd >= 0.0);
        CHECK(r[c].nckd >= 0.0);
        CHECK(std::abs(r[c].tckd - rc.tckd) <= 64 * eps * rc.tckd + 1e-300);
        CHECK(std::abs(r[c].nckd - rc.nckd) <= 64 * eps * rc.nckd + 1e-300);
        for (std::size_t row = 0; row < n; ++row) {
          INFO("row " << row << ": " << dz[c * s + row] << " vs " << dcol[row]);
          const double dc = static_cast<double>(dcol[row]);
          CHECK(std::abs(static_cast<double>(dz[c * s + row]) - dc) <=
                64 * eps * std::abs(dc) + static_cast<double>(std::numeric_limits<T>::min()));
        }
        for (std::size_t row = n; row < s; ++row) CHECK(dz[c * s + row] == T(7));
      }
    }
  }
}

TEMPLATE_TEST_CASE("The cross-column KD kernels match the per-column ones", "[kernels][kd]", float,
                   double) {
  check_kd_tile<TestType, 0>();
  check_kd_tile<TestType, 1>();
  check_kd_tile<TestType, 2>();
  check_kd_tile<TestType, 3>();
  check_kd_tile<TestType, 4>();
  check_kd_tile<TestType, 5>();
  check_kd_tile<TestType, 6>();
  check_dkd_tile<TestType>();
}

}  // namespace regula::test::kd_kernels

namespace regula::test::kd_kernels {

// The four per-class kernels (JS, TV, BinaryKL, BinaryKL-Norm) through one signature: loss of
// the column, gradient into dz (may be null), scratch used where the kernel takes it.
enum class Kind { js, tv, bkl, bkln };

template <class T>
double simd(Kind kind, const std::vector<T>& z, const std::vector<T>& v, T k, T gs, T* dz,
            T* scratch) {
  namespace kk = regula::kernels;
  const std::size_t n = z.size();
  switch (kind) {
    case Kind::js:
      return kk::js_column<T>(z.data(), v.data(), n, k, gs, dz, scratch);
    case Kind::tv:
      return kk::tv_column<T>(z.data(), v.data(), n, k, gs, dz, scratch);
    case Kind::bkl:
      return kk::binary_kl_column<T>(z.data(), v.data(), n, k, gs, dz);
    default:
      return kk::binary_kl_norm_column<T>(z.data(), v.data(), n, k, gs, dz);
  }
}

template <class T>
double reference_t(Kind kind, const std::vector<T>& z, const std::vector<T>& v, T k, T gs, T* dz) {
  namespace kk = regula::kernels;
  const std::size_t n = z.size();
  switch (kind) {
    case Kind::js:
      return kk::js_column_reference<T>(z.data(), v.data(), n, k, gs, dz);
    case Kind::tv:
      return kk::tv_column_reference<T>(z.data(), v.data(), n, k, gs, dz);
    case Kind::bkl:
      return kk::binary_kl_column_reference<T>(z.data(), v.data(), n, k, gs, dz);
    default:
      return kk::binary_kl_norm_column_reference<T>(z.data(), v.data(), n, k, gs, dz);
  }
}

// The reference evaluated in double on the (widened) inputs: the oracle for both types (the
// references keep intermediate values in T between passes, which costs float accuracy).
template <class T>
double reference(Kind kind, const std::vector<T>& z, const std::vector<T>& v, T k, T gs, T* dz) {
  const std::vector<double> zd(z.begin(), z.end()), vd(v.begin(), v.end());
  std::vector<double> d(z.size());
  const double l = reference_t<double>(kind, zd, vd, static_cast<double>(k),
                                       static_cast<double>(gs), dz != nullptr ? d.data() : nullptr);
  if (dz != nullptr) {
    for (std::size_t i = 0; i < z.size(); ++i) dz[i] = static_cast<T>(d[i]);
  }
  return l;
}

const char* name(Kind kind) {
  switch (kind) {
    case Kind::js:
      return "js";
    case Kind::tv:
      return "tv";
    case Kind::bkl:
      return "binary_kl";
    default:
      return "binary_kl_norm";
  }
}

// Largest |a − b| over the gradient, relative to the largest |b| (the gradient's scale; the
// tests' gs·k is about 0.2 or 1).
template <class T>
double max_err_scaled(const std::vector<T>& a, const std::vector<T>& b) {
  double w = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    w = std::max(w, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    s = std::max(s, std::abs(static_cast<double>(b[i])));
  }
  // Gradients that vanish (one class; one-hot p and q) are judged on the scale 1e-3 (the tests'
  // gs·k is 0.19 or 1): a fused multiply-subtract leaves a rounding residue where the exact
  // result is 0.
  return w / std::max(s, 1e-3);
}

TEMPLATE_TEST_CASE(
    "JS, TV, BinaryKL and BinaryKL-Norm SIMD kernels agree with their double references",
    "[kernels][kd]", float, double) {
  using T = TestType;
  constexpr std::size_t W = regula::simd::width<T>;
  // Float kernels against references in double: a few float ulps per class, summed; logits of
  // 60 carry rounding errors of 4e-6 in float, hence the looser gradient bound there. In double
  // the references lose digits themselves: ⟨p, g⟩ subtracted from g where p concentrates on a
  // few classes (JS, TV), log cosh u = |u| + log1p(e^{−2|u|}) − ln 2 for small u.
  const bool is_float = std::is_same_v<T, float>;
  const double tl = is_float ? 1e-5 : 1e-9;
  for (Kind kind : {Kind::js, Kind::tv, Kind::bkl, Kind::bkln}) {
    for (std::size_t n :
         {std::size_t{1}, W - 1, W, W + 1, 2 * W - 1, 2 * W + 3, std::size_t{1000}}) {
      if (n == 0) continue;
      for (double scale : {0.5, 6.0, 60.0}) {
        CAPTURE(name(kind), n, scale);
        const double tg = is_float ? (scale > 10 ? 1e-4 : 1e-5) : 1e-10;
        const auto z = data<T>(n, 1, scale), v = data<T>(n, 2, scale);
        std::vector<T> a(n), b(n), sa(n);
        const T k = T(0.25), gs = T(0.75);
        const double lr = reference<T>(kind, z, v, k, gs, b.data());
        for (bool with_scratch : {true, false}) {
          CAPTURE(with_scratch);
          std::fill(a.begin(), a.end(), T(-7));
          const double la =
              simd<T>(kind, z, v, k, gs, a.data(), with_scratch ? sa.data() : nullptr);
          CHECK(la == Approx(lr).epsilon(tl).margin(1e-30));
          CHECK(max_err_scaled(a, b) < tg);
          // The loss without a gradient is the same value.
          CHECK(simd<T>(kind, z, v, k, gs, nullptr, nullptr) ==
                Approx(la).epsilon(tl).margin(1e-30));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("JS, TV, BinaryKL and BinaryKL-Norm SIMD kernels agree on extreme logits",
                   "[kernels][kd]", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  for (Kind kind : {Kind::js, Kind::tv, Kind::bkl, Kind::bkln}) {
    for (std::size_t n : {std::size_t{7}, std::size_t{100}}) {
      CAPTURE(name(kind), n);
      // Logits of ±1e4 at k = 1: probabilities underflow, |a − b| in the thousands.
      auto z = data<T>(n, 3, 1e4), v = data<T>(n, 4, 1e4);
      z[n / 2] = v[n / 2];  // one class with equal logits
      std::vector<T> a(n), b(n), sa(n);
      const double lr = reference<T>(kind, z, v, T(1), T(1), b.data());
      const double la = simd<T>(kind, z, v, T(1), T(1), a.data(), sa.data());
      REQUIRE(std::isfinite(la));
      CHECK(la == Approx(lr).epsilon(tol));
      CHECK(max_err_scaled(a, b) < tol);
      for (T g : a) REQUIRE(std::isfinite(g));
      // NaN in one class: NaN loss and NaN gradient somewhere, no crash.
      z[1] = std::numeric_limits<T>::quiet_NaN();
      CHECK(std::isnan(simd<T>(kind, z, v, T(1), T(1), a.data(), sa.data())));
      CHECK(std::isnan(static_cast<double>(a[1])));
    }
  }
}

TEST_CASE("Float JS, BinaryKL and BinaryKL-Norm stay accurate for nearly equal student and teacher",
          "[kernels][kd]") {
  // v = z + 1e-3·noise: the divergences are O(1e-7) per class, far below the size of the
  // terms a direct formula would subtract. The float kernels must match the references run
  // in double on the same inputs to 1e-4 (a direct float evaluation is off by 10% and more).
  const std::size_t n = 1000;
  const auto z = data<float>(n, 5, 4.0);
  const auto noise = data<float>(n, 6, 1e-3);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = z[i] + noise[i];
  const std::vector<double> zd(z.begin(), z.end()), vd(v.begin(), v.end());
  for (Kind kind : {Kind::js, Kind::bkl, Kind::bkln}) {
    CAPTURE(name(kind));
    std::vector<float> a(n), sa(n);
    std::vector<double> b(n);
    const double la = simd<float>(kind, z, v, 0.5f, 1.0f, a.data(), sa.data());
    const double lr = reference_t<double>(kind, zd, vd, 0.5, 1.0, b.data());
    REQUIRE(lr > 0.0);
    CHECK(la == Approx(lr).epsilon(1e-4));
    double w = 0, s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      w = std::max(w, std::abs(static_cast<double>(a[i]) - b[i]));
      s = std::max(s, std::abs(b[i]));
    }
    CHECK(w / s < 1e-3);
  }
}

// Columns whose logits span past the largest T (fuzz finding kd-extreme-span): the SIMD kernels
// and their references both recompute them with the same long-double fallback, so that they
// agree exactly; and the results are finite and non-negative where the T arithmetic gave NaN.
TEMPLATE_TEST_CASE("KD kernels and their references take the same fallback past the largest T",
                   "[kernels][kd][extreme]", float, double) {
  using T = TestType;
  namespace k = regula::kernels;
  const T M = std::numeric_limits<T>::max();
  for (std::size_t n : {std::size_t{4}, std::size_t{37}}) {
    CAPTURE(n);
    auto z = data<T>(n, 7, 6.0), v = data<T>(n, 8, 6.0);
    z[0] = M;
    z[1] = M;
    z[2] = -M;
    v[0] = M;
    v[1] = -M;
    v[2] = M;
    std::vector<T> a(n), b(n), sa(n), sb(n);
    const T kk = T(0.25), gs = T(0.75);
    const auto same = [&](double la, double lb, bool exact = true) {
      REQUIRE(std::isfinite(la));
      CHECK(la >= 0.0);
      if (exact) {
        CHECK(la == lb);
        CHECK(a == b);
      } else {
        CHECK(la == Approx(lb).epsilon(tol<T>()));
        CHECK(max_rel(a, b) < tol<T>());
      }
      for (T g : a) REQUIRE(std::isfinite(g));
    };
    same(k::kd_kl_column<T>(z.data(), v.data(), n, kk, kk, gs, a.data(), sa.data()),
         k::kd_kl_column_reference<T>(z.data(), v.data(), n, kk, kk, gs, b.data(), sb.data()));
    same(k::reverse_kl_column<T>(z.data(), v.data(), n, kk, gs, a.data()),
         k::reverse_kl_column_reference<T>(z.data(), v.data(), n, kk, gs, b.data()));
    const auto ra =
        k::dkd_column<T>(z.data(), v.data(), n, 3, kk, T(1), T(0.5), gs, a.data(), sa.data());
    const auto rb = k::dkd_column_reference<T>(z.data(), v.data(), n, 3, kk, T(1), T(0.5), gs,
                                               b.data(), sb.data());
    same(ra.tckd + ra.nckd, rb.tckd + rb.nckd);
    same(simd<T>(Kind::js, z, v, kk, gs, a.data(), sa.data()),
         reference_t<T>(Kind::js, z, v, kk, gs, b.data()));
    // BinaryKL at k = 2 in float, where k·z itself passes the largest T and both fall back (in
    // double the divergence itself would pass it: 2·max per class; at k = 0.25 no fallback).
    const bool is_float = std::is_same_v<T, float>;
    const T kb = is_float ? T(2) : T(0.25);
    same(simd<T>(Kind::bkl, z, v, kb, gs, a.data(), sa.data()),
         reference_t<T>(Kind::bkl, z, v, kb, gs, b.data()), is_float);
  }
}

// The long-double fallbacks on a confident column spanning past the largest T: p = (1, 0, 0),
// q = (1 − δ, δ, 0)/(1 + ...) with δ = e^{−gap}, so JS = ½·δ·log 2 and TV = δ to first order.
// js_wide formed log m = logaddexp(a, b) − log 2 with log1p(e^{−|a − b|}), which rounds the
// top class's e^{−δ} to 1 (JS 0), and tv_wide formed |p − q| at the top class as a difference of
// two numbers near 1 (TV δ/2). JS reaches its fallback on this column.
TEMPLATE_TEST_CASE("KD long-double fallbacks keep the accuracy of confident columns",
                   "[kernels][kd][extreme]", float, double) {
  using T = TestType;
  namespace k = regula::kernels;
  const T M = std::numeric_limits<T>::max();
  const long double gap = std::is_same_v<T, float> ? 80.0L : 308.0L;
  const T top = T(20.5);
  const T z[3] = {M, -M, T(0)};
  const T v[3] = {top, static_cast<T>(static_cast<long double>(top) - gap), -M};
  const long double delta = std::exp(-gap) / (1.0L + std::exp(-gap));
  const long double js = 0.5L * std::log(2.0L) * delta;
  const auto close = [](double got, long double want) {
    CAPTURE(got, static_cast<double>(want));
    CHECK(std::fabs(static_cast<long double>(got) - want) <= 1e-6L * want);
  };
  close(static_cast<double>(k::detail::js_wide<T>(z, v, 3, 1.0L, 1.0L, nullptr)), js);
  close(static_cast<double>(k::detail::tv_wide<T>(z, v, 3, 1.0L, 1.0L, nullptr)), delta);
  T dz[3], scratch[3];
  close(k::js_column<T>(z, v, 3, T(1), T(1), dz, scratch), js);
  close(k::tv_column<T>(z, v, 3, T(1), T(1), dz, scratch), delta);
  for (T g : dz) CHECK(std::isfinite(g));
}

}  // namespace regula::test::kd_kernels

#endif  // REGULA_TESTS_KERNELS_KD_CASES_HPP
