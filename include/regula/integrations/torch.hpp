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

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/feature_alpha_dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
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

/// The layer on x, differentiable: through ReplayFunction when its forward is linear in x,
/// through ContextFunction (its own backward from the saved context) when it is affine.
template <bool Affine, class L, class T>
at::Tensor apply_layer(const at::Tensor& x, const L* layer, Stream* stream) {
  if constexpr (Affine) {
    return ContextFunction::apply(x, static_cast<const void*>(layer), &context_forward<L, T>,
                                  &context_backward<L, T>, stream);
  } else {
    return ReplayFunction::apply(x, static_cast<const void*>(layer), &replay_forward<L, T>, stream);
  }
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
      return detail::apply_layer<Affine, Layer<double>, double>(x, &double_, &stream_);
    }
    detail::check_tensor<float>("regula::libtorch module", "x", x);
    return detail::apply_layer<Affine, Layer<float>, float>(x, &float_, &stream_);
  }

  /// The stream the next forward draws from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// The float layer (the double one has the same options).
  [[nodiscard]] const Layer<float>& layer() const noexcept { return float_; }

 private:
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
namespace detail {

/// The name a channel-structured module gives in its errors.
template <template <class> class Layer>
constexpr const char* channel_module_name() noexcept {
  return std::is_same_v<Layer<float>, regula::ChannelDropout<float>>
             ? "regula::libtorch::ChannelDropout"
             : "regula::libtorch::FeatureAlphaDropout";
}

}  // namespace detail

/// A `torch::nn::Module` around a channel-structured layer (ChannelDropout, FeatureAlphaDropout),
/// with torch::nn::Dropout2d's and FeatureAlphaDropout's constructor shape: `Module(p)` drops
/// whole channels of an N × C × … tensor, C taken from size(1) of each input (as torch's layers
/// do; a layer per channel count is kept, so a backward may follow a forward of another shape).
/// `Module(ChannelDropoutOptions)` fixes C and the layout instead: an input of three or more
/// dimensions must then have size(1) = C (refused otherwise), and a 2-D (batch, features) input is
/// split into C channels of features/C. `Affine`: the layer's forward is affine in x
/// (FeatureAlphaDropout), so its backward is the layer's own from the saved context.
template <template <class> class Layer, bool Affine>
class ChannelLayerImpl : public torch::nn::Module {
 public:
  /// Channels from each input's size(1).
  /// @throws regula::invalid_argument if p ∉ [0, 1].
  explicit ChannelLayerImpl(double p = 0.5, Stream stream = Stream(0))
      : ChannelLayerImpl(ChannelDropoutOptions{}.with_p(p), stream, true) {}
  /// A fixed channel count and layout.
  /// @throws regula::invalid_argument if p ∉ [0, 1] or channels < 1.
  explicit ChannelLayerImpl(ChannelDropoutOptions options, Stream stream = Stream(0))
      : ChannelLayerImpl(options, stream, false) {}

  /// The layer on x in training mode (each channel of each sample kept or dropped as a whole), x
  /// itself in eval mode; differentiable. x: float or double, contiguous, (batch, …).
  /// @throws regula::invalid_argument on a tensor view() refuses, an input with fewer than two
  ///         dimensions (channels inferred) or whose size(1) is not the fixed channel count.
  at::Tensor forward(const at::Tensor& x) {
    constexpr const char* who = detail::channel_module_name<Layer>();
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
      return detail::apply_layer<Affine, Layer<double>, double>(x, &l.d, &stream_);
    }
    detail::check_tensor<float>(who, "x", x);
    return detail::apply_layer<Affine, Layer<float>, float>(x, &l.f, &stream_);
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
    Layer<float> f;
    Layer<double> d;
  };

  ChannelLayerImpl(ChannelDropoutOptions options, Stream stream, bool infer)
      : options_(options), infer_(infer), stream_(stream) {
    (void)layers(options.channels);  // checks the options now, not at the first forward
  }

  Layers& layers(Index channels) {
    auto& slot = layers_[channels];
    if (!slot)
      slot = std::make_unique<Layers>(ChannelDropoutOptions{options_}.with_channels(channels));
    return *slot;
  }

  ChannelDropoutOptions options_;
  bool infer_;
  std::map<Index, std::unique_ptr<Layers>> layers_;  // stable addresses for pending backwards
  Stream stream_;
};

