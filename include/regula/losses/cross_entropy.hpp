/// @file
/// Cross-entropy over a normalizer chosen at compile time (softmax or StableMax), with integer
/// labels or soft targets, label smoothing, class weights, `ignore_index` and PyTorch's
/// reductions. One fused call returns the loss and writes ∂loss/∂logits in the same pass over
/// each column; the per-sample variants return one loss per sample (for sample selection such
/// as Co-teaching, or for reweighting).
#ifndef REGULA_LOSSES_CROSS_ENTROPY_HPP
#define REGULA_LOSSES_CROSS_ENTROPY_HPP

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/normalizer.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/reduction.hpp"
#include "regula/kernels/cross_entropy.hpp"

namespace regula {

/// Options of cross-entropy, with the names and defaults of `torch.nn.functional.cross_entropy`:
/// the reduction and ignore_index of every loss over labels (detail::LabelLossOptions;
/// ignore_index is used with integer labels only) and the label smoothing.
struct CrossEntropyOptions : detail::LabelLossOptions<CrossEntropyOptions> {
  /// ε in [0, 1]: the target becomes (1 − ε)·target + ε/C (PyTorch's `label_smoothing`).
  double label_smoothing = 0.0;

  /// Sets `label_smoothing` (chainable).
  CrossEntropyOptions& with_label_smoothing(double eps) noexcept {
    return detail::set(*this, label_smoothing, eps);
  }
};

namespace detail {

/// Everything a cross-entropy call may read or write; outputs are optional.
template <class T>
struct XentCall {
  const char* who;
  const CrossEntropyOptions* options;
  const T* weight;  // C values or null
  Index weight_size;
  const MatrixCRef<T>* logits;
  const LabelsCRef* labels;      // integer labels, or null
  const MatrixCRef<T>* targets;  // soft targets, or null
  VectorRef<T>* losses;          // per-sample losses, or null
  MatrixRef<T>* dlogits;         // gradient, or null
  bool per_sample;               // true: no reduction, gradient of each ℓ_i
};

inline void check_smoothing(const char* who, double eps) {
  REGULA_EXPECTS(eps >= 0.0 && eps <= 1.0, who, "label_smoothing must be in [0, 1], got ", eps);
}

template <class T>
void check_weight(const char* who, const T* w, Index n) {
  for (Index i = 0; i < n; ++i) {
    REGULA_EXPECTS(std::isfinite(w[i]) && w[i] >= T(0), who, "weight[", i,
                   "] must be finite and >= 0, got ", w[i]);
  }
}

/// Validates a call, then runs the kernels column by column. Returns the reduced loss (or the
/// sum of per-sample losses for per-sample calls).
template <Normalizer Norm, class T>
T run_cross_entropy(const XentCall<T>& call) {
  const char* who = call.who;
  const CrossEntropyOptions& opt = *call.options;
  const MatrixCRef<T>& z = *call.logits;
  const Index C = z.rows();
  const Index B = z.cols();
  REGULA_EXPECTS(B > 0, who, "logits must hold at least one sample (column), got ", C, " x ", B);
  REGULA_EXPECTS(C > 0, who, "logits must have at least one class (row), got ", C, " x ", B);
  check_smoothing(who, opt.label_smoothing);
  if (!call.per_sample) {
    REGULA_EXPECTS(opt.reduction != Reduction::none, who,
                   "reduction must be mean, sum or batchmean for a reduced loss (use the "
                   "per-sample call for none), got ",
                   opt.reduction);
  }
  if (call.weight != nullptr) {
    REGULA_EXPECTS(call.weight_size == C, who, "weight must have one value per class (", C,
                   "), got ", call.weight_size);
  }
  if (call.losses != nullptr) {
    REGULA_EXPECTS(call.losses->size() == B, who, "losses must have one value per sample (", B,
                   "), got ", call.losses->size());
  }
  if (call.dlogits != nullptr) check_same_shape(who, "dlogits", *call.dlogits, "logits", z);
  // The outputs are written while later columns of every input are still being read.
  const Eigen::Map<const Vector<T>> weight(call.weight,
                                           call.weight != nullptr ? call.weight_size : 0);
  check_no_overlap(who,
                   {region("logits", z), region("targets", call.targets),
                    call.labels != nullptr ? region("labels", *call.labels) : Region{},
                    region("weight", weight)},
                   {region("losses", call.losses), region("dlogits", call.dlogits)});
  // Count the contributing samples (and their weights) for the mean; check the labels.
  double denom = static_cast<double>(B);
  if (call.labels != nullptr) {
    const LabelsCRef& y = *call.labels;
    REGULA_EXPECTS(y.size() == B, who, "labels must have one value per sample (", B, "), got ",
                   y.size());
    double valid = 0.0;
    for (Index i = 0; i < B; ++i) {
      const std::int64_t yi = y[i];
      if (yi == opt.ignore_index) continue;
      REGULA_EXPECTS(yi >= 0 && yi < static_cast<std::int64_t>(C), who, "labels[", i,
                     "] must be in [0, ", C, ") or ignore_index (", opt.ignore_index, "), got ",
                     yi);
      valid += call.weight != nullptr ? static_cast<double>(call.weight[yi]) : 1.0;
    }
    if (opt.reduction == Reduction::mean) denom = valid;
  } else {
    check_same_shape(who, "targets", *call.targets, "logits", z);
  }
  double g = 1.0;
  if (!call.per_sample && opt.reduction != Reduction::sum) g = 1.0 / denom;

  const double eps = opt.label_smoothing;
  kernels::XentTarget<T> proto;
  proto.weight = call.weight;
  proto.beta = static_cast<T>(eps / static_cast<double>(C));
  if (call.labels != nullptr) {
    proto.gamma = static_cast<T>(1.0 - eps);
    proto.alpha = T(0);
  } else {
    proto.gamma = T(0);
    proto.alpha = static_cast<T>(1.0 - eps);
  }
  const T gt = static_cast<T>(g);
  const auto n = static_cast<std::size_t>(C);
  const auto cols = static_cast<std::size_t>(B);

  // The target of column j; false where its label is ignore_index.
  auto target_of = [&](Index j, kernels::XentTarget<T>& t) noexcept {
    t = proto;
    if (call.labels == nullptr) {
      t.soft = call.targets->col(j).data();
      return true;
    }
    t.label = (*call.labels)[j];
    return t.label != opt.ignore_index;
  };

  // Hard labels without weights take the fast kernels, whose per-column logarithms are taken
  // 16 columns at a time in SIMD. The sum over columns is parallel_sum_chunks': bitwise the
  // same for any thread count.
  const bool fast = call.labels != nullptr && call.weight == nullptr;
  // Narrow heads with hard labels (with or without smoothing and class weights) take the
  // cross-column kernel, one column per SIMD lane, on
  // tiles of W consecutive columns of a chunk (so the tiling, like the chunking, depends only on
  // the shape, never on the layout or the thread count); a tile holding an ignored label goes
  // column by column.
  constexpr std::size_t W = xsimd::batch<T, default_arch>::size;
  const bool narrow = call.labels != nullptr && n <= kernels::xent_narrow_classes;
  const auto zs = static_cast<std::size_t>(z.outerStride());
  const auto dzs =
      call.dlogits != nullptr ? static_cast<std::size_t>(call.dlogits->outerStride()) : n;
  std::atomic<bool> needs_repair{false};  // a narrow tile's gradient needs a repair
  const double total =
      parallel_sum_chunks(cols, column_chunk(C), [&](std::size_t begin, std::size_t end) noexcept {
        constexpr std::size_t G = 16;
        static_assert(W <= G, "a tile fits the batch of pending terms");
        kernels::XentTerms terms[G];
        Index where[G];
        double done[G];
        std::size_t pending = 0;
        double acc = 0.0;
        bool repair = false;  // a narrow tile's gradient needs xent_tile_gradient_repair
        auto flush = [&]() noexcept {
          kernels::xent_finish_batch(terms, pending, done);
          for (std::size_t t = 0; t < pending; ++t) {
            if (!std::isfinite(done[t])) {
              kernels::XentTarget<T> tt = proto;
              tt.label = (*call.labels)[where[t]];
              T* dz = call.dlogits != nullptr ? call.dlogits->col(where[t]).data() : nullptr;
              done[t] =
                  kernels::xent_column_repair<Norm>(done[t], z.col(where[t]).data(), n, tt, gt, dz);
            }
            if (call.losses != nullptr) (*call.losses)[where[t]] = static_cast<T>(done[t]);
            acc += done[t];
          }
          pending = 0;
        };
        for (std::size_t c = begin; c < end; ++c) {
          if (narrow) {
            const std::size_t count = end - c < W ? end - c : W;
            std::int64_t lab[W];
            bool all = true;
            for (std::size_t k = 0; k < count; ++k) {
              lab[k] = (*call.labels)[static_cast<Index>(c + k)];
              all = all && lab[k] != opt.ignore_index;
            }
            if (all) {
              if (pending + count > G) flush();
              T* dz = call.dlogits != nullptr ? call.dlogits->col(static_cast<Index>(c)).data()
                                              : nullptr;
              repair = kernels::xent_hard_tile<Norm>(z.col(static_cast<Index>(c)).data(), zs, n,
                                                     count, lab, call.weight, proto.beta,
                                                     proto.gamma, gt, dz, dzs, terms + pending) ||
                       repair;
              for (std::size_t k = 0; k < count; ++k) where[pending++] = static_cast<Index>(c + k);
              if (pending == G) flush();
              c += count - 1;
              continue;
            }
          }
          const auto j = static_cast<Index>(c);
          T* dz = call.dlogits != nullptr ? call.dlogits->col(j).data() : nullptr;
          kernels::XentTarget<T> t;
          if (!target_of(j, t)) {
            if (call.losses != nullptr) (*call.losses)[j] = T(0);
            if (dz != nullptr) {
              for (std::size_t i = 0; i < n; ++i) dz[i] = T(0);
            }
            continue;
          }
          if (fast) {
            terms[pending] = kernels::xent_hard_terms<Norm>(
                z.col(j).data(), n, static_cast<std::size_t>(t.label), t.beta, t.gamma, gt, dz);
            where[pending++] = j;
            if (pending == G) flush();
            continue;
          }
          const double l = kernels::xent_column<Norm>(z.col(j).data(), n, t, gt, dz);
          if (call.losses != nullptr) (*call.losses)[j] = static_cast<T>(l);
          acc += l;
        }
        flush();
        if (repair) needs_repair.store(true, std::memory_order_relaxed);
        return acc;
      });
  if (needs_repair.load(std::memory_order_relaxed)) {
    // After the parallel sum, not in its chunks: a call to the repair anywhere in the chunk's
    // body cost the narrow path ~15% at 512 × 10 (see xent_tile_gradient_repair).
    kernels::detail::xent_tile_gradient_repair<Norm, T, default_arch>(
        z.data(), zs, n, cols,
        [&](std::size_t k) noexcept { return (*call.labels)[static_cast<Index>(k)]; },
        opt.ignore_index, call.weight, proto.beta, proto.gamma, gt, call.dlogits->data(), dzs);
  }
  if (!std::isfinite(total) && !call.per_sample) {
    // Losses of both signs (soft targets) near the largest double can carry the double partial
    // sums past it, giving NaN or an infinity where the exact sum is finite or of the other sign;
    // the per-sample losses are formed again (no gradient) and added in long double, in column
    // order. Not a hot path: only a reduced call whose result is not finite comes here.
    long double wide = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      const auto j = static_cast<Index>(c);
      kernels::XentTarget<T> t;
      if (!target_of(j, t)) continue;
      wide += kernels::xent_column<Norm>(z.col(j).data(), n, t, gt, static_cast<T*>(nullptr));
    }
    if (opt.reduction != Reduction::sum) wide /= static_cast<long double>(denom);
    return static_cast<T>(wide);
  }
  if (call.per_sample || opt.reduction == Reduction::sum) return static_cast<T>(total);
  return static_cast<T>(total / denom);
}

}  // namespace detail

