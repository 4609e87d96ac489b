// Fuzz harness of selection/: SmallLossSelector, keep_count, label_precision, the forget-rate
// schedules, CoTeaching, CoTeachingPlus, JoCoR and inject_label_noise.
//
// Invariants: a selection has exactly keep_count entries, sorted as asked, equal to the first
// entries of the total order (loss, index) with NaN last and −0 = +0 (so ties go to the lower
// index), the same on a second call; exchanges scale the peer-selected gradient columns by 1/k
// and zero the others; the disagreement set of Co-teaching+ is exactly the samples whose argmax
// differ; JoCoR's joint losses are ≥ 0, equal for identical samples, their gradient columns sum
// to ~0; forget rates stay in [0, τ] and grow with the epoch; noisy labels stay in [0, C) and
// follow their kind. Bad arguments give regula::invalid_argument and nothing else.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "regula/selection/co_teaching.hpp"
#include "regula/selection/forget_rate.hpp"
#include "regula/selection/jocor.hpp"
#include "regula/selection/label_noise.hpp"
#include "regula/selection/small_loss.hpp"

#include "fuzz_support.hpp"

namespace {

using namespace regula;
using fuzz::Expect;
using fuzz::Palette;

/// The reference selection: the `keep` first of all indices sorted by (order key, index).
template <class T>
std::vector<Index> reference(const std::vector<T>& l, std::size_t keep, SelectionOrder order) {
  std::vector<Index> idx(l.size());
  std::iota(idx.begin(), idx.end(), Index{0});
  auto key = [&](Index i) { return detail::order_key(l[static_cast<std::size_t>(i)]); };
  std::stable_sort(idx.begin(), idx.end(), [&](Index a, Index b) { return key(a) < key(b); });
  idx.resize(keep);
  if (order == SelectionOrder::by_index) std::sort(idx.begin(), idx.end());
  return idx;
}

template <class T>
std::vector<T> losses(fuzz::Input& in, std::size_t n, Palette pal) {
  std::vector<T> l(n);
  for (auto& v : l)
    v = in.u8() % 4 == 0 && &v != l.data() ? l[in.pick(static_cast<std::size_t>(&v - l.data()))]
                                           : fuzz::value<T>(in, pal);
  return l;
}

template <class T>
bool same_loss(T a, T b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

std::string list(const std::vector<Index>& v) {
  std::string s;
  for (const Index i : v) s += std::to_string(i) + " ";
  return s;
}

template <class T>
void run_selector(fuzz::Input& in, Palette pal) {
  static SmallLossSelector<T> shared;  // reused across sizes
  const auto n = static_cast<std::size_t>(in.u8() % 48);
  const std::vector<T> l = losses<T>(in, n, pal);
  const std::size_t keep = in.pick(n + 2);
  const SelectionOrder order = in.flag() ? SelectionOrder::by_index : SelectionOrder::by_loss;
  fuzz::note("SmallLossSelector<%s> n=%zu keep=%zu order=%d", fuzz::type_name(T()), n, keep,
             static_cast<int>(order));
  fuzz::note_matrix("losses",
                    Eigen::Map<const Vector<T>>(l.data(), static_cast<Index>(n)).transpose());
  std::vector<Index> got;
  if (!fuzz::call("SmallLossSelector::select", fuzz::expect(keep <= n),
                  [&] { got = shared.select(l.data(), n, keep, order); })) {
    return;
  }
  const std::vector<Index> want = reference(l, keep, order);
  REGULA_FUZZ_CHECK(got == want, "SmallLossSelector: selected [%s], want [%s]", list(got).c_str(),
                    list(want).c_str());
  SmallLossSelector<T> fresh;
  REGULA_FUZZ_CHECK(fresh.select(Eigen::Map<const Vector<T>>(l.data(), static_cast<Index>(n)), keep,
                                 order) == got,
                    "SmallLossSelector: a fresh selector selects differently");
  // keep_count and label_precision on the same batch.
  const double r = fuzz::option(in, {0.0, 0.2, 0.5, 0.8, 1.0, 0.45, 0.999});
  std::size_t k = 0;
  if (fuzz::call("keep_count", fuzz::expect(r >= 0.0 && r <= 1.0), [&] { k = keep_count(n, r); })) {
    REGULA_FUZZ_CHECK(k <= n && (n == 0 || k >= 1), "keep_count(%zu, %g) = %zu", n, r, k);
    REGULA_FUZZ_CHECK(
        n == 0 || k == std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(
                                                    (1.0 - r) * static_cast<double>(n)))),
        "keep_count(%zu, %g) = %zu is not max(1, floor((1 - r) n))", n, r, k);
  }
  std::vector<std::uint8_t> noisy(n);
  for (auto& b : noisy) b = in.u8() & 1U;
  std::vector<Index> sel = got;
  const bool bad = in.u8() % 8 == 0;
  if (bad) sel.push_back(in.flag() ? -1 : static_cast<Index>(n));
  double prec = 0.0;
  if (fuzz::call("label_precision", fuzz::expect(!bad),
                 [&] { prec = label_precision(sel, noisy); })) {
    REGULA_FUZZ_CHECK(prec >= 0.0 && prec <= 1.0, "label_precision = %g", prec);
  }
}

