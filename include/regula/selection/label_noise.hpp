/// @file
/// Label-noise injection for learning-with-noisy-labels experiments, with its own seed.
#ifndef REGULA_SELECTION_LABEL_NOISE_HPP
#define REGULA_SELECTION_LABEL_NOISE_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/stream.hpp"

namespace regula {

/// How labels are corrupted. The papers disagree on what "symmetric" means; the names say which.
enum class LabelNoise {
  /// With probability `rate` the label moves to one of the *other* C − 1 classes, each with
  /// probability rate/(C − 1): the off-diagonal matrix of Co-teaching, Co-teaching+ and JoCoR.
  symmetric_exclusive,
  /// With probability `rate` the label is redrawn uniformly from *all* C classes (rate/C each,
  /// so it may land on its own class and the realized rate is about rate·(C − 1)/C): the
  /// convention of DivideMix and many later papers.
  symmetric_inclusive,
  /// Pair flip: with probability `rate`, class i becomes (i + 1) mod C.
  pair,
  /// A user transition matrix: P(noisy = j | clean = i) = T(i, j), rows summing to 1.
  transition
};

/// Specification of the noise.
struct LabelNoiseOptions {
  /// The noise model.
  LabelNoise kind = LabelNoise::symmetric_exclusive;
  /// The corruption probability, in [0, 1] (unused for `transition`).
  double rate = 0.5;
  /// Seed of the noise's own stream (subsequence 0): the same seed gives the same labels.
  std::uint64_t seed = 0;
  /// Sets `kind` (chainable).
  LabelNoiseOptions& with_kind(LabelNoise v) noexcept { return detail::set(*this, kind, v); }
  /// Sets `rate` (chainable).
  LabelNoiseOptions& with_rate(double v) noexcept { return detail::set(*this, rate, v); }
  /// Sets `seed` (chainable).
  LabelNoiseOptions& with_seed(std::uint64_t v) noexcept { return detail::set(*this, seed, v); }
};

/// The outcome of noise injection.
struct NoisyLabels {
  std::vector<std::int64_t> labels;    ///< the noisy labels
  std::vector<std::uint8_t> is_noisy;  ///< 1 where the noisy label differs from the clean one
  double realized_rate = 0.0;          ///< the fraction of labels that changed
};

/// Corrupts `clean` (values in [0, C)) as `options` says. Sample i takes its randomness from
/// Philox block i of Stream(seed): u₁ from words (0, 1) decides whether to corrupt, u₂ from
/// words (2, 3) picks the new class (53-bit uniforms), so each label depends only on its own
/// index and the seed. `transition` is C × C (row i: the distribution of noisy labels of class i).
/// @throws regula::invalid_argument if C < 2, a label is out of range, the rate is outside
///         [0, 1], or the transition matrix is not C × C with non-negative rows summing to 1
///         (within 1e-6).
[[nodiscard]] inline NoisyLabels inject_label_noise(const std::vector<std::int64_t>& clean,
                                                    std::int64_t num_classes,
                                                    const LabelNoiseOptions& options,
                                                    const Matrix<double>& transition = {}) {
  constexpr const char* who = "regula::inject_label_noise";
  REGULA_EXPECTS(num_classes >= 2, who, "num_classes must be >= 2, got ", num_classes);
  REGULA_EXPECTS(options.rate >= 0.0 && options.rate <= 1.0, who, "rate must be in [0, 1], got ",
                 options.rate);
  for (std::size_t i = 0; i < clean.size(); ++i) {
    REGULA_EXPECTS(clean[i] >= 0 && clean[i] < num_classes, who, "clean[", i, "] must be in [0, ",
                   num_classes, "), got ", clean[i]);
  }
  if (options.kind == LabelNoise::transition) {
    REGULA_EXPECTS(transition.rows() == num_classes && transition.cols() == num_classes, who,
                   "transition must be ", num_classes, " x ", num_classes, ", got ",
                   transition.rows(), " x ", transition.cols());
    for (Index r = 0; r < transition.rows(); ++r) {
      REGULA_EXPECTS((transition.row(r).array() >= 0.0).all(), who, "transition row ", r,
                     " has a negative entry");
      const double s = transition.row(r).sum();
      REGULA_EXPECTS(std::abs(s - 1.0) <= 1e-6, who, "transition row ", r, " must sum to 1, got ",
                     s);
    }
  }
  const auto c = num_classes;
  const Stream stream(options.seed);
  NoisyLabels out;
  out.labels.resize(clean.size());
  out.is_noisy.resize(clean.size());
  std::size_t changed = 0;
  auto uniform = [](std::uint32_t lo, std::uint32_t hi) {
    return static_cast<double>((std::uint64_t{hi} << 21) | (lo >> 11)) * 0x1.0p-53;
  };
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const PhiloxBlock w = stream.block(i);
    const double u1 = uniform(w[0], w[1]);
    const double u2 = uniform(w[2], w[3]);
    const std::int64_t y = clean[i];
    std::int64_t noisy = y;
    switch (options.kind) {
      case LabelNoise::symmetric_exclusive:
        if (u1 < options.rate) {
          const auto k = static_cast<std::int64_t>(u2 * static_cast<double>(c - 1));  // 0..C−2
          noisy = k < y ? k : k + 1;                                                  // skip y
        }
        break;
      case LabelNoise::symmetric_inclusive:
        if (u1 < options.rate) noisy = static_cast<std::int64_t>(u2 * static_cast<double>(c));
        break;
      case LabelNoise::pair:
        if (u1 < options.rate) noisy = (y + 1) % c;
        break;
      case LabelNoise::transition: {
        // Inverse CDF of row y on u₁; the last class with positive mass absorbs rounding.
        double cdf = 0.0;
        noisy = -1;
        for (std::int64_t j = 0; j < c; ++j) {
          const double pj = transition(y, j);
          if (pj <= 0.0) continue;
          noisy = j;
          cdf += pj;
          if (u1 < cdf) break;
        }
        break;
      }
    }
    out.labels[i] = noisy;
    out.is_noisy[i] = noisy != y ? 1 : 0;
    changed += noisy != y ? 1U : 0U;
  }
  out.realized_rate =
      clean.empty() ? 0.0 : static_cast<double>(changed) / static_cast<double>(clean.size());
  return out;
}

}  // namespace regula

#endif  // REGULA_SELECTION_LABEL_NOISE_HPP