/// regula::ChannelDropout as a module (torch::nn::Dropout2d/3d: channels zeroed, the rest scaled
/// by 1/(1 − p)).
using ChannelDropoutImpl = ChannelLayerImpl<regula::ChannelDropout, false>;
/// The module holder of regula's ChannelDropout (as torch::nn::Dropout2d).
TORCH_MODULE(ChannelDropout);
/// regula::FeatureAlphaDropout as a module (torch::nn::FeatureAlphaDropout: alpha dropout of whole
/// channels, identity in eval mode).
using FeatureAlphaDropoutImpl = ChannelLayerImpl<regula::FeatureAlphaDropout, true>;
/// The module holder of regula's FeatureAlphaDropout (as torch::nn::FeatureAlphaDropout).
TORCH_MODULE(FeatureAlphaDropout);
/// regula::DropPath as a module, applied to a residual branch.
using DropPathImpl = ReplayLayerImpl<regula::DropPath, DropPathOptions>;
/// The module holder of regula's DropPath (stochastic depth).
TORCH_MODULE(DropPath);

namespace detail {

/// A read-only view of a contiguous 1-D CPU tensor of T as a vector (a bias), no copy.
template <class T>
[[nodiscard]] Eigen::Map<const Vector<T>> vector_view(const char* who, const at::Tensor& t,
                                                      const char* name, Index size) {
  check_tensor<T>(who, name, t);
  REGULA_EXPECTS(t.dim() == 1 && t.size(0) == size, who, name, " must be a 1-D tensor of ", size,
                 " entries, got ", describe(t));
  return {t.data_ptr<T>(), size};
}

/// A writable vector view of a 1-D tensor created by the caller.
template <class T>
[[nodiscard]] Eigen::Map<Vector<T>> mutable_vector_view(at::Tensor& t) {
  return {t.data_ptr<T>(), t.numel()};
}

/// The (out, in) weight of a torch::nn::Linear-shaped module as regula's out × in column-major
/// matrix: `weight.t()` made contiguous, which is the parameter's own memory when it keeps the
/// layout the modules create (strides (1, out)) and a copy otherwise.
inline at::Tensor column_major_weight(const at::Tensor& weight) { return weight.t().contiguous(); }

/// An (out, in) parameter stored column-major (strides (1, out)), so that regula's out × in
/// matrix is its memory: torch::nn::Linear's shape, regula's layout.
inline at::Tensor column_major_parameter(std::int64_t out, std::int64_t in) {
  return torch::empty({in, out}).t();
}

/// torch::nn::Linear's initialization of (weight, bias): Kaiming-uniform with a = √5 (bound
/// 1/√in) and bias U(−1/√in, 1/√in).
inline void linear_init(at::Tensor& weight, at::Tensor& bias) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound =
        weight.size(1) > 0 ? 1.0 / std::sqrt(static_cast<double>(weight.size(1))) : 0.0;
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

/// The float and double DropConnect layers of one module (built from the same options).
struct DropConnectLayers {
  regula::DropConnect<float> f;
  regula::DropConnect<double> d;
};

}  // namespace detail

