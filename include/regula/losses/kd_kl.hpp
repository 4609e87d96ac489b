/// @file
/// Hinton knowledge distillation: the KL divergence from the teacher's softened distribution to
/// the student's, with temperature T and an explicit T² factor.
///
/// Per sample (a column) with student logits z, teacher logits v, p = softmax(z/T),
/// q = softmax(v/T):
///
///   ℓ = F·KL(q ‖ p) = F·Σ_c q_c (log q_c − log p_c),   ∂ℓ/∂z = (F/T)·(p − q),
///
/// F = T² when `scale_by_t_squared()` (default) else 1. The default reduction `batchmean` gives
/// (1/B)·Σ_i ℓ_i, the loss of Hinton et al. and of mdistiller/torchdistill.
///
/// PyTorch's mean-vs-batchmean trap: `torch.nn.KLDivLoss()` defaults to `reduction='mean'`,
/// which averages over all B·C elements and so returns the batch-mean KL divided by C (and
/// warns about it); the paper's loss is `reduction='batchmean'`. regula's `Reduction::mean`
/// keeps PyTorch's meaning (divide by B·C) for users porting code, but the default here is
/// batchmean. With F = T² the gradient magnitude stays about constant as T grows.
///
/// Numerics: log p = z/T − logsumexp(z/T) and log q likewise, never log of a probability, so
/// 0·log 0 = 0 holds and logits of ±1e4 in float give finite results; the two exponentials of
/// a column run in one fused SIMD pass. Where that direct form would cancel (teacher ≈ student,
/// confident columns whose top classes agree; always in double) the column is recomputed
/// without cancellation (kernels::kd_kl_column): every loss and gradient element keeps its
/// relative accuracy and the loss is never negative (docs/kd_kl.md, accuracy contract). NaN in a
/// column gives NaN for that sample. A column whose logits span past the largest finite T, where
/// the result is not finite although the logits are, is recomputed in long double
/// (kernels::kd_kl_column): finite, or +inf where the divergence itself overflows, never NaN;
/// the same holds for reverse_kl, js, total_variation, dkd and logit_std_kd.
///
/// Defaults of the papers: mdistiller CIFAR-100 T = 4 with loss 0.1·CE + 0.9·KD; Hinton et al.
/// up to T = 20. Combine with cross_entropy yourself (the weights are the caller's).
///
/// No call allocates (columns up to 2048 classes keep the teacher's exponentials on the stack;
/// longer columns recompute them). Columns run in parallel in fixed chunks; results do not
/// depend on the thread count.
#ifndef REGULA_LOSSES_KD_KL_HPP
#define REGULA_LOSSES_KD_KL_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

template <class T>
T run_kd_kl(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
            const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
  check_temperature<T>(who, opt.temperature());
  check_kd_shapes(who, z, v, losses, dz);
  const double scale =
      per_sample ? 1.0 : reduction_scale(who, opt.reduction(), z.rows(), z.cols());
  const T k = static_cast<T>(1.0 / opt.temperature());
  const auto n = static_cast<std::size_t>(z.rows());
  const double total = run_kd_columns<T>(
      z.rows(), z.cols(), scale, opt.factor(), losses, dz, [&](Index j, T gs, T* dcol) noexcept {
        alignas(64) T buf[kd_stack_classes];
        return kernels::kd_kl_column<T>(z.col(j).data(), v.col(j).data(), n, k, k, gs, dcol,
                                        n <= kd_stack_classes ? buf : nullptr);
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

}  // namespace detail

/// kd_kl and kd_kl_per_sample: the four calls of REGULA_DETAIL_TEACHER_LOSS_API (kd_common.hpp).
REGULA_DETAIL_TEACHER_LOSS_API(kd_kl, KDLossOptions)

}  // namespace regula

#endif  // REGULA_LOSSES_KD_KL_HPP