template <class T>
void run_forget(fuzz::Input& in) {
  ForgetRateOptions o;
  o.tau = fuzz::option(in, {0.5, 0.2, 0.0, 0.8, 0.99});
  o.ramp_epochs = fuzz::option(in, {10.0, 1.0, 5.0, 2.5, 100.0});
  o.exponent = fuzz::option(in, {1.0, 0.5, 2.0, 4.0});
  const double e = fuzz::option(in, {0.0, 1.0, 3.0, 9.5, 10.0, 50.0, 1e9});
  const bool ok =
      o.tau >= 0.0 && o.tau < 1.0 && o.ramp_epochs >= 1.0 && o.exponent > 0.0 && e >= 0.0;
  fuzz::note("forget_rate tau=%g ramp=%g c=%g epoch=%g", o.tau, o.ramp_epochs, o.exponent, e);
  double r = 0.0;
  const bool inf = std::isinf(e) || std::isinf(o.ramp_epochs) || std::isinf(o.exponent);
  if (fuzz::call("forget_rate", fuzz::expect(ok, inf), [&] { r = forget_rate(o, e); })) {
    REGULA_FUZZ_CHECK(r >= 0.0 && r <= o.tau, "forget_rate = %g outside [0, tau]", r);
    if (e >= o.ramp_epochs)
      REGULA_FUZZ_CHECK(r == o.tau, "forget_rate = %g after the ramp, tau %g", r, o.tau);
    const double later = forget_rate(o, e + 0.5);
    REGULA_FUZZ_CHECK(later >= r, "forget_rate decreases: %g then %g", r, later);
  }
  const bool integral = std::floor(e) == e && std::floor(o.ramp_epochs) == o.ramp_epochs;
  if (fuzz::call("legacy_coteaching_forget_rate", fuzz::expect(ok && integral, inf),
                 [&] { r = legacy_coteaching_forget_rate(o, e); })) {
    REGULA_FUZZ_CHECK(
        r >= 0.0 && r <= std::max(o.tau, std::pow(o.tau, o.exponent)) && !std::isnan(r),
        "legacy_coteaching_forget_rate = %g", r);
  }
}

template <class T>
void check_exchange(const char* what, const Matrix<T>& g_before, const Matrix<T>& g_after,
                    const std::vector<Index>& peer, std::size_t k) {
  std::vector<std::uint8_t> mark(static_cast<std::size_t>(g_before.cols()), 0);
  for (const Index i : peer) mark[static_cast<std::size_t>(i)] = 1;
  const T scale = k > 0 ? static_cast<T>(1.0 / static_cast<double>(k)) : T(0);
  for (Index j = 0; j < g_before.cols(); ++j)
    for (Index i = 0; i < g_before.rows(); ++i) {
      const T want = mark[static_cast<std::size_t>(j)] != 0 ? g_before(i, j) * scale : T(0);
      const T got = g_after(i, j);
      REGULA_FUZZ_CHECK(got == want || (std::isnan(got) && std::isnan(want)),
                        "%s: gradient (%lld, %lld) is %.9g, want %.9g", what,
                        static_cast<long long>(i), static_cast<long long>(j),
                        static_cast<double>(got), static_cast<double>(want));
    }
}

