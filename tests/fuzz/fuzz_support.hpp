// What every fuzz harness shares: a byte decoder, value palettes, strided and aliased views,
// the call wrapper that enforces "bad input gives regula::invalid_argument and nothing else",
// and the invariant checks. A broken invariant prints what it saw and aborts, which libFuzzer
// (and the replay driver's ctest) reports as a crash.
#ifndef REGULA_TESTS_FUZZ_SUPPORT_HPP
#define REGULA_TESTS_FUZZ_SUPPORT_HPP

#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include <Eigen/Core>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"

namespace regula::fuzz {

/// What the current input decoded to, printed with a broken invariant.
inline std::string& notes() {
  static std::string s;
  return s;
}

/// Appends a printf-style line to the description of the current input.
inline void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void note(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  notes() += line;
  notes() += '\n';
}

/// Appends a matrix (its first 8 columns, 80 rows) to the description of the current input.
template <class M>
void note_matrix(const char* name, const M& m) {
  std::string s =
      std::string(name) + " (" + std::to_string(m.rows()) + " x " + std::to_string(m.cols()) + "):";
  for (Eigen::Index j = 0; j < m.cols() && j < 8; ++j) {
    s += "\n   ";
    for (Eigen::Index i = 0; i < m.rows() && i < 80; ++i) {
      char v[40];
      std::snprintf(v, sizeof v, " %.9g", static_cast<double>(m(i, j)));
      s += v;
    }
  }
  notes() += s;
  notes() += '\n';
}

/// Reports a broken invariant and aborts. printf-style.
[[noreturn]] inline void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void fail(const char* fmt, ...) {
  std::fprintf(stderr, "\n*** input: %s", notes().c_str());
  std::fprintf(stderr, "\n*** regula fuzz invariant broken: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

#define REGULA_FUZZ_CHECK(cond, ...)                \
  do {                                              \
    if (!(cond)) ::regula::fuzz::fail(__VA_ARGS__); \
  } while (false)

/// Defects that are known and being fixed elsewhere. A campaign run while they are open sets
/// REGULA_FUZZ_SKIP_KNOWN to a comma-separated list of these ids (or "all") so that the
/// fuzzer can go past them; CI and the replay run with nothing skipped.
inline bool skip_known(const char* id) {
  static const char* env = std::getenv("REGULA_FUZZ_SKIP_KNOWN");
  if (env == nullptr || *env == '\0') return false;
  const std::string list = std::string(",") + env + ",";
  return list.find(",all,") != std::string::npos ||
         list.find(std::string(",") + id + ",") != std::string::npos;
}

/// Consumes the fuzzer's bytes; past the end every read gives 0, so any input decodes.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() {
    return static_cast<std::uint32_t>(u16()) | (static_cast<std::uint32_t>(u16()) << 16);
  }
  std::uint64_t u64() {
    return static_cast<std::uint64_t>(u32()) | (static_cast<std::uint64_t>(u32()) << 32);
  }
  bool flag() { return (u8() & 1U) != 0; }
  /// A value in [0, k), k ≥ 1.
  std::size_t pick(std::size_t k) { return k <= 256 ? u8() % k : u16() % k; }
  /// An Index in [lo, hi].
  Index range(Index lo, Index hi) {
    return lo + static_cast<Index>(pick(static_cast<std::size_t>(hi - lo + 1)));
  }
  [[nodiscard]] std::size_t left() const { return n_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

/// What values a call's data may hold, from tame to hostile. The invariants checked depend on it.
enum class Palette : std::uint8_t {
  moderate,  ///< |x| ≤ 30, many ties and zeros
  large,     ///< adds ±1e4, ±1e30 (float) / ±1e300 (double): outputs must stay finite
  extreme,   ///< adds the largest finite values, −1e38, subnormals: no NaN out
  nonfinite  ///< adds NaN and ±inf: only "no crash, bad input rejected"
};

inline Palette palette(Input& in) { return static_cast<Palette>(in.u8() % 4); }

/// The largest magnitude of the `large` palette.
template <class T>
constexpr T big() {
  return std::is_same_v<T, float> ? T(1e30F) : T(1e300);
}

template <class T>
T value(Input& in, Palette pal) {
  const std::uint8_t sel = in.u8();
  const std::uint8_t cls = sel % 16;
  if (cls < 8 || pal == Palette::moderate) {
    // Small values on a coarse grid, so ties and exact zeros are common.
    const auto q = static_cast<std::int8_t>(in.u8());
    return static_cast<T>(q) / T(4) * ((sel & 0x80U) != 0 ? T(1) : T(0.25));
  }
  if (cls < 11) {
    const T table[] = {T(1e4), T(-1e4), T(1e2), T(-60), T(100), big<T>(), -big<T>(), T(1e-3)};
    return table[in.u8() % 8];
  }
  if (pal == Palette::large) {
    const auto q = static_cast<std::int16_t>(in.u16());
    return static_cast<T>(q) * T(0.125);
  }
  if (cls < 14 || pal == Palette::extreme) {
    const T table[] = {std::numeric_limits<T>::max(),
                       std::numeric_limits<T>::lowest(),
                       T(-1e38F),
                       T(1e38F),
                       std::numeric_limits<T>::denorm_min(),
                       -std::numeric_limits<T>::denorm_min(),
                       std::numeric_limits<T>::min(),
                       T(-0.0)};
    return table[in.u8() % 8];
  }
  const T table[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                     -std::numeric_limits<T>::infinity(), T(0)};
  return table[in.u8() % 4];
}

/// A finite option value (a temperature, ε, a weight): mostly ordinary, sometimes at the edges.
inline double option(Input& in, const std::vector<double>& table) {
  const std::uint8_t sel = in.u8();
  if (sel < 160) return table[static_cast<std::size_t>(sel) % table.size()];
  const double edges[] = {0.0,
                          -0.0,
                          -1.0,
                          1e-300,
                          1e-39,
                          1e-20,
                          1e20,
                          1e300,
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity(),
                          std::numeric_limits<double>::quiet_NaN(),
                          1e-7,
                          1e7,
                          0.5,
                          1.0,
                          2.0};
  return edges[sel % 16];
}

/// Storage for one matrix argument with a chosen outer stride, so that views of row blocks
/// (outerStride > rows) reach every entry point. Data past the view holds a canary.
template <class T>
struct Strided {
  Matrix<T> store;
  Index rows = 0, cols = 0;
  Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>> view() {
    return {store.data(), rows, cols, Eigen::OuterStride<>(store.rows())};
  }
  Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> cview() const {
    return {store.data(), rows, cols, Eigen::OuterStride<>(store.rows())};
  }
};

template <class T>
Strided<T> make_strided(Input& in, Index rows, Index cols, Palette pal, bool fill = true) {
  Strided<T> s;
  s.rows = rows;
  s.cols = cols;
  const Index pad = (in.u8() % 4 == 0) ? in.range(1, 3) : 0;
  s.store.setConstant(rows + pad, cols, T(12345));
  if (fill) {
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) s.store(i, j) = value<T>(in, pal);
  }
  return s;
}

template <class T>
Matrix<T> make_matrix(Input& in, Index rows, Index cols, Palette pal) {
  Matrix<T> m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = value<T>(in, pal);
  return m;
}

template <class M>
bool any_nan(const M& m) {
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i)
      if (std::isnan(m(i, j))) return true;
  return false;
}

template <class M>
bool all_finite(const M& m) {
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(m(i, j))) return false;
  return true;
}

