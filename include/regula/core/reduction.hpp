/// @file
/// How a loss combines its per-sample values: PyTorch's `reduction` argument.
#ifndef REGULA_CORE_REDUCTION_HPP
#define REGULA_CORE_REDUCTION_HPP

#include <cstdint>
#include <ostream>

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

}  // namespace regula

#endif  // REGULA_CORE_REDUCTION_HPP
