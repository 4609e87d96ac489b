/// @file
/// regula inside libtorch C++ training loops: zero-copy views of CPU tensors as regula matrices,
/// and autograd functions and modules around regula's primitives.
///
/// Compiled only by programs that include it and link libtorch (CMake: `REGULA_WITH_TORCH`,
/// `find_package(Torch)`; Debian's `libtorch-dev` 1.13). A contiguous row-major `(batch, d1, …)`
/// tensor is, byte for byte, regula's `features × batch` column-major matrix with
/// features = d1·d2·…, so the views copy nothing.
#ifndef REGULA_INTEGRATIONS_TORCH_HPP
#define REGULA_INTEGRATIONS_TORCH_HPP

#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <torch/torch.h>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"
#include "regula/losses/binary_kl.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/js.hpp"
#include "regula/losses/kd_kl.hpp"
#include "regula/losses/logit_mse.hpp"
#include "regula/losses/reverse_kl.hpp"
#include "regula/losses/sinkhorn_kd.hpp"
#include "regula/losses/total_variation.hpp"

namespace regula::libtorch {

namespace detail {

template <class T>
constexpr at::ScalarType scalar_type() noexcept {
  return std::is_same_v<T, float> ? at::kFloat : at::kDouble;
}

inline std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";  // its dtype and device would throw
  std::ostringstream os;
  os << t.scalar_type() << " on " << t.device() << " with shape " << t.sizes();
  return os.str();
}

/// Throws unless t is a defined, contiguous CPU tensor of T with at least one dimension.
template <class T>
void check_tensor(const char* who, const char* name, const at::Tensor& t) {
  REGULA_EXPECTS(t.defined(), who, name, " must be a defined tensor");
  REGULA_EXPECTS(t.device().is_cpu(), who, name, " must be a CPU tensor, got ", describe(t));
  REGULA_EXPECTS(t.scalar_type() == scalar_type<T>(), who, name, " must have dtype ",
                 scalar_type<T>(), ", got ", describe(t));
  REGULA_EXPECTS(t.dim() >= 1, who, name, " must have at least one dimension (the batch), got ",
                 describe(t));
  REGULA_EXPECTS(t.is_contiguous(), who, name,
                 " must be contiguous (call .contiguous() first), got strides ", t.strides());
}

/// (features, batch) of a (batch, d1, …) tensor.
inline std::pair<Index, Index> matrix_shape(const at::Tensor& t) {
  const auto batch = t.size(0);
  const auto features = batch == 0 ? Index(0) : t.numel() / batch;
  return {t.dim() == 1 ? Index(1) : features, batch};
}

}  // namespace detail

/// A read-only `features × batch` view of a contiguous CPU tensor of shape (batch, d1, …):
/// features = d1·d2·… (1 for a 1-D tensor). No copy.
/// @throws regula::invalid_argument for an undefined, non-CPU, non-contiguous tensor or another
///         dtype than T (float ↔ torch.float32, double ↔ torch.float64).
template <class T>
[[nodiscard]] Eigen::Map<const Matrix<T>> view(const at::Tensor& t, const char* name = "tensor") {
  detail::check_tensor<T>("regula::libtorch::view", name, t);
  const auto [rows, cols] = detail::matrix_shape(t);
  return Eigen::Map<const Matrix<T>>(t.data_ptr<T>(), rows, cols);
}

/// A writable view, as view().
template <class T>
[[nodiscard]] Eigen::Map<Matrix<T>> mutable_view(at::Tensor& t, const char* name = "tensor") {
  detail::check_tensor<T>("regula::libtorch::mutable_view", name, t);
  const auto [rows, cols] = detail::matrix_shape(t);
  return Eigen::Map<Matrix<T>>(t.data_ptr<T>(), rows, cols);
}

/// Class-index targets: a contiguous 1-D CPU int64 tensor as an Eigen vector, no copy.
[[nodiscard]] inline Eigen::Map<const Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>> labels_view(
    const at::Tensor& t, const char* name = "labels") {
  constexpr const char* who = "regula::libtorch::labels_view";
  REGULA_EXPECTS(t.defined() && t.device().is_cpu() && t.scalar_type() == at::kLong &&
                     t.dim() == 1 && t.is_contiguous(),
                 who, name, " must be a contiguous 1-D CPU int64 tensor, got ",
                 detail::describe(t));
  return {t.data_ptr<std::int64_t>(), t.size(0)};
}