template <class M>
bool any_nonfinite(const M& m) {
  return !all_finite(m);
}

/// What a call should do with its arguments.
enum class Expect : std::uint8_t { accept, reject, either };

/// accept or reject as `valid` says, or either when the arguments are valid but extreme enough
/// (a temperature of 1e20, ε = 1e-39) that refusing them is also right.
inline Expect expect(bool valid, bool unsure = false) {
  if (!valid) return Expect::reject;
  return unsure ? Expect::either : Expect::accept;
}

/// Whether a positive option lies outside [lo, hi], where a call may refuse it as overflowing.
inline bool extreme(double x, double lo, double hi) { return !(x >= lo && x <= hi); }

/// Runs `f`. A regula::invalid_argument is the only exception allowed, its message must name
/// the function ("regula::...: ..."), and it must come exactly when `expect` says so. Returns
/// whether the call was accepted.
template <class F>
bool call(const char* what, Expect expect, F&& f) {
  try {
    f();
  } catch (const regula::invalid_argument& e) {
    const std::string msg = e.what();
    REGULA_FUZZ_CHECK(msg.rfind("regula::", 0) == 0 && msg.find(": ") != std::string::npos,
                      "%s: rejection message does not name the function: \"%s\"", what,
                      msg.c_str());
    REGULA_FUZZ_CHECK(expect != Expect::accept, "%s rejected a valid call: %s", what, msg.c_str());
    return false;
  } catch (const std::exception& e) {
    fail("%s threw %s, not regula::invalid_argument: %s", what, typeid(e).name(), e.what());
  } catch (...) {
    fail("%s threw a non-std exception", what);
  }
  REGULA_FUZZ_CHECK(expect != Expect::reject, "%s accepted an invalid call", what);
  return true;
}

/// Tolerance of a sum of n terms of scale `scale` in T.
template <class T>
double sum_tol(std::size_t n, double scale) {
  return 16.0 * static_cast<double>(n + 4) *
             static_cast<double>(std::numeric_limits<T>::epsilon()) * scale +
         64.0 * static_cast<double>(std::numeric_limits<T>::min());
}

/// Every column of g sums to ~0 relative to `natural` + Σ|g_col| (gradients of a loss over a
/// normalizer that sums to one are orthogonal to the all-ones vector).
template <class T, class M>
void check_column_sums(const char* what, const M& g, double natural) {
  for (Index j = 0; j < g.cols(); ++j) {
    double s = 0.0, a = 0.0;
    for (Index i = 0; i < g.rows(); ++i) {
      s += static_cast<double>(g(i, j));
      a += std::abs(static_cast<double>(g(i, j)));
    }
    const double tol = sum_tol<T>(static_cast<std::size_t>(g.rows()), a + natural);
    REGULA_FUZZ_CHECK(std::abs(s) <= tol,
                      "%s: gradient column %lld sums to %.9g (sum |g| = %.9g, natural scale %.9g, "
                      "tolerance %.3g)",
                      what, static_cast<long long>(j), s, a, natural, tol);
  }
}

inline const char* type_name(float) { return "float"; }
inline const char* type_name(double) { return "double"; }

}  // namespace regula::fuzz

#endif  // REGULA_TESTS_FUZZ_SUPPORT_HPP