/// The autograd function behind the DropConnect module: y = ((M ⊙ W)/(1 − p)) x + b on
/// (batch, in) × (out, in) tensors. Forward saves x, the column-major weight and the mask's
/// RandomContext (no mask); backward regenerates the mask and writes dx, dW and db with
/// regula::DropConnect::backward.
struct DropConnectFunction : public torch::autograd::Function<DropConnectFunction> {
  /// Forward: y (batch, out) from x (batch, in), weight (out, in) and bias (out, or empty for
  /// none).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias, const void* layers,
                            Stream* stream) {
    const at::Tensor w = detail::column_major_weight(weight);
    at::Tensor y = at::empty({x.size(0), weight.size(0)}, x.options());
    const auto& l = *static_cast<const detail::DropConnectLayers*>(layers);
    const RandomContext rc = x.scalar_type() == at::kDouble
                                 ? run_forward<double>(l.d, x, w, bias, y, *stream)
                                 : run_forward<float>(l.f, x, w, bias, y, *stream);
    ctx->save_for_backward({x, w});
    auto& d = ctx->saved_data;
    const std::int64_t layers_address = reinterpret_cast<std::intptr_t>(layers);
    d["layers"] = layers_address;
    d["bias"] = bias.numel() > 0;
    d["mode"] = static_cast<std::int64_t>(rc.mode);
    d["seed"] = static_cast<std::int64_t>(rc.stream.seed());
    d["subsequence"] = static_cast<std::int64_t>(rc.stream.subsequence());
    d["offset"] = static_cast<std::int64_t>(rc.stream.offset());
    d["threshold"] = static_cast<std::int64_t>(rc.keep_threshold);
    return y;
  }

  /// Backward: dx, dW (in the weight's (out, in) shape) and db (when there is a bias).
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];  // (in, out) contiguous: regula's out × in
    const auto& d = ctx->saved_data;
    const std::intptr_t layers_address = d.at("layers").toInt();
    const auto& l = *reinterpret_cast<const detail::DropConnectLayers*>(layers_address);
    RandomContext rc;
    rc.mode = static_cast<RandomContext::Mode>(d.at("mode").toInt());
    rc.stream = Stream(static_cast<std::uint64_t>(d.at("seed").toInt()),
                       static_cast<std::uint64_t>(d.at("subsequence").toInt()),
                       static_cast<std::uint64_t>(d.at("offset").toInt()));
    rc.keep_threshold = static_cast<std::uint32_t>(d.at("threshold").toInt());
    rc.rows = w.size(1);
    rc.cols = w.size(0);
    const at::Tensor dy = grad[0].contiguous();
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor dwt = at::empty_like(w, at::MemoryFormat::Contiguous);
    at::Tensor db = at::empty({w.size(1)}, w.options());
    if (x.scalar_type() == at::kDouble) {
      run_backward<double>(l.d, rc, x, w, dy, dx, dwt, db);
    } else {
      run_backward<float>(l.f, rc, x, w, dy, dx, dwt, db);
    }
    return {dx, dwt.t(), d.at("bias").toBool() ? db : at::Tensor(), at::Tensor(), at::Tensor()};
  }

 private:
  template <class T>
  static RandomContext run_forward(const regula::DropConnect<T>& layer, const at::Tensor& x,
                                   const at::Tensor& w, const at::Tensor& bias, at::Tensor& y,
                                   Stream& stream) {
    constexpr const char* who = "regula::libtorch::DropConnect";
    const auto xv = view<T>(x, "x");
    const auto wv = view<T>(w, "weight");
    DropConnectContext<T> c;
    if (bias.numel() > 0) {
      const auto b = detail::vector_view<T>(who, bias, "bias", w.size(1));
      layer.forward(xv, wv, b, mutable_view<T>(y, "y"), stream, c);
    } else {
      const Vector<T> zero = Vector<T>::Zero(w.size(1));
      layer.forward(xv, wv, zero, mutable_view<T>(y, "y"), stream, c);
    }
    return c.random;
  }

  template <class T>
  static void run_backward(const regula::DropConnect<T>& layer, const RandomContext& rc,
                           const at::Tensor& x, const at::Tensor& w, const at::Tensor& dy,
                           at::Tensor& dx, at::Tensor& dwt, at::Tensor& db) {
    DropConnectContext<T> c;
    c.random = rc;
    c.in = w.size(0);
    c.out = w.size(1);
    c.batch = x.size(0);
    auto dbv = detail::mutable_vector_view<T>(db);
    layer.backward(view<T>(x, "x"), view<T>(w, "weight"), view<T>(dy, "dy"), c,
                   mutable_view<T>(dx, "dx"), mutable_view<T>(dwt, "dW"), dbv);
  }
};

