/// @file
/// Logit-matching distillation: squared distance between student and teacher logits (Ba &
/// Caruana 2014), and KD on standardized logits (Sun et al., "Logit Standardization in
/// Knowledge Distillation", CVPR 2024).
///
/// logit_mse, per sample: ℓ = Σ_c (z_c − v_c)², ∂ℓ/∂z = 2(z − v). With LogitMSEOptions'
/// default `Reduction::mean` the reduced loss is (1/(B·C))·Σ (z − v)², PyTorch's
/// `F.mse_loss(z, v)`; `batchmean` divides by B, `sum` by 1. No temperature.
///
/// logit_std_kd, per sample: every column is standardized, z' = (z − mean z)/(std z + 1e-7)
/// with the unbiased std (as the authors' code and torchdistill's LogitStdKDLoss), the teacher
/// likewise, then ℓ = kd_kl(z', v') with the options' temperature and T² factor. Gradient, with
/// d = z − mean z, s = std z + 1e-7, g' = ∂ℓ/∂z' = (F/T)(p − q):
///
///   ∂ℓ/∂z = (g' − mean g')/s − ⟨g', d⟩ / (s²·(C − 1)·std z) · d
///
/// (the second term is dropped for a constant column, where std z = 0). Computed without a
/// copy: softmax(z'/T) = softmax(z/(T·s)), so the kd_kl kernel runs at a per-column
/// temperature T·s. The paper's default base temperature is 2 (with T² scaling); needs C ≥ 2.
/// A column whose standardized student nearly equals its teacher (max |z' − v'| below max |z'|
/// over 32 in float, 1024 in double), where that kernel's u = kv·(v − mv) − kz·(z − mz) would
/// keep too few bits, or whose logits span past the largest T runs in long double
/// (detail::logit_std_kd_wide); the gradient's correction runs wider than T (docs/logit_mse.md,
/// accuracy contract).
#ifndef REGULA_LOSSES_LOGIT_MSE_HPP
#define REGULA_LOSSES_LOGIT_MSE_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {

/// Options of logit_mse: only the reduction (default `mean`, as `F.mse_loss`), a plain struct
/// with a chainable setter like every options struct.
struct LogitMSEOptions {
  /// The reduction of the per-sample losses.
  Reduction reduction = Reduction::mean;

  /// Sets `reduction` (chainable).
  LogitMSEOptions& with_reduction(Reduction r) noexcept { return detail::set(*this, reduction, r); }
};

namespace detail {

template <class T>
T run_logit_mse(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                const LogitMSEOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                bool per_sample) {
  check_kd_shapes(who, z, v, losses, dz);
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, z.rows(), z.cols());
  const auto n = static_cast<std::size_t>(z.rows());
  double total;
  if (n <= kernels::tile_rows) {
    // Narrow heads: the cross-column kernel, one column per SIMD lane.
    const auto zs = static_cast<std::size_t>(z.outerStride());
    const auto vs = static_cast<std::size_t>(v.outerStride());
    const auto dzs = dz != nullptr ? static_cast<std::size_t>(dz->outerStride()) : n;
    total = run_kd_tiles<T>(z.rows(), z.cols(), scale, 1.0, losses,
                            [&](std::size_t c, std::size_t count, T gs, double* d) noexcept {
                              const auto j = static_cast<Index>(c);
                              kernels::logit_mse_tile<T>(
                                  z.col(j).data(), zs, v.col(j).data(), vs, n, count, gs,
                                  dz != nullptr ? dz->col(j).data() : nullptr, dzs, d);
                            });
  } else {
    total = run_kd_columns<T>(
        z.rows(), z.cols(), scale, 1.0, losses, dz, [&](Index j, T gs, T* dcol) noexcept {
          return kernels::logit_mse_column<T>(z.col(j).data(), v.col(j).data(), n, gs, dcol);
        });
  }
  return static_cast<T>(per_sample ? total : total * scale);
}

/// Mean and unbiased standard deviation of a column, in F (double; long double in the wide
/// path).
template <class F, class T>
void mean_std(const T* x, std::size_t n, F& mean, F& sd) noexcept {
  F s = F(0);
  for (std::size_t i = 0; i < n; ++i) s += static_cast<F>(x[i]);
  mean = s / static_cast<F>(n);
  F ss = F(0);
  for (std::size_t i = 0; i < n; ++i) {
    const F d = static_cast<F>(x[i]) - mean;
    ss += d * d;
  }
  sd = std::sqrt(ss / static_cast<F>(n - 1));
}