template <class T>
void run_coteaching(fuzz::Input& in, Palette pal, bool plus) {
  const Index B = static_cast<Index>(in.u8() % 24);
  const Index C = static_cast<Index>(1 + in.u8() % 6);
  const std::vector<T> l1 = losses<T>(in, static_cast<std::size_t>(B), pal);
  std::vector<T> l2 = losses<T>(in, static_cast<std::size_t>(B), pal);
  const unsigned fault = in.u8() % 8;
  if (fault == 1) l2.push_back(T(0));
  const Eigen::Map<const Vector<T>> v1(l1.data(), B), v2(l2.data(), static_cast<Index>(l2.size()));
  Matrix<T> g1 = fuzz::make_matrix<T>(in, C, B + (fault == 2 ? 1 : 0), Palette::moderate);
  Matrix<T> g2 = fuzz::make_matrix<T>(in, C, B, Palette::moderate);
  const Matrix<T> g1b = g1, g2b = g2;
  const double r = fuzz::option(in, {0.0, 0.2, 0.5, 0.8, 1.0, 0.45});
  const bool valid = fault != 1 && fault != 2 && r >= 0.0 && r <= 1.0;
  fuzz::note("%s<%s> B=%lld C=%lld fault=%u r=%g", plus ? "CoTeachingPlus" : "CoTeaching",
             fuzz::type_name(T()), static_cast<long long>(B), static_cast<long long>(C), fault, r);
  if (!plus) {
    static CoTeaching<T> shared;
    CoTeachingResult<T> res;
    if (!fuzz::call("CoTeaching::exchange", fuzz::expect(valid),
                    [&] { res = shared.exchange(v1, v2, r, g1, g2); }))
      return;
    const std::size_t k = keep_count(static_cast<std::size_t>(B), r);
    REGULA_FUZZ_CHECK(res.kept1 == k && res.kept2 == k,
                      "CoTeaching: kept %zu and %zu, keep_count %zu", res.kept1, res.kept2, k);
    REGULA_FUZZ_CHECK(shared.selected_by_first() == reference(l1, k, SelectionOrder::by_index) &&
                          shared.selected_by_second() == reference(l2, k, SelectionOrder::by_index),
                      "CoTeaching: a selection is not the small-loss reference");
    check_exchange("CoTeaching grad1", g1b, g1, shared.selected_by_second(), k);
    check_exchange("CoTeaching grad2", g2b, g2, shared.selected_by_first(), k);
    return;
  }
  CoTeachingPlusOptions opt;
  opt.init_epochs = fuzz::option(in, {0.0, 5.0, 20.0});
  opt.empty = in.flag() ? EmptyDisagreement::all_samples : EmptyDisagreement::skip;
  if (!fuzz::call("CoTeachingPlus()",
                  fuzz::expect(opt.init_epochs >= 0.0, !std::isfinite(opt.init_epochs)), [&] {
                    const CoTeachingPlus<T> p(opt);
                    (void)p;
                  }))
    return;
  CoTeachingPlus<T> ctp(opt);
  // Logits with few distinct values, so that both agreement and disagreement are common.
  Matrix<T> z1(C, B), z2(C, B);
  for (Index j = 0; j < B; ++j)
    for (Index i = 0; i < C; ++i) {
      z1(i, j) = in.u8() % 16 == 0 ? fuzz::value<T>(in, pal) : static_cast<T>(in.u8() % 3);
      z2(i, j) = in.u8() % 16 == 0 ? fuzz::value<T>(in, pal) : static_cast<T>(in.u8() % 3);
    }
  const double epoch = fuzz::option(in, {0.0, 4.0, 5.0, 30.0});
  CoTeachingResult<T> res;
  // A negative or NaN epoch is refused; an infinite one may be.
  if (!fuzz::call("CoTeachingPlus::exchange",
                  fuzz::expect(valid && epoch >= 0.0, std::isinf(epoch)),
                  [&] { res = ctp.exchange(z1, z2, v1, v2, r, epoch, g1, g2); }))
    return;
  if (epoch < opt.init_epochs) return;
  std::vector<Index> d;
  for (Index j = 0; j < B; ++j)
    if (detail::argmax_nan_max(z1.col(j)) != detail::argmax_nan_max(z2.col(j))) d.push_back(j);
  REGULA_FUZZ_CHECK(ctp.disagreement() == d, "CoTeachingPlus: disagreement [%s], want [%s]",
                    list(ctp.disagreement()).c_str(), list(d).c_str());
  if (d.empty()) {
    if (opt.empty == EmptyDisagreement::skip) {
      REGULA_FUZZ_CHECK(g1.isZero(0) && g2.isZero(0), "CoTeachingPlus: skip left a gradient");
    } else {
      REGULA_FUZZ_CHECK(
          res.kept1 == static_cast<std::size_t>(B) && res.kept2 == static_cast<std::size_t>(B),
          "CoTeachingPlus: all_samples kept %zu", res.kept1);
    }
    return;
  }
  const std::size_t k = keep_count(d.size(), r);
  REGULA_FUZZ_CHECK(res.kept1 == k && res.kept2 == k, "CoTeachingPlus: kept %zu and %zu, want %zu",
                    res.kept1, res.kept2, k);
  std::vector<T> c1, c2;
  for (const Index j : d) {
    c1.push_back(l1[static_cast<std::size_t>(j)]);
    c2.push_back(l2[static_cast<std::size_t>(j)]);
  }
  std::vector<Index> s1, s2;
  for (const Index i : reference(c1, k, SelectionOrder::by_index))
    s1.push_back(d[static_cast<std::size_t>(i)]);
  for (const Index i : reference(c2, k, SelectionOrder::by_index))
    s2.push_back(d[static_cast<std::size_t>(i)]);
  check_exchange("CoTeachingPlus grad1", g1b, g1, s2, k);
  check_exchange("CoTeachingPlus grad2", g2b, g2, s1, k);
}

