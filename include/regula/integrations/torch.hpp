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

#include <torch/torch.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/stream.hpp"
#include "regula/layers/dropout.hpp"

namespace regula::libtorch {

namespace detail {

template <class T>
constexpr at::ScalarType scalar_type() noexcept {
  return std::is_same_v<T, float> ? at::kFloat : at::kDouble;
}

inline std::string describe(const at::Tensor& t) {
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
  REGULA_EXPECTS(t.defined() && t.device().is_cpu() && t.scalar_type() == at::kLong && t.dim() == 1 &&
                     t.is_contiguous(),
                 who, name, " must be a contiguous 1-D CPU int64 tensor, got ", detail::describe(t));
  return {t.data_ptr<std::int64_t>(), t.size(0)};
}

/// The autograd function behind libtorch::dropout. Forward draws the mask from the stream
/// position it is given; backward replays the same position on the incoming gradient, which
/// is dx = dy ⊙ m/(1 − p): no mask is saved, only three integers.
struct DropoutFunction : public torch::autograd::Function<DropoutFunction> {
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

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor dx = apply_dropout(grad[0].contiguous(), ctx->saved_data["p"].toDouble(),
                                        ctx->saved_data["training"].toBool(),
                                        ctx->saved_data["seed"].toInt(),
                                        ctx->saved_data["subsequence"].toInt(),
                                        ctx->saved_data["offset"].toInt());
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

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
  static void run(const at::Tensor& x, at::Tensor& y, double p, bool training, Stream& s) {
    regula::Dropout<T> layer(DropoutOptions{p});
    layer.train(training);
    (void)layer.forward(view<T>(x, "x"), mutable_view<T>(y, "y"), s);
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
  explicit DropoutImpl(double p = 0.5, Stream stream = Stream(0)) : p_(p), stream_(stream) {
    (void)regula::Dropout<float>(DropoutOptions{p});  // validate now, not at the first forward
  }
  at::Tensor forward(const at::Tensor& x) { return dropout(x, p_, is_training(), stream_); }
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }

 private:
  double p_;
  Stream stream_;
};
TORCH_MODULE(Dropout);

}  // namespace regula::libtorch

#endif  // REGULA_INTEGRATIONS_TORCH_HPP