/// The autograd function behind libtorch::dropout. Forward draws the mask from the stream
/// position it is given; backward replays the same position on the incoming gradient, which
/// is dx = dy ⊙ m/(1 − p): no mask is saved, only three integers.
struct DropoutFunction : public torch::autograd::Function<DropoutFunction> {
  /// Forward of the autograd function: y = mask ⊙ x/(1 − p), the mask replayed in backward from its
  /// seed.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double p,
                            bool training, std::int64_t seed, std::int64_t subsequence,
                            std::int64_t offset) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["training"] = training;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["subsequence"] = subsequence;
    ctx->saved_data["offset"] = offset;
    return apply_dropout(x, p, training, seed, subsequence, offset);
  }

  /// Backward: dx = mask ⊙ dy/(1 − p) from the replayed mask.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor dx =
        apply_dropout(grad[0].contiguous(), ctx->saved_data["p"].toDouble(),
                      ctx->saved_data["training"].toBool(), ctx->saved_data["seed"].toInt(),
                      ctx->saved_data["subsequence"].toInt(), ctx->saved_data["offset"].toInt());
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

  /// Dropout of x with rate p from stream (seed, subsequence); x itself in evaluation mode.
  static at::Tensor apply_dropout(const at::Tensor& x, double p, bool training, std::int64_t seed,
                                  std::int64_t subsequence, std::int64_t offset) {
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    Stream s(static_cast<std::uint64_t>(seed), static_cast<std::uint64_t>(subsequence),
             static_cast<std::uint64_t>(offset));
    if (x.scalar_type() == at::kDouble) {
      run<double>(x, y, p, training, s);
    } else {
      run<float>(x, y, p, training, s);
    }
    return y;
  }

  template <class T>
  /// Runs regula::Dropout on x's contiguous float or double buffer into y.
  static void run(const at::Tensor& x, at::Tensor& y, double p, bool training, Stream& s) {
    regula::Dropout<T> layer(DropoutOptions{p});
    layer.train(training);
    // x is checked first (function arguments are evaluated in no fixed order): a bad x must be
    // reported as x, not as the y made from it.
    const auto xv = view<T>(x, "x");
    (void)layer.forward(xv, mutable_view<T>(y, "y"), s);
  }
};

/// y = dropout(x) with regula's Dropout, differentiable through libtorch's autograd. Draws from
/// `stream` and advances it as Dropout::forward does; element order is the tensor's memory
/// order, so the mask equals Dropout::forward's on `view<T>(x)`.
/// @throws regula::invalid_argument for tensors view() refuses (x must be contiguous CPU
///         float32 or float64) or p ∉ [0, 1].
inline at::Tensor dropout(const at::Tensor& x, double p, bool training, Stream& stream) {
  if (x.scalar_type() == at::kDouble) {
    detail::check_tensor<double>("regula::libtorch::dropout", "x", x);
  } else {
    detail::check_tensor<float>("regula::libtorch::dropout", "x", x);
  }
  regula::Dropout<float> probe(DropoutOptions{p});  // validates p, counts the blocks
  probe.train(training);
  const Stream start = stream;
  stream.skip(probe.blocks_used(x.numel()));
  return DropoutFunction::apply(x, p, training, static_cast<std::int64_t>(start.seed()),
                                static_cast<std::int64_t>(start.subsequence()),
                                static_cast<std::int64_t>(start.offset()));
}

/// A `torch::nn::Module` applying regula's Dropout: the module's train()/eval() switch it, and
/// it owns its stream (seeded at construction, advanced by every training forward).
class DropoutImpl : public torch::nn::Module {
 public:
  /// torch::nn::Dropout's constructor shape: rate p, and the stream its masks come from.
  explicit DropoutImpl(double p = 0.5, Stream stream = Stream(0)) : p_(p), stream_(stream) {
    (void)regula::Dropout<float>(DropoutOptions{p});  // validate now, not at the first forward
  }
  /// Dropout in training mode, x itself in eval mode; differentiable.
  at::Tensor forward(const at::Tensor& x) { return dropout(x, p_, is_training(), stream_); }
  /// The stream the next forward draws from (it advances with every training forward).
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }

 private:
  double p_;
  Stream stream_;
};
/// The module holder of DropoutImpl (as torch::nn::Dropout).
TORCH_MODULE(Dropout);

