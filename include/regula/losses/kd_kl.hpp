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

/// kd_kl's column kernel, bound to the distillation driver (run_temperature_loss).
struct KdKl : TemperatureLoss<KdKl> {
  static constexpr const char* name = "regula::kd_kl";
  static constexpr const char* per_sample_name = "regula::kd_kl_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    return kernels::kd_kl_column<T>(z, v, n, k, k, gs, dz, buf);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::kd_kl_tile<T>(z, zs, v, vs, n, count, k, k, gs, dz, dzs, d);
  }
};

}  // namespace detail

/// kd_kl: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::KdKl> kd_kl{};
/// kd_kl_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::KdKl> kd_kl_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_KD_KL_HPP
