// Example support for the libtorch examples (not part of the library): the data set's memory seen
// as tensors without a copy, and a mini-batch's indices from a permutation.
#ifndef REGULA_EXAMPLES_COMMON_TORCH_DATA_HPP
#define REGULA_EXAMPLES_COMMON_TORCH_DATA_HPP

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "common/data.hpp"

namespace ex {

/// Images as an N × 1 × 28 × 28 float tensor over the data set's memory (no copy).
inline at::Tensor as_images(Dataset& d) {
  return torch::from_blob(d.x.data(), {d.size(), 1, 28, 28});
}

/// Labels as an int64 tensor over the vector's memory (no copy).
inline at::Tensor as_labels(std::vector<std::int64_t>& y) {
  return torch::from_blob(y.data(), {static_cast<long>(y.size())}, torch::kLong);
}

/// The indices of mini-batch `step` of size `batch` in `order`, as an int64 tensor over the
/// vector's memory (no copy; torch only reads it).
inline at::Tensor batch_indices(const std::vector<Index>& order, long step, long batch) {
  return torch::from_blob(const_cast<Index*>(order.data()) + step * batch, {batch}, torch::kLong);
}

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_TORCH_DATA_HPP
