#define EIGEN_RUNTIME_NO_MALLOC
#include <algorithm>
#include <cstdint>
#include <vector>

#include "regula/losses/logit_mse.hpp"

#include "kd_support.hpp"
#include "kd_wide_reference.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;
using regula::LogitMSEOptions;

REGULA_KD_LOSS_TRAITS(Mse, logit_mse, LogitMSEOptions, LogitMSEOptions{}, false);
REGULA_KD_LOSS_TRAITS(StdKd, logit_std_kd, KDLossOptions, KDLossOptions{}.with_temperature(4.0),
                      true);

TEMPLATE_TEST_CASE("logit_mse matches F.mse_loss", "[losses][logit_mse]", float, double) {
  kd::golden_checks<Mse, TestType>();
  kd::per_sample_checks<Mse, TestType>();
  kd::error_checks<Mse, TestType>();
  kd::no_malloc_checks<Mse, TestType>();
  // ±1e4 logits stay finite (1e8-sized squares fit a float).
  const auto z = kd::spread<TestType>(37, 6, 1e4, 1), v = kd::spread<TestType>(37, 6, 1e4, 2);
  regula::Matrix<TestType> dz(37, 6);
  CHECK(std::isfinite(regula::logit_mse(z, v, dz)));
  CHECK(dz.allFinite());
}

TEMPLATE_TEST_CASE("logit_std_kd matches torchdistill's LogitStdKDLoss formula",
                   "[losses][logit_std_kd]", float, double) {
  kd::standard_checks<StdKd, TestType>();
  kd::temperature_checks<StdKd, TestType>();
}

TEST_CASE("logit_mse and logit_std_kd gradients match central differences (double)",
          "[losses][logit_mse][gradcheck]") {
  kd::gradient_check<Mse>();
  kd::gradient_check<StdKd>();
}

TEST_CASE("logit_std_kd is invariant to shifting and scaling the logits",
          "[losses][logit_std_kd]") {
  const auto z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  const auto o = KDLossOptions{}.with_temperature(2.0);
  const Eigen::MatrixXd z2 = (3.0 * z.array() + 5.0).matrix();
  CHECK(regula::logit_std_kd(z2, v, o) == Approx(regula::logit_std_kd(z, v, o)).epsilon(1e-6));
  // A constant column has std 0: finite, no division by zero in the gradient.
  Eigen::MatrixXd c = Eigen::MatrixXd::Constant(4, 2, 1.5), vc = kd::spread<double>(4, 2, 2, 9);
  Eigen::MatrixXd dz(4, 2);
  CHECK(std::isfinite(regula::logit_std_kd(c, vc, dz, o)));
  CHECK(dz.allFinite());
  Eigen::MatrixXd one(1, 2);
  CHECK_THROWS_WITH(regula::logit_std_kd(one, one, o), Catch::Contains("at least two classes"));
}

namespace w = regula::test::kd_wide;