/// The eps of the standardization (the authors' code and torchdistill).
inline constexpr double logit_std_eps = 1e-7;

/// The standardization's gradient correction, in A: dcol_i = x_i − mean x − coef·(z_i − mz),
/// coef = ⟨x, z − mz⟩/(s·(n − 1)·sd) (0 for a constant column), s = sd + eps, where x_i =
/// x(i) = g'_i/s. The two passes call x(i) twice, so that a caller may recompute it rather than
/// store it.
template <class A, class T, class X>
void standardization_correction(const T* zc, std::size_t n, A mz, A sd, X&& x, T* dcol) noexcept {
  A sum = 0, dot = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const A xi = x(i);
    sum += xi;
    dot += xi * (static_cast<A>(zc[i]) - mz);
  }
  const A mean_x = sum / static_cast<A>(n);
  const A s = sd + static_cast<A>(logit_std_eps);
  const A coef = sd > 0 ? dot / (s * static_cast<A>(n - 1) * sd) : A(0);
  for (std::size_t i = 0; i < n; ++i) {
    dcol[i] = static_cast<T>(x(i) - mean_x - coef * (static_cast<A>(zc[i]) - mz));
  }
}

/// logit_std_kd on one column in long double, from the T logits: the standardization, the KL
/// (kernels::detail::wide_kl, whose terms are non-negative and formed without cancellation where
/// the standardized columns nearly agree) and the gradient, p − q by
/// kernels::detail::wide_exp_difference and the standardization's correction, rounded once to T.
/// For the columns the normal path cannot take (see run_logit_std_kd): logits that may differ by
/// more than the largest T, and a student whose standardized logits nearly equal the teacher's,
/// where the normal path's u = kv·(v − mv) − kz·(z − mz) keeps only the bits of u that the
/// roundings of the two products leave.
template <class T>
REGULA_KD_COLD double logit_std_kd_wide(const T* zc, const T* vc, std::size_t n, double kinv, T gs,
                                        T* dcol) noexcept {
  namespace kd = kernels::detail;
  using W = kd::wide;
  W mz = 0, sdz = 0, mv = 0, sdv = 0;
  mean_std(zc, n, mz, sdz);
  mean_std(vc, n, mv, sdv);
  const W sz = sdz + static_cast<W>(logit_std_eps), sv = sdv + static_cast<W>(logit_std_eps);
  const W k = static_cast<W>(kinv);
  const kd::WideLogSoftmax lp = kd::wide_log_softmax(zc, n, k / sz);
  const kd::WideLogSoftmax lq = kd::wide_log_softmax(vc, n, k / sv);
  const W d = kd::wide_kl(lq, vc, lp, zc, n);
  if (dcol != nullptr) {
    // x_i = gs·(k/s)·(p_i − q_i), recomputed in each of the two passes rather than stored (no
    // buffer for a column of any length).
    const W c = static_cast<W>(gs) * k / sz;
    standardization_correction<W>(
        zc, n, mz, sdz,
        [&](std::size_t i) { return c * kd::wide_exp_difference(lp(zc[i]), lq(vc[i])); }, dcol);
  }
  return static_cast<double>(d < 0 ? W(0) : d);  // NaN stays NaN
}

/// How far below the standardized student's largest |z'| the largest |z' − v'| may lie before
/// a column leaves the normal path for logit_std_kd_wide: the normal path's roundings are about
/// ε·max|z'| in u = z' − v', so its loss and gradient lose about log2 of this ratio in bits
/// (float 2^5, double 2^10: worst elements measured 5e-6 and 2e-10 there, T = 10 the worst).
template <class T>
inline constexpr double logit_std_agreement_limit = std::is_same_v<T, float> ? 32.0 : 1024.0;

/// The type of the normal path's mean, std and gradient correction: wider than T (double for
/// float, long double for double), since the correction cancels where g' lies nearly in the span
/// of 1 and z' (a student of tied or nearly equal logits) and its roundings, and those of the
/// std it divides by, grow by about the column's 1/s there.
template <class T>
using logit_std_accumulator =
    std::conditional_t<std::is_same_v<T, float>, double, kernels::detail::wide>;