/// Cross-entropy of the normalizer `Norm` (softmax: `torch.nn.CrossEntropyLoss`; StableMax: the
/// loss of Prieto et al., ICLR 2025), with class weights.
///
/// Per sample i with logits z (a column of `classes × batch` logits), p = Norm(z) and target q:
///
///   ℓ_i = −Σ_c q_c log p_c,   ∂ℓ_i/∂z_j = r_j·(A·p_j − q_j),   A = Σ_c q_c,
///
/// r ≡ 1 for softmax, r_j = 1/(1 + |z_j|) for StableMax. With integer label y, smoothing ε and
/// weights w: q_c = w_c·ε/C + [c = y]·w_y·(1 − ε) (so ℓ = −w_y log p_y without smoothing). With
/// soft targets t: q_c = w_c·((1 − ε)·t_c + ε/C). These are PyTorch's `reduction='none'` values.
///
/// Reductions: `sum` = Σ ℓ_i; `mean` = Σ ℓ_i / Σ_{i not ignored} w_{y_i} for integer labels
/// (the count of non-ignored samples without weights; NaN if there is none, as PyTorch), and
/// Σ ℓ_i / B for soft targets; `batchmean` = Σ ℓ_i / B. Ignored samples give ℓ_i = 0 and a zero
/// gradient column.
///
/// Numerics: softmax subtracts the column maximum and works in T, assembling ℓ in double;
/// finite logits of any magnitude (±1e4, ±1e30 in float) give finite losses and gradients.
/// StableMax accumulates Σ s, Σ q and Σ q·log s in double as the authors do (they cast to
/// float64) and uses log s(z_y) − log S. NaN logits give a NaN loss for their sample.
///
/// Shapes: logits `classes × batch`; labels one per sample; targets, dlogits the logits' shape;
/// dlogits must not overlap logits. No call allocates (for evaluated matrices, maps or column
/// blocks). Columns run in parallel under OpenMP with fixed chunks and partial sums added in
/// order, so results do not depend on the thread count.
///
/// ```cpp
/// regula::CrossEntropyLoss<float> ce(regula::CrossEntropyOptions{}.with_label_smoothing(0.1));
/// float loss = ce.forward_backward(logits, labels, dlogits);   // fused
/// ce.per_sample(logits, labels, losses, dlogits);              // ℓ_i and ∂ℓ_i/∂z_i
/// ```
template <class T, Normalizer Norm = Normalizer::softmax>
class CrossEntropyLoss {
  static_assert(is_scalar_v<T>, "regula::CrossEntropyLoss<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// The normalizer (softmax or StableMax) of this loss.
  static constexpr Normalizer normalizer = Norm;

  /// @throws regula::invalid_argument if label_smoothing is not in [0, 1], or a weight is
  ///         negative or not finite. An empty `weight` means no class weights.
  explicit CrossEntropyLoss(CrossEntropyOptions options = {}, Vector<T> weight = Vector<T>())
      : options_(options), weight_(std::move(weight)) {
    detail::check_smoothing(who_, options_.label_smoothing);
    detail::check_weight(who_, weight_.data(), weight_.size());
  }

  /// The options it was built with.
  [[nodiscard]] const CrossEntropyOptions& options() const noexcept { return options_; }
  /// The class weights (empty when none).
  [[nodiscard]] const Vector<T>& weight() const noexcept { return weight_; }

  /// The reduced loss for integer labels.
  /// @throws regula::invalid_argument on an empty batch, a label outside [0, C) other than
  ///         ignore_index, a labels or weight length that does not match, or reduction none.
  [[nodiscard]] T forward(const MatrixCRef<T>& logits, const LabelsCRef& labels) const {
    return run(&logits, &labels, nullptr, nullptr, nullptr, false);
  }

  /// The reduced loss, and its gradient with respect to the logits written to `dlogits`.
  [[nodiscard]] T forward_backward(const MatrixCRef<T>& logits, const LabelsCRef& labels,
                                   MatrixRef<T> dlogits) const {
    return run(&logits, &labels, nullptr, nullptr, &dlogits, false);
  }

  /// One loss per sample (reduction none; options().reduction is not used) into `losses`.
  void per_sample(const MatrixCRef<T>& logits, const LabelsCRef& labels,
                  VectorRef<T> losses) const {
    (void)run(&logits, &labels, nullptr, &losses, nullptr, true);
  }

  /// One loss per sample into `losses`, and column i of `dlogits` = ∂ℓ_i/∂z_i, the gradient of
  /// sample i's own loss (sum it with any per-sample weights you like).
  void per_sample(const MatrixCRef<T>& logits, const LabelsCRef& labels, VectorRef<T> losses,
                  MatrixRef<T> dlogits) const {
    (void)run(&logits, &labels, nullptr, &losses, &dlogits, true);
  }

  /// The reduced loss for soft targets (`classes × batch`, e.g. probabilities).
  [[nodiscard]] T forward_soft(const MatrixCRef<T>& logits, const MatrixCRef<T>& targets) const {
    return run(&logits, nullptr, &targets, nullptr, nullptr, false);
  }

  /// The reduced loss for soft targets and its gradient.
  [[nodiscard]] T forward_backward_soft(const MatrixCRef<T>& logits, const MatrixCRef<T>& targets,
                                        MatrixRef<T> dlogits) const {
    return run(&logits, nullptr, &targets, nullptr, &dlogits, false);
  }

  /// Per-sample losses for soft targets.
  void per_sample_soft(const MatrixCRef<T>& logits, const MatrixCRef<T>& targets,
                       VectorRef<T> losses) const {
    (void)run(&logits, nullptr, &targets, &losses, nullptr, true);
  }

  /// Per-sample losses for soft targets and the gradient of each sample's own loss.
  void per_sample_soft(const MatrixCRef<T>& logits, const MatrixCRef<T>& targets,
                       VectorRef<T> losses, MatrixRef<T> dlogits) const {
    (void)run(&logits, nullptr, &targets, &losses, &dlogits, true);
  }

 private:
  static constexpr const char* who_ = Norm == Normalizer::softmax
                                          ? "regula::CrossEntropyLoss"
                                          : "regula::CrossEntropyLoss<stablemax>";

  T run(const MatrixCRef<T>* logits, const LabelsCRef* labels, const MatrixCRef<T>* targets,
        VectorRef<T>* losses, MatrixRef<T>* dlogits, bool per_sample) const {
    const detail::XentCall<T> call{
        who_,           &options_, weight_.size() > 0 ? weight_.data() : nullptr,
        weight_.size(), logits,    labels,
        targets,        losses,    dlogits,
        per_sample};
    return detail::run_cross_entropy<Norm>(call);
  }

  CrossEntropyOptions options_;
  Vector<T> weight_;
};

namespace detail {

template <Normalizer Norm>
constexpr const char* xent_name(bool per_sample, bool soft) noexcept {
  if constexpr (Norm == Normalizer::softmax) {
    return soft ? (per_sample ? "regula::cross_entropy_soft_per_sample"
                              : "regula::cross_entropy_soft")
                : (per_sample ? "regula::cross_entropy_per_sample" : "regula::cross_entropy");
  } else {
    return soft ? (per_sample ? "regula::stablemax_cross_entropy_soft_per_sample"
                              : "regula::stablemax_cross_entropy_soft")
                : (per_sample ? "regula::stablemax_cross_entropy_per_sample"
                              : "regula::stablemax_cross_entropy");
  }
}

template <Normalizer Norm, class T>
T xent_free(const CrossEntropyOptions& options, const MatrixCRef<T>& logits,
            const LabelsCRef* labels, const MatrixCRef<T>* targets, VectorRef<T>* losses,
            MatrixRef<T>* dlogits, bool per_sample) {
  const XentCall<T> call{xent_name<Norm>(per_sample, targets != nullptr),
                         &options,
                         nullptr,
                         0,
                         &logits,
                         labels,
                         targets,
                         losses,
                         dlogits,
                         per_sample};
  return run_cross_entropy<Norm>(call);
}

}  // namespace detail

/// The reduced cross-entropy of `logits` (`classes × batch`) against integer `labels`, without
/// class weights (use CrossEntropyLoss for those). `Norm` picks softmax (default) or StableMax.
/// See CrossEntropyLoss for the formulas, reductions and numerics.
/// @throws regula::invalid_argument on an empty batch, bad labels or shapes, smoothing outside
///         [0, 1] or reduction none.
template <Normalizer Norm = Normalizer::softmax, class D>
[[nodiscard]] typename D::Scalar cross_entropy(const Eigen::MatrixBase<D>& logits,
                                               const LabelsCRef& labels,
                                               const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::xent_free<Norm, T>(options, z, &labels, nullptr, nullptr, nullptr, false);
}

/// The reduced cross-entropy and, fused, its gradient with respect to the logits in `dlogits`.
template <Normalizer Norm = Normalizer::softmax, class D>
typename D::Scalar cross_entropy(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                                 MatrixRef<typename D::Scalar> dlogits,
                                 const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::xent_free<Norm, T>(options, z, &labels, nullptr, nullptr, &dlogits, false);
}

/// Per-sample cross-entropy: losses[i] = ℓ_i (PyTorch's reduction='none'; ignored samples get
/// 0). `options.reduction` is not used.
template <Normalizer Norm = Normalizer::softmax, class D>
void cross_entropy_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::xent_free<Norm, T>(options, z, &labels, nullptr, &losses, nullptr, true);
}

