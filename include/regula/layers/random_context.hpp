/// @file
/// The context shared by the structured dropout variants: where a forward call's randomness came
/// from, so backward can recompute it instead of storing a mask.
#ifndef REGULA_LAYERS_RANDOM_CONTEXT_HPP
#define REGULA_LAYERS_RANDOM_CONTEXT_HPP

#include <cmath>
#include <cstdint>

#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// What backward needs from a forward call of GaussianDropout, AlphaDropout, ChannelDropout,
/// DropPath or DropConnect: how the call treated its input, the stream position its noise came
/// from, the keep threshold of Bernoulli masks and the input shape. A few words, no mask.
struct RandomContext {
  /// How forward treated its input.
  using Mode = DrawMode;
  /// How forward treated its input (identity in eval mode).
  Mode mode = Mode::identity;
  /// Stream position of the first block the forward call used.
  Stream stream{0};
  /// Keep threshold t of Bernoulli masks (kept when a 16-bit draw is below t); 0 when unused.
  std::uint32_t keep_threshold = 0;
  /// Rows of the forward's input.
  Index rows = 0;
  /// Columns of the forward's input.
  Index cols = 0;

  /// The draw descriptor of the dropout kernels at the recorded position.
  [[nodiscard]] kernels::DropoutDraw draw() const noexcept {
    return {stream.key(), stream.subsequence(), stream.offset(), keep_threshold};
  }
  /// Records the start of a forward call on a rows × cols input in `mode`.
  void begin(Index r, Index c, const Stream& s, std::uint32_t threshold, Mode m) noexcept {
    rows = r;
    cols = c;
    stream = s;
    keep_threshold = threshold;
    mode = m;
  }
};

}  // namespace regula

#endif  // REGULA_LAYERS_RANDOM_CONTEXT_HPP