template <class T>
void run_jocor(fuzz::Input& in, Palette pal) {
  JoCoROptions opt;
  opt.lambda = fuzz::option(in, {0.1, 0.0, 0.9, 1.0, 0.65});
  if (!fuzz::call("JoCoR()", fuzz::expect(opt.lambda >= 0.0 && opt.lambda <= 1.0), [&] {
        const JoCoR<T> j(opt);
        (void)j;
      }))
    return;
  JoCoR<T> jc(opt);
  Index B = static_cast<Index>(in.u8() % 16);
  const Index C = static_cast<Index>(1 + in.u8() % 9);
  Matrix<T> z1 = fuzz::make_matrix<T>(in, C, B, pal), z2 = fuzz::make_matrix<T>(in, C, B, pal);
  Labels y(B);
  for (Index j = 0; j < B; ++j)
    y[j] = static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C)));
  // Copies of a sample elsewhere in the batch: their losses must be equal (a per-sample value
  // may not depend on where the column sits).
  if (B >= 2 && in.flag() && !fuzz::skip_known("jocor-position")) {
    const Index a = static_cast<Index>(in.pick(static_cast<std::size_t>(B))),
                c = static_cast<Index>(in.pick(static_cast<std::size_t>(B)));
    z1.col(c) = z1.col(a);
    z2.col(c) = z2.col(a);
    y[c] = y[a];
  }
  const unsigned fault = in.u8() % 8;
  Labels ybad = y;
  if (fault == 1 && B > 0) ybad[0] = in.flag() ? -1 : C;
  const double r = fuzz::option(in, {0.0, 0.2, 0.5, 0.8, 1.0});
  const unsigned entry = in.u8() % 3;
  fuzz::note("JoCoR<%s> lambda=%g B=%lld C=%lld fault=%u entry=%u r=%g", fuzz::type_name(T()),
             opt.lambda, static_cast<long long>(B), static_cast<long long>(C), fault, entry, r);
  fuzz::note_matrix("logits1", z1);
  fuzz::note_matrix("logits2", z2);
  Matrix<T> g1(C, B), g2(C, B);
  if (entry == 2) {  // gradients() on its own: indices, order of calls and shapes must be checked
    if (fuzz::skip_known("jocor-grad")) return;
    const bool primed = in.flag();
    Vector<T> ls(B);
    if (primed && B > 0) jc.per_sample(z1, z2, y, ls);
    std::vector<Index> sel;
    for (Index j = 0; j < B; ++j)
      if (in.flag()) sel.push_back(j);
    const unsigned g_fault = in.u8() % 4;
    if (g_fault == 1) sel.push_back(in.flag() ? -1 : B);
    Matrix<T> g1s(C + (g_fault == 2 ? 1 : 0), B);
    // g_fault 3 passes labels that may differ from those of per_sample
    const bool ok = primed && B > 0 && (g_fault == 0 || g_fault == 3);
    (void)fuzz::call("JoCoR::gradients", fuzz::expect(ok, g_fault == 3), [&] {
      (void)jc.gradients(sel, static_cast<double>(std::max<std::size_t>(sel.size(), 1)),
                         g_fault == 3 ? ybad : y, g1s, g2);
    });
    return;
  }
  const bool valid = B > 0 && fault != 1 && r >= 0.0 && r <= 1.0;
  Vector<T> ls(B);
  if (entry == 0) {
    if (!fuzz::call("JoCoR::per_sample", fuzz::expect(B > 0 && fault != 1),
                    [&] { jc.per_sample(z1, z2, ybad, ls); }))
      return;
  } else {
    JoCoRResult<T> res;
    if (!fuzz::call("JoCoR::step", fuzz::expect(valid),
                    [&] { res = jc.step(z1, z2, ybad, r, g1, g2); }))
      return;
    ls = jc.losses();
    const std::size_t k = keep_count(static_cast<std::size_t>(B), r);
    std::vector<T> lv(ls.data(), ls.data() + B);
    REGULA_FUZZ_CHECK(res.kept == k && jc.selected() == reference(lv, k, SelectionOrder::by_index),
                      "JoCoR::step: selected [%s] is not the small-loss reference",
                      list(jc.selected()).c_str());
    if (fuzz::all_finite(z1) && fuzz::all_finite(z2) && fuzz::all_finite(g1) &&
        fuzz::all_finite(g2)) {
      fuzz::check_column_sums<T>("JoCoR grad1", g1, 4.0);
      fuzz::check_column_sums<T>("JoCoR grad2", g2, 4.0);
    }
  }
  const bool finite_in = fuzz::all_finite(z1) && fuzz::all_finite(z2);
  for (Index j = 0; j < B; ++j) {
    if (finite_in) {
      REGULA_FUZZ_CHECK(!std::isnan(ls[j]) && ls[j] >= T(0),
                        "JoCoR: joint loss %.9g of sample %lld for finite input",
                        static_cast<double>(ls[j]), static_cast<long long>(j));
    }
    for (Index c = 0; c < j; ++c) {
      if (y[c] == y[j] && z1.col(c) == z1.col(j) && z2.col(c) == z2.col(j) &&
          !fuzz::any_nan(z1.col(j))) {
        REGULA_FUZZ_CHECK(same_loss(ls[c], ls[j]),
                          "JoCoR: identical samples %lld and %lld have losses %.17g and %.17g",
                          static_cast<long long>(c), static_cast<long long>(j),
                          static_cast<double>(ls[c]), static_cast<double>(ls[j]));
      }
    }
  }
}

