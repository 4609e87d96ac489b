// Sweep rows of the libtorch integration (integrations/torch.hpp), built with REGULA_WITH_TORCH.
#include <cmath>

#include <torch/torch.h>

#include "regula/integrations/torch.hpp"

#include "sweep/sweep.hpp"

namespace regula::sweep {
namespace {

namespace lt = regula::libtorch;
using T = float;
using M = Matrix<T>;

const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
const auto i64 = torch::TensorOptions().dtype(torch::kLong);

/// (batch, features) tensor of normals.
at::Tensor randn(std::int64_t b, std::int64_t f, std::uint64_t seed = 1, bool grad = false) {
  const M m = normal<T>(f, b, seed);
  at::Tensor t = torch::from_blob(const_cast<T*>(m.data()), {b, f}, f32).clone();
  return grad ? t.requires_grad_(true) : t;
}

at::Tensor labels_tensor(std::int64_t b, std::int64_t c) {
  at::Tensor y = torch::empty({b}, i64);
  for (std::int64_t i = 0; i < b; ++i) y[i] = i % c;
  return y;
}

void adapter_rows() {
  add_row({"regula::libtorch::view/2", "regula::libtorch::mutable_view/2"},
          "a (batch, features) tensor is a features x batch view of its bytes", [] {
            at::Tensor t = randn(4, 6);
            const auto v = lt::view<T>(t);
            CHECK(v.rows() == 6);
            CHECK(v.cols() == 4);
            CHECK(v.data() == t.data_ptr<T>());
            auto m = lt::mutable_view<T>(t);
            m(1, 2) = 7;
            CHECK(t[2][1].item<T>() == 7);
            CHECK(lt::view<T>(torch::zeros({0, 3}, f32)).size() == 0);
          });
  for (const std::string e : {"regula::libtorch::view/2", "regula::libtorch::mutable_view/2"}) {
    auto call = [e](at::Tensor t) {
      if (e.find("mutable") != std::string::npos) {
        (void)lt::mutable_view<T>(t, "x");
      } else {
        (void)lt::view<T>(t, "x");
      }
    };
    add_row({e}, "another dtype rejected naming the tensor", [call] {
      rejects({"x"}, [&] { call(torch::ones({2, 3}, i64)); });
    });
    add_row({e}, "a non-contiguous tensor rejected naming it",
            [call] { rejects({"x"}, [&] { call(randn(4, 6).t()); }); });
    add_row({e}, "an undefined tensor rejected naming it",
            [call] { rejects({"x"}, [&] { call(at::Tensor()); }); });
    add_row({e}, "a 0-dimensional tensor rejected naming it",
            [call] { rejects({"x"}, [&] { call(torch::ones({}, f32)); }); });
  }
  add_row(
      {"regula::libtorch::labels_view/2"}, "float, 2-D or strided labels rejected naming them", [] {
        rejects({"labels"}, [] { (void)lt::labels_view(torch::ones({3}, f32)); });
        rejects({"labels"}, [] { (void)lt::labels_view(torch::ones({3, 2}, i64)); });
        rejects({"labels"}, [] { (void)lt::labels_view(torch::ones({6}, i64).slice(0, 0, 6, 2)); });
        rejects({"labels"}, [] { (void)lt::labels_view(at::Tensor()); });
        const at::Tensor y = labels_tensor(5, 3);
        CHECK(lt::labels_view(y)(4) == 1);
      });
}

void dropout_rows() {
  add_row({"regula::libtorch::dropout/4"}, "p = 1.5 or NaN rejected", [] {
    Stream s(1);
    rejects({"p"}, [&] { (void)lt::dropout(randn(3, 4), 1.5, true, s); });
    rejects({"p"}, [&] { (void)lt::dropout(randn(3, 4), nan, true, s); });
  });
  add_row({"regula::libtorch::dropout/4"}, "an integer or non-contiguous x rejected naming x", [] {
    Stream s(1);
    rejects({"x"}, [&] { (void)lt::dropout(torch::ones({3, 4}, i64), 0.5, true, s); });
    rejects({"x"}, [&] { (void)lt::dropout(randn(3, 4).t(), 0.5, true, s); });
  });
  add_row({"regula::libtorch::dropout/4", "regula::libtorch::DropoutFunction::forward/7",
           "regula::libtorch::DropoutFunction::backward/2"},
          "forward and autograd backward equal regula::Dropout", [] {
            at::Tensor x = randn(9, 7, 3, true);
            Stream s(5), direct(5);
            at::Tensor y = lt::dropout(x, 0.3, true, s);
            const at::Tensor dy = randn(9, 7, 4);
            y.backward(dy);
            const Dropout<T> d(DropoutOptions{0.3});
            M ry(7, 9), rdx(7, 9);
            const auto ctx = d.forward(lt::view<T>(x.detach()), ry, direct);
            d.backward(lt::view<T>(dy), ctx, rdx);
            CHECK(s == direct);
            CHECK(same(lt::view<T>(y.detach()), ry));
            CHECK(same(lt::view<T>(x.grad()), rdx));
          });
  add_row({"regula::libtorch::dropout/4"}, "an empty batch is a no-op", [] {
    Stream s(1);
    at::Tensor y;
    accepts([&] { y = lt::dropout(torch::zeros({0, 4}, f32), 0.5, true, s); });
    CHECK(y.numel() == 0);
    CHECK(s.offset() == 0U);
  });
  add_row(
      {"regula::libtorch::DropoutFunction::apply_dropout/6",
       "regula::libtorch::DropoutFunction::run/5"},
      "the static helpers validate p and x like the layer", [] {
        rejects({"p"},
                [] { (void)lt::DropoutFunction::apply_dropout(randn(2, 3), 2.0, true, 1, 0, 0); });
        rejects({"x"}, [] {
          (void)lt::DropoutFunction::apply_dropout(torch::ones({2, 3}, i64), 0.5, true, 1, 0, 0);
        });
        at::Tensor x = randn(2, 3), y = torch::empty({2, 3}, f32);
        Stream s(1);
        rejects({"p"}, [&] { lt::DropoutFunction::run<T>(x, y, -1.0, true, s); });
      });
  const std::string m = "regula::libtorch::DropoutImpl::";
  add_row({m + "DropoutImpl/2"}, "p = 2 rejected when the module is built",
          [] { rejects({"p"}, [] { lt::Dropout d(2.0); }); });
  add_row({m + "forward/1", m + "stream/0"},
          "the module advances its stream in training and not in eval", [] {
            lt::Dropout d(0.5, Stream(3));
            (void)d->forward(randn(4, 64));
            CHECK(d->stream().offset() == 32U);
            d->eval();
            const at::Tensor x = randn(4, 64);
            CHECK(torch::equal(d->forward(x), x));
            CHECK(d->stream().offset() == 32U);
          });
}

void replay_rows() {
  const std::string r = "regula::libtorch::ReplayLayerImpl::";
  add_row({r + "ReplayLayerImpl/2"}, "bad layer options rejected when the module is built", [] {
    rejects({"units"}, [] { lt::NestedDropout n(NestedDropoutOptions{0}); });
    rejects({"p"}, [] { lt::GaussianDropout g(GaussianDropoutOptions{1.0}); });
    rejects({"channels"}, [] { lt::ChannelDropout c(ChannelDropoutOptions{0.5, 0}); });
    rejects({"p"}, [] { lt::DropPath p(DropPathOptions{-1}); });
    rejects({"p"}, [] { lt::AlphaDropout a(1.5); });
    rejects({"p"}, [] { lt::GaussianDropout g(std::nan("")); });
  });
  add_row({r + "forward/1"}, "an integer, non-contiguous or mis-shaped x rejected naming x", [] {
    lt::NestedDropout n(NestedDropoutOptions{6});
    rejects({"x"}, [&] { (void)n->forward(torch::ones({3, 6}, i64)); });
    rejects({"x"}, [&] { (void)n->forward(randn(6, 6).t()); });
    rejects({"x"}, [&] { (void)n->forward(randn(3, 5)); });
  });
  add_row({r + "forward/1", r + "layer/0", r + "stream/0",
           "regula::libtorch::ReplayFunction::forward/5",
           "regula::libtorch::ReplayFunction::backward/2"},
          "forward and autograd backward equal the layer on the module stream", [] {
            lt::GaussianDropout g(GaussianDropoutOptions{0.3}, Stream(8));
            at::Tensor x = randn(5, 6, 2, true);
            at::Tensor y = g->forward(x);
            const at::Tensor dy = randn(5, 6, 3);
            y.backward(dy);
            Stream direct(8);
            M ry(6, 5), rdx(6, 5);
            const auto ctx = g->layer().forward(lt::view<T>(x.detach()), ry, direct);
            g->layer().backward(lt::view<T>(dy), ctx, rdx);
            CHECK(g->stream() == direct);
            CHECK(same(lt::view<T>(y.detach()), ry));
            CHECK(same(lt::view<T>(x.grad()), rdx));
          });
}

void context_rows() {
  add_row(
      {"regula::libtorch::ContextFunction::forward/6",
       "regula::libtorch::ContextFunction::backward/2"},
      "AlphaDropout's module: forward and autograd backward equal the layer's, from its context",
      [] {
        lt::AlphaDropout a(0.3, Stream(4));
        at::Tensor x = randn(5, 6, 2, true);
        at::Tensor y = a->forward(x);
        const at::Tensor dy = randn(5, 6, 3);
        y.backward(dy);
        Stream direct(4);
        M ry(6, 5), rdx(6, 5);
        const auto ctx = a->layer().forward(lt::view<T>(x.detach()), ry, direct);
        a->layer().backward(lt::view<T>(dy), ctx, rdx);
        CHECK(a->stream() == direct);
        CHECK(same(lt::view<T>(y.detach()), ry));
        CHECK(same(lt::view<T>(x.grad()), rdx));
        // Not the forward replayed on dy, which would add the shift b.
        M shifted(6, 5);
        Stream again(4);
        (void)a->layer().forward(lt::view<T>(dy), shifted, again);
        CHECK_FALSE(same(lt::view<T>(x.grad()), shifted));
      });
}

void channel_dropout_rows() {
  const std::string c = "regula::libtorch::ChannelLayerImpl::";
  add_row({c + "ChannelLayerImpl/2", c + "options/0", c + "infers_channels/0"},
          "p out of range and no channels rejected when the module is built", [] {
            rejects({"p"}, [] { lt::ChannelDropout d(1.5); });
            rejects({"channels"}, [] { lt::ChannelDropout d(ChannelDropoutOptions{0.5, 0}); });
            lt::ChannelDropout d(ChannelDropoutOptions{}.with_p(0.25).with_channels(3));
            CHECK(d->options().channels == 3);
            CHECK_FALSE(d->infers_channels());
            CHECK(lt::ChannelDropout(0.5)->infers_channels());
          });
  add_row({c + "forward/1"}, "an input without channels or with another size(1) rejected naming x",
          [] {
            lt::ChannelDropout inferred(0.5);
            rejects({"x"}, [&] { (void)inferred->forward(torch::ones({6})); });
            rejects({"x"}, [&] { (void)inferred->forward(torch::ones({3, 2, 2}, i64)); });
            lt::ChannelDropout fixed(ChannelDropoutOptions{}.with_p(0.5).with_channels(4));
            rejects({"x"}, [&] { (void)fixed->forward(torch::ones({2, 3, 4})); });
          });
  add_row({c + "forward/1", c + "stream/0"},
          "forward and backward equal the layer with C = size(1) on the module stream", [] {
            lt::ChannelDropout d(0.5, Stream(5));
            at::Tensor x = torch::randn({6, 4, 3}).requires_grad_(true);
            at::Tensor y = d->forward(x);
            const at::Tensor dy = torch::randn({6, 4, 3});
            y.backward(dy);
            ChannelDropout<float> layer(ChannelDropoutOptions{}.with_p(0.5).with_channels(4));
            Stream direct(5);
            Matrix<float> ry(12, 6), rdx(12, 6);
            const auto ctx = layer.forward(lt::view<float>(x.detach()), ry, direct);
            layer.backward(lt::view<float>(dy), ctx, rdx);
            CHECK(d->stream() == direct);
            CHECK(lt::view<float>(y.detach()) == ry);
            CHECK(lt::view<float>(x.grad()) == rdx);
          });
}

/// Rows of a fused teacher loss: student and teacher tensors, options; the reference is the
/// Eigen call on the transposed views.
void teacher_loss_rows(
    const std::string& name, std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> f,
    std::function<double(const MatrixCRef<T>&, const MatrixCRef<T>&, MatrixRef<T>)> ref,
    std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> hot_temperature) {
  const std::string e = "regula::libtorch::" + name + "/3";
  add_row({e}, "a 1-D or 3-D student rejected naming the logits", [f] {
    rejects({"logits"}, [&] { (void)f(torch::ones({4}, f32), torch::ones({4}, f32)); });
    rejects({"logits"}, [&] { (void)f(torch::ones({2, 2, 2}, f32), torch::ones({2, 2, 2}, f32)); });
    rejects({"logits"}, [&] { (void)f(at::Tensor(), randn(3, 4)); });
  });
  add_row({e}, "a non-contiguous student rejected naming the logits",
          [f] { rejects({"logits"}, [&] { (void)f(randn(4, 4).t(), randn(4, 4)); }); });
  add_row({e}, "a teacher of another shape or dtype rejected naming the teacher", [f] {
    rejects({"teacher"}, [&] { (void)f(randn(3, 4), randn(3, 5)); });
    rejects({"teacher"}, [&] { (void)f(randn(3, 4), torch::ones({3, 4}, i64)); });
  });
  if (hot_temperature) {
    add_row({e}, "temperature = 0 rejected", [hot_temperature] {
      rejects({"temperature"}, [&] { (void)hot_temperature(randn(3, 4), randn(3, 4, 2)); });
    });
  }
  add_row({e, "regula::libtorch::FusedLossFunction::forward/4",
           "regula::libtorch::FusedLossFunction::backward/2"},
          "the value and autograd gradient equal the Eigen call", [f, ref] {
            at::Tensor z = randn(6, 5, 1, true);
            const at::Tensor v = randn(6, 5, 2);
            at::Tensor l = f(z, v);
            (l * 3).backward();
            M d(5, 6);
            const double r = ref(lt::view<T>(z.detach()), lt::view<T>(v), d);
            CHECK(std::abs(l.item<double>() - r) <= 1e-6 * (1 + std::abs(r)));
            CHECK(close(lt::view<T>(z.grad()), M(3 * d), 1e-5));
          });
}

void loss_rows() {
  const std::string ce = "regula::libtorch::cross_entropy/3";
  add_row({ce}, "float, 2-D or wrong-length labels rejected naming them", [] {
    rejects({"labels"}, [] { (void)lt::cross_entropy(randn(4, 3), torch::ones({4}, f32)); });
    rejects({"labels"}, [] { (void)lt::cross_entropy(randn(4, 3), torch::zeros({4, 1}, i64)); });
    rejects({"labels"}, [] { (void)lt::cross_entropy(randn(4, 3), labels_tensor(5, 3)); });
  });
  add_row({ce}, "a label out of range rejected", [] {
    at::Tensor y = labels_tensor(4, 3);
    y[1] = 3;
    rejects({"labels"}, [&] { (void)lt::cross_entropy(randn(4, 3), y); });
  });
  add_row({ce}, "a 1-D or integer logits tensor rejected naming the logits", [] {
    rejects({"logits"},
            [] { (void)lt::cross_entropy(torch::ones({4}, f32), labels_tensor(4, 3)); });
    rejects({"logits"}, [] {
      (void)lt::cross_entropy(torch::ones({4, 3}, i64), labels_tensor(4, 3));
    });
  });
  add_row({ce}, "label_smoothing = 2 rejected", [] {
    rejects({"label_smoothing"}, [] {
      (void)lt::cross_entropy(randn(4, 3), labels_tensor(4, 3),
                              CrossEntropyOptions{}.with_label_smoothing(2));
    });
  });
  add_row({ce, "regula::libtorch::stablemax_cross_entropy/3"},
          "the values and gradients equal the Eigen calls", [] {
            for (int sm = 0; sm < 2; ++sm) {
              at::Tensor z = randn(6, 5, 1, true);
              const at::Tensor y = labels_tensor(6, 5);
              at::Tensor l = sm ? lt::stablemax_cross_entropy(z, y) : lt::cross_entropy(z, y);
              l.backward();
              M d(5, 6);
              const Labels yy = labels(6, 5);
              const double r = sm ? stablemax_cross_entropy(lt::view<T>(z.detach()), yy, d)
                                  : cross_entropy(lt::view<T>(z.detach()), yy, d);
              CHECK(std::abs(l.item<double>() - r) <= 1e-6 * (1 + std::abs(r)));
              CHECK(close(lt::view<T>(z.grad()), d, 1e-5));
            }
          });
  add_row({"regula::libtorch::stablemax_cross_entropy/3"}, "a label out of range rejected", [] {
    rejects({"labels"},
            [] { (void)lt::stablemax_cross_entropy(randn(4, 3), labels_tensor(4, 4) + 1); });
  });
#define SWEEP_TORCH_KD(NAME, OPTIONS, HOT)                                            \
  teacher_loss_rows(                                                                  \
      #NAME, [](const at::Tensor& z, const at::Tensor& v) { return lt::NAME(z, v); }, \
      [](const MatrixCRef<T>& z, const MatrixCRef<T>& v, MatrixRef<T> d) {            \
        return double(regula::NAME(z, v, d));                                         \
      },                                                                              \
      HOT)
  const auto hot = [](auto call) {
    return std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>(call);
  };
  SWEEP_TORCH_KD(kd_kl, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::kd_kl(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(reverse_kl, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::reverse_kl(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(js, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::js(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(total_variation, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::total_variation(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(binary_kl, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::binary_kl(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(binary_kl_norm, KDLossOptions, hot([](auto& z, auto& v) {
                   return lt::binary_kl_norm(z, v, KDLossOptions{}.with_temperature(0));
                 }));
  SWEEP_TORCH_KD(logit_mse, LogitMSEOptions, nullptr);
  SWEEP_TORCH_KD(sinkhorn_kd, SinkhornKDOptions, hot([](auto& z, auto& v) {
                   return lt::sinkhorn_kd(z, v, SinkhornKDOptions{}.with_temperature(0));
                 }));
#undef SWEEP_TORCH_KD
  const std::string d = "regula::libtorch::dkd/4";
  add_row({d}, "bad labels rejected before the autograd call", [] {
    rejects({"labels"}, [] { (void)lt::dkd(randn(4, 3), randn(4, 3), torch::ones({4}, f32)); });
    at::Tensor y = labels_tensor(4, 3);
    y[0] = -1;
    rejects({"labels"}, [&] { (void)lt::dkd(randn(4, 3), randn(4, 3), y); });
  });
  add_row({d}, "a teacher of another shape rejected; temperature = NaN rejected", [] {
    rejects({"teacher"}, [] { (void)lt::dkd(randn(4, 3), randn(4, 2), labels_tensor(4, 2)); });
    rejects({"temperature"}, [] {
      (void)lt::dkd(randn(4, 3), randn(4, 3), labels_tensor(4, 3),
                    DKDOptions{}.with_temperature(nan));
    });
  });
  add_row({d}, "the value and gradient equal the Eigen call", [] {
    at::Tensor z = randn(6, 5, 1, true);
    const at::Tensor v = randn(6, 5, 2);
    at::Tensor l = lt::dkd(z, v, labels_tensor(6, 5));
    l.backward();
    M g(5, 6);
    const double r = dkd(lt::view<T>(z.detach()), lt::view<T>(v), labels(6, 5), g);
    CHECK(std::abs(l.item<double>() - r) <= 1e-6 * (1 + std::abs(r)));
    CHECK(close(lt::view<T>(z.grad()), g, 1e-5));
  });
}

void feature_alpha_rows() {
  const std::string c = "regula::libtorch::ChannelLayerImpl::";
  add_row({c + "ChannelLayerImpl/2", c + "forward/1"},
          "FeatureAlphaDropout's module: bad options and inputs rejected naming them", [] {
            rejects({"p"}, [] { lt::FeatureAlphaDropout d(-0.5); });
            rejects({"channels"}, [] {
              lt::FeatureAlphaDropout d(FeatureAlphaDropoutOptions{0.5, 0});
            });
            lt::FeatureAlphaDropout inferred(0.5);
            rejects({"x"}, [&] { (void)inferred->forward(torch::ones({6})); });
            lt::FeatureAlphaDropout fixed(FeatureAlphaDropoutOptions{0.5, 4});
            rejects({"x"}, [&] { (void)fixed->forward(torch::ones({2, 3, 4})); });
          });
  add_row({c + "forward/1", c + "stream/0", "regula::libtorch::ContextFunction::forward/6"},
          "FeatureAlphaDropout's module equals the layer with C = size(1), from its context", [] {
            lt::FeatureAlphaDropout d(0.5, Stream(6));
            at::Tensor x = torch::randn({6, 4, 3}).requires_grad_(true);
            at::Tensor y = d->forward(x);
            const at::Tensor dy = torch::randn({6, 4, 3});
            y.backward(dy);
            FeatureAlphaDropout<float> layer(FeatureAlphaDropoutOptions{0.5, 4});
            Stream direct(6);
            M ry(12, 6), rdx(12, 6);
            const auto ctx = layer.forward(lt::view<float>(x.detach()), ry, direct);
            layer.backward(lt::view<float>(dy), ctx, rdx);
            CHECK(d->stream() == direct);
            CHECK(lt::view<float>(y.detach()) == ry);
            CHECK(lt::view<float>(x.grad()) == rdx);
          });
}

void drop_connect_rows() {
  const std::string c = "regula::libtorch::DropConnectImpl::";
  const std::string f = "regula::libtorch::DropConnectFunction::";
  add_row({c + "DropConnectImpl/5"}, "p out of range and empty sizes rejected naming them", [] {
    rejects({"p"}, [] { lt::DropConnect d(4, 3, 1.5); });
    rejects({"p"}, [] { lt::DropConnect d(4, 3, DropConnectOptions{std::nan("")}); });
    rejects({"in_features"}, [] { lt::DropConnect d(0, 3); });
    rejects({"out_features"}, [] { lt::DropConnect d(4, 0); });
  });
  add_row({c + "forward/1"}, "x of another width, dtype or empty rejected naming x", [] {
    lt::DropConnect d(4, 3);
    rejects({"x"}, [&] { (void)d->forward(randn(5, 3)); });
    rejects({"x"}, [&] { (void)d->forward(torch::ones({5, 4}, i64)); });
    rejects({"x"}, [&] { (void)d->forward(torch::ones({0, 4})); });
    rejects({"x"}, [&] { (void)d->forward(at::Tensor()); });
  });
  add_row({c + "forward/1", c + "layer/0", c + "stream/0", f + "forward/6", f + "backward/2"},
          "forward and autograd backward equal the layer on the parameters and the stream", [] {
            lt::DropConnect d(6, 4, 0.5, Stream(3));
            at::Tensor x = randn(5, 6, 2, true);
            at::Tensor y = d->forward(x);
            const at::Tensor dy = randn(5, 4, 3);
            y.backward(dy);
            const at::Tensor wt = d->weight.detach().t();
            const Eigen::Map<const Vector<T>> b(d->bias.data_ptr<T>(), 4);
            DropConnectContext<T> ctx;
            Stream direct(3);
            M ry(4, 5), rdx(6, 5), rdw(4, 6);
            Vector<T> rdb(4);
            d->layer().forward(lt::view<T>(x.detach()), lt::view<T>(wt), b, ry, direct, ctx);
            d->layer().backward(lt::view<T>(x.detach()), lt::view<T>(wt), lt::view<T>(dy), ctx, rdx,
                                rdw, rdb);
            CHECK(d->stream() == direct);
            CHECK(same(lt::view<T>(y.detach()), ry));
            CHECK(same(lt::view<T>(x.grad()), rdx));
            CHECK(same(lt::view<T>(d->weight.grad().t().contiguous()), rdw));
            CHECK(Eigen::Map<const Vector<T>>(d->bias.grad().data_ptr<T>(), 4) == rdb);
          });
}

void multi_sample_rows() {
  const std::string c = "regula::libtorch::MultiSampleDropoutImpl::";
  const std::string f = "regula::libtorch::MultiSampleDropoutFunction::";
  add_row({c + "MultiSampleDropoutImpl/5"}, "bad options and sizes rejected naming them", [] {
    rejects({"samples"},
            [] { lt::MultiSampleDropout m(4, 3, MultiSampleDropoutOptions{}.with_samples(0)); });
    rejects({"p"}, [] { lt::MultiSampleDropout m(4, 3, MultiSampleDropoutOptions{}.with_p(2)); });
    rejects({"in_features"}, [] { lt::MultiSampleDropout m(0, 3); });
    rejects({"classes"}, [] { lt::MultiSampleDropout m(4, 0); });
    rejects({"label_smoothing"}, [] {
      lt::MultiSampleDropout m(4, 3, MultiSampleDropoutOptions{}, Stream(0),
                               CrossEntropyOptions{}.with_label_smoothing(2));
    });
  });
  add_row({c + "forward/2"}, "h of another shape or dtype and bad labels rejected naming them", [] {
    lt::MultiSampleDropout m(4, 3);
    const at::Tensor y = labels_tensor(5, 3);
    rejects({"h"}, [&] { (void)m->forward(randn(5, 3), y); });
    rejects({"h"}, [&] { (void)m->forward(torch::ones({5, 4}, torch::kFloat64), y); });
    rejects({"labels"}, [&] { (void)m->forward(randn(5, 4), y.to(torch::kFloat32)); });
    rejects({"labels"}, [&] { (void)m->forward(randn(5, 4), labels_tensor(4, 3)); });
    rejects({"labels"}, [&] { (void)m->forward(randn(5, 4), labels_tensor(5, 3) + 3); });
  });
  add_row({c + "forward/2", c + "layer/0", c + "stream/0", c + "logits/1", f + "forward/7",
           f + "backward/2"},
          "forward and backward equal the layer; a stale backward is refused", [] {
            lt::MultiSampleDropout m(6, 3, MultiSampleDropoutOptions{}.with_samples(3), Stream(11));
            at::Tensor h = randn(5, 6, 2, true);
            const at::Tensor y = labels_tensor(5, 3);
            at::Tensor L = m->forward(h, y);
            L.backward();
            const at::Tensor wt = m->weight.detach().t();
            const Eigen::Map<const Vector<T>> b(m->bias.data_ptr<T>(), 3);
            MultiSampleDropout<T, PerSampleCrossEntropy<>>::Context ctx;
            Stream direct(11);
            const T ref = m->layer().forward(lt::view<T>(h.detach()), lt::view<T>(wt), b,
                                             lt::labels_view(y), direct, ctx);
            M rdh(6, 5), rdw(3, 6);
            Vector<T> rdb(3);
            m->layer().backward(lt::view<T>(wt), ctx, rdh, rdw, rdb);
            CHECK(m->stream() == direct);
            CHECK(L.item<T>() == ref);
            CHECK(same(lt::view<T>(h.grad()), rdh));
            CHECK(same(lt::view<T>(m->weight.grad().t().contiguous()), rdw));
            CHECK(m->logits(h.detach()).sizes() == at::IntArrayRef({5, 3}));
            at::Tensor first = m->forward(h, y);
            (void)m->forward(h, y);
            rejects({"backward"}, [&] { first.backward(); });
          });
}

void register_rows() {
  covers("torch");
  adapter_rows();
  dropout_rows();
  replay_rows();
  channel_dropout_rows();
  context_rows();
  feature_alpha_rows();
  drop_connect_rows();
  multi_sample_rows();
  loss_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