/// logit_std_kd of one column in long double: x' = (x − mean)/(std + 1e-7) with the unbiased
/// std, ℓ = T²·KL(q' ‖ p') at 1/T, and ∂ℓ/∂z = (g' − mean g')/s − ⟨g', d⟩/(s²·(n − 1)·std)·d,
/// g' = T·(p − q), d = z − mean, s = std + 1e-7.
template <class T>
w::LD standardized_reference(const T* z, const T* v, std::size_t n, w::LD temp,
                             std::vector<w::LD>& g) {
  const auto standardize = [n](const T* x, w::LD& mean, w::LD& sd) {
    mean = 0.0L;
    for (std::size_t i = 0; i < n; ++i) mean += static_cast<w::LD>(x[i]) / static_cast<w::LD>(n);
    w::LD ss = 0.0L;
    for (std::size_t i = 0; i < n; ++i)
      ss += (static_cast<w::LD>(x[i]) - mean) * (static_cast<w::LD>(x[i]) - mean);
    sd = std::sqrt(ss / static_cast<w::LD>(n - 1));
    std::vector<w::LD> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = (static_cast<w::LD>(x[i]) - mean) / (sd + 1e-7L);
    return out;
  };
  w::LD mz = 0, sz = 0, mv = 0, sv = 0;
  const auto zs = standardize(z, mz, sz), vs = standardize(v, mv, sv);
  const auto lp = w::log_softmax(zs.data(), n, 1.0L / temp);
  const auto lq = w::log_softmax(vs.data(), n, 1.0L / temp);
  std::vector<w::LD> gp(n);
  w::LD mean_g = 0.0L, dot = 0.0L;
  const w::LD s = sz + 1e-7L;
  for (std::size_t i = 0; i < n; ++i) {
    gp[i] = temp * (std::exp(lp[i]) - std::exp(lq[i]));
    mean_g += gp[i] / static_cast<w::LD>(n);
    dot += gp[i] * (static_cast<w::LD>(z[i]) - mz);
  }
  g.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const w::LD d = static_cast<w::LD>(z[i]) - mz;
    g[i] =
        (gp[i] - mean_g) / s - (sz > 0 ? dot / (s * s * static_cast<w::LD>(n - 1) * sz) : 0.0L) * d;
  }
  return temp * temp * w::kl(lq, lp);
}

// Fuzz finding kd-extreme-span, input logit-std-kd-float-nan-span-past-max: logit_std_kd gave
// NaN (double: the column's sums pass the largest double) or, in float, a finite but wrong
// loss (0.690 for 0.668 here: z − max z overflowed to −inf before the per-column 1/(T·std)
// would have brought it back to −2.4). Standardization is scale-invariant, so float and double
// agree with the long-double restatement, and with the same columns scaled down.
TEMPLATE_TEST_CASE("logit_std_kd: columns spanning past the largest T are finite and exact",
                   "[losses][logit_std_kd][extreme]", float, double) {
  using T = TestType;
  const T M = std::numeric_limits<T>::max();
  regula::Matrix<T> z(4, 2), v(4, 2);
  z << M, T(0.5), -M, T(-1), T(0), T(2), T(1), T(0.25);
  v << T(0), T(1), T(1), T(0), M, T(1.5), -M, T(-0.5);
  const auto opt = KDLossOptions{}.with_temperature(2.0).with_reduction(regula::Reduction::sum);
  regula::Vector<T> losses(2);
  regula::Matrix<T> dz(4, 2);
  regula::logit_std_kd_per_sample(z, v, losses, dz, opt);
  w::LD total = 0.0L;
  for (regula::Index j = 0; j < 2; ++j) {
    CAPTURE(j);
    std::vector<w::LD> g;
    const w::LD want = standardized_reference(z.col(j).data(), v.col(j).data(), 4, 2.0L, g);
    total += want;
    if (j == 0) CHECK(static_cast<double>(want) == Approx(0.727409).epsilon(1e-6));  // not trivial
    CHECK(losses[j] >= T(0));
    w::check_close(static_cast<double>(losses[j]), want, j == 0 ? 1e-5 : w::loose<T>());
    w::check_gradient(dz.col(j), g, j == 0 ? 1e-5 : w::loose<T>());
  }
  w::check_close(static_cast<double>(regula::logit_std_kd(z, v, opt)), total, w::loose<T>());
  // Scale-invariant: the extreme column scaled down to ~1e7 (the normal path) gives the same loss.
  const double down = std::ldexp(1.0, std::is_same_v<T, float> ? -100 : -1000);
  const regula::Matrix<double> zd = z.col(0).template cast<double>() * down;
  const regula::Matrix<double> vd = v.col(0).template cast<double>() * down;
  CHECK(static_cast<double>(losses[0]) ==
        Approx(regula::logit_std_kd(zd, vd, opt)).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-12));
}