/// DropConnect (Wan et al., ICML 2013) as a linear module with torch::nn::Linear's shape: weight
/// (out, in) and bias (out) parameters with Linear's initialization, y = x Wᵀ + b over the last
/// dimension of x. In training the weights are masked, **one mask per forward call** (the whole
/// mini-batch), y = x ((M ⊙ W)/(1 − p))ᵀ + b, the mask drawn from the module's stream and
/// regenerated in backward (never stored); in eval mode y = x Wᵀ + b, the mean network. PyTorch
/// has no such layer; in eval it is torch::nn::Linear.
///
/// The weight is stored column-major (strides (1, out)), which is regula's out × in matrix: the
/// layer reads the parameter's memory, no copy. A weight replaced by one of another layout is
/// copied at each forward (same values, same masks).
class DropConnectImpl : public torch::nn::Module {
 public:
  /// An in → out linear layer with drop rate p on its weights.
  /// @throws regula::invalid_argument if p ∉ [0, 1] or a size is below 1.
  DropConnectImpl(std::int64_t in_features, std::int64_t out_features, double p = 0.5,
                  Stream stream = Stream(0), bool with_bias = true)
      : DropConnectImpl(in_features, out_features, DropConnectOptions{}.with_p(p), stream,
                        with_bias) {}
  /// The same with the layer's options.
  DropConnectImpl(std::int64_t in_features, std::int64_t out_features, DropConnectOptions options,
                  Stream stream = Stream(0), bool with_bias = true)
      : layers_(std::make_unique<detail::DropConnectLayers>(detail::DropConnectLayers{
            regula::DropConnect<float>(options), regula::DropConnect<double>(options)})),
        stream_(stream) {
    constexpr const char* who = "regula::libtorch::DropConnect";
    REGULA_EXPECTS(in_features >= 1, who, "in_features must be at least 1, got ", in_features);
    REGULA_EXPECTS(out_features >= 1, who, "out_features must be at least 1, got ", out_features);
    weight =
        register_parameter("weight", detail::column_major_parameter(out_features, in_features));
    if (with_bias) bias = register_parameter("bias", torch::empty({out_features}));
    detail::linear_init(weight, bias);
  }

  /// y = x Wᵀ + b with masked weights in training; differentiable in x, weight and bias. x: float
  /// or double of the parameters' dtype, (…, in).
  /// @throws regula::invalid_argument if x is not a CPU tensor of the parameters' dtype whose last
  ///         dimension is in_features, or is empty.
  at::Tensor forward(const at::Tensor& x) {
    constexpr const char* who = "regula::libtorch::DropConnect";
    const std::int64_t in = weight.size(1);
    REGULA_EXPECTS(x.defined() && x.dim() >= 1 && x.size(-1) == in && x.numel() > 0, who,
                   "x must be a non-empty (..., in_features = ", in, ") tensor, got ",
                   detail::describe(x));
    REGULA_EXPECTS(x.scalar_type() == weight.scalar_type(), who,
                   "x must have the parameters' dtype (", weight.scalar_type(), "), got ",
                   detail::describe(x));
    const bool training = is_training();
    layers_->f.train(training);
    layers_->d.train(training);
    const at::Tensor x2 = x.reshape({-1, in}).contiguous();
    if (x.scalar_type() == at::kDouble) {
      detail::check_tensor<double>(who, "x", x2);
    } else {
      detail::check_tensor<float>(who, "x", x2);
    }
    // autograd::Function takes defined tensors only: no bias travels as an empty one.
    const at::Tensor b = bias.defined() ? bias : at::empty({0}, weight.options());
    at::Tensor y = DropConnectFunction::apply(x2, weight, b, layers_.get(), &stream_);
    std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    return y.reshape(shape);
  }

  /// The stream the next training forward draws its weight mask from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// The float layer (the double one has the same options).
  [[nodiscard]] const regula::DropConnect<float>& layer() const noexcept { return layers_->f; }

  /// (out, in), stored column-major.
  at::Tensor weight;
  /// (out), or undefined without a bias.
  at::Tensor bias;

