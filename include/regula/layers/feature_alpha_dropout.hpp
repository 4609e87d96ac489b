/// @file
/// Feature alpha dropout: alpha dropout (Klambauer et al., NeurIPS 2017) with one mask per
/// (sample, channel), as PyTorch's FeatureAlphaDropout.
#ifndef REGULA_LAYERS_FEATURE_ALPHA_DROPOUT_HPP
#define REGULA_LAYERS_FEATURE_ALPHA_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/alpha_dropout.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// Options of FeatureAlphaDropout: those of ChannelDropout (rate p of dropping a channel of a
/// sample, default 0.5; the channel count C, which must divide the feature count; the layout).
using FeatureAlphaDropoutOptions = ChannelDropoutOptions;

/// Feature alpha dropout: y[c, s, n] = a·x[c, s, n] + b if m[n, c] = 1, a·α′ + b if 0, with
/// m[n, c] ~ Bernoulli(1 − p) shared by the S positions of channel c of sample n, and
/// AlphaDropout's constants α′ = −1.7580993408473766, a = ((1 − p)(1 + p·α′²))^(−1/2), b = −a·α′·p.
/// Gradient: ∂L/∂x = a·m ⊙ ∂L/∂y with the broadcast mask. Eval and p = 0: identity; p = 1: y = 0·x
/// (ATen's generic branch). A whole channel set to the same value a·α′ + b keeps the mean and
/// variance of SELU-normalised input, as alpha dropout does per element. This is
/// `torch.nn.FeatureAlphaDropout` on an N × C × … tensor; with C equal to the feature count
/// (S = 1) it is AlphaDropout, bit for bit (mask and values).
///
/// **Randomness.** The mask is ChannelDropout's: element n·C + c in Dropout's bit layout, the
/// stream advanced as Dropout's on C·B elements; a and b use the quantized p. a·x is rounded
/// before b is added (never a fused multiply-add), so the values are the same bits on every
/// instruction set and thread count.
///
/// **Aliasing.** y may be x itself (dx may be dy itself); any partial overlap, or the same
/// memory with another layout, throws.
template <class T>
class FeatureAlphaDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::FeatureAlphaDropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = RandomContext;

  /// @throws regula::invalid_argument if p ∉ [0, 1] or channels < 1.
  explicit FeatureAlphaDropout(FeatureAlphaDropoutOptions options = {})
      : options_(options),
        threshold_(detail::checked_keep_threshold("regula::FeatureAlphaDropout", options.p)),
        k_(threshold_) {
    detail::check_channels("regula::FeatureAlphaDropout", options.channels);
  }

  /// The options it was built with.
  [[nodiscard]] const FeatureAlphaDropoutOptions& options() const noexcept { return options_; }
  /// The rate in effect: p quantized to the masks' 16-bit threshold t, 1 − t/65536.
  [[nodiscard]] double effective_p() const noexcept {
    return 1.0 - static_cast<double>(threshold_) / 65536.0;
  }
  /// The affine constant a (the factor of every element).
  [[nodiscard]] T a() const noexcept { return k_.a; }
  /// The affine constant b (the shift of kept elements).
  [[nodiscard]] T b() const noexcept { return k_.b; }
  /// The value of a dropped element, a·α′ + b.
  [[nodiscard]] T dropped_value() const noexcept { return k_.dropped; }

  /// Forward of x into y, drawing from stream; returns the context backward takes.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }
  /// y = a·x + b on kept channels, a·(0·x) + a·α′ + b on dropped ones, in training; y = x in
  /// eval. y may be x itself.
  /// @throws regula::invalid_argument if channels does not divide x.rows(), y's shape differs from
  ///         x's or y partly overlaps x.
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    constexpr const char* who = "regula::FeatureAlphaDropout";
    detail::check_channel_rows(who, options_.channels, "x", x.rows());
    detail::check_output(who, "x", x, "y", y);
    ctx.begin(x.rows(), x.cols(), stream, threshold_, draw_mode(threshold_));
    if (detail::apply_fixed_mode(ctx.mode, x, y)) return;
    stream.skip(kernels::dropout_blocks(static_cast<std::size_t>(options_.channels * x.cols())));
    const detail::AlphaConstants<T> k = k_;
    detail::for_each_channel(ctx.draw(), options_.channels, options_.layout, x, y,
                             [k](bool kept, T v) noexcept {
                               return kernels::detail::alpha_value(kept, v, k.a, k.b, k.dropped);
                             });
  }

  /// dx = a·m ⊙ dy with the forward call's broadcast mask (dx = dy after eval, 0·dy for p = 1).
  /// dx may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, dx's from
  ///         dy's, dx partly overlaps dy, channels does not divide dy.rows(), or ctx was filled
  ///         by a layer with another p.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    constexpr const char* who = "regula::FeatureAlphaDropout::backward";
    detail::check_backward(who, dy, "dx", dx, ctx.rows, ctx.cols, ctx.mode, ctx.keep_threshold,
                           threshold_);
    detail::check_channel_rows(who, options_.channels, "dy", dy.rows());
    if (detail::apply_fixed_mode(ctx.mode, dy, dx)) return;
    const T a = k_.a;
    detail::for_each_channel(ctx.draw(), options_.channels, options_.layout, dy, dx,
                             [a](bool kept, T v) noexcept { return v * (kept ? a : T(0)); });
  }

  /// Whether channel c of sample n was kept by the forward call of ctx.
  [[nodiscard]] bool kept(const Context& ctx, Index c, Index n) const noexcept {
    return detail::channel_kept(ctx, options_.channels, c, n);
  }

 private:
  FeatureAlphaDropoutOptions options_;
  std::uint32_t threshold_;
  detail::AlphaConstants<T> k_;
};

}  // namespace regula

#endif  // REGULA_LAYERS_FEATURE_ALPHA_DROPOUT_HPP
