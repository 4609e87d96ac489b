/// @file
/// Co-teaching (Han et al., "Co-teaching: Robust training of deep neural networks with
/// extremely noisy labels", NeurIPS 2018) and Co-teaching+ (Yu et al., "How does disagreement
/// help generalization against label corruption?", ICML 2019): two networks pick the samples
/// with small loss for each other.
#ifndef REGULA_SELECTION_CO_TEACHING_HPP
#define REGULA_SELECTION_CO_TEACHING_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/selection/small_loss.hpp"

namespace regula {

/// What one Co-teaching exchange did.
template <class T>
struct CoTeachingResult {
  /// L¹ = mean of ℓ¹ over the samples net 2 selected (net 1's training loss), and L² likewise.
  T loss1 = T(0);
  /// L², net 2's training loss (mean of ℓ² over the samples net 1 selected).
  T loss2 = T(0);
  /// |S²| and |S¹|: how many samples each network trains on.
  std::size_t kept1 = 0;
  /// |S¹|: how many samples net 2 trains on.
  std::size_t kept2 = 0;
};

namespace detail {

/// Keeps the columns of `grad` listed in `rows`, scaled by 1/divisor, and zeroes the others;
/// returns Σ_{i∈rows} loss_i accumulated in double. `mark` is scratch of size ≥ B.
template <class T>
double keep_selected(const std::vector<Index>& rows, const T* loss, MatrixRef<T>& grad,
                     std::vector<std::uint8_t>& mark, double divisor) {
  const Index b = grad.cols();
  mark.assign(static_cast<std::size_t>(b), 0);
  double sum = 0.0;
  for (const Index i : rows) {
    mark[static_cast<std::size_t>(i)] = 1;
    sum += static_cast<double>(loss[i]);
  }
  const T scale = divisor > 0.0 ? static_cast<T>(1.0 / divisor) : T(0);
  for (Index j = 0; j < b; ++j) {
    if (mark[static_cast<std::size_t>(j)] != 0) {
      grad.col(j) *= scale;
    } else {
      grad.col(j).setZero();
    }
  }
  return sum;
}

/// keep_selected with the divisor |rows|: the mean of `loss` over `rows` and its gradient.
template <class T>
T keep_selected_mean(const std::vector<Index>& rows, const T* loss, MatrixRef<T>& grad,
                     std::vector<std::uint8_t>& mark) {
  const auto k = static_cast<double>(rows.size());
  const double sum = keep_selected(rows, loss, grad, mark, k);
  return rows.empty() ? T(0) : static_cast<T>(sum / k);
}

/// The first maximal entry of a column; a NaN counts as the maximum (as torch.argmax).
template <class Col>
Index argmax_nan_max(const Col& c) noexcept {
  Index best = 0;
  for (Index i = 1; i < c.size(); ++i) {
    if (std::isnan(c(best))) break;
    if (std::isnan(c(i)) || c(i) > c(best)) best = i;
  }
  return best;
}

template <class T>
void check_pair(const char* who, const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                const MatrixRef<T>& grad1, const MatrixRef<T>& grad2) {
  REGULA_EXPECTS(loss1.size() == loss2.size(), who, "loss2 must have the length of loss1 (",
                 loss1.size(), "), got ", loss2.size());
  REGULA_EXPECTS(grad1.cols() == loss1.size(), who, "grad1 must have one column per sample (",
                 loss1.size(), "), got ", grad1.cols());
  REGULA_EXPECTS(grad2.cols() == loss2.size(), who, "grad2 must have one column per sample (",
                 loss2.size(), "), got ", grad2.cols());
  // The gradients are rewritten in place from the losses: no two of them may share memory.
  check_no_overlap(who, {region("loss1", loss1), region("loss2", loss2)},
                   {region("grad1", grad1), region("grad2", grad2)});
}

/// Co-teaching+'s checks of one exchange (CoTeachingPlus and mpi::GlobalCoTeachingPlus): the
/// pair's (check_pair), logits of one shape with a class and one column per sample, epoch ≥ 0.
template <class T>
void check_plus_exchange(const char* who, const MatrixCRef<T>& logits1,
                         const MatrixCRef<T>& logits2, const VectorCRef<T>& loss1,
                         const VectorCRef<T>& loss2, double epoch, const MatrixRef<T>& grad1,
                         const MatrixRef<T>& grad2) {
  check_pair(who, loss1, loss2, grad1, grad2);
  check_same_shape(who, "logits2", logits2, "logits1", logits1);
  REGULA_EXPECTS(logits1.cols() == loss1.size(), who, "logits1 must have one column per sample (",
                 loss1.size(), "), got ", logits1.cols());
  REGULA_EXPECTS(logits1.rows() > 0, who, "logits1 must have at least one class");
  REGULA_EXPECTS(epoch >= 0.0, who, "epoch must be >= 0, got ", epoch);
}

/// Co-teaching+'s option check (NaN fails too).
inline void check_init_epochs(const char* who, double init_epochs) {
  REGULA_EXPECTS(init_epochs >= 0.0, who, "init_epochs must be >= 0, got ", init_epochs);
}

}  // namespace detail

/// The Co-teaching exchange for one mini-batch.
///
/// Inputs are what a per-sample loss produces for each network on the same batch: losses ℓ¹, ℓ²
/// (length B) and, in `grad1`, `grad2` (C × B), the gradient of each sample's own loss with
/// respect to that network's logits. With k = keep_count(B, forget_rate):
///
///   S¹ = the k smallest ℓ¹,  S² = the k smallest ℓ²  (ties to the lower index, NaN last),
///   net 1 trains on S²: L¹ = (1/k) Σ_{i∈S²} ℓ¹_i,   net 2 on S¹: L² = (1/k) Σ_{i∈S¹} ℓ²_i,
///
/// and `grad1`, `grad2` are rewritten in place into ∂L¹/∂z¹ and ∂L²/∂z²: selected columns scaled by
/// 1/k, the others zeroed. Any per-sample loss works (cross-entropy in the paper).
///
/// Unlike the official code, the loss is a plain mean: that code divides the mean again by k
/// (`sum(mean)/num_remember`), which changes the effective learning rate under SGD (not under
/// Adam).
template <class T>
class CoTeaching {
  static_assert(is_scalar_v<T>, "regula::CoTeaching<T>: T must be float or double");