 private:
  std::unique_ptr<detail::DropConnectLayers> layers_;  // a stable address for pending backwards
  Stream stream_;
};
/// The module holder of DropConnectImpl.
TORCH_MODULE(DropConnect);

namespace detail {

/// The layers and contexts of one MultiSampleDropout module: the context is reused by every
/// forward (no allocation after the first), so one forward's backward must run before the next
/// forward; `generation` counts forwards to refuse a stale backward.
struct MultiSampleState {
  using Loss = PerSampleCrossEntropy<>;
  MultiSampleState(const MultiSampleDropoutOptions& o, const CrossEntropyOptions& ce)
      : f(o, Loss{ce}), d(o, Loss{ce}) {}
  regula::MultiSampleDropout<float, Loss> f;
  regula::MultiSampleDropout<double, Loss> d;
  MultiSampleDropoutContext<float> cf;
  MultiSampleDropoutContext<double> cd;
  std::int64_t generation = 0;
};

}  // namespace detail

/// The autograd function behind the MultiSampleDropout module: the loss L of the M dropout
/// samples through the shared head, differentiable in h, weight and bias (regula's fused forward
/// and backward; the masks are recomputed from the stream, never stored).
struct MultiSampleDropoutFunction : public torch::autograd::Function<MultiSampleDropoutFunction> {
  /// Forward: L of h (batch, in) through weight (classes, in) and bias (classes) against labels.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& labels, void* state, Stream* stream) {
    constexpr const char* who = "regula::libtorch::MultiSampleDropout";
    auto& s = *static_cast<detail::MultiSampleState*>(state);
    const at::Tensor w = detail::column_major_weight(weight);
    const auto y = labels_view(labels, "labels");
    double loss = 0.0;
    if (h.scalar_type() == at::kDouble) {
      const auto hv = view<double>(h, "h");
      loss =
          s.d.forward(hv, view<double>(w, "weight"),
                      detail::vector_view<double>(who, bias, "bias", w.size(1)), y, *stream, s.cd);
    } else {
      const auto hv = view<float>(h, "h");
      loss = static_cast<double>(
          s.f.forward(hv, view<float>(w, "weight"),
                      detail::vector_view<float>(who, bias, "bias", w.size(1)), y, *stream, s.cf));
    }
    ctx->save_for_backward({h, w});
    const std::int64_t state_address = reinterpret_cast<std::intptr_t>(state);
    ctx->saved_data["state"] = state_address;
    ctx->saved_data["generation"] = ++s.generation;
    return at::scalar_tensor(loss, h.options());
  }

  /// Backward: ∂L/∂h, ∂L/∂W, ∂L/∂b times the incoming scalar gradient.
  /// @throws regula::invalid_argument if another forward of the module ran since this one (its
  ///         context holds that call now).
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const std::intptr_t state_address = ctx->saved_data["state"].toInt();
    auto& s = *reinterpret_cast<detail::MultiSampleState*>(state_address);
    REGULA_EXPECTS(ctx->saved_data["generation"].toInt() == s.generation,
                   "regula::libtorch::MultiSampleDropout::backward",
                   "another forward of this module ran after the one being differentiated (the "
                   "module keeps one context, reused by every forward); run backward before the "
                   "next forward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& h = saved[0];
    const at::Tensor& w = saved[1];  // (in, classes) contiguous: regula's classes × in
    at::Tensor dh = at::empty_like(h, at::MemoryFormat::Contiguous);
    at::Tensor dwt = at::empty_like(w, at::MemoryFormat::Contiguous);
    at::Tensor db = at::empty({w.size(1)}, w.options());
    if (h.scalar_type() == at::kDouble) {
      auto dbv = detail::mutable_vector_view<double>(db);
      s.d.backward(view<double>(w, "weight"), s.cd, mutable_view<double>(dh, "dh"),
                   mutable_view<double>(dwt, "dW"), dbv);
    } else {
      auto dbv = detail::mutable_vector_view<float>(db);
      s.f.backward(view<float>(w, "weight"), s.cf, mutable_view<float>(dh, "dh"),
                   mutable_view<float>(dwt, "dW"), dbv);
    }
    const at::Tensor& g = grad[0];
    return {dh * g, dwt.t() * g, db * g, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

/// Multi-sample dropout (Inoue, 2019) as a module: M dropout samples of the features h through one
/// shared linear head (weight (classes, in), bias (classes), torch::nn::Linear's shape and
/// initialization) with the cross-entropy of each sample averaged — dropout, head and loss in one
/// module, as regula::MultiSampleDropout. `forward(h, labels)` returns the loss, differentiable in
/// h and the parameters; `logits(h)` is the head without dropout, for prediction. In eval mode
/// forward is the loss of the head once. Labels: int64 class indices (batch).
///
/// The module keeps one context (the fused buffers, reused without allocation after the first
/// call): the backward of a forward must run before the next forward (a stale backward throws).
class MultiSampleDropoutImpl : public torch::nn::Module {
 public:
  /// An in → classes head with M dropout samples as `options` says, the masks from `stream`, and
  /// the cross-entropy options `loss` (label smoothing, ignore_index).
  /// @throws regula::invalid_argument on bad options (MultiSampleDropout's or the loss's) or a size
  ///         below 1.
  MultiSampleDropoutImpl(std::int64_t in_features, std::int64_t classes,
                         MultiSampleDropoutOptions options = {}, Stream stream = Stream(0),
                         CrossEntropyOptions loss = {})
      : state_(std::make_unique<detail::MultiSampleState>(options, loss)), stream_(stream) {
    constexpr const char* who = "regula::libtorch::MultiSampleDropout";
    REGULA_EXPECTS(in_features >= 1, who, "in_features must be at least 1, got ", in_features);
    REGULA_EXPECTS(classes >= 1, who, "classes must be at least 1, got ", classes);
    (void)CrossEntropyLoss<float>(loss);  // checks the loss options now, not at the first forward
    weight = register_parameter("weight", detail::column_major_parameter(classes, in_features));
    bias = register_parameter("bias", torch::empty({classes}));
    detail::linear_init(weight, bias);
  }

  /// The loss L of the M dropout samples (training) or of the head once (eval); differentiable.
  /// h: (batch, in) float or double of the parameters' dtype; labels: 1-D int64 (batch).
  /// @throws regula::invalid_argument on tensors of another dtype, shape or device, labels outside
  ///         [0, classes), or an empty batch.
  at::Tensor forward(const at::Tensor& h, const at::Tensor& labels) {
    constexpr const char* who = "regula::libtorch::MultiSampleDropout";
    REGULA_EXPECTS(h.defined() && h.dim() == 2 && h.size(1) == weight.size(1), who,
                   "h must be a (batch, in_features = ", weight.size(1), ") tensor, got ",
                   detail::describe(h));
    REGULA_EXPECTS(h.scalar_type() == weight.scalar_type(), who,
                   "h must have the parameters' dtype (", weight.scalar_type(), "), got ",
                   detail::describe(h));
    (void)labels_view(labels, "labels");  // checked before the autograd call
    const bool training = is_training();
    state_->f.train(training);
    state_->d.train(training);
    return MultiSampleDropoutFunction::apply(h, weight, bias, labels, state_.get(), &stream_);
  }

  /// The head's logits without dropout, h Wᵀ + b (batch, classes): prediction.
  at::Tensor logits(const at::Tensor& h) const { return torch::linear(h, weight, bias); }

  /// The stream the next training forward draws its M masks from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// The float layer (the double one has the same options).
  [[nodiscard]] const regula::MultiSampleDropout<float, PerSampleCrossEntropy<>>& layer()
      const noexcept {
    return state_->f;
  }

  /// (classes, in), stored column-major.
  at::Tensor weight;
  /// (classes).
  at::Tensor bias;

 private:
  std::unique_ptr<detail::MultiSampleState> state_;  // a stable address for pending backwards
  Stream stream_;
};
/// The module holder of MultiSampleDropoutImpl.
TORCH_MODULE(MultiSampleDropout);

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