/// logit_std_kd on one column (see run_logit_std_kd): the standardization's mean and std in
/// logit_std_accumulator<T>, the long-double path for the columns the normal path cannot take,
/// else kd_kl_column at the column's temperatures and the standardization's correction. `root`
/// = √(C − 1) and `safe` = the largest T over 4 bound the logits' differences (see there).
template <class T>
double logit_std_kd_column(const T* zc, const T* vc, std::size_t n, double kinv, T gs, T* dcol,
                           double root, double safe) noexcept {
  alignas(64) T buf[kd_stack_classes];
  using A = logit_std_accumulator<T>;
  A mza = 0, sdza = 0, mva = 0, sdva = 0;
  mean_std(zc, n, mza, sdza);
  mean_std(vc, n, mva, sdva);
  const auto mz = static_cast<double>(mza), sdz = static_cast<double>(sdza);
  const auto mv = static_cast<double>(mva), sdv = static_cast<double>(sdva);
  // Logits that may differ by more than the largest T (or whose sums pass the largest
  // double): z − max z would overflow in T before the per-column k ≈ 1/(T·std) brings it
  // back to a moderate value, and give a finite but wrong loss. False for NaN.
  if (REGULA_UNLIKELY(!(std::abs(mz) + sdz * root <= safe && std::abs(mv) + sdv * root <= safe)) &&
      kernels::all_finite(zc, vc, n)) {
    return logit_std_kd_wide(zc, vc, n, kinv, gs, dcol);
  }
  const double sz = sdz + logit_std_eps, sv = sdv + logit_std_eps;
  // A student whose standardized logits nearly equal the teacher's (largest |z' − v'|
  // below largest |z'|/limit; false for a constant student, both 0). std::max drops a
  // NaN, so the column's logits are tested too (NaN in, NaN out: the normal path).
  double zmax = 0.0, umax = 0.0;
  const double rz = 1.0 / sz, rv = 1.0 / sv;
  for (std::size_t i = 0; i < n; ++i) {
    const double zs = (static_cast<double>(zc[i]) - mz) * rz;
    zmax = std::max(zmax, std::abs(zs));
    umax = std::max(umax, std::abs(zs - (static_cast<double>(vc[i]) - mv) * rv));
  }
  if (REGULA_UNLIKELY(umax * logit_std_agreement_limit<T> < zmax) &&
      kernels::all_finite(zc, vc, n)) {
    return logit_std_kd_wide(zc, vc, n, kinv, gs, dcol);
  }
  const double d =
      kernels::kd_kl_column<T>(zc, vc, n, static_cast<T>(kinv / sz), static_cast<T>(kinv / sv), gs,
                               dcol, n <= kd_stack_classes ? buf : nullptr);
  if (dcol != nullptr) {
    // dcol = g'/s; subtract its mean and the part through the std (in A, see there). Each
    // x(i) is read before its own element is overwritten (the second pass reads i, then
    // writes i).
    standardization_correction<A>(
        zc, n, mza, sdza, [dcol](std::size_t i) { return static_cast<A>(dcol[i]); }, dcol);
  }
  return d;
}

