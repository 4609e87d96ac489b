/// @file
/// Alpha dropout for SELU networks (Klambauer et al., NeurIPS 2017), with PyTorch's constants.
#ifndef REGULA_LAYERS_ALPHA_DROPOUT_HPP
#define REGULA_LAYERS_ALPHA_DROPOUT_HPP

#include <cmath>
#include <cstddef>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/alpha_dropout.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

namespace detail {

/// The affine constants of alpha dropout at keep threshold t (q = t/2¹⁶ kept, p = 1 − q):
/// a = (q(1 + p·α′²))^(−1/2), b = −a·α′·p and the dropped value a·α′ + b, with α′ = −λα of SELU.
/// Each product is rounded before its sum, so the constants are the same bits on every ISA.
/// Shared by AlphaDropout and FeatureAlphaDropout.
template <class T>
struct AlphaConstants {
  /// −λα of SELU, as in ATen.
  static constexpr double alpha_prime = -1.7580993408473766;
  T a = T(1);        ///< the factor of every element
  T b = T(0);        ///< the shift of kept elements
  T dropped = T(0);  ///< the value of dropped elements, a·α′ + b

  explicit AlphaConstants(std::uint32_t threshold) noexcept {
    if (threshold == 0) return;  // p = 1: the fixed mode gives 0·x, the constants are unused
    const double q = static_cast<double>(threshold) / 65536.0;
    const double pe = 1.0 - q;
    const double ad = 1.0 / std::sqrt(q * (1.0 + simd::opaque(pe * alpha_prime * alpha_prime)));
    const double bd = -ad * alpha_prime * pe;
    a = static_cast<T>(ad);
    b = static_cast<T>(bd);
    dropped = static_cast<T>(simd::opaque(ad * alpha_prime) + bd);
  }
};

}  // namespace detail

/// Options of AlphaDropout: `p` is the probability of dropping an element (PyTorch's meaning).
struct AlphaDropoutOptions {
  /// The drop rate, in [0, 1].
  double p = 0.5;
  /// Sets `p` (chainable).
  AlphaDropoutOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
};

/// Alpha dropout: kept elements give a·x + b, dropped ones a·α′ + b, with m ~ Bernoulli(1 − p),
/// α′ = −λα = −1.7580993408473766 (SELU's negative saturation), a = ((1 − p)(1 + p·α′²))^(−1/2),
/// b = −a·α′·p. For SELU-normalised input (mean 0, variance 1) the output keeps mean 0 and
/// variance 1. Gradient: ∂L/∂x = a·m ⊙ ∂L/∂y. Eval and p = 0: identity; p = 1: y = 0·x (ATen's
/// generic branch).
///
/// **Randomness.** The mask is Dropout's (same bits, same quantized p: a and b use the
/// effective p = 1 − round((1 − p)·2¹⁶)/2¹⁶); the stream advances as Dropout's. a·x is rounded
/// before b is added (two roundings, as ATen; never a fused multiply-add), so the values are the
/// same bits on every instruction set and thread count.
///
/// **Aliasing.** y may be x itself (dx may be dy itself); any partial overlap, or the same
/// memory with another layout, throws.
template <class T>
class AlphaDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::AlphaDropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = RandomContext;
  /// −λα of SELU, as in ATen.
  static constexpr double alpha_prime = detail::AlphaConstants<T>::alpha_prime;

  /// @throws regula::invalid_argument if p ∉ [0, 1].
  explicit AlphaDropout(AlphaDropoutOptions options = {})
      : options_(options),
        threshold_(detail::checked_keep_threshold("regula::AlphaDropout", options.p)),
        k_(threshold_) {}

  /// The options it was built with.
  [[nodiscard]] const AlphaDropoutOptions& options() const noexcept { return options_; }
  /// The rate in effect: p quantized to the masks' 16-bit threshold t, 1 − t/65536.
  [[nodiscard]] double effective_p() const noexcept {
    return 1.0 - static_cast<double>(threshold_) / 65536.0;
  }
  /// The affine constants a, b and the value of a dropped element a·α′ + b.
  [[nodiscard]] T a() const noexcept { return k_.a; }
  /// The affine constant b.
  [[nodiscard]] T b() const noexcept { return k_.b; }
  /// The value of a dropped element, a·α′ + b.
  [[nodiscard]] T dropped_value() const noexcept { return k_.dropped; }

  /// Forward of x into y, drawing from stream; returns the context backward takes.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }
  /// y = a·(x ⊙ m) + (m ? b : a·α′ + b) in training; y = x in eval. y may be x itself.
  /// @throws regula::invalid_argument if y's shape differs from x's or y partly overlaps x.
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    detail::check_output("regula::AlphaDropout", "x", x, "y", y);
    ctx.begin(x.rows(), x.cols(), stream, threshold_, draw_mode(threshold_));
    if (detail::apply_fixed_mode(ctx.mode, x, y)) return;
    stream.skip(kernels::dropout_blocks(static_cast<std::size_t>(x.size())));
    const auto d = ctx.draw();
    detail::for_each_element_run(
        x, y, [&](std::size_t i0, std::size_t len, const T* in, T* out) noexcept {
          kernels::alpha_dropout_segment(d, i0, len, in, k_.a, k_.b, k_.dropped, out);
        });
  }

  /// dx = a·m ⊙ dy with the forward call's mask (dx = dy after eval, 0·dy for p = 1). dx may be
  /// dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, dx's from
  ///         dy's, dx partly overlaps dy, or ctx was filled by a layer with another p.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    detail::check_backward("regula::AlphaDropout::backward", dy, "dx", dx, ctx.rows, ctx.cols,
                           ctx.mode, ctx.keep_threshold, threshold_);
    if (detail::apply_fixed_mode(ctx.mode, dy, dx)) return;
    const auto d = ctx.draw();
    detail::for_each_element_run(
        dy, dx, [&](std::size_t i0, std::size_t len, const T* in, T* out) noexcept {
          kernels::dropout_segment<T>(d, i0, len, in, k_.a, out, nullptr);
        });
  }

 private:
  AlphaDropoutOptions options_;
  std::uint32_t threshold_;
  detail::AlphaConstants<T> k_;
};

}  // namespace regula

#endif  // REGULA_LAYERS_ALPHA_DROPOUT_HPP
