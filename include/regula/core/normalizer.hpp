/// @file
/// The per-sample normalizers a loss can be built on, chosen at compile time.
#ifndef REGULA_CORE_NORMALIZER_HPP
#define REGULA_CORE_NORMALIZER_HPP

#include <cstdint>

namespace regula {

/// Which map turns a column of logits z into probabilities.
///
/// - `softmax`: p_i = exp(z_i) / Σ_j exp(z_j).
/// - `stablemax`: p_i = s(z_i) / Σ_j s(z_j), s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0
///   (Prieto et al., "Grokking at the Edge of Numerical Stability", ICLR 2025).
enum class Normalizer : std::uint8_t { softmax, stablemax };

}  // namespace regula

#endif  // REGULA_CORE_NORMALIZER_HPP