/// logit_std_kd_column over `count` ≤ W consecutive float columns of n ≤ tile_rows classes (the
/// layout of kernels::kd_kl_tile), one column per lane: the means and stds in double lanes (the
/// per-column sums, in the same order: the same bits), the two tests of the normal path in
/// lanes, kd_kl at each lane's own temperatures (kernels::detail::kd_kl_tile_lanes, with its
/// per-column fallback), then the standardization's correction in double lanes, again in the
/// per-column order. A lane that fails either test (or holds a value that is not finite) is
/// recomputed by logit_std_kd_column. Writes the losses to d[0..count).
template <class A = default_arch>
void logit_std_kd_tile(const float* z, std::size_t zs, const float* v, std::size_t vs,
                       std::size_t n, std::size_t count, double kinv, float gs, float* dz,
                       std::size_t dzs, double* d, double root, double safe) noexcept {
  using B = xsimd::batch<float, A>;
  using DB = xsimd::batch<double, A>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t WD = DB::size;
  const kernels::ColumnTile<float, A> zt(z, zs, n, count);
  const kernels::ColumnTile<float, A> vt(v, vs, n, count);
  alignas(64) double mzd[W], sdzd[W];
  alignas(64) float kz[W], kv[W];
  bool special[W];
  const DB nd(static_cast<double>(n)), n1(static_cast<double>(n - 1));
  const DB eps(logit_std_eps), rootb(root), safeb(safe), kinvb(kinv), one(1.0), zero(0.0);
  const DB limit(logit_std_agreement_limit<float>);
  for (std::size_t q = 0; q < W; q += WD) {
    auto stats = [&](const kernels::ColumnTile<float, A>& t, DB& mean, DB& sd) noexcept {
      DB sum = zero;
      for (std::size_t r = 0; r < n; ++r) sum += DB::load_unaligned(t.rows[r] + q);
      mean = sum / nd;
      DB ss = zero;
      for (std::size_t r = 0; r < n; ++r) {
        const DB x = DB::load_unaligned(t.rows[r] + q) - mean;
        ss = ss + x * x;  // not fused: the per-column sum's roundings
      }
      sd = xsimd::sqrt(ss / n1);
    };
    DB mz, sdz, mv, sdv;
    stats(zt, mz, sdz);
    stats(vt, mv, sdv);
    const auto fits =
        (xsimd::abs(mz) + sdz * rootb <= safeb) && (xsimd::abs(mv) + sdv * rootb <= safeb);
    const DB sz = sdz + eps, sv = sdv + eps;
    const DB rz = one / sz, rv = one / sv;
    DB zmax = zero, umax = zero;
    for (std::size_t r = 0; r < n; ++r) {
      const DB zsr = (DB::load_unaligned(zt.rows[r] + q) - mz) * rz;
      zmax = xsimd::max(zmax, xsimd::abs(zsr));
      umax = xsimd::max(umax, xsimd::abs(zsr - (DB::load_unaligned(vt.rows[r] + q) - mv) * rv));
    }
    // False for NaN anywhere (the sums carry it): such lanes go per column, as do the lanes the
    // normal path cannot take.
    const auto normal = fits && (umax * limit >= zmax) && xsimd::isfinite(mz + mv + sdz + sdv);
    alignas(64) double kzq[WD], kvq[WD], ok[WD];
    (kinvb / sz).store_aligned(kzq);
    (kinvb / sv).store_aligned(kvq);
    xsimd::select(normal, one, zero).store_aligned(ok);
    mz.store_aligned(mzd + q);
    sdz.store_aligned(sdzd + q);
    for (std::size_t k = 0; k < WD; ++k) {
      kz[q + k] = static_cast<float>(kzq[k]);
      kv[q + k] = static_cast<float>(kvq[k]);
      special[q + k] = ok[k] == 0.0;
    }
  }
  kernels::detail::kd_kl_tile_lanes<float, A>(z, zs, v, vs, n, count, B::load_aligned(kz),
                                              B::load_aligned(kv), kz, kv, gs, dz, dzs, d);
  if (dz != nullptr) {
    // The correction of logit_std_kd_column in double lanes: x = dz (g'/s), then
    // dz = x − mean x − coef·(z − mz), coef = ⟨x, z − mz⟩/(s·(n − 1)·sd) (0 where sd = 0).
    const kernels::ColumnTile<float, A> xt(dz, dzs, n, count);
    alignas(64) double out[kernels::tile_rows][W];
    for (std::size_t q = 0; q < W; q += WD) {
      const DB mz = DB::load_aligned(mzd + q), sd = DB::load_aligned(sdzd + q);
      DB sum = zero, dot = zero;
      for (std::size_t r = 0; r < n; ++r) {
        const DB x = DB::load_unaligned(xt.rows[r] + q);
        sum = sum + x;
        dot = dot + x * (DB::load_unaligned(zt.rows[r] + q) - mz);
      }
      const DB mean_x = sum / nd;
      const DB s = sd + eps;
      const DB coef = xsimd::select(sd > zero, dot / (s * n1 * sd), zero);
      for (std::size_t r = 0; r < n; ++r) {
        const DB x = DB::load_unaligned(xt.rows[r] + q);
        (x - mean_x - coef * (DB::load_unaligned(zt.rows[r] + q) - mz)).store_aligned(out[r] + q);
      }
    }
    for (std::size_t k = 0; k < count; ++k) {
      for (std::size_t r = 0; r < n; ++r) dz[k * dzs + r] = static_cast<float>(out[r][k]);
    }
  }
  for (std::size_t k = 0; k < count; ++k) {
    if (special[k]) {
      d[k] = logit_std_kd_column<float>(z + k * zs, v + k * vs, n, kinv, gs,
                                        dz != nullptr ? dz + k * dzs : nullptr, root, safe);
    }
  }
}

