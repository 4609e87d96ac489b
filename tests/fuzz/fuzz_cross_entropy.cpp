// Fuzz harness of losses/cross_entropy.hpp (softmax and StableMax: integer labels, soft targets,
// class weights, label smoothing, ignore_index, every reduction, the per-sample calls, the class
// and the free functions) and the label-probability losses (losses/coverage.hpp,
// losses/generalized_cross_entropy.hpp, losses/symmetric_cross_entropy.hpp).
//
// Byte layout: [type][family][palette][shape][fault][options...][data...]. Invariants of an
// accepted call: no NaN out for NaN-free input, ℓ ≥ 0 for non-negative targets, finite out for
// the moderate and large palettes, softmax gradient columns summing to ~0, ignored samples with
// zero loss and gradient, NaN logits giving a NaN loss for their sample, the reduced loss equal
// to the per-sample sum. Invalid arguments must give regula::invalid_argument and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/losses/coverage.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/generalized_cross_entropy.hpp"
#include "regula/losses/symmetric_cross_entropy.hpp"

#include "fuzz_support.hpp"

namespace {

using namespace regula;
using fuzz::Expect;
using fuzz::Palette;

enum class Fault : std::uint8_t {
  none,
  empty_batch,
  no_class,
  label_range,
  labels_length,
  losses_length,
  dlogits_shape,
  dlogits_overlap,
  losses_overlap,
  targets_shape,
  smoothing,
  reduction_none,
  weight_size,
  weight_value,
  option_value,  // an invalid option of a label-probability loss
  count
};

template <class T>
void check_losses(const char* what, Normalizer norm, Palette pal, const Matrix<T>& z,
                  const Labels* y, const Matrix<T>* soft, std::int64_t ignore, bool weighted,
                  const Vector<T>& losses, const Matrix<T>* grad, double natural) {
  bool finite_in = fuzz::all_finite(z) && (soft == nullptr || fuzz::all_finite(*soft));
  // Open finding (docs/fuzzing.md): a column whose logits span more than the largest T gives
  // NaN on the weighted and soft-target paths.
  if (finite_in && fuzz::skip_known("ce-extreme-span")) {
    for (Index j = 0; j < z.cols(); ++j) {
      if (z.rows() > 0 &&
          static_cast<double>(z.col(j).maxCoeff()) - static_cast<double>(z.col(j).minCoeff()) >
              static_cast<double>(std::numeric_limits<T>::max())) {
        finite_in = false;
      }
    }
  }
  const bool nonneg = soft == nullptr || soft->minCoeff() >= T(0);
  const bool tame = (pal == Palette::moderate || pal == Palette::large) && finite_in;
  for (Index j = 0; j < losses.size(); ++j) {
    const double l = static_cast<double>(losses[j]);
    const bool ignored = y != nullptr && (*y)[j] == ignore;
    if (ignored) {
      REGULA_FUZZ_CHECK(l == 0.0, "%s: ignored sample %lld has loss %.9g", what,
                        static_cast<long long>(j), l);
      if (grad != nullptr) {
        REGULA_FUZZ_CHECK((grad->col(j).array() == T(0)).all(),
                          "%s: ignored sample %lld has a gradient", what,
                          static_cast<long long>(j));
      }
      continue;
    }
    if (finite_in) {
      REGULA_FUZZ_CHECK(!std::isnan(l), "%s: NaN loss for sample %lld of finite input", what,
                        static_cast<long long>(j));
      // Open finding (docs/fuzzing.md): StableMax with one class is not exactly 0.
      const bool c1_open =
          norm == Normalizer::stablemax && z.rows() == 1 && fuzz::skip_known("stablemax-c1");
      if (nonneg && !c1_open) {
        REGULA_FUZZ_CHECK(l >= 0.0, "%s: negative loss %.9g for sample %lld", what, l,
                          static_cast<long long>(j));
      }
      if (tame && soft == nullptr) {
        REGULA_FUZZ_CHECK(std::isfinite(l),
                          "%s: loss %.9g of sample %lld for finite logits of moderate size", what,
                          l, static_cast<long long>(j));
      }
    }
    if (y != nullptr && !weighted && z.col(j).array().isNaN().any()) {
      REGULA_FUZZ_CHECK(std::isnan(l), "%s: sample %lld has a NaN logit but loss %.9g", what,
                        static_cast<long long>(j), l);
    }
  }
  if (grad == nullptr || !finite_in) return;
  REGULA_FUZZ_CHECK(!fuzz::any_nan(*grad), "%s: NaN in the gradient of finite input", what);
  if (tame && soft == nullptr) {
    REGULA_FUZZ_CHECK(fuzz::all_finite(*grad), "%s: non-finite gradient for finite logits", what);
  }
  if (norm == Normalizer::softmax && fuzz::all_finite(*grad))
    fuzz::check_column_sums<T>(what, *grad, natural);
}

template <class T, Normalizer Norm>
void run_xent(fuzz::Input& in, Palette pal, Index C, Index B, Fault fault) {
  const char* what = Norm == Normalizer::softmax ? "cross_entropy" : "stablemax_cross_entropy";
  CrossEntropyOptions opt;
  opt.reduction = static_cast<Reduction>(1 + in.pick(3));  // mean, sum, batchmean
  if (fault == Fault::reduction_none) opt.reduction = Reduction::none;
  if (in.u8() % 3 == 0) opt.label_smoothing = fuzz::option(in, {0.0, 0.1, 0.5, 1.0, 0.01});
  if (fault == Fault::smoothing) opt.label_smoothing = fuzz::option(in, {-0.1, 1.5, std::nan("")});
  const bool smoothing_ok = opt.label_smoothing >= 0.0 && opt.label_smoothing <= 1.0;
  opt.ignore_index =
      in.flag() ? -100 : static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C) + 1));
  const bool soft = in.u8() % 3 == 0;
  const bool use_class = in.flag();
  const bool weighted = use_class && in.flag();
  const unsigned entry = in.u8() % 4;  // reduced, reduced+grad, per-sample, per-sample+grad
  const bool per_sample = entry >= 2;
  const bool with_grad = entry % 2 == 1;
  if (!use_class && (fault == Fault::weight_size || fault == Fault::weight_value)) return;

  Vector<T> weight;
  bool weight_ok = true;
  if (weighted) {
    weight.resize(fault == Fault::weight_size ? C + 1 : C);
    for (Index c = 0; c < weight.size(); ++c) weight[c] = static_cast<T>(in.u8() % 9) * T(0.5);
    if (fault == Fault::weight_value && C > 0) {
      const T bad[] = {T(-1), std::numeric_limits<T>::quiet_NaN(),
                       std::numeric_limits<T>::infinity()};
      weight[static_cast<Index>(in.pick(static_cast<std::size_t>(C)))] = bad[in.pick(3)];
      weight_ok = false;
    }
  }

  // logits, dlogits and (for the overlap fault) losses share one buffer, so that overlaps can
  // be made on purpose.
  const std::size_t n = static_cast<std::size_t>(C * B);
  std::vector<T> buf(3 * n + 3 * static_cast<std::size_t>(B) + 16, T(777));
  for (std::size_t i = 0; i < n; ++i) buf[i] = fuzz::value<T>(in, pal);
  if (Norm == Normalizer::stablemax && fuzz::skip_known("stablemax-ninf")) {
    for (std::size_t i = 0; i < n; ++i) buf[i] = std::max(buf[i], T(-1e37F));
  }
  const Eigen::Map<const Matrix<T>> z(buf.data(), C, B);
  std::size_t goff = n + 4;
  if (fault == Fault::dlogits_overlap && n > 0) goff = in.pick(n);
  Eigen::Map<Matrix<T>> g(buf.data() + goff, fault == Fault::dlogits_shape ? C + 1 : C, B);

  Labels y(fault == Fault::labels_length ? B + 1 : B);
  for (Index j = 0; j < y.size(); ++j) {
    y[j] =
        in.u8() % 8 == 0
            ? opt.ignore_index
            : static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(std::max<Index>(C, 1))));
  }
  if (fault == Fault::label_range && B > 0) {
    const std::int64_t bad[] = {-1, C, C + 7, std::numeric_limits<std::int64_t>::min(),
                                std::numeric_limits<std::int64_t>::max()};
    std::int64_t v = bad[in.pick(5)];
    if (v == opt.ignore_index) v = -2;
    y[static_cast<Index>(in.pick(static_cast<std::size_t>(B)))] = v;
  }
  // Targets are weights of classes, kept moderate: targets of ±1e300 in one column make the
  // true loss a difference of huge terms that may overflow (NaN is then not a defect). The
  // large values stay on the logits; NaN and inf targets come below.
  Matrix<T> targets =
      fuzz::make_matrix<T>(in, fault == Fault::targets_shape ? C + 1 : C, B, Palette::moderate);
  if (in.flag()) targets = targets.cwiseAbs();  // probabilities-like, non-negative
  if (pal == Palette::nonfinite && targets.size() > 0 && in.u8() % 4 == 0) {
    targets(static_cast<Index>(in.pick(static_cast<std::size_t>(targets.rows()))), 0) =
        in.flag() ? std::numeric_limits<T>::quiet_NaN() : std::numeric_limits<T>::infinity();
  }

  std::vector<T> lbuf(static_cast<std::size_t>(B) + 2, T(555));
  T* lptr = lbuf.data();
  Index ln = fault == Fault::losses_length ? B + 1 : B;
  if (fault == Fault::losses_overlap) {
    if (n == 0 || fuzz::skip_known("ce-alias")) return;
    lptr = buf.data() + in.pick(n);
    ln = B;
  }
  Eigen::Map<Vector<T>> losses(lptr, ln);

  const bool ctor_ok = smoothing_ok && weight_ok;
  bool valid = ctor_ok;
  switch (fault) {
    case Fault::none:
    case Fault::smoothing:
    case Fault::weight_value:
    case Fault::option_value:
      break;
    case Fault::empty_batch:
    case Fault::no_class:
      valid = false;
      break;
    case Fault::label_range:
    case Fault::labels_length:
      valid = valid && soft;
      break;
    case Fault::targets_shape:
      valid = valid && !soft;
      break;
    case Fault::losses_length:
    case Fault::losses_overlap:
      valid = valid && !per_sample;
      break;
    case Fault::dlogits_shape:
    case Fault::dlogits_overlap:
      valid = valid && !with_grad;
      break;
    case Fault::reduction_none:
      valid = valid && per_sample;
      break;
    case Fault::weight_size:
      valid = valid && !weighted;
      break;
    default:
      break;
  }
  const Expect expect = valid ? Expect::accept : Expect::reject;
  fuzz::note(
      "%s<%s> C=%lld B=%lld fault=%d entry=%u soft=%d class=%d weighted=%d reduction=%s "
      "smoothing=%g ignore_index=%lld",
      what, fuzz::type_name(T()), static_cast<long long>(C), static_cast<long long>(B),
      static_cast<int>(fault), entry, soft, use_class, weighted, to_string(opt.reduction),
      opt.label_smoothing, static_cast<long long>(opt.ignore_index));
  fuzz::note_matrix("logits", z);
  fuzz::note_matrix("labels", y.transpose());
  if (soft) fuzz::note_matrix("targets", targets);
  if (weighted) fuzz::note_matrix("weight", weight.transpose());

  T reduced = T(0);
  bool accepted = false;
  if (use_class) {
    const bool built =
        fuzz::call("CrossEntropyLoss()", ctor_ok ? Expect::accept : Expect::reject, [&] {
          const CrossEntropyLoss<T, Norm> probe(opt, weight);
          (void)probe;
        });
    if (!built) return;
    const CrossEntropyLoss<T, Norm> ce(opt, weight);
    accepted = fuzz::call(what, expect, [&] {
      if (!soft) {
        switch (entry) {
          case 0:
            reduced = ce.forward(z, y);
            break;
          case 1:
            reduced = ce.forward_backward(z, y, g);
            break;
          case 2:
            ce.per_sample(z, y, losses);
            break;
          default:
            ce.per_sample(z, y, losses, g);
            break;
        }
      } else {
        switch (entry) {
          case 0:
            reduced = ce.forward_soft(z, targets);
            break;
          case 1:
            reduced = ce.forward_backward_soft(z, targets, g);
            break;
          case 2:
            ce.per_sample_soft(z, targets, losses);
            break;
          default:
            ce.per_sample_soft(z, targets, losses, g);
            break;
        }
      }
    });
  } else {
    accepted = fuzz::call(what, expect, [&] {
      if (!soft) {
        switch (entry) {
          case 0:
            reduced = cross_entropy<Norm>(z, y, opt);
            break;
          case 1:
            reduced = cross_entropy<Norm>(z, y, g, opt);
            break;
          case 2:
            cross_entropy_per_sample<Norm>(z, y, losses, opt);
            break;
          default:
            cross_entropy_per_sample<Norm>(z, y, losses, g, opt);
            break;
        }
      } else {
        switch (entry) {
          case 0:
            reduced = cross_entropy_soft<Norm>(z, targets, opt);
            break;
          case 1:
            reduced = cross_entropy_soft<Norm>(z, targets, g, opt);
            break;
          case 2:
            cross_entropy_soft_per_sample<Norm>(z, targets, losses, opt);
            break;
          default:
            cross_entropy_soft_per_sample<Norm>(z, targets, losses, g, opt);
            break;
        }
      }
    });
  }
  if (!accepted || fault != Fault::none) return;

  const Matrix<T> zc = z;
  const Labels* yl = soft ? nullptr : &y;
  const Matrix<T>* tp = soft ? &targets : nullptr;
  Matrix<T> gc;
  if (with_grad) gc = g;
  // Scale of p·A and q in a gradient column: A = Σ q.
  double natural = 2.0 * (weighted ? std::max(1.0, static_cast<double>(weight.sum())) : 1.0);
  if (soft && fuzz::all_finite(targets)) {
    natural *= std::max(1.0, static_cast<double>(targets.cwiseAbs().colwise().sum().maxCoeff()));
  }
  if (per_sample) {
    const Vector<T> got = losses;
    check_losses<T>(what, Norm, pal, zc, yl, tp, opt.ignore_index, weighted, got,
                    with_grad ? &gc : nullptr, natural);
    return;
  }
  // A reduced call: compare with the per-sample losses of the same input.
  Vector<T> ps(B);
  if (use_class) {
    const CrossEntropyLoss<T, Norm> ce(opt, weight);
    if (soft)
      ce.per_sample_soft(zc, targets, ps);
    else
      ce.per_sample(zc, y, ps);
  } else if (soft) {
    cross_entropy_soft_per_sample<Norm>(zc, targets, ps, opt);
  } else {
    cross_entropy_per_sample<Norm>(zc, y, ps, opt);
  }
  check_losses<T>(what, Norm, pal, zc, yl, tp, opt.ignore_index, weighted, ps, nullptr, 0.0);
  bool finite_in = fuzz::all_finite(zc) && (!soft || fuzz::all_finite(targets));
  if (finite_in && fuzz::skip_known("ce-extreme-span") && B > 0 && C > 0) {
    const Eigen::Array<double, 1, Eigen::Dynamic> span =
        zc.colwise().maxCoeff().template cast<double>().array() -
        zc.colwise().minCoeff().template cast<double>().array();
    finite_in = span.maxCoeff() <= static_cast<double>(std::numeric_limits<T>::max());
  }
  // mean over no non-ignored sample (or a zero weight sum) is NaN by definition, as in PyTorch
  const bool mean_may_be_nan = opt.reduction == Reduction::mean && !soft;
  // Targets of both signs can give per-sample losses of +inf and −inf (true values past the
  // largest T), whose sum is NaN in IEEE arithmetic.
  const bool both_infinities = (ps.array() == std::numeric_limits<T>::infinity()).any() &&
                               (ps.array() == -std::numeric_limits<T>::infinity()).any();
  if (!finite_in || both_infinities) return;
  REGULA_FUZZ_CHECK(!std::isnan(reduced) || mean_may_be_nan,
                    "%s: NaN reduced loss for finite input", what);
  double sum = 0.0, asum = 0.0;
  for (Index j = 0; j < B; ++j) {
    sum += static_cast<double>(ps[j]);
    asum += std::abs(static_cast<double>(ps[j]));
  }
  if (opt.reduction == Reduction::sum && std::isfinite(asum) &&
      std::isfinite(static_cast<double>(reduced))) {
    const double tol = 4.0 * fuzz::sum_tol<T>(static_cast<std::size_t>(B), asum);
    REGULA_FUZZ_CHECK(std::abs(static_cast<double>(reduced) - sum) <= tol,
                      "%s: reduced sum %.9g differs from the per-sample sum %.9g", what,
                      static_cast<double>(reduced), sum);
  }
  if (with_grad) {
    REGULA_FUZZ_CHECK(!fuzz::any_nan(gc) || mean_may_be_nan,
                      "%s: NaN in the reduced gradient of finite input", what);
    if (Norm == Normalizer::softmax && fuzz::all_finite(gc))
      fuzz::check_column_sums<T>(what, gc, natural);
  }
}

