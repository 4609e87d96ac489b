/// @file
/// Integer class labels: one class index per sample. `Labels` owns them (64-bit, as PyTorch's
/// `LongTensor` targets); every entry point reads them through `LabelView`, which binds without
/// a copy to the integer vectors users already have.
#ifndef REGULA_CORE_LABELS_HPP
#define REGULA_CORE_LABELS_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"

namespace regula {

/// One class index per sample (length batch), 64-bit like PyTorch's class-index targets, so a
/// libtorch `kLong` tensor maps with `Eigen::Map<const regula::Labels>` and no copy.
using Labels = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

/// A read-only view of one class index per sample, as every entry point takes its labels. It
/// binds, without a copy, to any Eigen vector of `std::int32_t` or `std::int64_t` with direct
/// access — column or row, a `Labels`, an `Eigen::VectorXi`, a `RowVectorXi`, a `Map` of a
/// tensor's data, a `segment`, a strided `Map` — and to a `std::vector` of either width. Reads
/// widen to `std::int64_t`. The view does not own stored labels: they must outlive the call. An
/// Eigen expression (`Labels::Constant(n, 3)`, `y.cast<int>()`) is evaluated into a copy the
/// view owns, as `Eigen::Ref` does; pass stored labels in hot paths.
class LabelView {
 public:
  /// An Eigen vector (one row or one column) of 32- or 64-bit integers.
  template <class Derived>
  LabelView(const Eigen::DenseBase<Derived>& v)  // NOLINT: implicit by design
      : LabelView(v,
                  std::integral_constant<bool, (Derived::Flags & Eigen::DirectAccessBit) != 0>{}) {
    using S = typename Derived::Scalar;
    static_assert(std::is_same_v<S, std::int32_t> || std::is_same_v<S, std::int64_t>,
                  "regula::LabelView: labels must be std::int32_t or std::int64_t");
    static_assert(Derived::IsVectorAtCompileTime,
                  "regula::LabelView: labels must be a vector (one row or one column)");
  }
  /// A view of a vector of int64 labels (no copy).
  LabelView(const std::vector<std::int64_t>& v) noexcept  // NOLINT: implicit by design
      : LabelView(v.data(), static_cast<Eigen::Index>(v.size())) {}
  /// A view of a vector of int32 labels (no copy).
  LabelView(const std::vector<std::int32_t>& v) noexcept  // NOLINT: implicit by design
      : LabelView(v.data(), static_cast<Eigen::Index>(v.size())) {}
  /// n labels at p, p + stride, … (stride in elements, ≥ 1).
  LabelView(const std::int64_t* p, Eigen::Index n, Eigen::Index stride = 1) noexcept
      : data_(p), size_(n), stride_(stride), wide_(true) {}
  /// A view of n int32 labels at p, `stride` elements apart (no copy).
  LabelView(const std::int32_t* p, Eigen::Index n, Eigen::Index stride = 1) noexcept
      : data_(p), size_(n), stride_(stride), wide_(false) {}
  /// A copy views the same stored labels, or owns a copy of an evaluated expression.
  LabelView(const LabelView& o)
      : owned_(o.owned_),
        data_(o.owns() ? static_cast<const void*>(owned_.data()) : o.data_),
        size_(o.size_),
        stride_(o.stride_),
        wide_(o.wide_) {}
  /// Moves; an owned buffer moves with it and the view stays valid.
  LabelView(LabelView&&) noexcept = default;  // an owned buffer moves; data_ stays valid
  LabelView& operator=(const LabelView&) = delete;
  LabelView& operator=(LabelView&&) = delete;
  ~LabelView() = default;

  /// The number of labels.
  [[nodiscard]] Eigen::Index size() const noexcept { return size_; }
  /// Label i, widened to 64 bits.
  [[nodiscard]] std::int64_t operator[](Eigen::Index i) const noexcept {
    return wide_ ? static_cast<const std::int64_t*>(data_)[i * stride_]
                 : static_cast<const std::int32_t*>(data_)[i * stride_];
  }
  /// Label i as int64 (the same as operator[]).
  [[nodiscard]] std::int64_t operator()(Eigen::Index i) const noexcept { return (*this)[i]; }
  /// The first byte of the labels and the bytes from it to one past the last label (for the
  /// overlap checks of outputs).
  [[nodiscard]] const unsigned char* bytes() const noexcept {
    return static_cast<const unsigned char*>(data_);
  }
  /// The bytes the view spans, from its first to its last label (for the overlap checks).
  [[nodiscard]] std::size_t byte_extent() const noexcept {
    if (size_ == 0) return 0;
    const std::size_t width = wide_ ? sizeof(std::int64_t) : sizeof(std::int32_t);
    return (static_cast<std::size_t>(size_ - 1) * static_cast<std::size_t>(stride_) + 1) * width;
  }

 private:
  template <class Derived>
  LabelView(const Eigen::DenseBase<Derived>& v, std::true_type /*stored*/) noexcept
      : LabelView(v.derived().data(), v.size(), v.innerStride()) {}
  template <class Derived>
  LabelView(const Eigen::DenseBase<Derived>& v, std::false_type /*an expression*/)
      : owned_(v.derived().template cast<std::int64_t>()),
        data_(owned_.data()),
        size_(owned_.size()),
        stride_(1),
        wide_(true) {}
  [[nodiscard]] bool owns() const noexcept { return owned_.size() > 0 && data_ == owned_.data(); }

  Labels owned_;  // an evaluated expression; empty for stored labels
  const void* data_;
  Eigen::Index size_;
  Eigen::Index stride_;
  bool wide_;
};

/// The parameter type of labels at every entry point (see LabelView).
using LabelsCRef = LabelView;

namespace detail {

/// The bytes the labels occupy, for check_no_overlap (core/columns.hpp).
[[nodiscard]] inline Region region(const char* name, const LabelView& y) noexcept {
  return {name, y.bytes(), y.byte_extent()};
}

/// Throws if the memory of `out` (an Eigen object) shares any byte with the labels.
template <class Out>
void check_disjoint(const char* who, const char* in_name, const LabelView& in, const char* out_name,
                    const Out& out) {
  check_no_overlap(who, {region(in_name, in)}, {region(out_name, out)});
}

}  // namespace detail
}  // namespace regula

#endif  // REGULA_CORE_LABELS_HPP