void run_noise(fuzz::Input& in) {
  const std::int64_t ctable[] = {2, 3, 10, 1, 0, -1, 100, std::numeric_limits<std::int64_t>::max(),
                                 5, 7};
  const std::int64_t C = ctable[in.u8() % 10];
  LabelNoiseOptions opt;
  opt.kind = static_cast<LabelNoise>(in.u8() % 4);
  opt.rate = fuzz::option(in, {0.0, 0.2, 0.5, 0.8, 1.0, 0.45});
  opt.seed = in.u64();
  std::vector<std::int64_t> clean(in.u8() % 64);
  const bool small = C >= 1 && C <= 100;
  for (auto& y : clean)
    y = small ? static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C)))
              : static_cast<std::int64_t>(in.u8() % 4);
  const bool bad_label = !clean.empty() && in.u8() % 16 == 0;
  if (bad_label) clean[0] = in.flag() ? -1 : C;
  Matrix<double> Tm;
  bool t_ok = true;
  if (opt.kind == LabelNoise::transition) {
    const Index n = small ? static_cast<Index>(C) + (in.u8() % 16 == 0 ? 1 : 0) : 2;
    Tm.resize(n, n);
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < n; ++j) Tm(i, j) = static_cast<double>(in.u8() % 4);
      if (Tm.row(i).sum() == 0.0) Tm(i, i) = 1.0;
      Tm.row(i) /= Tm.row(i).sum();
    }
    if (n > 0 && in.u8() % 16 == 0) Tm(0, 0) = in.flag() ? -0.5 : std::nan("");
    t_ok = small && n == C && (Tm.array() >= 0.0).all() && !Tm.hasNaN();
    if (!small) t_ok = false;
  }
  const bool labels_ok = !bad_label && (small || C == std::numeric_limits<std::int64_t>::max());
  const bool ok = C >= 2 && opt.rate >= 0.0 && opt.rate <= 1.0 && labels_ok && t_ok;
  fuzz::note("inject_label_noise C=%lld kind=%d rate=%g n=%zu", static_cast<long long>(C),
             static_cast<int>(opt.kind), opt.rate, clean.size());
  NoisyLabels out;
  if (!fuzz::call("inject_label_noise", fuzz::expect(ok),
                  [&] { out = inject_label_noise(clean, C, opt, Tm); }))
    return;
  REGULA_FUZZ_CHECK(out.labels.size() == clean.size() && out.is_noisy.size() == clean.size(),
                    "inject_label_noise: sizes");
  std::size_t changed = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const std::int64_t y = clean[i], v = out.labels[i];
    REGULA_FUZZ_CHECK(v >= 0 && v < C, "inject_label_noise: label %lld outside [0, %lld)",
                      static_cast<long long>(v), static_cast<long long>(C));
    REGULA_FUZZ_CHECK((out.is_noisy[i] != 0) == (v != y),
                      "inject_label_noise: is_noisy disagrees at %zu", i);
    if (opt.kind == LabelNoise::pair) {
      REGULA_FUZZ_CHECK(v == y || v == (y + 1) % C,
                        "inject_label_noise: pair flip gave %lld for %lld",
                        static_cast<long long>(v), static_cast<long long>(y));
    }
    if (opt.kind == LabelNoise::transition) {
      REGULA_FUZZ_CHECK(Tm(y, v) > 0.0,
                        "inject_label_noise: transition to a class of probability 0");
    } else if (opt.rate == 0.0) {
      REGULA_FUZZ_CHECK(v == y, "inject_label_noise: rate 0 changed a label");
    }
    changed += v != y ? 1U : 0U;
  }
  const double rr =
      clean.empty() ? 0.0 : static_cast<double>(changed) / static_cast<double>(clean.size());
  REGULA_FUZZ_CHECK(out.realized_rate == rr, "inject_label_noise: realized_rate %g, counted %g",
                    out.realized_rate, rr);
  const NoisyLabels again = inject_label_noise(clean, C, opt, Tm);
  REGULA_FUZZ_CHECK(again.labels == out.labels, "inject_label_noise: not deterministic");
}

template <class T>
void run(fuzz::Input& in) {
  const unsigned which = in.u8() % 6;
  const Palette pal = fuzz::palette(in);
  switch (which) {
    case 0:
      run_selector<T>(in, pal);
      break;
    case 1:
      run_forget<T>(in);
      break;
    case 2:
      run_coteaching<T>(in, pal, false);
      break;
    case 3:
      run_coteaching<T>(in, pal, true);
      break;
    case 4:
      run_jocor<T>(in, pal);
      break;
    default:
      run_noise(in);
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
