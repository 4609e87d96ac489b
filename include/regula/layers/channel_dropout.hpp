/// @file
/// Channel (spatial) dropout: one mask per (sample, channel), broadcast over the channel's
/// spatial positions (Tompson et al., CVPR 2015; PyTorch Dropout1d/2d/3d, Keras SpatialDropout).
#ifndef REGULA_LAYERS_CHANNEL_DROPOUT_HPP
#define REGULA_LAYERS_CHANNEL_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// How the C·S features of one sample (one column) are laid out.
enum class ChannelLayout : std::uint8_t {
  channel_major,  ///< feature c·S + s: channel c's S positions are contiguous (NCHW, PyTorch)
  channel_last    ///< feature s·C + c: the channels of one position are contiguous (NHWC, Keras)
};

namespace detail {

/// Throws unless C ≥ 1.
inline void check_channels(const char* who, Index channels) {
  REGULA_EXPECTS(channels >= 1, who, "channels must be at least 1, got ", channels);
}

/// Throws unless C divides the feature count (rows) of the matrix called `name`.
inline void check_channel_rows(const char* who, Index channels, const char* name, Index rows) {
  REGULA_EXPECTS(rows % channels == 0, who, "channels (", channels,
                 ") must divide the feature count of ", name, ", got ", rows, " features");
}

/// The walk of the channel-structured layers: for every sample n and channel c, the keep bit
/// n·C + c of the draw (Dropout's bit layout on C·B elements), then out[i] = op(kept, in[i]) for
/// the S = rows/C features i of channel c in the given layout. out may be in.
template <class T, class Op>
void for_each_channel(const kernels::DropoutDraw& draw, Index channels, ChannelLayout layout,
                      const MatrixCRef<T>& in, MatrixRef<T>& out, Op op) noexcept {
  const auto C = static_cast<std::size_t>(channels);
  const auto S = static_cast<std::size_t>(in.rows()) / C;
  kernels::KeepBits bits{draw};
  for (Index n = 0; n < in.cols(); ++n) {
    const T* xp = in.col(n).data();
    T* yp = out.col(n).data();
    for (std::size_t c = 0; c < C; ++c) {
      const bool kept = bits(static_cast<std::uint64_t>(n) * C + c);
      if (layout == ChannelLayout::channel_major) {
        for (std::size_t s = 0; s < S; ++s) yp[c * S + s] = op(kept, xp[c * S + s]);
      } else {
        for (std::size_t s = 0; s < S; ++s) yp[s * C + c] = op(kept, xp[s * C + c]);
      }
    }
  }
}

/// Whether channel c of sample n was kept by the forward call of ctx (C channels).
[[nodiscard]] inline bool channel_kept(const RandomContext& ctx, Index channels, Index c,
                                       Index n) noexcept {
  if (ctx.mode != RandomContext::Mode::random) return ctx.mode == RandomContext::Mode::identity;
  kernels::KeepBits bits{ctx.draw()};
  return bits(static_cast<std::uint64_t>(n * channels + c));
}

}  // namespace detail

/// Options of ChannelDropout.
struct ChannelDropoutOptions {
  /// Probability of dropping a channel of a sample, in [0, 1] (default 0.5, as PyTorch).
  double p = 0.5;
  /// C, the number of channels; it must divide the feature count of x.
  Index channels = 1;
  /// Whether channels are the slow (channel-major) or the fast index of a sample's features.
  ChannelLayout layout = ChannelLayout::channel_major;
  /// Sets `p` (chainable).
  ChannelDropoutOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
  /// Sets `channels` (chainable).
  ChannelDropoutOptions& with_channels(Index v) noexcept { return detail::set(*this, channels, v); }
  /// Sets `layout` (chainable).
  ChannelDropoutOptions& with_layout(ChannelLayout v) noexcept {
    return detail::set(*this, layout, v);
  }
};

/// Channel dropout: y[c, s, n] = x[c, s, n]·m[n, c]/(1 − p), m[n, c] ~ Bernoulli(1 − p), the same
/// factor for all S spatial positions of channel c of sample n. Gradient: the same broadcast mask
/// times ∂L/∂y. Eval and p = 0: identity; p = 1: y = 0·x. Unlike PyTorch there is no unbatched
/// form: x is always features × batch.
///
/// **Randomness.** Mask element n·C + c uses Dropout's bit layout (same quantized p and scale);
/// the stream advances as Dropout's on C·B elements. Values are x times the factor 0 or
/// 1/(1 − p): one rounding, the same bits on every instruction set and thread count.
///
/// **Aliasing.** y may be x itself (dx may be dy itself); any partial overlap, or the same
/// memory with another layout, throws.
template <class T>
class ChannelDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::ChannelDropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = RandomContext;

  /// @throws regula::invalid_argument if p ∉ [0, 1] or channels < 1.
  explicit ChannelDropout(ChannelDropoutOptions options = {}) : options_(options) {
    detail::check_probability("regula::ChannelDropout", "p", options.p);
    detail::check_channels("regula::ChannelDropout", options.channels);
    threshold_ = detail::keep_threshold(options.p);
    scale_ = detail::keep_scale<T>(threshold_);
  }

  /// The options it was built with.
  [[nodiscard]] const ChannelDropoutOptions& options() const noexcept { return options_; }
  /// The factor of kept elements, 1/(1 − p).
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// y = x ⊙ mask/(1 − p) with one mask bit per (channel, sample); returns the context for
  /// backward.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }
  /// @throws regula::invalid_argument if channels does not divide x.rows(), y's shape differs from
  ///         x's or y partly overlaps x.
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    detail::check_channel_rows("regula::ChannelDropout", options_.channels, "x", x.rows());
    detail::check_output("regula::ChannelDropout", "x", x, "y", y);
    ctx.begin(x.rows(), x.cols(), stream, threshold_, draw_mode(threshold_));
    if (detail::apply_fixed_mode(ctx.mode, x, y)) return;
    stream.skip(kernels::dropout_blocks(static_cast<std::size_t>(options_.channels * x.cols())));
    apply(ctx, x, y);
  }

  /// dx = dy ⊙ the broadcast mask of the forward call, times 1/(1 − p). dx may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, dx's from
  ///         dy's, dx partly overlaps dy, channels does not divide dy.rows(), or ctx was filled
  ///         by a layer with another p.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    constexpr const char* who = "regula::ChannelDropout::backward";
    detail::check_backward(who, dy, "dx", dx, ctx.rows, ctx.cols, ctx.mode, ctx.keep_threshold,
                           threshold_);
    detail::check_channel_rows(who, options_.channels, "dy", dy.rows());
    if (detail::apply_fixed_mode(ctx.mode, dy, dx)) return;
    apply(ctx, dy, dx);
  }

  /// Whether channel c of sample n was kept by the forward call of ctx.
  [[nodiscard]] bool kept(const Context& ctx, Index c, Index n) const noexcept {
    return detail::channel_kept(ctx, options_.channels, c, n);
  }

 private:
  void apply(const Context& ctx, const MatrixCRef<T>& x, MatrixRef<T>& y) const noexcept {
    const T scale = scale_;
    detail::for_each_channel(
        ctx.draw(), options_.channels, options_.layout, x, y,
        [scale](bool kept, T v) noexcept { return v * (kept ? scale : T(0)); });
  }

  ChannelDropoutOptions options_;
  std::uint32_t threshold_ = 0;
  T scale_ = T(1);
};

}  // namespace regula

#endif  // REGULA_LAYERS_CHANNEL_DROPOUT_HPP
