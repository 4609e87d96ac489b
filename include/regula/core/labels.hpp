/// @file
/// Integer class labels: one `std::int64_t` per sample, as PyTorch's `LongTensor` targets.
#ifndef REGULA_CORE_LABELS_HPP
#define REGULA_CORE_LABELS_HPP

#include <cstdint>

#include <Eigen/Core>

namespace regula {

/// One class index per sample (length batch), 64-bit like PyTorch's class-index targets, so a
/// libtorch `kLong` tensor maps with `Eigen::Map<const regula::Labels>` and no copy.
using Labels = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;
/// Read-only view of contiguous labels (a Labels, a Map, a segment).
using LabelsCRef = Eigen::Ref<const Labels>;

}  // namespace regula

#endif  // REGULA_CORE_LABELS_HPP
