// The entry-point sweep: a table of rows, each naming the public entry points it calls
// (qualified::name/parameter-count, as scripts/list_entry_points.py writes them), what it feeds
// them, and a body that asserts either a regula::invalid_argument whose what() names the
// function and the parameter, or the correct result for a valid input.
//
// Every row is its own Catch2 test case ("<entry point> | <what>"), so each runs in its own
// process under ctest and a row that crashes takes no other row with it. The hidden test case
// "sweep: list rows" prints the entry points the rows cover; the ctest sweep_entry_points
// compares them with the entry points found in the headers, so a new public function without a
// row fails.
#ifndef REGULA_TESTS_SWEEP_SWEEP_HPP
#define REGULA_TESTS_SWEEP_SWEEP_HPP

#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"

#include "support/catch.hpp"

namespace regula::sweep {

/// Registers one row: a Catch2 test case named after its first entry point and `what`.
/// `entries` are the entry points the row calls; `tags` may hold e.g. "[known:5]" for a row
/// that fails because of item 5 of issue 20 (the assertion stays what the contract demands).
void add_row(std::vector<std::string> entries, const std::string& what, std::function<void()> body,
             const std::string& tags = "");

/// Marks that this binary covers an integration ("torch", "mpi"): its entry points are then
/// required to have rows.
void covers(const std::string& integration);

/// Runs `register_rows` at static initialisation, before Catch2 reads its test cases.
struct Rows {
  explicit Rows(void (*register_rows)()) { register_rows(); }
};

/// True when `param` occurs in `message` as a whole word (not inside a longer identifier).
inline bool names(const std::string& message, const std::string& param) {
  auto is_word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  };
  for (std::size_t at = message.find(param); at != std::string::npos;
       at = message.find(param, at + 1)) {
    const bool left = at == 0 || !is_word(message[at - 1]);
    const std::size_t end = at + param.size();
    const bool right = end == message.size() || !is_word(message[end]);
    if (left && right) return true;
  }
  return false;
}

/// Asserts that f() throws regula::invalid_argument whose message starts with "regula::" (the
/// function) and names every parameter in `params`.
template <class F>
void rejects(std::initializer_list<const char*> params, F&& f) {
  std::string message;
  bool thrown = false;
  try {
    f();
  } catch (const regula::invalid_argument& e) {
    message = e.what();
    thrown = true;
  } catch (const std::exception& e) {
    FAIL("threw another exception instead of regula::invalid_argument: " << e.what());
  }
  if (!thrown) FAIL("accepted; regula::invalid_argument naming the parameter was expected");
  INFO("what(): " << message);
  CHECK(message.rfind("regula::", 0) == 0);
  for (const char* p : params) {
    INFO("parameter: " << p);
    CHECK(names(message, p));
  }
}

/// Asserts that f() returns without throwing.
template <class F>
void accepts(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    FAIL("rejected a valid input: " << e.what());
  }
}

/// A deterministic rows × cols matrix of standard normals times `scale`.
template <class T>
Matrix<T> normal(Index rows, Index cols, std::uint64_t seed = 1, double scale = 1.0) {
  Matrix<T> m(rows, cols);
  Stream s(seed, 77);
  if (m.size() > 0) s.normal(m.data(), static_cast<std::size_t>(m.size()));
  m *= static_cast<T>(scale);
  return m;
}

/// Column-wise probabilities (softmax of normals), for soft targets.
template <class T>
Matrix<T> probabilities(Index rows, Index cols, std::uint64_t seed = 2) {
  Matrix<T> m = normal<T>(rows, cols, seed).array().exp().matrix();
  for (Index j = 0; j < cols; ++j) m.col(j) /= m.col(j).sum();
  return m;
}

/// Labels i mod classes.
inline Labels labels(Index n, Index classes) {
  Labels y(n);
  for (Index i = 0; i < n; ++i) y[i] = i % classes;
  return y;
}

/// Two rows × cols views of one buffer, the second `shift` elements after the first, so that
/// they overlap partly (shift < rows·cols).
template <class T>
struct Overlap {
  Matrix<T> buffer;
  Eigen::Map<Matrix<T>> a, b;
  Overlap(Index rows, Index cols, Index shift, std::uint64_t seed = 5)
      : buffer(normal<T>(rows * cols + shift, 1, seed)),
        a(buffer.data(), rows, cols),
        b(buffer.data() + shift, rows, cols) {}
};

/// A rows × cols block of a larger matrix: outer stride rows + 3, offset (1, 2).
template <class T>
struct Strided {
  Matrix<T> big;
  Strided(Index rows, Index cols, std::uint64_t seed = 6)
      : big(normal<T>(rows + 3, cols + 4, seed)) {}
  auto block(Index rows, Index cols) { return big.block(1, 2, rows, cols); }
};

/// Max |a − b| / (1 + |b|), NaN-aware (NaN where either is NaN), and exact-equality test.
template <class A, class B>
bool same(const A& a, const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index j = 0; j < a.cols(); ++j) {
    for (Index i = 0; i < a.rows(); ++i) {
      const auto x = a(i, j);
      const auto y = b(i, j);
      if (std::isnan(x) && std::isnan(y)) continue;
      if (!(x == y)) return false;
    }
  }
  return true;
}

template <class A, class B>
bool close(const A& a, const B& b, double tol) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index j = 0; j < a.cols(); ++j) {
    for (Index i = 0; i < a.rows(); ++i) {
      const double x = static_cast<double>(a(i, j));
      const double y = static_cast<double>(b(i, j));
      if (std::isnan(x) || std::isnan(y)) return false;
      if (std::abs(x - y) > tol * (1.0 + std::abs(y))) return false;
    }
  }
  return true;
}

inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double inf = std::numeric_limits<double>::infinity();

}  // namespace regula::sweep

#endif  // REGULA_TESTS_SWEEP_SWEEP_HPP
