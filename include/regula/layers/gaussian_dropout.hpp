/// @file
/// Gaussian (multiplicative) dropout (Srivastava et al., JMLR 2014, §10; Keras GaussianDropout).
#ifndef REGULA_LAYERS_GAUSSIAN_DROPOUT_HPP
#define REGULA_LAYERS_GAUSSIAN_DROPOUT_HPP

#include <cmath>
#include <cstddef>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/gaussian_dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// Options of GaussianDropout: `p` is the rate of the Bernoulli dropout whose variance is
/// matched (Keras's `rate`).
struct GaussianDropoutOptions {
  /// In [0, 1); the noise variance is α = p/(1 − p). Default 0.5 (α = 1).
  double p = 0.5;
  /// Sets `p` (chainable).
  GaussianDropoutOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
};

/// Gaussian dropout: y = x ⊙ r with rᵢ ~ N(1, α) i.i.d., α = p/(1 − p), so E[y] = x and
/// Var[y] = x²·p/(1 − p), as inverted Bernoulli dropout. r may be negative (intended).
/// Gradient: ∂L/∂x = ∂L/∂y ⊙ r, r regenerated from the stream. Eval and p = 0: identity.
///
/// **Randomness.** rᵢ = 1 + √α·zᵢ with zᵢ element i (column-major) of `Stream::normal` at the
/// call's position (|z| ≤ 6.66); the stream advances ⌈n/4⌉ blocks. √α·zᵢ is rounded before 1 is
/// added (no fused multiply-add), so the values are the same bits on every instruction set and
/// thread count, given the same C library's log, cos and sin (docs/random.md).
///
/// **Aliasing.** y may be x itself (dx may be dy itself); any partial overlap, or the same
/// memory with another layout, throws.
template <class T>
class GaussianDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::GaussianDropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = RandomContext;

  /// @throws regula::invalid_argument if p ∉ [0, 1).
  explicit GaussianDropout(GaussianDropoutOptions options = {}) : options_(options) {
    detail::check_probability("regula::GaussianDropout", "p", options.p, /*below_one=*/true);
    sigma_ = std::sqrt(options.p / (1.0 - options.p));
  }

  /// The options it was built with.
  [[nodiscard]] const GaussianDropoutOptions& options() const noexcept { return options_; }
  /// The standard deviation √(p/(1 − p)) of the multiplier.
  [[nodiscard]] double stddev() const noexcept { return sigma_; }

  /// y = x ⊙ r (train), y = x (eval or p = 0). y may be x itself.
  /// @throws regula::invalid_argument if y's shape differs from x's or y partly overlaps x.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }
  /// y = x ⊙ ξ, ξ ~ N(1, p/(1 − p)), into a context reused across calls.
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    detail::check_output("regula::GaussianDropout", "x", x, "y", y);
    // No mask: the multiplier is N(1, σ²), identity where nothing is drawn (eval, p = 0).
    ctx.begin(x.rows(), x.cols(), stream, 0,
              is_training() && options_.p > 0.0 ? Context::Mode::random : Context::Mode::identity);
    if (detail::apply_fixed_mode(ctx.mode, x, y)) return;
    stream.skip(kernels::gaussian_blocks(static_cast<std::size_t>(x.size())));
    apply(ctx, x, y);
  }

  /// dx = dy ⊙ r with the r of the forward call (dx = dy after eval). dx may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, or dx's
  ///         from dy's, or dx partly overlaps dy.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    detail::check_backward("regula::GaussianDropout::backward", dy, "dx", dx, ctx.rows, ctx.cols,
                           ctx.mode, ctx.keep_threshold, 0U);
    if (detail::apply_fixed_mode(ctx.mode, dy, dx)) return;
    apply(ctx, dy, dx);
  }

 private:
  void apply(const Context& ctx, const MatrixCRef<T>& x, MatrixRef<T>& y) const noexcept {
    detail::for_each_element_run(
        x, y, [&](std::size_t i0, std::size_t len, const T* in, T* out) noexcept {
          kernels::gaussian_multiply_segment(ctx.stream, i0, len, in, sigma_, out);
        });
  }

  GaussianDropoutOptions options_;
  double sigma_ = 1.0;
};

}  // namespace regula

#endif  // REGULA_LAYERS_GAUSSIAN_DROPOUT_HPP
