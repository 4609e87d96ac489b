/// @file
/// Argument checks shared by the primitives: each throws regula::invalid_argument naming the
/// function, the parameter and the value.
#ifndef REGULA_CORE_CHECKS_HPP
#define REGULA_CORE_CHECKS_HPP

#include <cmath>
#include <limits>
#include <type_traits>

#include "regula/core/error.hpp"

namespace regula::detail {

/// The name of a scalar type in messages.
template <class T>
constexpr const char* scalar_name() noexcept {
  return std::is_same_v<T, float> ? "float" : "double";
}

/// Throws unless the option `value` (a double) is finite in T: |value| ≤ the largest T. A weight
/// finite as a double but past float's range would enter a float kernel as an infinity and meet
/// a zero there (inf·0 = NaN) for any input.
template <class T>
void check_finite_in(const char* who, const char* param, double value) {
  constexpr double largest = static_cast<double>(std::numeric_limits<T>::max());
  REGULA_EXPECTS(std::isfinite(value) && std::fabs(value) <= largest, who, param,
                 " must be finite in ", scalar_name<T>(), " (|", param, "| <= ", largest, "), got ",
                 value);
}

}  // namespace regula::detail

#endif  // REGULA_CORE_CHECKS_HPP