 public:
  /// @throws regula::invalid_argument on lengths that differ, gradients that share memory with
  ///         each other or with a loss vector, or forget_rate ∉ [0, 1].
  CoTeachingResult<T> exchange(const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, MatrixRef<T> grad1, MatrixRef<T> grad2) {
    detail::check_pair("regula::CoTeaching::exchange", loss1, loss2, grad1, grad2);
    const auto b = static_cast<std::size_t>(loss1.size());
    const std::size_t keep = keep_count(b, forget_rate);
    select1_.select(loss1, keep);
    select2_.select(loss2, keep);
    CoTeachingResult<T> r;
    r.loss1 = detail::keep_selected_mean(select2_.selected(), loss1.data(), grad1, mark_);
    r.loss2 = detail::keep_selected_mean(select1_.selected(), loss2.data(), grad2, mark_);
    r.kept1 = select2_.selected().size();
    r.kept2 = select1_.selected().size();
    return r;
  }

  /// S¹: the samples network 1 found clean (network 2 trains on them), ascending index.
  [[nodiscard]] const std::vector<Index>& selected_by_first() const noexcept {
    return select1_.selected();
  }
  /// S²: the samples network 2 found clean (network 1 trains on them), ascending index.
  [[nodiscard]] const std::vector<Index>& selected_by_second() const noexcept {
    return select2_.selected();
  }

 private:
  SmallLossSelector<T> select1_, select2_;
  std::vector<std::uint8_t> mark_;
};

/// What Co-teaching+ does when the two networks agree on every sample of a batch.
enum class EmptyDisagreement {
  all_samples,  ///< train both networks on the mean loss of the whole batch (the official intent)
  skip          ///< zero loss and gradient for this batch
};

/// Options of Co-teaching+.
struct CoTeachingPlusOptions {
  /// Epochs of plain Co-teaching before disagreement filtering starts (MNIST 0, CIFAR-10 20,
  /// CIFAR-100 5 in the paper's code).
  double init_epochs = 0;
  /// What to train on when the two networks agree on every sample.
  EmptyDisagreement empty = EmptyDisagreement::all_samples;
  /// Sets `init_epochs` (chainable).
  CoTeachingPlusOptions& with_init_epochs(double v) noexcept {
    return detail::set(*this, init_epochs, v);
  }
  /// Sets `empty` (chainable).
  CoTeachingPlusOptions& with_empty(EmptyDisagreement v) noexcept {
    return detail::set(*this, empty, v);
  }
};

/// Co-teaching+: after `init_epochs` of plain Co-teaching, only samples on which the two
/// networks' predictions disagree, D = {i : argmax z¹_i ≠ argmax z²_i}, take part; inside D each
/// network picks its k = max(1, ⌊(1 − r)·|D|⌋) smallest-loss samples for its peer. The argmax takes
/// the first maximal class, and a NaN logit counts as the maximum (as `torch.argmax`).
///
/// Bugs of the official code that are not reproduced: cross-entropy applied to probabilities
/// (a double softmax), sample 0 of each batch dropped from D, and the empty-D fallback keyed on
/// `epoch × iteration`.
template <class T>
class CoTeachingPlus {
  static_assert(is_scalar_v<T>, "regula::CoTeachingPlus<T>: T must be float or double");

