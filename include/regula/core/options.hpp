/// @file
/// The one helper of the options idiom (docs/concepts.md, "Options"): every options type is a
/// plain struct whose fields each have a chainable setter, written as
/// `Opts& with_p(double v) noexcept { return detail::set(*this, p, v); }`.
#ifndef REGULA_CORE_OPTIONS_HPP
#define REGULA_CORE_OPTIONS_HPP

#include <utility>

namespace regula::detail {

/// Assigns `value` to `field` (a member of `self`) and returns `self`, so setters chain.
template <class Self, class Field, class Value>
Self& set(Self& self, Field& field, Value&& value) noexcept {
  field = std::forward<Value>(value);
  return self;
}

}  // namespace regula::detail

#endif  // REGULA_CORE_OPTIONS_HPP
