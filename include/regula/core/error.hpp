/// @file
/// The error type thrown on bad input, and the checking macro that builds its message.
#ifndef REGULA_CORE_ERROR_HPP
#define REGULA_CORE_ERROR_HPP

#include <sstream>
#include <stdexcept>
#include <string>

#include "regula/config.hpp"

namespace regula {

/// Thrown when an argument at the API boundary is invalid: a shape that does not match, an
/// empty batch, a probability outside its range, a class index out of range. The message names
/// the function, the parameter and the value received.
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

/// Concatenates `who`, ": " and every part streamed with `operator<<`.
template <class... Parts>
[[nodiscard]] std::string error_message(const char* who, const Parts&... parts) {
  std::ostringstream os;
  os << who << ": ";
  (os << ... << parts);
  return os.str();
}

}  // namespace detail
}  // namespace regula

/// Checks `cond`; when it is false, throws regula::invalid_argument with the message
/// `who: parts...`. The message is built only on failure.
#define REGULA_EXPECTS(cond, who, ...)                                                             \
  do {                                                                                             \
    if (REGULA_UNLIKELY(!(cond))) {                                                                \
      REGULA_THROW(::regula::invalid_argument(::regula::detail::error_message(who, __VA_ARGS__))); \
    }                                                                                              \
  } while (false)

#endif  // REGULA_CORE_ERROR_HPP
