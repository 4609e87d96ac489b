/// @file
/// DropPath / stochastic depth (Huang et al., ECCV 2016) in its modern inverted form (timm
/// DropPath, torchvision stochastic_depth): drop a residual branch per sample or per batch.
#ifndef REGULA_LAYERS_DROP_PATH_HPP
#define REGULA_LAYERS_DROP_PATH_HPP

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

/// One draw per sample ("row", timm and torchvision's default) or one for the whole batch.
enum class DropPathMode : std::uint8_t { row, batch };

/// Options of DropPath.
struct DropPathOptions {
  /// Probability of dropping the branch, in [0, 1] (timm's drop_prob; default 0.1).
  double p = 0.1;
  /// One draw per sample (row, the default) or one for the whole batch.
  DropPathMode mode = DropPathMode::row;
  /// Sets `p` (chainable).
  DropPathOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
  /// Sets `mode` (chainable).
  DropPathOptions& with_mode(DropPathMode v) noexcept { return detail::set(*this, mode, v); }
};

/// DropPath on a residual branch f(x): y = f ⊙ mₙ/(1 − p) with mₙ ~ Bernoulli(1 − p) per sample
/// (row) or one m for the batch, broadcast over the sample's features; `forward_residual` gives
/// out = x + f ⊙ m/(1 − p). Gradient with respect to the branch: ∂L/∂f = ∂L/∂out ⊙ m/(1 − p) (the
/// identity path receives ∂L/∂out unchanged). Eval and p = 0: identity; p = 1: 0·f (torchvision
/// divides only when the survival rate is positive).
///
/// **Randomness.** Mask element n (row) or 0 (batch) of Dropout's bit layout; the stream advances
/// as Dropout's on B elements (row) or 1 element (batch). Values: f·factor is one rounding, and
/// the residual sum x + f·factor rounds the product before adding (never a fused multiply-add),
/// so both are the same bits on every instruction set and thread count.
///
/// **Aliasing.** An output may be exactly one of the inputs the function's comment names; any
/// partial overlap with any input, or the same memory with another layout, throws.
template <class T>
class DropPath : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::DropPath<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = RandomContext;

  /// @throws regula::invalid_argument if p ∉ [0, 1].
  explicit DropPath(DropPathOptions options = {}) : options_(options) {
    detail::check_probability("regula::DropPath", "p", options.p);
    threshold_ = detail::keep_threshold(options.p);
    scale_ = detail::keep_scale<T>(threshold_);
  }

  /// The options it was built with.
  [[nodiscard]] const DropPathOptions& options() const noexcept { return options_; }
  /// The factor of kept elements, 1/(1 − p).
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// y = f ⊙ m/(1 − p). y may be `branch` itself.
  /// @throws regula::invalid_argument if y's shape differs from branch's or y partly overlaps it.
  [[nodiscard]] Context forward(const MatrixCRef<T>& branch, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(branch, y, stream, ctx);
    return ctx;
  }
  /// y = branch ⊙ keep/(1 − p) per sample, into a context reused across calls.
  void forward(const MatrixCRef<T>& branch, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    detail::check_output("regula::DropPath", "branch", branch, "y", y);
    draw(branch, stream, ctx);
    apply(ctx, branch, y, nullptr);
  }

  /// out = x + f ⊙ m/(1 − p) (the residual sum). out may be x or branch itself (x and branch may
  /// overlap each other: both are only read).
  /// @throws regula::invalid_argument if branch's or out's shape differs from x's, or out partly
  ///         overlaps x or branch.
  void forward_residual(const MatrixCRef<T>& x, const MatrixCRef<T>& branch, MatrixRef<T> out,
                        Stream& stream, Context& ctx) const {
    detail::check_same_shape("regula::DropPath", "branch", branch, "x", x);
    detail::check_output("regula::DropPath", "x", x, "out", out);
    detail::check_output("regula::DropPath", "branch", branch, "out", out);
    draw(branch, stream, ctx);
    apply(ctx, branch, out, &x);
  }

  /// ∂L/∂f = dy ⊙ m/(1 − p) with the forward call's mask (for forward_residual, dy is ∂L/∂out;
  /// ∂L/∂x of the identity path is dy itself). dbranch may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, dbranch's
  ///         from dy's, dbranch partly overlaps dy, or ctx was filled by a layer with another p.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dbranch) const {
    detail::check_backward("regula::DropPath::backward", dy, "dbranch", dbranch, ctx.rows, ctx.cols,
                           ctx.mode, ctx.keep_threshold, threshold_);
    apply(ctx, dy, dbranch, nullptr);
  }

  /// Whether sample n's branch was kept by the forward call of ctx.
  [[nodiscard]] bool kept(const Context& ctx, Index n) const noexcept {
    if (ctx.mode != Context::Mode::random) return ctx.mode == Context::Mode::identity;
    kernels::KeepBits bits{ctx.draw()};
    return bits(options_.mode == DropPathMode::row ? static_cast<std::uint64_t>(n) : 0U);
  }

 private:
  void draw(const MatrixCRef<T>& branch, Stream& stream, Context& ctx) const {
    ctx.begin(branch.rows(), branch.cols(), stream, threshold_, draw_mode(threshold_));
    if (ctx.mode == Context::Mode::random) {
      const auto draws =
          options_.mode == DropPathMode::row ? static_cast<std::size_t>(branch.cols()) : 1U;
      stream.skip(kernels::dropout_blocks(draws));
    }
  }

  /// out = [x +] in ⊙ factor(n), factor from the context's mode and mask.
  void apply(const Context& ctx, const MatrixCRef<T>& in, MatrixRef<T>& out,
             const MatrixCRef<T>* x) const {
    kernels::KeepBits bits{ctx.draw()};
    for (Index n = 0; n < in.cols(); ++n) {
      T f = T(1);
      if (ctx.mode == Context::Mode::zero) f = T(0);
      if (ctx.mode == Context::Mode::random) {
        f = bits(options_.mode == DropPathMode::row ? static_cast<std::uint64_t>(n) : 0U) ? scale_
                                                                                          : T(0);
      }
      if (x != nullptr) {
        kernels::scale_add(in.col(n).data(), static_cast<std::size_t>(in.rows()), f,
                           x->col(n).data(), out.col(n).data());
      } else {
        out.col(n) = in.col(n) * f;
      }
    }
  }

  DropPathOptions options_;
  std::uint32_t threshold_ = 0;
  T scale_ = T(1);
};

}  // namespace regula

#endif  // REGULA_LAYERS_DROP_PATH_HPP