/// The autograd function behind the modules of the dropout family whose forward is linear in x
/// (y = x ⊙ r with r drawn from the stream: nested, Gaussian, channel dropout, DropPath).
/// Backward replays the layer from the saved stream position on the incoming gradient, which
/// gives dx = dy ⊙ r: nothing but the stream position is saved. The layer, reached through
/// `run`, must outlive the backward pass (the modules below own theirs).
struct ReplayFunction : public torch::autograd::Function<ReplayFunction> {
  /// Runs the layer on a contiguous buffer (float or double by the tensor's type).
  using Runner = void (*)(const void* layer, const at::Tensor& in, at::Tensor& out, Stream& stream);

  /// Forward: the layer's output; its randomness is replayed in backward from the saved stream.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const void* layer, Runner run, Stream* stream) {
    // Addresses travel as integers: AutogradContext stores IValues only.
    const std::int64_t layer_address = reinterpret_cast<std::intptr_t>(layer);
    const std::int64_t run_address = reinterpret_cast<std::intptr_t>(run);
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["run"] = run_address;
    ctx->saved_data["seed"] = static_cast<std::int64_t>(stream->seed());
    ctx->saved_data["subsequence"] = static_cast<std::int64_t>(stream->subsequence());
    ctx->saved_data["offset"] = static_cast<std::int64_t>(stream->offset());
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    run(layer, x, y, *stream);
    return y;
  }

  /// Backward: the layer's elementwise factor, replayed, times dy.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const std::intptr_t layer_address = ctx->saved_data["layer"].toInt();
    const std::intptr_t run_address = ctx->saved_data["run"].toInt();
    const auto* layer = reinterpret_cast<const void*>(layer_address);
    const auto run = reinterpret_cast<Runner>(run_address);
    Stream s(static_cast<std::uint64_t>(ctx->saved_data["seed"].toInt()),
             static_cast<std::uint64_t>(ctx->saved_data["subsequence"].toInt()),
             static_cast<std::uint64_t>(ctx->saved_data["offset"].toInt()));
    const at::Tensor dy = grad[0].contiguous();
    at::Tensor dx = at::empty_like(dy, at::MemoryFormat::Contiguous);
    run(layer, dy, dx, s);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

/// The autograd function behind the modules of the dropout family whose forward is affine in x
/// (AlphaDropout: y = a·(x ⊙ m) + (a·α′ + b)·(1 − m)), so that replaying forward on dy would add
/// the shift: forward saves the layer's RandomContext (mode, stream position, keep threshold,
/// shape: a few integers, no mask), backward rebuilds it and runs the layer's own backward
/// (dx = a·m ⊙ dy). The layer must outlive the backward pass (the modules own theirs).
struct ContextFunction : public torch::autograd::Function<ContextFunction> {
  /// Runs the layer's forward on contiguous buffers and returns its context.
  using Forward = RandomContext (*)(const void* layer, const at::Tensor& in, at::Tensor& out,
                                    Stream& stream);
  /// Runs the layer's backward of dy with a context into dx.
  using Backward = void (*)(const void* layer, const at::Tensor& dy, const RandomContext& ctx,
                            at::Tensor& dx);

  /// Forward: the layer's output; its context is saved for backward.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const void* layer, Forward run_forward, Backward run_backward,
                            Stream* stream) {
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    const RandomContext rc = run_forward(layer, x, y, *stream);
    // Addresses travel as integers: AutogradContext stores IValues only.
    const std::int64_t layer_address = reinterpret_cast<std::intptr_t>(layer);
    const std::int64_t backward_address = reinterpret_cast<std::intptr_t>(run_backward);
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["backward"] = backward_address;
    ctx->saved_data["mode"] = static_cast<std::int64_t>(rc.mode);
    ctx->saved_data["seed"] = static_cast<std::int64_t>(rc.stream.seed());
    ctx->saved_data["subsequence"] = static_cast<std::int64_t>(rc.stream.subsequence());
    ctx->saved_data["offset"] = static_cast<std::int64_t>(rc.stream.offset());
    ctx->saved_data["threshold"] = static_cast<std::int64_t>(rc.keep_threshold);
    ctx->saved_data["rows"] = static_cast<std::int64_t>(rc.rows);
    ctx->saved_data["cols"] = static_cast<std::int64_t>(rc.cols);
    return y;
  }

  /// Backward: the layer's backward of dy with the rebuilt context.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto& d = ctx->saved_data;
    const std::intptr_t layer_address = d.at("layer").toInt();
    const std::intptr_t backward_address = d.at("backward").toInt();
    const auto* layer = reinterpret_cast<const void*>(layer_address);
    const auto run_backward = reinterpret_cast<Backward>(backward_address);
    RandomContext rc;
    rc.mode = static_cast<RandomContext::Mode>(d.at("mode").toInt());
    rc.stream = Stream(static_cast<std::uint64_t>(d.at("seed").toInt()),
                       static_cast<std::uint64_t>(d.at("subsequence").toInt()),
                       static_cast<std::uint64_t>(d.at("offset").toInt()));
    rc.keep_threshold = static_cast<std::uint32_t>(d.at("threshold").toInt());
    rc.rows = d.at("rows").toInt();  // Index is int64_t
    rc.cols = d.at("cols").toInt();
    const at::Tensor dy = grad[0].contiguous();
    at::Tensor dx = at::empty_like(dy, at::MemoryFormat::Contiguous);
    run_backward(layer, dy, rc, dx);
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

