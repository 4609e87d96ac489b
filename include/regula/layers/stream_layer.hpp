/// @file
/// What every stream-driven layer (Dropout and its family) shares, written once: the train/eval
/// flag, how a forward call treats its input (identity, zero or random), and the argument checks
/// and trivial modes of forward and backward. A layer is its options, its kernel and a few lines
/// binding them to these (CONTRIBUTING.md).
#ifndef REGULA_LAYERS_STREAM_LAYER_HPP
#define REGULA_LAYERS_STREAM_LAYER_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"

namespace regula {

/// How a layer's forward call treated its input; every context records it.
enum class DrawMode : std::uint8_t {
  identity,  ///< eval mode, or nothing to drop (p = 0): y = x, nothing drawn
  zero,      ///< everything dropped (p = 1): y = 0·x (NaN and ±inf give NaN, as in PyTorch)
  random     ///< noise drawn from the stream
};

/// The train/eval flag of a layer, with PyTorch's spellings. It is a layer's only mutable state:
/// forward and backward are const, so one layer object serves many threads once the flag is set.
class TrainingFlag {
 public:
  /// Training mode (on) or evaluation mode (off), as torch::nn::Module::train.
  void train(bool on = true) noexcept { training_ = on; }
  /// Evaluation mode: forward is the identity.
  void eval() noexcept { training_ = false; }
  /// Whether the layer is in training mode.
  [[nodiscard]] bool is_training() const noexcept { return training_; }

 protected:
  /// The mode of a forward call of a layer whose elements are kept when a 16-bit draw is below
  /// `threshold` (round((1 − p)·2¹⁶)): identity in eval mode or when all are kept, zero when
  /// none is.
  [[nodiscard]] DrawMode draw_mode(std::uint32_t threshold) const noexcept {
    if (!training_ || threshold == 65536U) return DrawMode::identity;
    return threshold == 0U ? DrawMode::zero : DrawMode::random;
  }

 private:
  bool training_ = true;
};

namespace detail {

/// Throws unless p ∈ [0, 1], or p ∈ [0, 1) when `below_one` (NaN is refused).
inline void check_probability(const char* who, const char* param, double p,
                              bool below_one = false) {
  REGULA_EXPECTS(p >= 0.0 && (below_one ? p < 1.0 : p <= 1.0), who, param, " must be in [0, 1",
                 below_one ? ")" : "]", ", got ", p);
}

/// The quantized keep threshold of a drop probability p: round((1 − p)·2¹⁶).
[[nodiscard]] inline std::uint32_t keep_threshold(double p) noexcept {
  return static_cast<std::uint32_t>(std::nearbyint((1.0 - p) * 65536.0));
}

/// check_probability(who, "p", p), then keep_threshold(p): for member initializers.
[[nodiscard]] inline std::uint32_t checked_keep_threshold(const char* who, double p) {
  check_probability(who, "p", p);
  return keep_threshold(p);
}

/// The factor of kept elements for keep threshold t: 2¹⁶/t rounded to T, 0 for t = 0.
template <class T>
[[nodiscard]] T keep_scale(std::uint32_t t) noexcept {
  return t == 0 ? T(0) : static_cast<T>(65536.0 / static_cast<double>(t));
}

/// The trivial modes of a forward or backward call: out = in (identity; nothing is copied when
/// out is in) or out = 0·in (zero). Returns true when the call is done, false for `random`,
/// whose kernel the layer runs.
template <class T>
bool apply_fixed_mode(DrawMode mode, const MatrixCRef<T>& in, MatrixRef<T>& out) {
  switch (mode) {
    case DrawMode::identity:
      if (out.data() != in.data()) out = in;
      return true;
    case DrawMode::zero:
      out = in * T(0);
      return true;
    case DrawMode::random:
      break;
  }
  return false;
}

/// Elements per parallel chunk of the layers' element walks: a multiple of the 128-element
/// dropout tile (two chunks never share a mask word or a Philox tile) and of Gaussian dropout's
/// 4-element block, so no draw straddles two chunks.
inline constexpr std::size_t element_chunk = std::size_t{1} << 16;

/// The element walk of a stream-driven layer's call on `in` writing `out` (out may be in): the
/// call's elements, numbered in column-major order, in fixed chunks of element_chunk run in
/// parallel (core/parallel.hpp); `seg(i, len, in_i, out_i)` gets each run [i, i + len) of one
/// column within a chunk, with pointers to element i in `in` and in `out` (a chunk is one run
/// when both are contiguous). Every element's value depends only on its number, so the result is
/// bitwise the same for any thread count. `seg` must not throw.
template <class T, class F>
void for_each_element_run(const MatrixCRef<T>& in, MatrixRef<T>& out, F&& seg) noexcept {
  const auto rows = static_cast<std::size_t>(in.rows());
  const auto is = static_cast<std::size_t>(in.outerStride());
  const auto os = static_cast<std::size_t>(out.outerStride());
  const bool flat = in.cols() <= 1 || (is == rows && os == rows);
  const T* ip = in.data();
  T* op = out.data();
  parallel_column_segments(static_cast<std::size_t>(in.size()), element_chunk, rows, is, os, flat,
                           [&](std::size_t i, std::size_t len, std::size_t io,
                               std::size_t oo) noexcept { seg(i, len, ip + io, op + oo); });
}

/// Backward's checks of its arguments against the forward call's context: dy has the forward
/// input's shape (rows × cols), `out` (named `out_name`) is dy itself or disjoint from it, and a
/// context of random mode carries this layer's keep threshold (one filled by a layer with
/// another p would give another mask).
template <class T>
void check_backward(const char* who, const MatrixCRef<T>& dy, const char* out_name,
                    const MatrixRef<T>& out, Index rows, Index cols, DrawMode mode,
                    std::uint32_t ctx_threshold, std::uint32_t threshold) {
  REGULA_EXPECTS(dy.rows() == rows && dy.cols() == cols, who,
                 "dy must have the shape of the forward input (", rows, " x ", cols, "), got ",
                 dy.rows(), " x ", dy.cols());
  check_output(who, "dy", dy, out_name, out);
  REGULA_EXPECTS(mode != DrawMode::random || ctx_threshold == threshold, who,
                 "ctx was filled by a layer with another p (keep threshold ", ctx_threshold,
                 ", this layer's ", threshold, ")");
}

}  // namespace detail
}  // namespace regula

#endif  // REGULA_LAYERS_STREAM_LAYER_HPP
