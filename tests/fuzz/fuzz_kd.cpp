// Fuzz harness of the distillation losses: kd_kl, reverse_kl, js, total_variation, binary_kl,
// binary_kl_norm, logit_mse, logit_std_kd (kd_common.hpp's four calls each), dkd, sinkhorn_kd
// (with a workspace reused across shapes and both gradient modes) and dual_head.hpp
// (gradient_alignment, DualHeadKD).
//
// Invariants of an accepted call: divergences ≥ 0 and never NaN for finite input; finite for
// tame input (moderate logits, ordinary options); softmax-based gradients with columns summing
// to ~0; per-sample losses summing to the reduced `sum`; the Sinkhorn per-sample contributions
// summing to the loss; gradient alignment leaving no conflict. Bad arguments must give
// regula::invalid_argument and nothing else.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <vector>

#include "regula/losses/binary_kl.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/dual_head.hpp"
#include "regula/losses/js.hpp"
#include "regula/losses/kd_kl.hpp"
#include "regula/losses/logit_mse.hpp"
#include "regula/losses/reverse_kl.hpp"
#include "regula/losses/sinkhorn_kd.hpp"
#include "regula/losses/total_variation.hpp"

#include "fuzz_support.hpp"

namespace {

using namespace regula;
using fuzz::Expect;
using fuzz::Palette;

enum class Loss : std::uint8_t {
  kd_kl,
  reverse_kl,
  js,
  total_variation,
  binary_kl,
  binary_kl_norm,
  logit_mse,
  logit_std_kd,
  dkd,
  sinkhorn,
  dual_head,
  count
};
const char* const loss_names[] = {"kd_kl",     "reverse_kl",     "js",        "total_variation",
                                  "binary_kl", "binary_kl_norm", "logit_mse", "logit_std_kd",
                                  "dkd",       "sinkhorn_kd",    "dual_head"};

enum class Fault : std::uint8_t {
  none,
  empty_batch,
  no_class,
  teacher_shape,
  losses_length,
  grad_shape,
  grad_overlap_student,
  grad_overlap_teacher,
  labels_range,
  labels_length,
  count
};

/// Buffers of one call: student, teacher and gradient in one allocation so that overlaps can be
/// made on purpose.
template <class T>
struct Args {
  std::vector<T> buf;
  Index C = 0, B = 0;
  std::size_t zoff = 0, voff = 0, goff = 0;
  Index gr = 0, gc = 0, vr = 0, vc = 0;
  Eigen::Map<const Matrix<T>> z() const { return {buf.data() + zoff, C, B}; }
  Eigen::Map<const Matrix<T>> v() const { return {buf.data() + voff, vr, vc}; }
  Eigen::Map<Matrix<T>> g() { return {buf.data() + goff, gr, gc}; }
};

template <class T>
Args<T> make_args(fuzz::Input& in, Palette pal, Index C, Index B, Fault fault) {
  Args<T> a;
  a.C = C;
  a.B = B;
  const auto n = static_cast<std::size_t>(C * B);
  a.buf.assign(4 * n + 4 * static_cast<std::size_t>(C + B) + 32, T(777));
  a.vr = fault == Fault::teacher_shape ? C + 1 : C;
  a.vc = B;
  a.voff = n + 2;
  a.goff = a.voff + static_cast<std::size_t>(a.vr * a.vc) + 2;
  a.gr = fault == Fault::grad_shape ? C + 1 : C;
  a.gc = B;
  for (std::size_t i = 0; i < n; ++i) a.buf[i] = fuzz::value<T>(in, pal);
  const bool near = in.flag();  // a teacher close to the student: KL of nearly equal distributions
  for (std::size_t i = 0; i < static_cast<std::size_t>(a.vr * a.vc); ++i) {
    const T zi = i < n ? a.buf[i] : T(0);
    a.buf[a.voff + i] =
        near ? zi + fuzz::value<T>(in, Palette::moderate) * T(1e-3) : fuzz::value<T>(in, pal);
  }
  if (fault == Fault::grad_overlap_student && n > 0) a.goff = in.pick(n);
  if (fault == Fault::grad_overlap_teacher && n > 0) a.goff = a.voff + in.pick(n);
  return a;
}

template <class T>
void check_result(const char* what, Loss loss, Palette pal, bool tame_options, const Matrix<T>& z,
                  const Matrix<T>& v, const Vector<T>* per, T reduced, bool is_reduced,
                  const Matrix<T>* grad, double natural, bool nonneg, bool sums_zero) {
  const bool finite_in = fuzz::all_finite(z) && fuzz::all_finite(v);
  if (!finite_in) {
    if (fuzz::any_nan(z) || fuzz::any_nan(v)) {
      // NaN in gives NaN out, never a silent number: some loss of a NaN column must be NaN.
      if (per != nullptr && loss != Loss::sinkhorn && loss != Loss::logit_std_kd) {
        for (Index j = 0; j < z.cols(); ++j) {
          if (z.col(j).array().isNaN().any() || v.col(j).array().isNaN().any()) {
            REGULA_FUZZ_CHECK(std::isnan((*per)[j]),
                              "%s: sample %lld has a NaN logit but loss %.9g", what,
                              static_cast<long long>(j), static_cast<double>((*per)[j]));
          }
        }
      }
      if (is_reduced)
        REGULA_FUZZ_CHECK(std::isnan(reduced), "%s: NaN logits but reduced loss %.9g", what,
                          static_cast<double>(reduced));
    }
    return;
  }
  const bool bounded = loss == Loss::js || loss == Loss::total_variation;
  const bool tame = tame_options && (bounded || pal == Palette::moderate ||
                                     (pal == Palette::large && loss != Loss::logit_mse));
  auto check_value = [&](double l, long long j) {
    REGULA_FUZZ_CHECK(!std::isnan(l), "%s: NaN loss (sample %lld) for finite input", what, j);
    if (nonneg)
      REGULA_FUZZ_CHECK(l >= 0.0, "%s: negative divergence %.9g (sample %lld)", what, l, j);
    if (tame)
      REGULA_FUZZ_CHECK(std::isfinite(l), "%s: loss %.9g (sample %lld) for tame input", what, l, j);
  };
  if (per != nullptr) {
    for (Index j = 0; j < per->size(); ++j)
      check_value(static_cast<double>((*per)[j]), static_cast<long long>(j));
  }
  if (is_reduced) check_value(static_cast<double>(reduced), -1);
  if (grad != nullptr) {
    REGULA_FUZZ_CHECK(!fuzz::any_nan(*grad), "%s: NaN gradient for finite input", what);
    if (tame)
      REGULA_FUZZ_CHECK(fuzz::all_finite(*grad), "%s: non-finite gradient for tame input", what);
    if (sums_zero && fuzz::all_finite(*grad) && std::isfinite(natural)) {
      fuzz::check_column_sums<T>(what, *grad, natural);
    }
  }
}

/// One logit-level loss of kd_common.hpp's API: reduced, reduced + gradient, per-sample,
/// per-sample + gradient.
#define REGULA_FUZZ_TEACHER_CALL(NAME)         \
  switch (entry) {                             \
    case 0:                                    \
      reduced = NAME(z, v, opt);               \
      break;                                   \
    case 1:                                    \
      reduced = NAME(z, v, g, opt);            \
      break;                                   \
    case 2:                                    \
      NAME##_per_sample(z, v, losses, opt);    \
      break;                                   \
    default:                                   \
      NAME##_per_sample(z, v, losses, g, opt); \
      break;                                   \
  }

template <class T, class Opt, class Call>
void run_teacher(fuzz::Input& in, Loss loss, Palette pal, Index C, Index B, Fault fault,
                 const Opt& opt, bool options_ok, bool unsure, bool tame_options, double natural,
                 double inv_t, bool nonneg, Call&& call_loss) {
  const char* what = loss_names[static_cast<int>(loss)];
  Args<T> a = make_args<T>(in, pal, C, B, fault);
  const unsigned entry = in.u8() % 4;
  const bool per_sample = entry >= 2;
  const bool with_grad = entry % 2 == 1;
  Vector<T> losses(fault == Fault::losses_length ? B + 1 : B);
  bool valid = options_ok;
  switch (fault) {
    case Fault::none:
    case Fault::labels_range:
    case Fault::labels_length:
      break;
    case Fault::empty_batch:
    case Fault::no_class:
    case Fault::teacher_shape:
      valid = false;
      break;
    case Fault::losses_length:
      valid = valid && !per_sample;
      break;
    case Fault::grad_shape:
    case Fault::grad_overlap_student:
    case Fault::grad_overlap_teacher:
      valid = valid && !with_grad;
      break;
    default:
      break;
  }
  if (loss == Loss::logit_std_kd && C < 2) valid = false;
  // A reduced call with reduction none is refused.
  if (!per_sample && opt.reduction == Reduction::none) valid = false;
  const auto z = a.z();
  const auto v = a.v();
  auto g = a.g();
  fuzz::note("%s<%s> C=%lld B=%lld fault=%d entry=%u", what, fuzz::type_name(T()),
             static_cast<long long>(C), static_cast<long long>(B), static_cast<int>(fault), entry);
  fuzz::note_matrix("student", z);
  fuzz::note_matrix("teacher", v);
  T reduced = T(0);
  const bool accepted = fuzz::call(what, fuzz::expect(valid, unsure),
                                   [&] { call_loss(entry, z, v, g, losses, reduced); });
  if (!accepted || fault != Fault::none) return;
  const Matrix<T> zc = z, vc = v;
  Matrix<T> gc;
  if (with_grad) gc = g;
  const bool sums_zero =
      loss != Loss::binary_kl && loss != Loss::binary_kl_norm && loss != Loss::logit_mse;
  const double red = per_sample                              ? 1.0
                     : opt.reduction == Reduction::mean      ? 1.0 / static_cast<double>(B * C)
                     : opt.reduction == Reduction::batchmean ? 1.0 / static_cast<double>(B)
                                                             : 1.0;
  double spread = 0.0;  // bounds |log p − log q| through max |z − v|
  if (fuzz::all_finite(zc) && fuzz::all_finite(vc))
    spread = static_cast<double>((zc - vc).cwiseAbs().maxCoeff());
  const double nat = natural * red * (2.0 + 2.0 * spread * inv_t);
  if (per_sample) {
    const Vector<T> lc = losses;
    check_result<T>(what, loss, pal, tame_options, zc, vc, &lc, T(0), false,
                    with_grad ? &gc : nullptr, nat, nonneg, sums_zero);
    return;
  }
  // The per-sample losses of the same input, for the NaN and sum checks.
  Vector<T> ps(B);
  T unused = T(0);
  Matrix<T> gdummy(C, B);
  auto gd = Eigen::Map<Matrix<T>>(gdummy.data(), C, B);
  call_loss(2U, zc, vc, gd, ps, unused);
  check_result<T>(what, loss, pal, tame_options, zc, vc, &ps, reduced, true,
                  with_grad ? &gc : nullptr, nat, nonneg, sums_zero);
  if (opt.reduction == Reduction::sum && fuzz::all_finite(zc) && fuzz::all_finite(vc) &&
      std::isfinite(static_cast<double>(reduced))) {
    double s = 0.0, as = 0.0;
    for (Index j = 0; j < B; ++j) {
      s += static_cast<double>(ps[j]);
      as += std::abs(static_cast<double>(ps[j]));
    }
    if (std::isfinite(as)) {
      REGULA_FUZZ_CHECK(std::abs(s - static_cast<double>(reduced)) <=
                            4.0 * fuzz::sum_tol<T>(static_cast<std::size_t>(B), as),
                        "%s: reduced sum %.9g differs from the per-sample sum %.9g", what,
                        static_cast<double>(reduced), s);
    }
  }
}

template <class T>
void run_sinkhorn(fuzz::Input& in, Palette pal, Index C, Index B, Fault fault) {
  SinkhornKDOptions opt;
  opt.with_temperature(fuzz::option(in, {2.0, 1.0, 4.0, 0.5}));
  double eps = fuzz::option(in, {0.1, 0.05, 1.0, 1e-3, 10.0, 1e-6});
  if (eps > 0.0 && eps < 1e-30 && fuzz::skip_known("sinkhorn-eps")) eps = 1e-3;
  opt.with_epsilon(eps);
  const int iters_table[] = {1, 2, 5, 20, 50, 3, 0, -1, 10, 20, 1, 4, 7, 100000, INT_MAX, 20};
  int iters = iters_table[in.u8() % 16];
  if ((iters == INT_MAX || iters == 100000) && fuzz::skip_known("sinkhorn-iters")) iters = 20;
  // The most iterations only for the smallest plans (B, C ≤ 2): 10⁵ log-domain steps of a
  // 3 × 3 plan cost ~0.1 s under coverage instrumentation and dominated the harness's time.
  if (iters == 100000 && B * B * C > 8) iters = 50;
  opt.with_iterations(iters);
  opt.with_lambda(fuzz::option(in, {1e-3, 1.0, 8e-4, 0.0, -1.0, 1e3}));
  opt.with_grad_mode(in.flag() ? SinkhornGradMode::unrolled : SinkhornGradMode::envelope);
  const bool t_ok = std::isfinite(opt.temperature) && opt.temperature > 0.0;
  const bool e_ok = std::isfinite(opt.epsilon) && opt.epsilon > 0.0;
  // A λ past the largest T is refused (it would be an infinity in T's kernel).
  const bool options_ok =
      t_ok && e_ok && opt.iterations >= 1 && std::isfinite(opt.lambda) &&
      std::abs(opt.lambda) <= static_cast<double>(std::numeric_limits<T>::max());
  const bool unsure = fuzz::extreme(opt.temperature, 1e-3, 1e3) ||
                      fuzz::extreme(opt.epsilon, 1e-6, 1e6) || opt.iterations > 1000 ||
                      std::abs(opt.lambda) > 1e6;
  Args<T> a = make_args<T>(in, pal, C, B, fault);
  const unsigned entry =
      in.u8() % 5;  // ws reduced, ws + grad, ws per-sample, convenience, convenience + grad
  const bool per_sample = entry == 2;
  const bool with_grad = entry == 1 || entry == 4;
  Vector<T> losses(fault == Fault::losses_length ? B + 1 : B);
  bool valid = options_ok;
  switch (fault) {
    case Fault::none:
    case Fault::labels_range:
    case Fault::labels_length:
      break;
    case Fault::empty_batch:
    case Fault::no_class:
    case Fault::teacher_shape:
      valid = false;
      break;
    case Fault::losses_length:
      valid = valid && !per_sample;
      break;
    default:
      valid = valid && !with_grad;
      break;
  }
  static SinkhornKDWorkspace<T> shared;  // reused across inputs of every shape
  SinkhornKDWorkspace<T> local;
  SinkhornKDWorkspace<T>& ws = in.flag() ? shared : local;
  const auto z = a.z();
  const auto v = a.v();
  auto g = a.g();
  fuzz::note(
      "sinkhorn_kd<%s> C=%lld B=%lld fault=%d entry=%u T=%g eps=%g iterations=%d lambda=%g mode=%d",
      fuzz::type_name(T()), static_cast<long long>(C), static_cast<long long>(B),
      static_cast<int>(fault), entry, opt.temperature, opt.epsilon, opt.iterations, opt.lambda,
      static_cast<int>(opt.grad_mode));
  fuzz::note_matrix("student", z);
  fuzz::note_matrix("teacher", v);
  T reduced = T(0);
  const bool accepted = fuzz::call("sinkhorn_kd", fuzz::expect(valid, unsure), [&] {
    switch (entry) {
      case 0:
        reduced = sinkhorn_kd<T>(z, v, ws, opt);
        break;
      case 1:
        reduced = sinkhorn_kd<T>(z, v, g, ws, opt);
        break;
      case 2:
        sinkhorn_kd_per_sample<T>(z, v, losses, ws, opt);
        break;
      case 3:
        reduced = sinkhorn_kd(z, v, opt);
        break;
      default:
        reduced = sinkhorn_kd(z, v, g, opt);
        break;
    }
  });
  if (!accepted || fault != Fault::none) return;
  const Matrix<T> zc = z, vc = v;
  Matrix<T> gc;
  if (with_grad) gc = g;
  const bool tame = opt.epsilon >= 1e-3 && opt.epsilon <= 1e3 && std::abs(opt.lambda) <= 1e3;
  const bool envelope = opt.grad_mode == SinkhornGradMode::envelope;
  const double natural = std::abs(opt.lambda) * static_cast<double>(B) * 4.0 / opt.temperature;
  const Vector<T> lc = losses;
  check_result<T>("sinkhorn_kd", Loss::sinkhorn, pal, tame, zc, vc, per_sample ? &lc : nullptr,
                  reduced, !per_sample, with_grad ? &gc : nullptr, natural, opt.lambda >= 0.0,
                  envelope);
  if (per_sample && fuzz::all_finite(zc) && fuzz::all_finite(vc) && fuzz::all_finite(lc)) {
    SinkhornKDWorkspace<T> w2;
    const T total = sinkhorn_kd<T>(zc, vc, w2, opt);
    double s = 0.0, as = 0.0;
    for (Index j = 0; j < B; ++j) {
      s += static_cast<double>(lc[j]);
      as += std::abs(static_cast<double>(lc[j]));
    }
    REGULA_FUZZ_CHECK(std::abs(s - static_cast<double>(total)) <=
                          4.0 * fuzz::sum_tol<T>(static_cast<std::size_t>(B), as),
                      "sinkhorn_kd: per-sample contributions sum to %.9g, the loss is %.9g", s,
                      static_cast<double>(total));
  }
}

template <class T>
void run_dual_head(fuzz::Input& in, Palette pal, Index C, Index B) {
  const unsigned entry = in.u8() % 3;
  if (entry == 0) {  // gradient_alignment, out fresh, aliasing an input, or overlapping one partly
    const auto n = static_cast<std::size_t>(C * B);
    std::vector<T> buf(3 * n + 8, T(777));
    for (std::size_t i = 0; i < 2 * n; ++i) buf[i] = fuzz::value<T>(in, pal);
    const Eigen::Map<const Matrix<T>> g1(buf.data(), C, B), g2(buf.data() + n, C, B);
    const Matrix<T> g1c = g1, g2c = g2;
    const unsigned where = in.u8() % 5;
    std::size_t off = 2 * n + 4;
    if (where == 1) off = 0;
    if (where == 2) off = n;
    if (where >= 3 && n > 1) off = (where == 3 ? 0 : n) + 1 + in.pick(n - 1);
    const bool partial = where >= 3 && n > 1;
    if (partial && fuzz::skip_known("dual-head-alias")) return;
    Eigen::Map<Matrix<T>> out(buf.data() + off, C, B);
    fuzz::note("gradient_alignment<%s> C=%lld B=%lld out=%u", fuzz::type_name(T()),
               static_cast<long long>(C), static_cast<long long>(B), where);
    fuzz::note_matrix("g1", g1c);
    fuzz::note_matrix("g2", g2c);
    double dot = 0.0;
    const bool ok = fuzz::call("gradient_alignment", partial ? Expect::reject : Expect::accept,
                               [&] { dot = gradient_alignment<T>(g1, g2, out); });
    if (!ok || pal != Palette::moderate) return;
    const Matrix<T> oc = out;
    REGULA_FUZZ_CHECK(fuzz::all_finite(oc) && std::isfinite(dot),
                      "gradient_alignment: non-finite result");
    // After the projection, g2' = out − g1 no longer conflicts with g1.
    const double after =
        ((oc - g1c).template cast<double>().array() * g1c.template cast<double>().array()).sum();
    const double scale = g1c.template cast<double>().norm() *
                         (g2c.template cast<double>().norm() + g1c.template cast<double>().norm());
    REGULA_FUZZ_CHECK(after >= -fuzz::sum_tol<T>(n, scale) * 4.0,
                      "gradient_alignment: <out - g1, g1> = %.9g < 0 after alignment (scale %.3g)",
                      after, scale);
    return;
  }
  DualHeadOptions opt;
  opt.with_weight1(fuzz::option(in, {1.0, 0.5, 2.0, 0.0}));
  opt.with_weight2(fuzz::option(in, {1.0, 0.1, 3.0, -1.0}));
  opt.with_align(in.flag());
  const double tmax = static_cast<double>(std::numeric_limits<T>::max());
  const bool ok = std::abs(opt.weight1) <= tmax && std::abs(opt.weight2) <= tmax;
  if (!fuzz::call("DualHeadKD()", ok ? Expect::accept : Expect::reject, [&] {
        const DualHeadKD<T> probe(opt);
        (void)probe;
      })) {
    return;
  }
  const DualHeadKD<T> dh(opt);
  const Matrix<T> z1 = fuzz::make_matrix<T>(in, C, B, pal),
                  z2 = fuzz::make_matrix<T>(in, C, B, pal);
  const Matrix<T> teacher = fuzz::make_matrix<T>(in, C, B, pal);
  Labels y(B);
  for (Index j = 0; j < B; ++j)
    y[j] = static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C)));
  Matrix<T> d1(C, B), d2(C, B);
  auto ce = [&](const MatrixCRef<T>& z, MatrixRef<T> dz) { return cross_entropy(z, y, dz); };
  auto bkln = [&](const MatrixCRef<T>& z, MatrixRef<T> dz) {
    return binary_kl_norm(z, teacher, dz, KDLossOptions{}.with_temperature(2.0));
  };
  fuzz::note("DualHeadKD<%s> C=%lld B=%lld w1=%g w2=%g align=%d", fuzz::type_name(T()),
             static_cast<long long>(C), static_cast<long long>(B), opt.weight1, opt.weight2,
             opt.align);
  DualHeadLosses<T> l{};
  (void)fuzz::call("DualHeadKD::forward_backward", Expect::accept,
                   [&] { l = dh.forward_backward(z1, z2, ce, bkln, d1, d2); });
  if (fuzz::all_finite(z1) && fuzz::all_finite(z2) && fuzz::all_finite(teacher)) {
    REGULA_FUZZ_CHECK(!std::isnan(l.loss1) && !std::isnan(l.loss2),
                      "DualHeadKD: NaN loss for finite input");
    REGULA_FUZZ_CHECK(l.loss1 >= T(0) && l.loss2 >= T(0), "DualHeadKD: negative loss %.9g, %.9g",
                      static_cast<double>(l.loss1), static_cast<double>(l.loss2));
  }
  Matrix<T> df(C, B);
  const Index bad = in.u8() % 4 == 0 ? 1 : 0;
  Matrix<T> d2b(C, B + bad);
  d2b.leftCols(B) = d2;
  (void)fuzz::call("DualHeadKD::combine", bad != 0 ? Expect::reject : Expect::accept,
                   [&] { dh.combine(d1, d2b, df); });
}