/// Per-sample cross-entropy with gradients: losses[i] = ℓ_i and dlogits.col(i) = ∂ℓ_i/∂z_i,
/// the gradient of sample i's own loss (no 1/B: scale or weight the columns as you reduce).
template <Normalizer Norm = Normalizer::softmax, class D>
void cross_entropy_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              MatrixRef<typename D::Scalar> dlogits,
                              const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::xent_free<Norm, T>(options, z, &labels, nullptr, &losses, &dlogits, true);
}

/// The reduced cross-entropy against soft targets (`classes × batch`; `mean` divides by B).
template <Normalizer Norm = Normalizer::softmax, class D, class DT>
[[nodiscard]] typename D::Scalar cross_entropy_soft(const Eigen::MatrixBase<D>& logits,
                                                    const Eigen::MatrixBase<DT>& targets,
                                                    const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  const MatrixCRef<T> t(targets.derived());
  return detail::xent_free<Norm, T>(options, z, nullptr, &t, nullptr, nullptr, false);
}

/// The reduced soft-target cross-entropy and its gradient.
template <Normalizer Norm = Normalizer::softmax, class D, class DT>
typename D::Scalar cross_entropy_soft(const Eigen::MatrixBase<D>& logits,
                                      const Eigen::MatrixBase<DT>& targets,
                                      MatrixRef<typename D::Scalar> dlogits,
                                      const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  const MatrixCRef<T> t(targets.derived());
  return detail::xent_free<Norm, T>(options, z, nullptr, &t, nullptr, &dlogits, false);
}