namespace detail {

/// ContextFunction's runners for a layer of type L on the views of the tensors.
template <class L, class T>
RandomContext context_forward(const void* layer, const at::Tensor& in, at::Tensor& out,
                              Stream& stream) {
  const auto xv = view<T>(in, "x");  // checked before the y made from it
  return static_cast<const L*>(layer)->forward(xv, mutable_view<T>(out, "y"), stream);
}
template <class L, class T>
void context_backward(const void* layer, const at::Tensor& dy, const RandomContext& ctx,
                      at::Tensor& dx) {
  const auto dyv = view<T>(dy, "dy");
  static_cast<const L*>(layer)->backward(dyv, ctx, mutable_view<T>(dx, "dx"));
}

/// ReplayFunction's runner for a layer of type L: y = L::forward(x) on the views of in and out.
template <class L, class T>
void replay_forward(const void* layer, const at::Tensor& in, at::Tensor& out, Stream& stream) {
  const auto& l = *static_cast<const L*>(layer);
  const auto xv = view<T>(in, "x");  // checked before the y made from it
  (void)l.forward(xv, mutable_view<T>(out, "y"), stream);
}

}  // namespace detail

/// A `torch::nn::Module` around a regula layer of the dropout family whose forward is linear in
/// its input. It owns one float and one double instance of the layer (built from the same
/// options) and its stream; train()/eval() switch it; tensors are (batch, features…) as in
/// view().
///
/// `Affine`: the layer's forward is affine, not linear, in x (AlphaDropout); the module then runs
/// through ContextFunction (the layer's own backward from its saved context) instead of
/// ReplayFunction.
template <template <class> class Layer, class Options, bool Affine = false>
class ReplayLayerImpl : public torch::nn::Module {
 public:
  /// A module for the layer built from `options`, drawing from `stream`.
  explicit ReplayLayerImpl(Options options, Stream stream = Stream(0))
      : float_(options), double_(options), stream_(stream) {}
  /// torch::nn's constructor shape for the layers with a rate: `AlphaDropout(0.5)`, the other
  /// options at their defaults.
  template <class O = Options, class = decltype(std::declval<O&>().with_p(0.5))>
  explicit ReplayLayerImpl(double p, Stream stream = Stream(0))
      : ReplayLayerImpl(O{}.with_p(p), stream) {}

  /// The layer in training mode, x itself in eval mode; differentiable.
  at::Tensor forward(const at::Tensor& x) {
    const bool training = is_training();
    float_.train(training);
    double_.train(training);
    if (x.scalar_type() == at::kDouble) {
      detail::check_tensor<double>("regula::libtorch module", "x", x);
      return apply<double>(x, &double_);
    }
    detail::check_tensor<float>("regula::libtorch module", "x", x);
    return apply<float>(x, &float_);
  }

  /// The stream the next forward draws from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// The float layer (the double one has the same options).
  [[nodiscard]] const Layer<float>& layer() const noexcept { return float_; }

 private:
  template <class T>
  at::Tensor apply(const at::Tensor& x, const Layer<T>* layer) {
    if constexpr (Affine) {
      return ContextFunction::apply(x, static_cast<const void*>(layer),
                                    &detail::context_forward<Layer<T>, T>,
                                    &detail::context_backward<Layer<T>, T>, &stream_);
    } else {
      return ReplayFunction::apply(x, static_cast<const void*>(layer),
                                   &detail::replay_forward<Layer<T>, T>, &stream_);
    }
  }