// The options of one label-probability loss (losses/label_probability.hpp), drawn with
// Fault::option_value making one of them invalid; `ok` says whether they are valid and `natural`
// bounds F, the scale of a gradient column.
template <class O>
struct LpOptions {
  O opt;
  bool ok = true;
  double natural = 2.0;
  // False where the options alone can carry a finite loss past the largest float (α = 1e300,
  // q = 1e-300): the finiteness checks of the moderate and large palettes do not apply then.
  bool ordinary = true;
};

LpOptions<CoverageLossOptions> draw_options(fuzz::Input& in, Fault fault, CoverageLossOptions) {
  LpOptions<CoverageLossOptions> o;
  o.opt.N = fuzz::option(in, {1.0, 2.0, 4.0, 16.0, 1.5, 100.0, 1e6});
  if (fault == Fault::option_value)
    o.opt.N = fuzz::option(in, {0.5, 0.0, -1.0, std::nan(""), HUGE_VAL});
  o.ok = o.opt.N >= 1.0 && std::isfinite(o.opt.N);
  return o;
}

LpOptions<GeneralizedCrossEntropyOptions> draw_options(fuzz::Input& in, Fault fault,
                                                       GeneralizedCrossEntropyOptions) {
  LpOptions<GeneralizedCrossEntropyOptions> o;
  o.opt.q = fuzz::option(in, {0.7, 1.0, 0.1, 1e-6, 0.5});
  o.opt.truncation = fuzz::option(in, {0.0, 0.0, 0.2, 0.5, 0.99});
  if (fault == Fault::option_value) {
    if (in.flag()) {
      o.opt.q = fuzz::option(in, {0.0, -1.0, 1.5, std::nan(""), HUGE_VAL});
    } else {
      o.opt.truncation = fuzz::option(in, {1.0, -0.1, std::nan(""), 2.0});
    }
  }
  o.ok = std::isfinite(o.opt.q) && o.opt.q > 0.0 && o.opt.q <= 1.0 && o.opt.truncation >= 0.0 &&
         o.opt.truncation < 1.0;
  o.ordinary = o.opt.q >= 1e-6;  // ℓ ≤ 1/q
  return o;
}

