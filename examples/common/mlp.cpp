#include "common/mlp.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <regula/core/stream.hpp>

namespace ex {

Linear::Linear(Index in, Index out, bool with_bias, std::uint64_t seed, std::uint64_t subsequence)
    : w(out, in), dw(Mat::Zero(out, in)), b(Vec::Zero(out)), db(Vec::Zero(out)), bias(with_bias) {
  regula::Stream s(seed, subsequence);
  s.uniform(w.data(), static_cast<std::size_t>(w.size()));
  const float bound = 1.0F / std::sqrt(static_cast<float>(in));
  w = (w.array() * 2.0F - 1.0F) * bound;
  if (bias) {
    s.uniform(b.data(), static_cast<std::size_t>(b.size()));
    b = (b.array() * 2.0F - 1.0F) * bound;
  }
}

void Linear::forward(const Mat& x, Mat& y) const {
  y.resize(w.rows(), x.cols());
  y.noalias() = w * x;
  if (bias) y.colwise() += b;
}

void Linear::forward(const SpMat& x, Mat& y) const {
  y.resize(w.rows(), x.cols());
  y.noalias() = w * x;
  if (bias) y.colwise() += b;
}

void Linear::backward(const SpMat& x, const Mat& dy) {
  dw.noalias() += dy * x.transpose();
  if (bias) db += dy.rowwise().sum();
}

void Linear::backward(const Mat& x, const Mat& dy, Mat* dx) {
  dw.noalias() += dy * x.transpose();
  if (bias) db += dy.rowwise().sum();
  if (dx != nullptr) {
    dx->resize(w.cols(), dy.cols());
    dx->noalias() = w.transpose() * dy;
  }
}

Mlp::Mlp(const Options& o) {
  Index in = o.in;
  std::uint64_t sub = 0;
  for (const Index h : o.hidden) {
    layers_.emplace_back(in, h, o.bias, o.seed, sub++);
    in = h;
  }
  layers_.emplace_back(in, o.classes, o.head_bias, o.seed, sub);
  acts_.resize(o.hidden.size());
}

template <class Input>
void Mlp::forward_trunk_impl(const Input& x) {
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
    if (i == 0) {
      layers_[i].forward(x, acts_[i]);
    } else {
      layers_[i].forward(acts_[i - 1], acts_[i]);
    }
    acts_[i] = acts_[i].cwiseMax(0.0F);
  }
}

void Mlp::forward_trunk(const Mat& x) { forward_trunk_impl(x); }
void Mlp::forward_trunk(const SpMat& x) { forward_trunk_impl(x); }

void Mlp::forward_head(const Mat& h, Mat& logits) const { layers_.back().forward(h, logits); }

void Mlp::forward(const Mat& x, Mat& logits) {
  forward_trunk(x);
  forward_head(acts_.back(), logits);
}

void Mlp::forward(const SpMat& x, Mat& logits) {
  forward_trunk(x);
  forward_head(acts_.back(), logits);
}

void Mlp::backward_head(const Mat& h, const Mat& dlogits, Mat& dh) {
  layers_.back().backward(h, dlogits, &dh);
}

template <class Input>
void Mlp::backward_trunk_impl(const Input& x, Mat& dh) {
  // dh is the gradient w.r.t. the post-ReLU output of the last hidden layer.
  for (std::size_t k = layers_.size() - 1; k-- > 0;) {
    dh = (acts_[k].array() > 0.0F).select(dh, 0.0F);
    if (k == 0) {
      if constexpr (std::is_same_v<Input, SpMat>) {
        layers_[k].backward(x, dh);
      } else {
        layers_[k].backward(x, dh, nullptr);
      }
    } else {
      layers_[k].backward(acts_[k - 1], dh, &grad_);
      dh.swap(grad_);
    }
  }
}

void Mlp::backward_trunk(const Mat& x, Mat& dh) { backward_trunk_impl(x, dh); }
void Mlp::backward_trunk(const SpMat& x, Mat& dh) { backward_trunk_impl(x, dh); }

void Mlp::zero_grad() {
  for (Linear& l : layers_) {
    l.dw.setZero();
    l.db.setZero();
  }
}

Optimizer::Optimizer(Mlp& net, const OptimOptions& o) : Optimizer(net, {}, o) {}

Optimizer::Optimizer(Mlp& net, const std::vector<Linear*>& extra, const OptimOptions& o) : o_(o) {
  std::vector<Linear*> all;
  for (Linear& l : net.layers()) all.push_back(&l);
  all.insert(all.end(), extra.begin(), extra.end());
  for (Linear* l : all) {
    slots_.push_back(
        {l->w.data(), l->dw.data(), l->w.size(), Vec::Zero(l->w.size()), Vec::Zero(l->w.size())});
    if (l->bias)
      slots_.push_back(
          {l->b.data(), l->db.data(), l->b.size(), Vec::Zero(l->b.size()), Vec::Zero(l->b.size())});
  }
}