/// Per-sample soft-target cross-entropy, optionally with each sample's own gradient.
template <Normalizer Norm = Normalizer::softmax, class D, class DT>
void cross_entropy_soft_per_sample(const Eigen::MatrixBase<D>& logits,
                                   const Eigen::MatrixBase<DT>& targets,
                                   VectorRef<typename D::Scalar> losses,
                                   const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  const MatrixCRef<T> t(targets.derived());
  (void)detail::xent_free<Norm, T>(options, z, nullptr, &t, &losses, nullptr, true);
}

/// Per-sample soft-target cross-entropy with each sample's own gradient.
template <Normalizer Norm = Normalizer::softmax, class D, class DT>
void cross_entropy_soft_per_sample(const Eigen::MatrixBase<D>& logits,
                                   const Eigen::MatrixBase<DT>& targets,
                                   VectorRef<typename D::Scalar> losses,
                                   MatrixRef<typename D::Scalar> dlogits,
                                   const CrossEntropyOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  const MatrixCRef<T> t(targets.derived());
  (void)detail::xent_free<Norm, T>(options, z, nullptr, &t, &losses, &dlogits, true);
}

/// StableMax cross-entropy (Prieto et al., ICLR 2025): cross_entropy<Normalizer::stablemax>.
template <class D>
[[nodiscard]] typename D::Scalar stablemax_cross_entropy(const Eigen::MatrixBase<D>& logits,
                                                         const LabelsCRef& labels,
                                                         const CrossEntropyOptions& options = {}) {
  return cross_entropy<Normalizer::stablemax>(logits, labels, options);
}