  Layer<float> float_;
  Layer<double> double_;
  Stream stream_;
};

/// regula::NestedDropout as a module: keeps the first b units of each sample (b from the prior).
using NestedDropoutImpl = ReplayLayerImpl<regula::NestedDropout, NestedDropoutOptions>;
/// The module holder of regula's NestedDropout.
TORCH_MODULE(NestedDropout);
/// regula::AlphaDropout as a module (torch::nn::AlphaDropout's semantics: SELU-preserving
/// dropout, identity in eval mode); its gradient is the layer's own backward.
using AlphaDropoutImpl = ReplayLayerImpl<regula::AlphaDropout, AlphaDropoutOptions, true>;
/// The module holder of regula's AlphaDropout.
TORCH_MODULE(AlphaDropout);
/// regula::GaussianDropout as a module.
using GaussianDropoutImpl = ReplayLayerImpl<regula::GaussianDropout, GaussianDropoutOptions>;
/// The module holder of regula's GaussianDropout.
TORCH_MODULE(GaussianDropout);
/// regula::ChannelDropout as a module, with torch::nn::Dropout2d's constructor shape:
/// `ChannelDropout(p)` zeroes whole channels of an N × C × … tensor, C taken from size(1) of each
/// input (as Dropout2d and Dropout3d do; a layer per channel count is kept, so a backward may
/// follow a forward of another shape). `ChannelDropout(ChannelDropoutOptions)` fixes C and the
/// layout instead: an input of three or more dimensions must then have size(1) = C (refused
/// otherwise), and a 2-D (batch, features) input is split into C channels of features/C.
class ChannelDropoutImpl : public torch::nn::Module {
 public:
  /// Channels from each input's size(1).
  /// @throws regula::invalid_argument if p ∉ [0, 1].
  explicit ChannelDropoutImpl(double p = 0.5, Stream stream = Stream(0))
      : ChannelDropoutImpl(ChannelDropoutOptions{}.with_p(p), stream, true) {}
  /// A fixed channel count and layout.
  /// @throws regula::invalid_argument if p ∉ [0, 1] or channels < 1.
  explicit ChannelDropoutImpl(ChannelDropoutOptions options, Stream stream = Stream(0))
      : ChannelDropoutImpl(options, stream, false) {}

  /// y = x with each channel of each sample kept (scaled by 1/(1 − p)) or zeroed; autograd
  /// backward replays the same mask. x: float or double, contiguous, (batch, …).
  /// @throws regula::invalid_argument on a tensor view() refuses, an input with fewer than two
  ///         dimensions (channels inferred) or whose size(1) is not the fixed channel count.
  at::Tensor forward(const at::Tensor& x) {
    constexpr const char* who = "regula::libtorch::ChannelDropout";
    Index channels = options_.channels;
    if (infer_) {
      REGULA_EXPECTS(x.defined() && x.dim() >= 2, who,
                     "x must be (batch, channels, ...) with at least two dimensions to infer the "
                     "channels, got ",
                     detail::describe(x));
      channels = x.size(1);
    } else if (x.defined() && x.dim() >= 3) {
      REGULA_EXPECTS(x.size(1) == options_.channels, who, "x must have size(1) = channels (",
                     options_.channels, "), got ", detail::describe(x));
    }
    Layers& l = layers(channels);
    const bool training = is_training();
    l.f.train(training);
    l.d.train(training);
    if (x.defined() && x.scalar_type() == at::kDouble) {
      detail::check_tensor<double>(who, "x", x);
      return ReplayFunction::apply(x, static_cast<const void*>(&l.d), &run<double>, &stream_);
    }
    detail::check_tensor<float>(who, "x", x);
    return ReplayFunction::apply(x, static_cast<const void*>(&l.f), &run<float>, &stream_);
  }

  /// The stream the next forward draws from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// The options (channels: the fixed count, or 1 when each input's size(1) is used).
  [[nodiscard]] const ChannelDropoutOptions& options() const noexcept { return options_; }
  /// Whether the channel count comes from each input's size(1).
  [[nodiscard]] bool infers_channels() const noexcept { return infer_; }

 private:
  struct Layers {
    explicit Layers(const ChannelDropoutOptions& o) : f(o), d(o) {}
    regula::ChannelDropout<float> f;
    regula::ChannelDropout<double> d;
  };