void Optimizer::step() {
  ++t_;
  const auto lr = static_cast<float>(o_.lr);
  const auto wd = static_cast<float>(o_.weight_decay);
  for (Slot& s : slots_) {
    Eigen::Map<Eigen::ArrayXf> p(s.p, s.n);
    Eigen::Map<Eigen::ArrayXf> g(s.g, s.n);
    if (o_.kind == OptimOptions::Kind::sgd) {
      if (wd != 0.0F) g += wd * p;
      s.m.array() = static_cast<float>(o_.momentum) * s.m.array() + g;
      p -= lr * s.m.array();
      continue;
    }
    if (wd != 0.0F) {
      if (o_.decoupled) {
        p *= 1.0F - lr * wd;
      } else {
        g += wd * p;
      }
    }
    const auto b1 = static_cast<float>(o_.beta1), b2 = static_cast<float>(o_.beta2);
    s.m.array() = b1 * s.m.array() + (1.0F - b1) * g;
    s.v.array() = b2 * s.v.array() + (1.0F - b2) * g.square();
    const auto c1 = static_cast<float>(1.0 - std::pow(o_.beta1, static_cast<double>(t_)));
    const auto c2 = static_cast<float>(1.0 - std::pow(o_.beta2, static_cast<double>(t_)));
    const float step = lr / c1;
    p -= step * s.m.array() / ((s.v.array() / c2).sqrt() + static_cast<float>(o_.eps));
  }
}

void copy_parameters(const Mlp& from, Mlp& to) {
  for (std::size_t i = 0; i < from.layers().size(); ++i) {
    to.layers()[i].w = from.layers()[i].w;
    to.layers()[i].b = from.layers()[i].b;
  }
}

void argmax_columns(const Mat& logits, std::vector<std::int64_t>& out) {
  out.resize(static_cast<std::size_t>(logits.cols()));
  for (Index j = 0; j < logits.cols(); ++j) {
    Index best = 0;
    logits.col(j).maxCoeff(&best);
    out[static_cast<std::size_t>(j)] = best;
  }
}

}  // namespace ex

namespace ex {

std::vector<double> accuracy_by_prefix(const std::vector<Mlp*>& nets, const Dataset& d,
                                       bool all_k) {
  const Index features = nets.front()->feature_size();
  const Index classes = nets.front()->head().w.rows();
  const Index first_k = all_k ? 1 : features;
  std::vector<std::int64_t> correct(static_cast<std::size_t>(features - first_k + 1), 0);
  const float inv = 1.0F / static_cast<float>(nets.size());
  std::vector<Mat> h(nets.size());
  Mat z;
  constexpr Index chunk = 2048;
  for (Index begin = 0; begin < d.size(); begin += chunk) {
    const Index n = std::min(chunk, d.size() - begin);
    const Mat x = d.x.middleCols(begin, n);
    z = Mat::Zero(classes, n);
    for (std::size_t m = 0; m < nets.size(); ++m) {
      nets[m]->forward_trunk(x);
      h[m] = nets[m]->features();
      const Linear& head = nets[m]->head();
      if (head.bias) z.colwise() += inv * head.b;
      if (!all_k) z.noalias() += inv * (head.w * h[m]);
    }
    for (Index k = first_k; k <= features; ++k) {
      if (all_k) {
        for (std::size_t m = 0; m < nets.size(); ++m) {
          z.noalias() += (inv * nets[m]->head().w.col(k - 1)) * h[m].row(k - 1);
        }
      }
      std::int64_t ok = 0;
      for (Index j = 0; j < n; ++j) {
        Index best = 0;
        z.col(j).maxCoeff(&best);
        ok += best == d.y[static_cast<std::size_t>(begin + j)] ? 1 : 0;
      }
      correct[static_cast<std::size_t>(k - first_k)] += ok;
    }
  }
  std::vector<double> acc(correct.size());
  for (std::size_t i = 0; i < acc.size(); ++i) {
    acc[i] = static_cast<double>(correct[i]) / static_cast<double>(d.size());
  }
  return acc;
}

double accuracy_at(const std::vector<Mlp*>& nets, const Dataset& d, Index k,
                   const std::vector<std::int64_t>* other_labels, double* other_acc) {
  const Index features = nets.front()->feature_size();
  std::int64_t hits = 0, other_hits = 0;
  Mat z, zm;
  std::vector<std::int64_t> pred;
  constexpr Index chunk = 2048;
  for (Index begin = 0; begin < d.size(); begin += chunk) {
    const Index n = std::min(chunk, d.size() - begin);
    const Mat x = d.x.middleCols(begin, n);
    z = Mat::Zero(nets.front()->head().w.rows(), n);
    for (Mlp* net : nets) {
      net->forward_trunk(x);
      Mat& h = net->features();
      if (k < features) h.bottomRows(features - k).setZero();
      net->forward_head(h, zm);
      z += zm;
    }
    argmax_columns(z, pred);
    for (Index j = 0; j < n; ++j) {
      const auto i = static_cast<std::size_t>(begin + j);
      hits += pred[static_cast<std::size_t>(j)] == d.y[i] ? 1 : 0;
      if (other_labels != nullptr)
        other_hits += pred[static_cast<std::size_t>(j)] == (*other_labels)[i] ? 1 : 0;
    }
  }
  if (other_acc != nullptr)
    *other_acc = static_cast<double>(other_hits) / static_cast<double>(d.size());
  return static_cast<double>(hits) / static_cast<double>(d.size());
}

}  // namespace ex