LpOptions<SymmetricCrossEntropyOptions> draw_options(fuzz::Input& in, Fault fault,
                                                     SymmetricCrossEntropyOptions) {
  LpOptions<SymmetricCrossEntropyOptions> o;
  o.opt.alpha = fuzz::option(in, {0.1, 0.0, 6.0, 1.0, 1e6});
  o.opt.beta = fuzz::option(in, {1.0, 0.1, 0.0, 1e6});
  o.opt.A = fuzz::option(in, {-9.210340371976182, -4.0, -1.0, -1e6});
  if (fault == Fault::option_value) {
    const unsigned which = in.u8() % 3;
    const double bad = fuzz::option(in, {-1.0, std::nan(""), HUGE_VAL, 0.0, 1.0});
    if (which == 0) o.opt.alpha = bad;
    if (which == 1) o.opt.beta = bad;
    if (which == 2) o.opt.A = bad;
  }
  o.ok = std::isfinite(o.opt.alpha) && o.opt.alpha >= 0.0 && std::isfinite(o.opt.beta) &&
         o.opt.beta >= 0.0 && std::isfinite(o.opt.A) && o.opt.A < 0.0;
  if (o.ok) o.natural = 2.0 * std::max(1.0, o.opt.alpha + o.opt.beta * -o.opt.A);
  // ℓ ≤ α·CE + β·(−A), CE up to ~2e30 for the large palette's float logits.
  o.ordinary = o.opt.alpha <= 1e6 && o.opt.beta * -o.opt.A <= 1e12;
  return o;
}