  ChannelDropoutImpl(ChannelDropoutOptions options, Stream stream, bool infer)
      : options_(options), infer_(infer), stream_(stream) {
    (void)layers(options.channels);  // checks the options now, not at the first forward
  }

  Layers& layers(Index channels) {
    auto& slot = layers_[channels];
    if (!slot)
      slot = std::make_unique<Layers>(ChannelDropoutOptions{options_}.with_channels(channels));
    return *slot;
  }

  template <class T>
  static void run(const void* layer, const at::Tensor& in, at::Tensor& out, Stream& stream) {
    detail::replay_forward<regula::ChannelDropout<T>, T>(layer, in, out, stream);
  }

  ChannelDropoutOptions options_;
  bool infer_;
  std::map<Index, std::unique_ptr<Layers>> layers_;  // stable addresses for pending backwards
  Stream stream_;
};
/// The module holder of ChannelDropoutImpl (as torch::nn::Dropout2d).
TORCH_MODULE(ChannelDropout);
/// regula::DropPath as a module, applied to a residual branch.
using DropPathImpl = ReplayLayerImpl<regula::DropPath, DropPathOptions>;
/// The module holder of regula's DropPath (stochastic depth).
TORCH_MODULE(DropPath);

/// The autograd function behind every fused loss: forward runs regula's loss, which returns the
/// reduced value and writes dL/dlogits in the same pass; backward scales that saved gradient by
/// the incoming one. `Loss` is called as `loss(view<T>(logits), target, dlogits_view)` for T the
/// logits' dtype and returns the loss as a double. Targets (labels, teacher logits) are
/// constants: they receive no gradient.
template <class Loss>
struct FusedLossFunction : public torch::autograd::Function<FusedLossFunction<Loss>> {
  /// Forward: the reduced loss of the logits against the target (labels or teacher logits);
  /// dL/dlogits comes from the same pass and is saved.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& target, const Loss& loss) {
    at::Tensor grad = at::empty_like(logits, at::MemoryFormat::Contiguous);
    double value = 0.0;
    if (logits.scalar_type() == at::kDouble) {
      auto g = mutable_view<double>(grad, "grad");
      value = loss(view<double>(logits, "logits"), target, g);
    } else {
      auto g = mutable_view<float>(grad, "grad");
      value = loss(view<float>(logits, "logits"), target, g);
    }
    ctx->save_for_backward({grad});
    return at::scalar_tensor(value, logits.options());
  }

  /// Backward: the saved gradient times the incoming scalar gradient.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor saved = ctx->get_saved_variables()[0];
    return {saved * grad[0], at::Tensor(), at::Tensor()};
  }
};

namespace detail {

/// Applies a fused loss after checking the logits (contiguous CPU float32/float64, (batch, C)).
template <class Loss>
at::Tensor fused_loss(const char* who, const at::Tensor& logits, const at::Tensor& target,
                      Loss loss) {
  REGULA_EXPECTS(logits.defined() && logits.dim() == 2, who,
                 "logits must be a 2-D (batch, classes) tensor, got ",
                 logits.defined() ? describe(logits) : std::string("an undefined tensor"));
  if (logits.scalar_type() == at::kDouble) {
    check_tensor<double>(who, "logits", logits);
  } else {
    check_tensor<float>(who, "logits", logits);
  }
  return FusedLossFunction<Loss>::apply(logits, target, loss);
}

/// Calls a teacher-based regula loss: `f(z, v, dz)` with v the teacher view of the same dtype.
template <class F>
struct TeacherLoss {
  F f;
  template <class T>
  double operator()(const Eigen::Map<const Matrix<T>>& z, const at::Tensor& teacher,
                    Eigen::Map<Matrix<T>>& dz) const {
    const auto v = view<T>(teacher, "teacher");
    return static_cast<double>(f(z, v, MatrixRef<T>(dz)));
  }
};

template <class F>
TeacherLoss<F> teacher_loss(F f) {
  return TeacherLoss<F>{std::move(f)};
}

/// Calls regula::cross_entropy<Norm> against int64 labels.
template <Normalizer Norm>
struct LabelLoss {
  CrossEntropyOptions options;
  template <class T>
  double operator()(const Eigen::Map<const Matrix<T>>& z, const at::Tensor& y,
                    Eigen::Map<Matrix<T>>& dz) const {
    return static_cast<double>(
        regula::cross_entropy<Norm>(z, labels_view(y, "labels"), MatrixRef<T>(dz), options));
  }
};

}  // namespace detail

