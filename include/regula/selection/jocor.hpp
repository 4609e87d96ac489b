/// @file
/// JoCoR (Wei, Feng, Chen, An, "Combating noisy labels by agreement: a joint training method
/// with co-regularization", CVPR 2020): two networks trained by one joint loss with a
/// symmetric-KL agreement term, on the samples of smallest joint loss.
#ifndef REGULA_SELECTION_JOCOR_HPP
#define REGULA_SELECTION_JOCOR_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/small_loss.hpp"

namespace regula {

/// Options of JoCoR.
struct JoCoROptions {
  /// λ, the weight of the agreement term, in [0, 1]. The official code's default is 0.1; its
  /// README reports λ ≈ 0.9 best on CIFAR-10 (symmetric 20/50%, asymmetric 40%), 0.65 at 80%
  /// noise and 0.85 on CIFAR-100.
  double lambda = 0.1;
};

/// What one JoCoR step did.
template <class T>
struct JoCoRResult {
  T loss = T(0);         ///< the mean joint loss over the selected samples
  std::size_t kept = 0;  ///< k, how many samples were selected
};

/// JoCoR's joint loss and selection. For each sample, with p = softmax(z¹), q = softmax(z²),
///
///   ℓ_i = (1 − λ)·[CE(z¹_i, y_i) + CE(z²_i, y_i)] + λ·[KL(q_i ‖ p_i) + KL(p_i ‖ q_i)],
///
/// the k = keep_count(B, r) samples of smallest ℓ are selected (ties to the lower index, NaN
/// last), and L = (1/k) Σ_{selected} ℓ_i trains both networks (one optimizer in the paper). With
/// a = log p − log q, the gradient for a selected sample is
///
///   ∂ℓ/∂z¹ = (1 − λ)(p − e_y) + λ[(p − q) + p ⊙ (a − ⟨p, a⟩)],
///   ∂ℓ/∂z² = (1 − λ)(q − e_y) + λ[(q − p) − q ⊙ (a − ⟨q, a⟩)],
///
/// divided by k; other samples get zero. Log-probabilities come from log-softmax (never the log
/// of a softmax), so the KL terms stay finite for confident networks. A workspace: the first
/// call on a batch shape allocates, later ones do not.
template <class T>
class JoCoR {
  static_assert(is_scalar_v<T>, "regula::JoCoR<T>: T must be float or double");

 public:
  /// @throws regula::invalid_argument if λ ∉ [0, 1].
  explicit JoCoR(JoCoROptions options = {}) : options_(options) {
    REGULA_EXPECTS(options.lambda >= 0.0 && options.lambda <= 1.0, "regula::JoCoR",
                   "lambda must be in [0, 1], got ", options.lambda);
  }

  /// The per-sample joint losses ℓ (length B) of logits z¹, z² (C × B) and labels y.
  /// @throws regula::invalid_argument on shapes that differ, an empty batch or labels outside [0, C).
  void per_sample(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2, const LabelsCRef& labels,
                  VectorRef<T> losses) {
    check("regula::JoCoR::per_sample", logits1, logits2, labels);
    REGULA_EXPECTS(losses.size() == logits1.cols(), "regula::JoCoR::per_sample",
                   "losses must have one entry per sample (", logits1.cols(), "), got ", losses.size());
    compute(logits1, logits2, labels);
    losses = loss_;
  }

  /// One step: joint losses, selection at `forget_rate`, and in `grad1`, `grad2` (C × B, written)
  /// the gradients of L with respect to z¹ and z².
  JoCoRResult<T> step(const MatrixCRef<T>& logits1, const MatrixCRef<T>& logits2, const LabelsCRef& labels,
                      double forget_rate, MatrixRef<T> grad1, MatrixRef<T> grad2) {
    constexpr const char* who = "regula::JoCoR::step";
    check(who, logits1, logits2, labels);
    detail::check_same_shape(who, "grad1", grad1, "logits1", logits1);
    detail::check_same_shape(who, "grad2", grad2, "logits1", logits1);
    const std::size_t keep = keep_count(static_cast<std::size_t>(logits1.cols()), forget_rate);
    compute(logits1, logits2, labels);
    const std::vector<Index>& sel = selector_.select(loss_, keep);
    const double sum = gradients(sel, static_cast<double>(sel.size()), labels, grad1, grad2);
    JoCoRResult<T> r;
    r.kept = sel.size();
    r.loss = sel.empty() ? T(0) : static_cast<T>(sum / static_cast<double>(sel.size()));
    return r;
  }