// One label-probability loss: `Loss` is its reduced function object or coverage's overloads
// (through `call`), `what` its name.
template <class T, class O, class Reduced, class PerSample>
void run_label_probability(fuzz::Input& in, Palette pal, Index C, Index B, Fault fault,
                           const char* what, Reduced&& reduced_call, PerSample&& per_sample_call) {
  const LpOptions<O> drawn = draw_options(in, fault, O{});
  O opt = drawn.opt;
  const bool n_ok = drawn.ok;
  opt.reduction = static_cast<Reduction>(1 + in.pick(3));
  if (fault == Fault::reduction_none) opt.reduction = Reduction::none;
  opt.ignore_index =
      in.flag() ? -100 : static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C) + 1));
  const unsigned entry = in.u8() % 4;
  const bool per_sample = entry >= 2;
  const bool with_grad = entry % 2 == 1;
  const std::size_t n = static_cast<std::size_t>(C * B);
  std::vector<T> buf(3 * n + 3 * static_cast<std::size_t>(B) + 16, T(777));
  for (std::size_t i = 0; i < n; ++i) buf[i] = fuzz::value<T>(in, pal);
  const Eigen::Map<const Matrix<T>> z(buf.data(), C, B);
  std::size_t goff = n + 4;
  if (fault == Fault::dlogits_overlap && n > 0) goff = in.pick(n);
  Eigen::Map<Matrix<T>> g(buf.data() + goff, fault == Fault::dlogits_shape ? C + 1 : C, B);
  Labels y(fault == Fault::labels_length ? B + 1 : B);
  for (Index j = 0; j < y.size(); ++j) {
    y[j] =
        in.u8() % 8 == 0
            ? opt.ignore_index
            : static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(std::max<Index>(C, 1))));
  }
  if (fault == Fault::label_range && B > 0) {
    std::int64_t v = in.flag() ? -1 : C;
    if (v == opt.ignore_index) v = -7;
    y[static_cast<Index>(in.pick(static_cast<std::size_t>(B)))] = v;
  }
  Vector<T> losses(fault == Fault::losses_length ? B + 1 : B);
  bool valid = n_ok;
  switch (fault) {
    case Fault::none:
    case Fault::targets_shape:
    case Fault::smoothing:
    case Fault::weight_size:
    case Fault::weight_value:
    case Fault::losses_overlap:
    case Fault::option_value:
      break;
    case Fault::empty_batch:
    case Fault::no_class:
    case Fault::label_range:
    case Fault::labels_length:
      valid = false;
      break;
    case Fault::losses_length:
      valid = valid && !per_sample;
      break;
    case Fault::dlogits_shape:
    case Fault::dlogits_overlap:
      valid = valid && !with_grad;
      break;
    case Fault::reduction_none:
      valid = valid && per_sample;
      break;
    default:
      break;
  }
  if (fault == Fault::losses_overlap) return;  // losses is a separate vector here
  T reduced = T(0);
  Eigen::Map<Matrix<T>>* const none = nullptr;  // the calls without a gradient
  const bool accepted = fuzz::call(what, valid ? Expect::accept : Expect::reject, [&] {
    switch (entry) {
      case 0:
        reduced = reduced_call(z, y, none, opt);
        break;
      case 1:
        reduced = reduced_call(z, y, &g, opt);
        break;
      case 2:
        per_sample_call(z, y, losses, none, opt);
        break;
      default:
        per_sample_call(z, y, losses, &g, opt);
        break;
    }
  });
  if (!accepted || !valid || (fault != Fault::none && fault != Fault::option_value)) return;
  const Matrix<T> zc = z;
  Vector<T> ps(B);
  per_sample_call(zc, y, ps, none, opt);
  Matrix<T> gc;
  if (with_grad) gc = g;
  check_losses<T>(what, Normalizer::softmax, drawn.ordinary ? pal : Palette::extreme, zc, &y,
                  nullptr, opt.ignore_index, false, ps, with_grad && per_sample ? &gc : nullptr,
                  drawn.natural);
  if (fuzz::all_finite(zc)) {
    REGULA_FUZZ_CHECK(!std::isnan(reduced) || opt.reduction == Reduction::mean,
                      "%s: NaN reduced loss for finite input", what);
    if (with_grad && !per_sample && fuzz::all_finite(gc))
      fuzz::check_column_sums<T>(what, gc, drawn.natural);
  }
}

