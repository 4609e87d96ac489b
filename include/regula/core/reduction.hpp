/// @file
/// How a loss combines its per-sample values: PyTorch's `reduction` argument.
#ifndef REGULA_CORE_REDUCTION_HPP
#define REGULA_CORE_REDUCTION_HPP

#include <cstdint>
#include <ostream>

#include "regula/core/options.hpp"

namespace regula {

/// The reduction of per-sample losses ℓ_1 … ℓ_B, with PyTorch's names and meanings.
///
/// - `none`: no reduction; the per-sample losses themselves.
/// - `mean`: Σ ℓ_i divided by the number of contributing samples, or by the sum of their class
///   weights when the loss is class-weighted (as `torch.nn.CrossEntropyLoss`).
/// - `sum`: Σ ℓ_i.
/// - `batchmean`: Σ ℓ_i / B, with every term summed over classes first (as
///   `torch.nn.KLDivLoss(reduction='batchmean')`; PyTorch's `mean` there divides by B·C).
///
/// Each loss documents which reductions it accepts.
enum class Reduction : std::uint8_t { none, mean, sum, batchmean };

/// The PyTorch spelling: "none", "mean", "sum" or "batchmean".
[[nodiscard]] constexpr const char* to_string(Reduction r) noexcept {
  switch (r) {
    case Reduction::none:
      return "none";
    case Reduction::mean:
      return "mean";
    case Reduction::sum:
      return "sum";
    case Reduction::batchmean:
      return "batchmean";
  }
  return "?";
}

/// Writes the PyTorch spelling (used in error messages).
inline std::ostream& operator<<(std::ostream& os, Reduction r) { return os << to_string(r); }

namespace detail {

/// The options every loss over integer labels has (cross-entropy, the coverage loss) — the
/// reduction of the reduced calls and PyTorch's ignore_index — with chainable setters that
/// return the options type `Self` that derives from it, so that one chain sets both these and
/// Self's own fields (as DistillationOptions does for the distillation losses).
template <class Self>
struct LabelLossOptions {
  /// How the reduced calls combine per-sample losses: `mean` (PyTorch's default: over the
  /// samples that are not ignored, or their class weights), `sum`, or `batchmean` (Σ ℓ_i / B,
  /// every sample counted). `none` is for the per-sample calls, which ignore this field; the
  /// reduced calls reject it.
  Reduction reduction = Reduction::mean;
  /// Samples whose label equals this value contribute neither loss nor gradient and are not
  /// counted by `mean`.
  std::int64_t ignore_index = -100;

  Self& with_reduction(Reduction r) noexcept {
    return detail::set(static_cast<Self&>(*this), reduction, r);
  }
  Self& with_ignore_index(std::int64_t index) noexcept {
    return detail::set(static_cast<Self&>(*this), ignore_index, index);
  }
};

}  // namespace detail

}  // namespace regula

#endif  // REGULA_CORE_REDUCTION_HPP