template <class T>
T run_logit_std_kd(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                   const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                   bool per_sample) {
  check_temperature<T>(who, opt.temperature);
  check_kd_shapes(who, z, v, losses, dz);
  REGULA_EXPECTS(z.rows() >= 2, who,
                 "student logits must have at least two classes (rows) to standardize, got ",
                 z.rows());
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, z.rows(), z.cols());
  const double kinv = 1.0 / opt.temperature;
  const auto n = static_cast<std::size_t>(z.rows());
  // |x_i − mean| ≤ std·√(n − 1): below this bound on |x_i| no difference of two logits of the
  // column or of the pair reaches the largest T.
  const double root = std::sqrt(static_cast<double>(n - 1));
  const double safe = static_cast<double>(std::numeric_limits<T>::max()) / 4.0;
  double total;
  if constexpr (std::is_same_v<T, float>) {
    if (n <= kernels::tile_rows) {
      // Narrow heads: the cross-column kernel, one column per SIMD lane.
      const auto zs = static_cast<std::size_t>(z.outerStride());
      const auto vs = static_cast<std::size_t>(v.outerStride());
      const auto dzs = dz != nullptr ? static_cast<std::size_t>(dz->outerStride()) : n;
      total = run_kd_tiles<T>(
          z.rows(), z.cols(), scale, opt.factor(), losses,
          [&](std::size_t c, std::size_t count, T gs, double* d) noexcept {
            const auto j = static_cast<Index>(c);
            logit_std_kd_tile(z.col(j).data(), zs, v.col(j).data(), vs, n, count, kinv, gs,
                              dz != nullptr ? dz->col(j).data() : nullptr, dzs, d, root, safe);
          });
      return static_cast<T>(per_sample ? total : total * scale);
    }
  }
  total = run_kd_columns<T>(z.rows(), z.cols(), scale, opt.factor(), losses, dz,
                            [&](Index j, T gs, T* dcol) noexcept {
                              return logit_std_kd_column<T>(z.col(j).data(), v.col(j).data(), n,
                                                            kinv, gs, dcol, root, safe);
                            });
  return static_cast<T>(per_sample ? total : total * scale);
}

/// logit_mse's and logit_std_kd's drivers, bound to the public calls (TeacherLoss).
struct LogitMse {
  using Options = LogitMSEOptions;
  static constexpr const char* name = "regula::logit_mse";
  static constexpr const char* per_sample_name = "regula::logit_mse_per_sample";
  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const Options& opt,
               VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
    return run_logit_mse<T>(who, z, v, opt, losses, dz, per_sample);
  }
};
struct LogitStdKd {
  using Options = KDLossOptions;
  static constexpr const char* name = "regula::logit_std_kd";
  static constexpr const char* per_sample_name = "regula::logit_std_kd_per_sample";
  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const Options& opt,
               VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
    return run_logit_std_kd<T>(who, z, v, opt, losses, dz, per_sample);
  }
};

}  // namespace detail

/// logit_mse: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::LogitMse> logit_mse{};
/// logit_mse_per_sample: one loss per sample, and with `dstudent` each sample's own gradient.
inline constexpr detail::TeacherLossPerSample<detail::LogitMse> logit_mse_per_sample{};

/// logit_std_kd: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::LogitStdKd> logit_std_kd{};
/// logit_std_kd_per_sample: one loss per sample, and with `dstudent` each sample's own gradient.
inline constexpr detail::TeacherLossPerSample<detail::LogitStdKd> logit_std_kd_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_LOGIT_MSE_HPP