// Fuzz finding logit-std-kd-gradient-sum (input regressions/kd/logit-std-kd-gradient-sum-tied-
// student): a student tied at two of three classes, (0, 0, 0.001), against a constant teacher.
// Its std is 4.7e-4, and the standardization's correction cancels: g'/s has elements of ~2000
// whose span{1, z'} part is removed, leaving the ~0.1 that the 1e-7 offset of s leaves. Formed
// in double, the correction's roundings (and those of the std it divides by) kept only 1.2e-12
// of each element (5,000 ulps) and the column summed to −1.1e-13; in long double every element
// is within a few ulps of the long-double reference.
TEMPLATE_TEST_CASE("logit_std_kd: a tied, nearly constant student keeps every gradient element",
                   "[losses][logit_std_kd]", float, double) {
  using T = TestType;
  regula::Matrix<T> z(3, 2), v = regula::Matrix<T>::Zero(3, 2);
  z << T(0), T(0.25), T(0), T(0.25), T(0.001), T(-0.5);
  v(0, 1) = T(1);  // column 1: an ordinary tie against a teacher of another order
  const auto opt = KDLossOptions{}.with_temperature(2.0);
  regula::Vector<T> losses(2);
  regula::Matrix<T> dz(3, 2);
  regula::logit_std_kd_per_sample(z, v, losses, dz, opt);
  const double eps = std::numeric_limits<T>::epsilon();
  for (regula::Index j = 0; j < 2; ++j) {
    CAPTURE(j);
    std::vector<w::LD> g;
    const w::LD want = standardized_reference(z.col(j).data(), v.col(j).data(), 3, 2.0L, g);
    w::check_close(static_cast<double>(losses[j]), want, 8.0 * eps);
    w::LD sum = 0.0L, size = 0.0L, top = 0.0L;
    for (w::LD e : g) top = std::max(top, std::fabs(e));
    for (regula::Index i = 0; i < 3; ++i) {
      CAPTURE(i, static_cast<double>(dz(i, j)),
              static_cast<double>(g[static_cast<std::size_t>(i)]));
      // Each element against itself, or 1e-3 of the column's largest (tests/accuracy's judge).
      const w::LD e = g[static_cast<std::size_t>(i)];
      CHECK(std::fabs(static_cast<w::LD>(dz(i, j)) - e) <=
            8.0L * eps * std::max(std::fabs(e), 1e-3L * top));
      sum += static_cast<w::LD>(dz(i, j));
      size += std::fabs(static_cast<w::LD>(dz(i, j)));
    }
    if (j == 0) CHECK(static_cast<double>(size) > 0.1);  // the eps term: not a zero gradient
    CHECK(std::fabs(sum) <= 4.0L * eps * size);
  }
}

// Fuzz finding logit-std-kd-nan-agreement (input regressions/kd/logit-std-kd-float-nan-inf-column-
// agreement-path), found by the campaign of the change that added the agreement test: a NaN or
// ±inf teacher logit made every standardized difference NaN, std::max dropped them, the column
// looked like a perfect agreement and the long-double path returned the finite loss 4.
TEMPLATE_TEST_CASE("logit_std_kd: a NaN or infinite logit gives NaN, also where the rest agree",
                   "[losses][logit_std_kd]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const T bad[] = {nan, inf, -inf};
  for (T b : bad) {
    for (int where = 0; where < 2; ++where) {
      CAPTURE(static_cast<double>(b), where);
      regula::Matrix<T> z(3, 2), v(3, 2);
      z << T(1), T(1), T(2), T(2), T(3), T(3);
      v = z;
      (where == 0 ? v : z)(1, 0) = b;
      regula::Vector<T> losses(2);
      regula::Matrix<T> dz(3, 2);
      regula::logit_std_kd_per_sample(z, v, losses, dz, KDLossOptions{}.with_temperature(2.0));
      CHECK(std::isnan(losses[0]));
      CHECK(dz.col(0).array().isNaN().all());
      CHECK(losses[1] == Approx(0.0).margin(1e-12));  // the other column: equal, loss ~0
    }
  }
}

