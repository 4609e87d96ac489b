/// @file
/// DropConnect for a linear layer (Wan et al., ICML 2013): drop weights instead of activations,
/// one weight mask per mini-batch, regenerated from the stream and never stored.
#ifndef REGULA_LAYERS_DROP_CONNECT_HPP
#define REGULA_LAYERS_DROP_CONNECT_HPP

#include <algorithm>
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

/// Options of DropConnect.
struct DropConnectOptions {
  /// Probability of dropping a weight, in [0, 1] (mlpack's default 0.5).
  double p = 0.5;
  /// Sets `p` (chainable).
  DropConnectOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
};

/// What backward needs: the RandomContext of the weight mask, plus a scratch panel of at most
/// `DropConnect::panel` masked weight columns (never the whole masked matrix). Caller-owned and
/// reusable: the panel is sized on the first call.
template <class T>
struct DropConnectContext {
  /// The mask's draw.
  RandomContext random;
  Index in = 0;     ///< the layer's input size
  Index out = 0;    ///< its output size
  Index batch = 0;  ///< the batch of the forward
  /// Scratch for the masked weight panel (kept to avoid allocation).
  Matrix<T> panel;
};

/// DropConnect on a linear layer y = W x + b (W is out × in, x is in × batch): in training
/// y = ((M ⊙ W)/(1 − p)) x + b with M_jk ~ Bernoulli(1 − p), **one mask per mini-batch** (the
/// practical form; the paper's per-example masks cost O(B·|W|)), the bias not masked (as mlpack).
/// Gradients: ∂L/∂x = ((M ⊙ W)/(1 − p))ᵀ ∂L/∂y, ∂L/∂W = (M/(1 − p)) ⊙ (∂L/∂y xᵀ),
/// ∂L/∂b = Σₙ ∂L/∂yₙ. Eval: y = W x + b (the mean network, as libraries do; the paper's Gaussian
/// moment-matching inference is not implemented). p = 1: the weights are 0·W.
///
/// **Randomness and memory.** Weight element k (column-major in W) uses Dropout's bit layout; the
/// stream advances as Dropout's on |W| elements. The masked weights are built `panel` columns at a
/// time in the context's scratch and multiplied at once, so M ⊙ W is never stored; backward
/// regenerates the panels from the stream position. The mask is the same bits everywhere; the
/// values come from Eigen's matrix products, whose blocking and fused multiply-adds depend on
/// the instruction set, so they agree across builds to the product error bound of
/// docs/random.md, not bit for bit.
///
/// **Aliasing.** No output may share memory with any input or with another output (every
/// product reads its inputs after some output was written): any overlap, even exact, throws.
template <class T>
class DropConnect : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::DropConnect<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = DropConnectContext<T>;
  /// Weight columns per masked panel.
  static constexpr Index panel = 64;

  /// @throws regula::invalid_argument if p ∉ [0, 1].
  explicit DropConnect(DropConnectOptions options = {}) : options_(options) {
    detail::check_probability("regula::DropConnect", "p", options.p);
    threshold_ = detail::keep_threshold(options.p);
    scale_ = detail::keep_scale<T>(threshold_);
  }

  /// The options it was built with.
  [[nodiscard]] const DropConnectOptions& options() const noexcept { return options_; }
  /// The factor of kept elements, 1/(1 − p).
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// y = ((M ⊙ W)/(1 − p)) x + b in training, W x + b in eval.
  /// @throws regula::invalid_argument if W.cols() ≠ x.rows(), b.size() ≠ W.rows(), y is not
  ///         W.rows() × x.cols(), or y shares memory with x, W or b.
  void forward(const MatrixCRef<T>& x, const MatrixCRef<T>& W, const VectorCRef<T>& b,
               MatrixRef<T> y, Stream& stream, Context& ctx) const {
    constexpr const char* who = "regula::DropConnect";
    REGULA_EXPECTS(x.cols() > 0, who, "x must hold at least one sample (column), got ", x.rows(),
                   " x ", x.cols());
    REGULA_EXPECTS(W.cols() == x.rows(), who, "W must have one column per feature of x (", x.rows(),
                   "), got ", W.cols());
    REGULA_EXPECTS(b.size() == W.rows(), who, "b must have one entry per row of W (", W.rows(),
                   "), got ", b.size());
    REGULA_EXPECTS(y.rows() == W.rows() && y.cols() == x.cols(), who, "y must be ", W.rows(), " x ",
                   x.cols(), ", got ", y.rows(), " x ", y.cols());
    detail::check_no_overlap(
        who, {detail::region("x", x), detail::region("W", W), detail::region("b", b)},
        {detail::region("y", y)});
    ctx.in = W.cols();
    ctx.out = W.rows();
    ctx.batch = x.cols();
    RandomContext& r = ctx.random;
    r.begin(W.rows(), W.cols(), stream, threshold_, draw_mode(threshold_));
    if (r.mode == DrawMode::identity) {
      y.noalias() = W * x;
    } else if (r.mode == DrawMode::zero) {
      y.noalias() = (W * T(0)) * x;
    } else {
      stream.skip(kernels::dropout_blocks(static_cast<std::size_t>(W.size())));
      size_panel(ctx, W.rows());
      y.setZero();
      for (Index j0 = 0; j0 < W.cols(); j0 += panel) {
        const Index w = std::min(panel, W.cols() - j0);
        auto P = masked_panel(ctx, W, j0, w);
        y.noalias() += P * x.middleRows(j0, w);
      }
    }
    y.colwise() += b;
  }

  /// Writes dx (in × batch), dW (out × in) and db (out) for the forward call of ctx, with the
  /// weight mask regenerated from the stream. Outputs are overwritten.
  /// @throws regula::invalid_argument on shapes that differ from the forward call's, if an output
  ///         shares memory with an input (x, W, dy) or another output, or ctx was filled by a
  ///         layer with another p.
  void backward(const MatrixCRef<T>& x, const MatrixCRef<T>& W, const MatrixCRef<T>& dy,
                Context& ctx, MatrixRef<T> dx, MatrixRef<T> dW, VectorRef<T> db) const {
    constexpr const char* who = "regula::DropConnect::backward";
    REGULA_EXPECTS(W.rows() == ctx.out && W.cols() == ctx.in, who, "W must be ", ctx.out, " x ",
                   ctx.in, " as in forward, got ", W.rows(), " x ", W.cols());
    REGULA_EXPECTS(x.rows() == ctx.in && x.cols() == ctx.batch, who, "x must be ", ctx.in, " x ",
                   ctx.batch, ", got ", x.rows(), " x ", x.cols());
    REGULA_EXPECTS(dy.rows() == ctx.out && dy.cols() == ctx.batch, who, "dy must be ", ctx.out,
                   " x ", ctx.batch, ", got ", dy.rows(), " x ", dy.cols());
    REGULA_EXPECTS(dx.rows() == ctx.in && dx.cols() == ctx.batch, who, "dx must be ", ctx.in, " x ",
                   ctx.batch, ", got ", dx.rows(), " x ", dx.cols());
    REGULA_EXPECTS(dW.rows() == ctx.out && dW.cols() == ctx.in, who, "dW must be ", ctx.out, " x ",
                   ctx.in, ", got ", dW.rows(), " x ", dW.cols());
    REGULA_EXPECTS(db.size() == ctx.out, who, "db must have ", ctx.out, " entries, got ",
                   db.size());
    REGULA_EXPECTS(
        ctx.random.mode != RandomContext::Mode::random || ctx.random.keep_threshold == threshold_,
        who, "ctx was filled by a layer with another p (keep threshold ", ctx.random.keep_threshold,
        ", this layer's ", threshold_, ")");
    detail::check_no_overlap(
        who, {detail::region("x", x), detail::region("W", W), detail::region("dy", dy)},
        {detail::region("dx", dx), detail::region("dW", dW), detail::region("db", db)});
    db.noalias() = dy.rowwise().sum();
    dW.noalias() = dy * x.transpose();
    switch (ctx.random.mode) {
      case RandomContext::Mode::identity:
        dx.noalias() = W.transpose() * dy;
        return;
      case RandomContext::Mode::zero:
        dx.noalias() = (W * T(0)).transpose() * dy;
        dW *= T(0);
        return;
      case RandomContext::Mode::random:
        break;
    }
    // dW ⊙= M/(1 − p): the Dropout kernel on dW's elements, in place, with W's draw.
    const auto d = ctx.random.draw();
    const auto rows = static_cast<std::size_t>(dW.rows());
    for (Index j = 0; j < dW.cols(); ++j) {
      kernels::dropout_segment<T>(d, static_cast<std::size_t>(j) * rows, rows, dW.col(j).data(),
                                  scale_, dW.col(j).data(), nullptr);
    }
    size_panel(ctx, W.rows());
    for (Index j0 = 0; j0 < W.cols(); j0 += panel) {
      const Index w = std::min(panel, W.cols() - j0);
      auto P = masked_panel(ctx, W, j0, w);
      dx.middleRows(j0, w).noalias() = P.transpose() * dy;
    }
  }

 private:
  static void size_panel(Context& ctx, Index rows) {
    const Index cols = std::min(panel, ctx.in);
    if (ctx.panel.rows() != rows || ctx.panel.cols() < cols) ctx.panel.resize(rows, cols);
  }

  /// The masked, scaled columns j0..j0+w−1 of W, in the context's scratch panel.
  auto masked_panel(Context& ctx, const MatrixCRef<T>& W, Index j0, Index w) const noexcept {
    const auto d = ctx.random.draw();
    const auto rows = static_cast<std::size_t>(W.rows());
    for (Index j = 0; j < w; ++j) {
      kernels::dropout_segment<T>(d, static_cast<std::size_t>(j0 + j) * rows, rows,
                                  W.col(j0 + j).data(), scale_, ctx.panel.col(j).data(), nullptr);
    }
    return ctx.panel.leftCols(w);
  }

  DropConnectOptions options_;
  std::uint32_t threshold_ = 0;
  T scale_ = T(1);
};

}  // namespace regula

#endif  // REGULA_LAYERS_DROP_CONNECT_HPP
