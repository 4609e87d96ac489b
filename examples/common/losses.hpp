// Example support (not part of the library): the examples' per-sample cross-entropy, a thin
// layer over regula::cross_entropy_per_sample that sizes the outputs.
#ifndef REGULA_EXAMPLES_COMMON_LOSSES_HPP
#define REGULA_EXAMPLES_COMMON_LOSSES_HPP

#include <cstdint>
#include <vector>

#include "regula/losses/cross_entropy.hpp"

#include "common/data.hpp"

namespace ex {

/// Per-sample softmax cross-entropy: losses[i] = ℓ_i and dlogits.col(i) = softmax(z_i) − e_{y_i}
/// (sample i's own gradient, no 1/B), from regula::cross_entropy_per_sample; outputs are resized.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits);

/// The loss functor of regula::MultiSampleDropout.
using CrossEntropyLoss = regula::PerSampleCrossEntropy<>;

/// Loss only.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses);

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_LOSSES_HPP