// The reduced and per-sample calls of a label-probability loss as run_label_probability takes
// them (a null gradient pointer: the call without one).
#define REGULA_FUZZ_LP_CALLS(NAME)                                        \
  [](const auto& z, const auto& y, auto* g, const auto& o) {              \
    return g != nullptr ? NAME(z, y, *g, o) : NAME(z, y, o);              \
  },                                                                      \
      [](const auto& z, const auto& y, auto& l, auto* g, const auto& o) { \
        if (g != nullptr) {                                               \
          NAME##_per_sample(z, y, l, *g, o);                              \
        } else {                                                          \
          NAME##_per_sample(z, y, l, o);                                  \
        }                                                                 \
      }

template <class T>
void run_label_probabilities(fuzz::Input& in, Palette pal, Index C, Index B, Fault fault) {
  switch (in.u8() % 3) {
    case 0:
      run_label_probability<T, CoverageLossOptions>(in, pal, C, B, fault, "coverage_loss",
                                                    REGULA_FUZZ_LP_CALLS(coverage_loss));
      break;
    case 1:
      run_label_probability<T, GeneralizedCrossEntropyOptions>(
          in, pal, C, B, fault, "generalized_cross_entropy",
          REGULA_FUZZ_LP_CALLS(generalized_cross_entropy));
      break;
    default:
      run_label_probability<T, SymmetricCrossEntropyOptions>(
          in, pal, C, B, fault, "symmetric_cross_entropy",
          REGULA_FUZZ_LP_CALLS(symmetric_cross_entropy));
      break;
  }
}

template <class T>
void run(fuzz::Input& in) {
  const unsigned family = in.u8() % 3;
  const Palette pal = fuzz::palette(in);
  const std::uint8_t shape = in.u8();
  Index C = shape < 200 ? static_cast<Index>(1 + shape % 8) : static_cast<Index>(1 + shape % 70);
  Index B = static_cast<Index>(1 + in.u8() % 12);
  const auto fault =
      static_cast<Fault>(in.u8() % 64 < 40 ? 0 : in.pick(static_cast<std::size_t>(Fault::count)));
  if (fault == Fault::empty_batch) B = 0;
  if (fault == Fault::no_class) C = 0;
  switch (family) {
    case 0:
      run_xent<T, Normalizer::softmax>(in, pal, C, B, fault);
      break;
    case 1:
      run_xent<T, Normalizer::stablemax>(in, pal, C, B, fault);
      break;
    default:
      run_label_probabilities<T>(in, pal, C, B, fault);
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
