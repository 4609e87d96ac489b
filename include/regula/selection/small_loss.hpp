/// @file
/// Small-loss selection: the indices of the k samples with the smallest per-sample loss, the
/// building block of Co-teaching, Co-teaching+ and JoCoR.
#ifndef REGULA_SELECTION_SMALL_LOSS_HPP
#define REGULA_SELECTION_SMALL_LOSS_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"

namespace regula {

/// The number of samples kept from a batch of n at forget rate r: ⌊(1 − r)·n⌋ computed in double
/// as the official Co-teaching code does, but at least 1 whenever n > 0.
/// @throws regula::invalid_argument if r ∉ [0, 1].
[[nodiscard]] inline std::size_t keep_count(std::size_t n, double forget_rate) {
  REGULA_EXPECTS(forget_rate >= 0.0 && forget_rate <= 1.0, "regula::keep_count",
                 "forget_rate must be in [0, 1], got ", forget_rate);
  const auto k = static_cast<std::size_t>(std::floor((1.0 - forget_rate) * static_cast<double>(n)));
  return n == 0 ? 0 : std::max<std::size_t>(k, 1);
}

/// Order of the indices a selection returns.
enum class SelectionOrder {
  by_index,  ///< ascending sample index (convenient for gathers)
  by_loss    ///< ascending loss, ties by ascending index
};

namespace detail {

/// Monotone map of a float to an unsigned key: −inf < … < −0 = +0 < … < +inf < every NaN.
[[nodiscard]] inline std::uint32_t order_key(float v) noexcept {
  if (std::isnan(v)) return 0xFFFFFFFFU;
  if (v == 0.0F) v = 0.0F;  // −0 and +0 compare equal, so they must tie
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x80000000U) != 0 ? ~b : (b | 0x80000000U);
}

[[nodiscard]] inline std::uint64_t order_key(double v) noexcept {
  if (std::isnan(v)) return ~std::uint64_t{0};
  if (v == 0.0) v = 0.0;
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & (std::uint64_t{1} << 63)) != 0 ? ~b : (b | (std::uint64_t{1} << 63));
}

/// (loss key, index): a total order in which equal losses go by index.
template <class T>
struct LossKey {
  std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t> key;
  std::uint32_t index;
  friend bool operator<(const LossKey& a, const LossKey& b) noexcept {
    return a.key < b.key || (a.key == b.key && a.index < b.index);
  }
  friend bool operator<=(const LossKey& a, const LossKey& b) noexcept { return !(b < a); }
};

}  // namespace detail

/// Selects the k samples of smallest loss, deterministically: samples are ordered by
/// (loss, index), so equal losses keep the lower indices, and NaN losses rank after every finite
/// or infinite loss (−0 and +0 tie). Linear time on average (`std::nth_element` on packed keys)
/// plus O(k log k) when the result is asked for by loss.
///
/// A selector is a reusable workspace: after the first call on a batch size, `select` allocates
/// nothing. The returned indices stay valid until the next call.
template <class T>
class SmallLossSelector {
  static_assert(is_scalar_v<T>, "regula::SmallLossSelector<T>: T must be float or double");

 public:
  /// Sizes the workspace for batches of up to n samples.
  void reserve(std::size_t n) {
    keys_.reserve(n);
    selected_.reserve(n);
  }

  /// The indices of the `keep` smallest of `losses[0..n)`.
  /// @throws regula::invalid_argument if keep > n or n ≥ 2³².
  const std::vector<Index>& select(const T* losses, std::size_t n, std::size_t keep,
                                   SelectionOrder order = SelectionOrder::by_index) {
    REGULA_EXPECTS(keep <= n, "regula::SmallLossSelector::select",
                   "keep must be <= the batch size ", n, ", got ", keep);
    REGULA_EXPECTS(n < (std::size_t{1} << 32), "regula::SmallLossSelector::select",
                   "the batch size must be < 2^32, got ", n);
    selected_.clear();
    if (keep == 0) return selected_;
    keys_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      keys_[i] = {detail::order_key(losses[i]), static_cast<std::uint32_t>(i)};
    }
    const auto kth = keys_.begin() + static_cast<std::ptrdiff_t>(keep - 1);
    if (keep < n) std::nth_element(keys_.begin(), kth, keys_.end());
    if (order == SelectionOrder::by_loss) {
      std::sort(keys_.begin(), kth + 1);
      for (std::size_t j = 0; j < keep; ++j)
        selected_.push_back(static_cast<Index>(keys_[j].index));
    } else if (keep == n) {
      for (std::size_t i = 0; i < n; ++i) selected_.push_back(static_cast<Index>(i));
    } else {
      // Every key up to the k-th is selected; one pass in index order lists them.
      const detail::LossKey<T> threshold = *kth;
      for (std::size_t i = 0; i < n; ++i) {
        const detail::LossKey<T> k{detail::order_key(losses[i]), static_cast<std::uint32_t>(i)};
        if (k <= threshold) selected_.push_back(static_cast<Index>(i));
      }
    }
    return selected_;
  }

  /// As above, on a vector of per-sample losses.
  const std::vector<Index>& select(const VectorCRef<T>& losses, std::size_t keep,
                                   SelectionOrder order = SelectionOrder::by_index) {
    return select(losses.data(), static_cast<std::size_t>(losses.size()), keep, order);
  }

  /// The indices of the last selection.
  [[nodiscard]] const std::vector<Index>& selected() const noexcept { return selected_; }

 private:
  std::vector<detail::LossKey<T>> keys_;
  std::vector<Index> selected_;
};

/// The fraction of `selected` whose labels are clean (`is_noisy[i] == 0`): the label precision
/// of a selection, Co-teaching's "pure ratio". 1 for an empty selection.
/// @throws regula::invalid_argument if an index is out of range.
[[nodiscard]] inline double label_precision(const std::vector<Index>& selected,
                                            const std::vector<std::uint8_t>& is_noisy) {
  if (selected.empty()) return 1.0;
  std::size_t clean = 0;
  const auto n = static_cast<Index>(is_noisy.size());
  for (const Index i : selected) {
    REGULA_EXPECTS(i >= 0 && i < n, "regula::label_precision", "selected holds index ", i,
                   ", out of range for ", n, " samples");
    clean += is_noisy[static_cast<std::size_t>(i)] != 0 ? 0U : 1U;
  }
  return static_cast<double>(clean) / static_cast<double>(selected.size());
}

}  // namespace regula

#endif  // REGULA_SELECTION_SMALL_LOSS_HPP