/// StableMax cross-entropy and its gradient: cross_entropy<Normalizer::stablemax>.
template <class D>
typename D::Scalar stablemax_cross_entropy(const Eigen::MatrixBase<D>& logits,
                                           const LabelsCRef& labels,
                                           MatrixRef<typename D::Scalar> dlogits,
                                           const CrossEntropyOptions& options = {}) {
  return cross_entropy<Normalizer::stablemax>(logits, labels, dlogits, options);
}

/// Per-sample StableMax cross-entropy: cross_entropy_per_sample<Normalizer::stablemax>.
template <class D>
void stablemax_cross_entropy_per_sample(const Eigen::MatrixBase<D>& logits,
                                        const LabelsCRef& labels,
                                        VectorRef<typename D::Scalar> losses,
                                        const CrossEntropyOptions& options = {}) {
  cross_entropy_per_sample<Normalizer::stablemax>(logits, labels, losses, options);
}

/// Per-sample StableMax cross-entropy with each sample's own gradient.
template <class D>
void stablemax_cross_entropy_per_sample(const Eigen::MatrixBase<D>& logits,
                                        const LabelsCRef& labels,
                                        VectorRef<typename D::Scalar> losses,
                                        MatrixRef<typename D::Scalar> dlogits,
                                        const CrossEntropyOptions& options = {}) {
  cross_entropy_per_sample<Normalizer::stablemax>(logits, labels, losses, dlogits, options);
}

/// Per-sample cross-entropy as a functor, the loss concept of MultiSampleDropout and of any
/// primitive that consumes per-sample losses and each sample's own gradient:
/// `loss(logits, labels, per_sample, dlogits)` calls cross_entropy_per_sample<Norm>.
///
/// ```cpp
/// regula::MultiSampleDropout<float, regula::PerSampleCrossEntropy<>> head({8, 0.5});
/// ```
template <Normalizer Norm = Normalizer::softmax>
struct PerSampleCrossEntropy {
  /// The options of every call.
  CrossEntropyOptions options{};

  template <class T>
  /// Per-sample losses and their gradient dlogits (MultiSampleDropout's loss callback).
  void operator()(const MatrixCRef<T>& logits, const LabelsCRef& labels, VectorRef<T> per_sample,
                  MatrixRef<T> dlogits) const {
    cross_entropy_per_sample<Norm>(logits, labels, per_sample, dlogits, options);
  }
};

}  // namespace regula

#endif  // REGULA_LOSSES_CROSS_ENTROPY_HPP