/// Cross-entropy of (batch, C) logits against int64 class indices, differentiable: forward is
/// regula::cross_entropy<Norm> (loss and gradient in one pass), backward reuses the gradient.
template <Normalizer Norm = Normalizer::softmax>
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels,
                         const CrossEntropyOptions& options = {}) {
  return detail::fused_loss("regula::libtorch::cross_entropy", logits, labels,
                            detail::LabelLoss<Norm>{options});
}

/// StableMax cross-entropy (Prieto et al., ICLR 2025), differentiable.
inline at::Tensor stablemax_cross_entropy(const at::Tensor& logits, const at::Tensor& labels,
                                          const CrossEntropyOptions& options = {}) {
  return cross_entropy<Normalizer::stablemax>(logits, labels, options);
}

namespace detail {

/// The differentiable libtorch call of a regula distillation loss: `Call` is the loss's function
/// object type (regula::kd_kl's, …), called as `Call{}(z, v, dz, options)`.
template <class Call, class Options>
struct TorchTeacherLoss {
  const char* name;
  /// The loss of (batch, C) student logits against constant teacher logits, differentiable
  /// with respect to the student (forward computes loss and gradient in one pass).
  at::Tensor operator()(const at::Tensor& student, const at::Tensor& teacher,
                        const Options& options = {}) const {
    return fused_loss(name, student, teacher,
                      teacher_loss([options](const auto& z, const auto& v, auto dz) {
                        return Call{}(z, v, dz, options);
                      }));
  }
};

/// regula::sinkhorn_kd (a function template) as a function object for TorchTeacherLoss.
struct SinkhornCall {
  template <class Z, class V, class D>
  auto operator()(const Z& z, const V& v, D dz, const SinkhornKDOptions& options) const {
    return regula::sinkhorn_kd(z, v, dz, options);
  }
};

template <const auto& Loss>
using TorchTeacherLossOf =
    TorchTeacherLoss<std::decay_t<decltype(Loss)>, typename std::decay_t<decltype(Loss)>::Options>;

}  // namespace detail

/// regula::kd_kl, …, of (batch, C) student logits against constant teacher logits,
/// differentiable with respect to the student: `regula::libtorch::kd_kl(student, teacher,
/// options)`.
inline constexpr detail::TorchTeacherLossOf<regula::kd_kl> kd_kl{"regula::libtorch::kd_kl"};
/// regula::reverse_kl on tensors (student, teacher), differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::reverse_kl> reverse_kl{
    "regula::libtorch::reverse_kl"};
/// regula::js on tensors (student, teacher), differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::js> js{"regula::libtorch::js"};
/// regula::total_variation on tensors, differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::total_variation> total_variation{
    "regula::libtorch::total_variation"};
/// regula::binary_kl on tensors, differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::binary_kl> binary_kl{
    "regula::libtorch::binary_kl"};
/// regula::binary_kl_norm on tensors, differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::binary_kl_norm> binary_kl_norm{
    "regula::libtorch::binary_kl_norm"};
/// regula::logit_mse on tensors, differentiable in the student.
inline constexpr detail::TorchTeacherLossOf<regula::logit_mse> logit_mse{
    "regula::libtorch::logit_mse"};
/// regula::sinkhorn_kd on tensors, differentiable in the student.
inline constexpr detail::TorchTeacherLoss<detail::SinkhornCall, SinkhornKDOptions> sinkhorn_kd{
    "regula::libtorch::sinkhorn_kd"};

/// Decoupled KD (Zhao et al., CVPR 2022) of student logits against teacher logits and labels,
/// differentiable with respect to the student.
inline at::Tensor dkd(const at::Tensor& student, const at::Tensor& teacher,
                      const at::Tensor& labels, const DKDOptions& options = {}) {
  (void)labels_view(labels, "labels");  // checked before the autograd call
  return detail::fused_loss(
      "regula::libtorch::dkd", student, teacher,
      detail::teacher_loss([options, labels](const auto& z, const auto& v, auto dz) {
        return regula::dkd(z, v, labels_view(labels, "labels"), dz, options);
      }));
}

}  // namespace regula::libtorch

#endif  // REGULA_INTEGRATIONS_TORCH_HPP
