// Example support (not part of the library): a minimal multilayer perceptron on Eigen with
// hand-written backward passes, and SGD/Adam/AdamW. Samples are columns (features × batch), as
// everywhere in regula.
#ifndef REGULA_EXAMPLES_COMMON_MLP_HPP
#define REGULA_EXAMPLES_COMMON_MLP_HPP

#include <cstdint>
#include <vector>

#include <Eigen/SparseCore>

#include "common/data.hpp"

namespace ex {

/// A batch of sparse inputs (features × batch), e.g. concatenated one-hot codes: the first
/// layer then costs a gather of W's columns instead of a dense product.
using SpMat = Eigen::SparseMatrix<float>;

/// y = W x + b, W out × in. Initialized as PyTorch's nn.Linear: W, b ~ U(−1/√in, 1/√in).
struct Linear {
  Mat w, dw;
  Vec b, db;
  bool bias = true;
  Linear(Index in, Index out, bool with_bias, std::uint64_t seed, std::uint64_t subsequence);
  void forward(const Mat& x, Mat& y) const;
  void forward(const SpMat& x, Mat& y) const;
  /// Accumulates dW += dy xᵀ, db += Σ_cols dy; writes dx = Wᵀ dy when dx is not null.
  void backward(const Mat& x, const Mat& dy, Mat* dx);
  /// The same for a sparse input, without dx (a sparse input is never a gradient's target).
  void backward(const SpMat& x, const Mat& dy);
};

/// in → hidden[0] → … → hidden[n−1] → classes, ReLU after every hidden layer. The last hidden
/// activation is the "feature" h (K = hidden.back() units) that regularizers act on before the
/// linear head.
class Mlp {
 public:
  struct Options {
    Index in = 784;
    std::vector<Index> hidden = {256, 256};
    Index classes = 10;
    bool bias = true;       ///< biases in the trunk's layers
    bool head_bias = true;  ///< bias of the linear head (Chen et al. use a bias-free classifier)
    std::uint64_t seed = 0;
  };
  explicit Mlp(const Options& o);

  /// Forward through the trunk: acts_[i] holds the post-ReLU output of hidden layer i.
  void forward_trunk(const Mat& x);
  void forward_trunk(const SpMat& x);
  /// The feature h (K × batch) of the last forward_trunk call; a regularizer may rewrite it in
  /// place before forward_head.
  Mat& features() { return acts_.back(); }
  [[nodiscard]] Index feature_size() const { return layers_[layers_.size() - 2].w.rows(); }
  /// logits = head(h).
  void forward_head(const Mat& h, Mat& logits) const;
  /// Forward of the whole net without any regularizer.
  void forward(const Mat& x, Mat& logits);
  void forward(const SpMat& x, Mat& logits);

  /// Backward through the head given dlogits and the (possibly regularized) h that went in;
  /// writes dh.
  void backward_head(const Mat& h, const Mat& dlogits, Mat& dh);
  /// Backward through the trunk given dh (gradient w.r.t. the post-ReLU feature); `x` is the
  /// batch of the last forward_trunk.
  void backward_trunk(const Mat& x, Mat& dh);
  void backward_trunk(const SpMat& x, Mat& dh);

  void zero_grad();
  std::vector<Linear>& layers() { return layers_; }
  [[nodiscard]] const std::vector<Linear>& layers() const { return layers_; }
  [[nodiscard]] const Linear& head() const { return layers_.back(); }

 private:
  template <class Input>
  void forward_trunk_impl(const Input& x);
  template <class Input>
  void backward_trunk_impl(const Input& x, Mat& dh);

  std::vector<Linear> layers_;
  std::vector<Mat> acts_;
  Mat grad_;
};

/// The optimizers' common settings. Adam with weight_decay > 0 is AdamW (decoupled decay)
/// when `decoupled`, else L2 added to the gradient (torch.optim.Adam); SGD always adds L2.
struct OptimOptions {
  enum class Kind { sgd, adam } kind = Kind::adam;
  double lr = 1e-3;
  double momentum = 0.9;  ///< SGD
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = true;
};

/// SGD with momentum (PyTorch's form: v = μv + g, p −= lr·v) or Adam/AdamW over every
/// parameter of a network. `lr` and `beta1` may be changed between steps (schedules).
class Optimizer {
 public:
  Optimizer(Mlp& net, const OptimOptions& o);
  /// Over every parameter of `net` and of the extra layers (e.g. an auxiliary head), which
  /// must outlive the optimizer.
  Optimizer(Mlp& net, const std::vector<Linear*>& extra, const OptimOptions& o);
  void step();
  OptimOptions& options() { return o_; }

 private:
  struct Slot {
    float* p;
    float* g;
    Index n;
    Vec m, v;
  };
  OptimOptions o_;
  std::vector<Slot> slots_;
  std::int64_t t_ = 0;
};

/// Copies the parameters (not the gradients) of `from` into `to` (same shapes).
void copy_parameters(const Mlp& from, Mlp& to);

/// Accuracy on `d` of the logits of `nets` averaged (an ensemble of one is the net itself) when
/// only the first k features of each net are kept, k = 1..K (entry k − 1); with `all_k` false
/// only k = K (one entry). Runs forward passes in chunks of 2048 samples.
std::vector<double> accuracy_by_prefix(const std::vector<Mlp*>& nets, const Dataset& d, bool all_k);

/// Accuracy of `nets` averaged with the first `k` features kept, against `d.y` and, when given,
/// against `other_labels` (written to `*other_acc`), from one forward pass.
double accuracy_at(const std::vector<Mlp*>& nets, const Dataset& d, Index k,
                   const std::vector<std::int64_t>* other_labels = nullptr,
                   double* other_acc = nullptr);

/// Index of the largest entry of each column.
void argmax_columns(const Mat& logits, std::vector<std::int64_t>& out);

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_MLP_HPP