// The cross-column kernel of logit_std_kd (float, C ≤ 32) against its per-column kernel, per
// column and element, on ragged and strided tiles whose columns take the normal path (random),
// the long-double paths (a standardized student nearly equal to its teacher; logits spanning
// past the largest float), a constant student (std 0) and NaN: the loss to a few ulps and every
// gradient element against itself or 1e-3 of its column's largest (tests/accuracy's judge).
TEST_CASE("logit_std_kd's cross-column kernel matches the per-column one",
          "[losses][logit_std_kd]") {
  namespace d = regula::detail;
  constexpr std::size_t W = regula::simd::width<float>;
  const float M = std::numeric_limits<float>::max();
  const double eps = std::numeric_limits<float>::epsilon();
  const double kinv = 0.25;
  const float gs = 0.75f;
  for (const std::size_t n :
       {std::size_t{2}, std::size_t{3}, std::size_t{10}, std::size_t{17}, std::size_t{32}}) {
    const double root = std::sqrt(static_cast<double>(n - 1));
    const double safe = static_cast<double>(M) / 4.0;
    for (const std::size_t count : {std::size_t{1}, std::size_t{5}, W}) {
      if (count > W) continue;  // a tile holds at most W columns
      const std::size_t s = n + 3;
      std::vector<float> z(s * count, -5.0f), v(s * count, -5.0f);
      std::uint64_t st = 0x9E3779B97F4A7C15ULL * (n + 11 * count);
      auto uniform = [&st]() {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<float>(static_cast<double>(st >> 11) * 0x1.0p-53 * 8.0 - 4.0);
      };
      for (std::size_t c = 0; c < count; ++c) {
        for (std::size_t r = 0; r < n; ++r) {
          float zr = uniform(), vr = uniform();
          switch (c % 6) {
            case 1:  // standardized student ≈ teacher: the agreement path
              vr = 3.0f * zr + 2.0f + 1e-6f * vr;
              break;
            case 2:  // constant student
              zr = 1.5f;
              break;
            case 3:  // past the largest float
              if (r < 2) zr = r == 0 ? M : -M;
              break;
            case 4:  // NaN in the teacher
              if (r == n / 2) vr = std::numeric_limits<float>::quiet_NaN();
              break;
            default:
              break;
          }
          z[c * s + r] = zr;
          v[c * s + r] = vr;
        }
      }
      CAPTURE(n, count);
      std::vector<float> dz(s * count, 7.0f), dz_none(s * count, 7.0f), dcol(n);
      double dt[64], dt_none[64];
      d::logit_std_kd_tile(z.data(), s, v.data(), s, n, count, kinv, gs, dz.data(), s, dt, root,
                           safe);
      d::logit_std_kd_tile(z.data(), s, v.data(), s, n, count, kinv, gs,
                           static_cast<float*>(nullptr), s, dt_none, root, safe);
      for (std::size_t c = 0; c < count; ++c) {
        CAPTURE(c);
        const double dc = d::logit_std_kd_column<float>(z.data() + c * s, v.data() + c * s, n, kinv,
                                                        gs, dcol.data(), root, safe);
        if (std::isnan(dc)) {
          CHECK(std::isnan(dt[c]));
          CHECK(std::isnan(dt_none[c]));
          continue;
        }
        CHECK(dt[c] == dt_none[c]);
        CHECK(dt[c] >= 0.0);
        CHECK(std::abs(dt[c] - dc) <= 64.0 * eps * dc + 1e-300);
        double top = 0.0;
        for (std::size_t r = 0; r < n; ++r)
          top = std::max(top, std::abs(static_cast<double>(dcol[r])));
        for (std::size_t r = 0; r < n; ++r) {
          CAPTURE(r, dz[c * s + r], dcol[r]);
          const double e = static_cast<double>(dcol[r]);
          CHECK(std::abs(static_cast<double>(dz[c * s + r]) - e) <=
                64.0 * eps * std::max(std::abs(e), 1e-3 * top));
        }
        for (std::size_t r = n; r < s; ++r) CHECK(dz[c * s + r] == 7.0f);
      }
    }
  }
}

}  // namespace