 public:
  /// @throws regula::invalid_argument if init_epochs < 0.
  explicit CoTeachingPlus(CoTeachingPlusOptions options = {}) : options_(options) {
    detail::check_init_epochs("regula::CoTeachingPlus", options.init_epochs);
  }

  /// One exchange: logits z¹, z² (C × B), per-sample losses and per-sample gradients as for
  /// CoTeaching::exchange; `grad1`, `grad2` are rewritten into the gradients of the two training
  /// losses.
  /// @throws regula::invalid_argument as CoTeaching::exchange, on logits of another shape or
  ///         without classes, and if epoch < 0 or NaN.
  CoTeachingResult<T> exchange(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2,
                               const VectorCRef<T>& loss1, const VectorCRef<T>& loss2,
                               double forget_rate, double epoch, MatrixRef<T> grad1,
                               MatrixRef<T> grad2) {
    constexpr const char* who = "regula::CoTeachingPlus::exchange";
    detail::check_plus_exchange(who, logits1, logits2, loss1, loss2, epoch, grad1, grad2);
    if (epoch < options_.init_epochs) {
      return plain_.exchange(loss1, loss2, forget_rate, grad1, grad2);
    }
    (void)keep_count(0, forget_rate);  // validates the rate even when D is empty
    const Index b = loss1.size();
    disagree_.clear();
    for (Index j = 0; j < b; ++j) {
      if (detail::argmax_nan_max(logits1.col(j)) != detail::argmax_nan_max(logits2.col(j))) {
        disagree_.push_back(j);
      }
    }
    CoTeachingResult<T> r;
    if (disagree_.empty()) {
      if (options_.empty == EmptyDisagreement::all_samples) {
        all_.resize(static_cast<std::size_t>(b));
        for (Index j = 0; j < b; ++j) all_[static_cast<std::size_t>(j)] = j;
        r.loss1 = detail::keep_selected_mean(all_, loss1.data(), grad1, mark_);
        r.loss2 = detail::keep_selected_mean(all_, loss2.data(), grad2, mark_);
        r.kept1 = r.kept2 = static_cast<std::size_t>(b);
      } else {
        grad1.setZero();
        grad2.setZero();
      }
      return r;
    }
    const std::size_t keep = keep_count(disagree_.size(), forget_rate);
    pick(loss1.data(), keep, select1_, picked1_);
    pick(loss2.data(), keep, select2_, picked2_);
    r.loss1 = detail::keep_selected_mean(picked2_, loss1.data(), grad1, mark_);
    r.loss2 = detail::keep_selected_mean(picked1_, loss2.data(), grad2, mark_);
    r.kept1 = picked2_.size();
    r.kept2 = picked1_.size();
    return r;
  }

  /// The disagreement set D of the last exchange (empty during the initial epochs).
  [[nodiscard]] const std::vector<Index>& disagreement() const noexcept { return disagree_; }

 private:
  /// Selects inside D: gathers D's losses, selects, maps back to batch indices.
  void pick(const T* loss, std::size_t keep, SmallLossSelector<T>& sel, std::vector<Index>& out) {
    compact_.resize(disagree_.size());
    for (std::size_t j = 0; j < disagree_.size(); ++j) compact_[j] = loss[disagree_[j]];
    const std::vector<Index>& local = sel.select(compact_.data(), compact_.size(), keep);
    out.resize(local.size());
    for (std::size_t j = 0; j < local.size(); ++j) {
      out[j] = disagree_[static_cast<std::size_t>(local[j])];
    }
  }

  CoTeachingPlusOptions options_;
  CoTeaching<T> plain_;
  SmallLossSelector<T> select1_, select2_;
  std::vector<Index> disagree_, picked1_, picked2_, all_;
  std::vector<T> compact_;
  std::vector<std::uint8_t> mark_;
};

}  // namespace regula

#endif  // REGULA_SELECTION_CO_TEACHING_HPP