template <class T>
void run(fuzz::Input& in) {
  const auto loss = static_cast<Loss>(in.pick(static_cast<std::size_t>(Loss::count)));
  const Palette pal = fuzz::palette(in);
  const std::uint8_t shape = in.u8();
  Index C = shape < 200 ? static_cast<Index>(1 + shape % 8) : static_cast<Index>(1 + shape % 70);
  Index B = static_cast<Index>(1 + in.u8() % 10);
  const auto fault =
      static_cast<Fault>(in.u8() % 64 < 40 ? 0 : in.pick(static_cast<std::size_t>(Fault::count)));
  if (fault == Fault::empty_batch) B = 0;
  if (fault == Fault::no_class) C = 0;
  if (loss == Loss::sinkhorn) return run_sinkhorn<T>(in, pal, C, B, fault);
  if (loss == Loss::dual_head) {
    if (C > 0 && B > 0) run_dual_head<T>(in, pal, C, B);
    return;
  }
  if (loss == Loss::logit_mse) {
    LogitMSEOptions opt;
    opt.with_reduction(static_cast<Reduction>(in.pick(4)));
    run_teacher<T>(in, loss, pal, C, B, fault, opt, true, false, true, 1.0, 0.0, true,
                   [&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses,
                       T& reduced) { REGULA_FUZZ_TEACHER_CALL(logit_mse) });
    return;
  }
  if (loss == Loss::dkd) {
    DKDOptions opt;
    opt.with_temperature(fuzz::option(in, {4.0, 1.0, 2.0, 0.5, 20.0}));
    if (opt.temperature >= 1e15 && fuzz::skip_known("kd-overflow")) opt.with_temperature(4.0);
    opt.with_alpha(fuzz::option(in, {1.0, 0.0, 2.0, 0.5}));
    opt.with_beta(fuzz::option(in, {8.0, 2.0, 0.5, 0.0}));
    // Weights past the largest T are refused (they would be infinities in T's kernel).
    const double tmax = static_cast<double>(std::numeric_limits<T>::max());
    opt.with_scale_by_t_squared(in.flag());
    opt.with_reduction(static_cast<Reduction>(in.pick(4)));
    const bool ok = std::isfinite(opt.temperature) && opt.temperature > 0.0 &&
                    std::abs(opt.alpha) <= tmax && std::abs(opt.beta) <= tmax;
    Labels y(fault == Fault::labels_length ? B + 1 : B);
    for (Index j = 0; j < y.size(); ++j)
      y[j] = static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(std::max<Index>(C, 1))));
    if (fault == Fault::labels_range && B > 0) y[0] = in.flag() ? -1 : C;
    fuzz::note("T=%g alpha=%g beta=%g t_squared=%d reduction=%s", opt.temperature, opt.alpha,
               opt.beta, opt.scale_by_t_squared, to_string(opt.reduction));
    const bool labels_ok = fault != Fault::labels_range && fault != Fault::labels_length;
    const bool tame = opt.temperature >= 0.5 && opt.temperature <= 100.0 &&
                      std::abs(opt.alpha) <= 1e3 && std::abs(opt.beta) <= 1e3;
    const bool nonneg_weights = opt.alpha >= 0.0 && opt.beta >= 0.0;
    run_teacher<T>(
        in, loss, pal, C, B, fault, opt, ok && labels_ok && C >= 2,
        fuzz::extreme(opt.temperature, 1e-3, 1e3) || std::abs(opt.alpha) > 1e6 ||
            std::abs(opt.beta) > 1e6,
        tame, opt.factor() / opt.temperature * (std::abs(opt.alpha) + std::abs(opt.beta) + 1.0),
        1.0 / opt.temperature, nonneg_weights,
        [&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
          switch (entry) {
            case 0:
              reduced = dkd(z, v, y, opt);
              break;
            case 1:
              reduced = dkd(z, v, y, g, opt);
              break;
            case 2:
              dkd_per_sample(z, v, y, losses, opt);
              break;
            default:
              dkd_per_sample(z, v, y, losses, g, opt);
              break;
          }
        });
    return;
  }
  KDLossOptions opt;
  opt.with_temperature(fuzz::option(in, {1.0, 2.0, 4.0, 0.5, 20.0, 1e-3, 100.0}));
  if (opt.temperature >= 1e15 && fuzz::skip_known("kd-overflow")) opt.with_temperature(4.0);
  opt.with_scale_by_t_squared(in.flag());
  opt.with_reduction(static_cast<Reduction>(in.pick(4)));
  const bool ok = std::isfinite(opt.temperature) && opt.temperature > 0.0;
  const bool tame = opt.temperature >= 0.5 && opt.temperature <= 100.0;
  const double natural = opt.factor() / opt.temperature;
  fuzz::note("T=%g t_squared=%d reduction=%s", opt.temperature, opt.scale_by_t_squared,
             to_string(opt.reduction));
  auto go = [&](auto&& f) {
    run_teacher<T>(in, loss, pal, C, B, fault, opt, ok, fuzz::extreme(opt.temperature, 1e-3, 1e3),
                   tame, natural, 1.0 / opt.temperature, true, f);
  };
  switch (loss) {
    case Loss::kd_kl:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(kd_kl)
      });
      break;
    case Loss::reverse_kl:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(reverse_kl)
      });
      break;
    case Loss::js:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(js)
      });
      break;
    case Loss::total_variation:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(total_variation)
      });
      break;
    case Loss::binary_kl:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(binary_kl)
      });
      break;
    case Loss::binary_kl_norm:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(binary_kl_norm)
      });
      break;
    default:
      go([&](unsigned entry, const auto& z, const auto& v, auto& g, auto& losses, T& reduced) {
        REGULA_FUZZ_TEACHER_CALL(logit_std_kd)
      });
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::notes().clear();
  fuzz::Input in(data, size);
  if (in.flag())
    run<float>(in);
  else
    run<double>(in);
  return 0;
}