  /// The building block of step (and of its data-parallel version): after per_sample on the same
  /// logits and labels, writes into `grad1`, `grad2` the gradients of (1/divisor)·Σ_{i∈selected} ℓ_i
  /// (zero for the other columns) and returns Σ_{i∈selected} ℓ_i in double.
  double gradients(const std::vector<Index>& selected, double divisor, const LabelsCRef& labels,
                   MatrixRef<T> grad1, MatrixRef<T> grad2) {
    const T lambda = static_cast<T>(options_.lambda);
    const T ce = T(1) - lambda;
    for (const Index j : selected) {
      // a = log p − log q; the brackets of the formula above, column by column.
      const auto p = p_.col(j).array();
      const auto q = q_.col(j).array();
      const auto a = (lp_.col(j) - lq_.col(j)).array();
      const T pa = (p * a).sum();
      const T qa = (q * a).sum();
      grad1.col(j) = (ce * p + lambda * ((p - q) + p * (a - pa))).matrix();
      grad2.col(j) = (ce * q + lambda * ((q - p) - q * (a - qa))).matrix();
      const Index y = labels(j);
      grad1(y, j) -= ce;
      grad2(y, j) -= ce;
    }
    // keep_selected scales the selected columns by 1/divisor and zeroes the others.
    const double sum = detail::keep_selected(selected, loss_.data(), grad1, mark_, divisor);
    const T inv = divisor > 0.0 ? static_cast<T>(1.0 / divisor) : T(0);
    for (Index j = 0; j < grad2.cols(); ++j) {
      if (mark_[static_cast<std::size_t>(j)] != 0) {
        grad2.col(j) *= inv;
      } else {
        grad2.col(j).setZero();
      }
    }
    return sum;
  }

  /// The per-sample joint losses of the last per_sample or step call.
  [[nodiscard]] const Vector<T>& losses() const noexcept { return loss_; }

  /// The samples selected by the last step, ascending.
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return selector_.selected(); }

 private:
  static void check(const char* who, const MatrixCRef<T>& z1, const MatrixCRef<T>& z2, const LabelsCRef& y) {
    detail::check_same_shape(who, "logits2", z2, "logits1", z1);
    REGULA_EXPECTS(z1.cols() > 0, who, "the batch must not be empty");
    REGULA_EXPECTS(z1.rows() > 0, who, "logits1 must have at least one class");
    REGULA_EXPECTS(y.size() == z1.cols(), who, "labels must have one entry per sample (", z1.cols(),
                   "), got ", y.size());
    for (Index j = 0; j < y.size(); ++j) {
      REGULA_EXPECTS(y(j) >= 0 && y(j) < z1.rows(), who, "labels(", j, ") must be in [0, ", z1.rows(),
                     "), got ", y(j));
    }
  }

  /// Log-probabilities, probabilities and joint losses of every sample.
  void compute(const MatrixCRef<T>& z1, const MatrixCRef<T>& z2, const LabelsCRef& y) {
    const Index c = z1.rows();
    const Index b = z1.cols();
    lp_.resize(c, b);
    lq_.resize(c, b);
    p_.resize(c, b);
    q_.resize(c, b);
    loss_.resize(b);
    const T lambda = static_cast<T>(options_.lambda);
    const auto n = static_cast<std::size_t>(c);
    for (Index j = 0; j < b; ++j) {
      kernels::log_softmax_column(z1.col(j).data(), n, lp_.col(j).data());
      kernels::log_softmax_column(z2.col(j).data(), n, lq_.col(j).data());
      p_.col(j) = lp_.col(j).array().exp().matrix();
      q_.col(j) = lq_.col(j).array().exp().matrix();
      const T ce = -(lp_(y(j), j) + lq_(y(j), j));
      const T kl = ((p_.col(j) - q_.col(j)).array() * (lp_.col(j) - lq_.col(j)).array()).sum();
      loss_(j) = (T(1) - lambda) * ce + lambda * kl;
    }
  }

  JoCoROptions options_;
  Matrix<T> lp_, lq_, p_, q_;
  Vector<T> loss_;
  SmallLossSelector<T> selector_;
  std::vector<std::uint8_t> mark_;
};

}  // namespace regula

#endif  // REGULA_SELECTION_JOCOR_HPP
