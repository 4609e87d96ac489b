#include <cmath>
#include <cstring>

#include <torch/torch.h>

#include "regula/integrations/torch.hpp"

#include "support/catch.hpp"

namespace {

template <class T>
at::ScalarType dtype() {
  return std::is_same_v<T, float> ? at::kFloat : at::kDouble;
}

}  // namespace

TEMPLATE_TEST_CASE("A (batch, features) tensor is a features x batch view of the same bytes",
                   "[torch][adapter]", float, double) {
  using T = TestType;
  at::Tensor t = torch::arange(24, torch::TensorOptions().dtype(dtype<T>())).reshape({4, 6});
  const auto v = regula::libtorch::view<T>(t);
  CHECK(v.rows() == 6);
  CHECK(v.cols() == 4);
  CHECK(v.data() == t.data_ptr<T>());
  CHECK(v(2, 3) == t[3][2].item<T>());  // feature 2 of sample 3
  at::Tensor img = torch::zeros({5, 3, 2, 2}, torch::TensorOptions().dtype(dtype<T>()));
  CHECK(regula::libtorch::view<T>(img).rows() == 12);
  auto m = regula::libtorch::mutable_view<T>(t);
  m(0, 1) = T(-1);
  CHECK(t[1][0].item<T>() == T(-1));
}

TEST_CASE("Bad tensors are refused with messages naming the problem", "[torch][adapter][errors]") {
  at::Tensor f = torch::ones({4, 6});
  CHECK_THROWS_WITH(regula::libtorch::view<double>(f, "x"),
                    Catch::Matchers::Contains("x must have dtype Double, got Float"));
  CHECK_THROWS_WITH(regula::libtorch::view<float>(f.t(), "x"),
                    Catch::Matchers::Contains("x must be contiguous"));
  CHECK_THROWS_WITH(regula::libtorch::view<float>(at::Tensor(), "x"),
                    Catch::Matchers::Contains("x must be a defined tensor"));
  CHECK_THROWS_WITH(regula::libtorch::view<float>(torch::ones({}), "x"),
                    Catch::Matchers::Contains("x must have at least one dimension"));
  CHECK_THROWS_WITH(regula::libtorch::labels_view(torch::ones({3})),
                    Catch::Matchers::Contains("labels must be a contiguous 1-D CPU int64 tensor"));
  regula::Stream s(1);
  CHECK_THROWS_AS(regula::libtorch::dropout(f, 1.5, true, s), regula::invalid_argument);
}

TEMPLATE_TEST_CASE("libtorch::dropout equals regula's Dropout, forward and autograd backward",
                   "[torch][dropout]", float, double) {
  using T = TestType;
  at::Tensor x =
      torch::randn({33, 40}, torch::TensorOptions().dtype(dtype<T>())).requires_grad_(true);
  regula::Stream s(5, 2, 7);
  const regula::Stream start = s;
  at::Tensor y = regula::libtorch::dropout(x, 0.3, true, s);
  const at::Tensor dy = torch::randn({33, 40}, torch::TensorOptions().dtype(dtype<T>()));
  y.backward(dy);

  const regula::Dropout<T> layer(regula::DropoutOptions{0.3});
  regula::Stream direct = start;
  regula::Matrix<T> ry(40, 33), rdx(40, 33);
  at::Tensor xd = x.detach();
  const auto ctx = layer.forward(regula::libtorch::view<T>(xd), ry, direct);
  layer.backward(regula::libtorch::view<T>(dy), ctx, rdx);
  CHECK(s == direct);  // the stream advanced as Dropout::forward advances it
  at::Tensor yd = y.detach().contiguous();
  at::Tensor gx = x.grad().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  CHECK(regula::libtorch::view<T>(gx) == rdx);
}

TEST_CASE("The Dropout module follows train() and eval()", "[torch][dropout]") {
  regula::libtorch::Dropout drop(0.5, regula::Stream(3));
  const at::Tensor x = torch::ones({8, 128});
  drop->eval();
  CHECK(torch::equal(drop->forward(x), x));
  CHECK(drop->stream().offset() == 0);
  drop->train();
  const at::Tensor y = drop->forward(x);
  const double zeroed = (y == 0).to(at::kDouble).mean().item<double>();
  CHECK(zeroed > 0.4);
  CHECK(zeroed < 0.6);
  CHECK(drop->stream().offset() == 16 * 8);
  CHECK_THROWS_AS(regula::libtorch::Dropout(2.0), regula::invalid_argument);
}

namespace {

/// Checks a libtorch loss wrapper against regula's direct call: the value and the autograd
/// gradient equal the fused gradient written by the direct call (bit for bit: same kernel).
template <class T, class Wrapper, class Direct>
void check_loss(Wrapper&& wrapper, Direct&& direct) {
  at::Tensor z =
      (torch::randn({7, 5}, torch::TensorOptions().dtype(dtype<T>())) * 3).requires_grad_(true);
  at::Tensor loss = wrapper(z);
  loss.backward();
  at::Tensor zd = z.detach();
  regula::Matrix<T> dz(5, 7);
  const T expected = direct(regula::libtorch::view<T>(zd), dz);
  CHECK(loss.template item<T>() == expected);
  at::Tensor g = z.grad().contiguous();
  CHECK(regula::libtorch::view<T>(g) == dz);
}

}  // namespace

TEMPLATE_TEST_CASE("Loss wrappers equal regula's direct API, value and gradient", "[torch][losses]",
                   float, double) {
  using T = TestType;
  const at::Tensor labels = torch::tensor({0, 4, 2, 1, 3, 3, 0}, torch::kLong);
  const at::Tensor teacher = torch::randn({7, 5}, torch::TensorOptions().dtype(dtype<T>())) * 2;
  at::Tensor td = teacher;
  const auto v = regula::libtorch::view<T>(td);
  const auto y = regula::libtorch::labels_view(labels);
  const auto opts = regula::CrossEntropyOptions{}.with_label_smoothing(0.1);
  check_loss<T>(
      [&](const at::Tensor& z) { return regula::libtorch::cross_entropy(z, labels, opts); },
      [&](const auto& z, regula::Matrix<T>& dz) { return regula::cross_entropy(z, y, dz, opts); });
  check_loss<T>(
      [&](const at::Tensor& z) { return regula::libtorch::stablemax_cross_entropy(z, labels); },
      [&](const auto& z, regula::Matrix<T>& dz) {
        return regula::cross_entropy<regula::Normalizer::stablemax>(z, y, dz);
      });
  const auto kd = regula::KDLossOptions{}.with_temperature(4.0);
  check_loss<T>([&](const at::Tensor& z) { return regula::libtorch::kd_kl(z, teacher, kd); },
                [&](const auto& z, regula::Matrix<T>& dz) { return regula::kd_kl(z, v, dz, kd); });
  check_loss<T>([&](const at::Tensor& z) { return regula::libtorch::dkd(z, teacher, labels); },
                [&](const auto& z, regula::Matrix<T>& dz) { return regula::dkd(z, v, y, dz); });
  check_loss<T>(
      [&](const at::Tensor& z) { return regula::libtorch::sinkhorn_kd(z, teacher); },
      [&](const auto& z, regula::Matrix<T>& dz) { return regula::sinkhorn_kd(z, v, dz); });
}

TEST_CASE("The StableMax loss wrapper's float gradient keeps the collapsed target element",
          "[torch][losses][accuracy]") {
  // Float z = (10000.88, -9999.72), y = 0: float64 gives dz = (-9.9955e-13, 9.9967e-13); the
  // subtraction a·s_y/S - 1 in float gave 0 for the first element.
  at::Tensor z = torch::tensor({10000.88f, -9999.72f}).reshape({1, 2}).set_requires_grad(true);
  const at::Tensor y = torch::tensor({0}, torch::kLong);
  regula::libtorch::stablemax_cross_entropy(z, y).backward();
  const at::Tensor g = z.grad();
  CHECK(std::abs(g[0][0].item<double>() + 9.995521790e-13) <= 1e-5 * 9.9955e-13);
  CHECK(std::abs(g[0][1].item<double>() - 9.996681343e-13) <= 1e-5 * 9.9967e-13);
}

TEST_CASE("Loss wrappers refuse bad tensors and bad labels", "[torch][losses][errors]") {
  const at::Tensor z = torch::randn({4, 3});
  CHECK_THROWS_WITH(regula::libtorch::cross_entropy(z, torch::tensor({0, 1, 2, 3}, torch::kLong)),
                    Catch::Matchers::Contains("labels[3] must be in [0, 3)"));
  CHECK_THROWS_WITH(regula::libtorch::cross_entropy(z, torch::ones({4})),
                    Catch::Matchers::Contains("labels must be a contiguous 1-D CPU int64 tensor"));
  CHECK_THROWS_WITH(regula::libtorch::kd_kl(z, torch::randn({4, 3}, torch::kDouble)),
                    Catch::Matchers::Contains("teacher must have dtype Float"));
  CHECK_THROWS_WITH(regula::libtorch::kd_kl(torch::randn({12}), torch::randn({12})),
                    Catch::Matchers::Contains("logits must be a 2-D (batch, classes) tensor"));
}

TEMPLATE_TEST_CASE("Dropout-family modules equal regula's layers, forward and autograd backward",
                   "[torch][modules]", float, double) {
  using T = TestType;
  regula::NestedDropoutOptions o;
  o.units = 12;
  o.prior = regula::NestedPrior::uniform();
  regula::libtorch::NestedDropout nested(o, regula::Stream(4, 1));
  at::Tensor x =
      torch::randn({9, 12}, torch::TensorOptions().dtype(dtype<T>())).requires_grad_(true);
  const at::Tensor y = nested->forward(x);
  const at::Tensor dy = torch::randn({9, 12}, torch::TensorOptions().dtype(dtype<T>()));
  y.backward(dy);

  const regula::NestedDropout<T> layer(o);
  regula::Stream s(4, 1);
  regula::Matrix<T> ry(12, 9), rdx(12, 9);
  at::Tensor xd = x.detach();
  const auto ctx = layer.forward(regula::libtorch::view<T>(xd), ry, s);
  layer.backward(regula::libtorch::view<T>(dy), ctx, rdx);
  CHECK(s == nested->stream());
  at::Tensor yd = y.detach().contiguous();
  at::Tensor g = x.grad().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  CHECK(regula::libtorch::view<T>(g) == rdx);

  nested->eval();
  CHECK(torch::equal(nested->forward(xd), xd));

  regula::libtorch::GaussianDropout gauss(regula::GaussianDropoutOptions{0.3}, regula::Stream(8));
  at::Tensor x2 =
      torch::randn({5, 7}, torch::TensorOptions().dtype(dtype<T>())).requires_grad_(true);
  const at::Tensor y2 = gauss->forward(x2);
  y2.sum().backward();
  // y = x ⊙ r and dL/dx = r: the gradient times x gives y back.
  CHECK(torch::allclose((x2.grad() * x2).detach(), y2.detach()));
}

TEMPLATE_TEST_CASE("ChannelDropout(p) takes the channels from size(1), as torch::nn::Dropout2d",
                   "[torch][channel_dropout]", float, double) {
  using T = TestType;
  const auto opts = torch::TensorOptions().dtype(dtype<T>());
  // 64 samples of 8 channels of 4 x 4: with the channels taken from size(1), a sample is all
  // zero only if its 8 channels all drop (1/256 each at p = 0.5). The old module's default of one
  // channel treated the 128 features as one channel: each sample zeroed whole with probability p.
  regula::libtorch::ChannelDropout drop(0.5, regula::Stream(11));
  CHECK(drop->infers_channels());
  at::Tensor x = torch::randn({64, 8, 4, 4}, opts).abs().add_(T(0.5)).requires_grad_(true);
  at::Tensor y = drop->forward(x);
  const at::Tensor dy = torch::randn({64, 8, 4, 4}, opts);
  y.backward(dy);
  // The direct layer with C = 8 on the same stream, bit for bit, forward and backward.
  regula::ChannelDropout<T> layer(regula::ChannelDropoutOptions{}.with_p(0.5).with_channels(8));
  regula::Stream s(11);
  regula::Matrix<T> ry(128, 64), rdx(128, 64);
  at::Tensor xd = x.detach();
  const auto ctx = layer.forward(regula::libtorch::view<T>(xd), ry, s);
  layer.backward(regula::libtorch::view<T>(dy), ctx, rdx);
  CHECK(s == drop->stream());
  at::Tensor yd = y.detach().contiguous();
  at::Tensor g = x.grad().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  CHECK(regula::libtorch::view<T>(g) == rdx);
  // Dropout2d's semantics: every (sample, channel) block is all 0 or all x/(1 − p).
  const at::Tensor kept = (yd != 0).to(at::kDouble).mean({2, 3});  // 64 x 8: 0 or 1
  CHECK(torch::equal(kept * (1 - kept), torch::zeros_like(kept)));
  CHECK(torch::allclose(yd, xd * 2 * kept.to(dtype<T>()).unsqueeze(2).unsqueeze(3)));
  const at::Tensor dead = (kept.sum(1) == 0);
  CHECK(dead.sum().item<std::int64_t>() <= 2);
  // And a second shape through the same module: its own channel count.
  at::Tensor x3 = torch::ones({4, 3, 5}, opts);
  const at::Tensor y3 = drop->forward(x3);
  const at::Tensor k3 = (y3 != 0).to(at::kDouble).mean({2});
  CHECK(torch::equal(k3 * (1 - k3), torch::zeros_like(k3)));
  drop->eval();
  CHECK(torch::equal(drop->forward(xd), xd));
}

TEST_CASE("ChannelDropout refuses inputs it cannot split into channels",
          "[torch][channel_dropout]") {
  regula::libtorch::ChannelDropout inferred(0.5);
  CHECK_THROWS_WITH(inferred->forward(torch::ones({8})),
                    Catch::Matchers::Contains("x must be (batch, channels, ...)"));
  regula::libtorch::ChannelDropout fixed(
      regula::ChannelDropoutOptions{}.with_p(0.5).with_channels(4));
  CHECK_FALSE(fixed->infers_channels());
  CHECK_THROWS_WITH(fixed->forward(torch::ones({2, 8, 3})),
                    Catch::Matchers::Contains("x must have size(1) = channels (4)"));
  // A 2-D (batch, features) input is split into the fixed channels: 12 features, 4 channels of 3.
  const at::Tensor y = fixed->forward(torch::ones({6, 12}));
  const at::Tensor k = (y != 0).to(at::kDouble).reshape({6, 4, 3}).mean({2});
  CHECK(torch::equal(k * (1 - k), torch::zeros_like(k)));
  CHECK_THROWS_AS(regula::libtorch::ChannelDropout(1.5), regula::invalid_argument);
}

// Parity with the torch layers regula's modules replace. The masks come from different
// generators, so the check is statistical on large inputs: the same structure (whole channels,
// the same kept values) and the same moments, within a few standard errors.
TEST_CASE("ChannelDropout matches torch::nn::Dropout2d's semantics on N x C x H x W",
          "[torch][channel_dropout][parity]") {
  torch::manual_seed(3);
  const at::Tensor x = torch::rand({256, 16, 4, 4}).add_(0.5);  // no zero inputs
  regula::libtorch::ChannelDropout ours(0.3, regula::Stream(21));
  torch::nn::Dropout2d theirs(torch::nn::Dropout2dOptions(0.3));
  for (const at::Tensor& y : {ours->forward(x), theirs->forward(x)}) {
    // Whole channels: each (sample, channel) is all zero or all kept, kept ones are x/(1 − p).
    const at::Tensor kept = (y != 0).to(at::kDouble).reshape({256, 16, 16}).mean({2});
    CHECK(torch::equal(kept * (1 - kept), torch::zeros_like(kept)));
    const at::Tensor k = (y != 0);
    // (rtol 1e-4: regula's scale is 1/(1 − p) of p quantized to 2⁻¹⁶, 4e-6 away here.)
    CHECK(torch::allclose(y.masked_select(k), x.masked_select(k) / 0.7, 1e-4, 0));
    // 4096 channels: the dropped fraction 0.3 ± 4.5 standard errors (0.0072 each).
    CHECK(std::abs(1.0 - kept.mean().item<double>() - 0.3) < 0.033);
  }
  ours->eval();
  theirs->eval();
  CHECK(torch::equal(ours->forward(x), x));
  CHECK(torch::equal(theirs->forward(x), x));
}

TEMPLATE_TEST_CASE("AlphaDropout matches torch::nn::AlphaDropout and the layer, bit for bit",
                   "[torch][alpha_dropout]", float, double) {
  using T = TestType;
  const auto opts = torch::TensorOptions().dtype(dtype<T>());
  torch::manual_seed(5);
  at::Tensor x = torch::randn({512, 64}, opts).requires_grad_(true);
  regula::libtorch::AlphaDropout drop(0.2, regula::Stream(13));
  CHECK(drop->layer().options().p == 0.2);
  at::Tensor y = drop->forward(x);
  const at::Tensor dy = torch::randn({512, 64}, opts);
  y.backward(dy);
  // The direct layer on the same stream: the same bits, forward and backward.
  regula::AlphaDropout<T> layer(regula::AlphaDropoutOptions{0.2});
  regula::Stream s(13);
  regula::Matrix<T> ry(64, 512), rdx(64, 512);
  const at::Tensor xd = x.detach();
  const auto ctx = layer.forward(regula::libtorch::view<T>(xd), ry, s);
  layer.backward(regula::libtorch::view<T>(dy), ctx, rdx);
  CHECK(s == drop->stream());
  const at::Tensor yd = y.detach().contiguous(), g = x.grad().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  CHECK(regula::libtorch::view<T>(g) == rdx);
  // PyTorch's layer on the same input: standard-normal input stays mean 0, variance 1 in both
  // (32768 values: mean within 4.5 standard errors, 0.025; variance within 0.05), and a dropped
  // element takes the same value a·α′ + b in both.
  torch::nn::AlphaDropout theirs(torch::nn::AlphaDropoutOptions(0.2));
  const at::Tensor yt = theirs->forward(xd);
  for (const at::Tensor& out : {yd, yt}) {
    CHECK(std::abs(out.mean().item<double>()) < 0.025);
    CHECK(std::abs(out.var().item<double>() - 1.0) < 0.05);
  }
  const double dropped = static_cast<double>(layer.dropped_value());
  // (1e-4: regula quantizes p to 2⁻¹⁶, which moves a and b by about 1e-5.)
  const at::Tensor mode_count = (yt - dropped).abs().lt(1e-4).to(at::kDouble).mean();
  CHECK(std::abs(mode_count.item<double>() - 0.2) < 0.01);  // 20% of torch's outputs are it
  // Eval mode: the identity in both.
  drop->eval();
  CHECK(torch::equal(drop->forward(xd), xd));
  theirs->eval();
  CHECK(torch::equal(theirs->forward(xd), xd));
}

TEMPLATE_TEST_CASE("FeatureAlphaDropout(p) matches torch::nn::FeatureAlphaDropout and the layer",
                   "[torch][feature_alpha_dropout]", float, double) {
  using T = TestType;
  const auto opts = torch::TensorOptions().dtype(dtype<T>());
  torch::manual_seed(6);
  // 256 samples of 32 channels of 4 × 4: 8192 channel draws.
  at::Tensor x = torch::randn({256, 32, 4, 4}, opts).requires_grad_(true);
  regula::libtorch::FeatureAlphaDropout drop(0.2, regula::Stream(17));
  CHECK(drop->infers_channels());
  at::Tensor y = drop->forward(x);
  const at::Tensor dy = torch::randn({256, 32, 4, 4}, opts);
  y.backward(dy);
  // The direct layer with C = size(1) on the same stream: the same bits, forward and backward.
  const regula::FeatureAlphaDropout<T> layer(
      regula::FeatureAlphaDropoutOptions{}.with_p(0.2).with_channels(32));
  regula::Stream s(17);
  regula::Matrix<T> ry(512, 256), rdx(512, 256);
  const at::Tensor xd = x.detach();
  const auto ctx = layer.forward(regula::libtorch::view<T>(xd), ry, s);
  layer.backward(regula::libtorch::view<T>(dy), ctx, rdx);
  CHECK(s == drop->stream());
  const at::Tensor yd = y.detach().contiguous(), g = x.grad().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  CHECK(regula::libtorch::view<T>(g) == rdx);
  // PyTorch's layer on the same input: in both, about 20% of channels are the constant a·α′ + b at
  // all 16 positions (8192 draws: ±4.5 standard errors, 0.02), any other channel has at most one
  // position that near it (a kept x within 1e-4/a of α′: a few in 2 million), and standard-normal
  // input stays mean 0, variance 1.
  torch::nn::FeatureAlphaDropout theirs(torch::nn::FeatureAlphaDropoutOptions(0.2));
  const at::Tensor yt = theirs->forward(xd);
  const double dropped = static_cast<double>(layer.dropped_value());
  for (const at::Tensor& out : {yd, yt}) {
    const at::Tensor constant =
        (out - dropped).abs().lt(1e-4).to(at::kDouble);  // 1e-4: quantized p
    const at::Tensor per_channel = constant.mean({2, 3});
    const at::Tensor whole = per_channel.eq(1).to(at::kDouble);
    CHECK(torch::logical_or(per_channel.eq(1), per_channel.le(1.0 / 16)).all().item<bool>());
    CHECK(std::abs(whole.mean().item<double>() - 0.2) < 0.02);
    CHECK(std::abs(out.mean().item<double>()) < 0.03);
    CHECK(std::abs(out.var().item<double>() - 1.0) < 0.05);
  }
  // Eval: the identity in both.
  drop->eval();
  theirs->eval();
  CHECK(torch::equal(drop->forward(xd), xd));
  CHECK(torch::equal(theirs->forward(xd), xd));
  // A fixed channel count refuses an input with another size(1).
  regula::libtorch::FeatureAlphaDropout fixed(
      regula::FeatureAlphaDropoutOptions{}.with_p(0.2).with_channels(8));
  CHECK_THROWS_WITH(
      fixed->forward(xd),
      Catch::Matchers::Contains(
          "regula::libtorch::FeatureAlphaDropout: x must have size(1) = channels (8)"));
}

TEMPLATE_TEST_CASE("DropConnect module equals regula's DropConnect, and torch::nn::Linear in eval",
                   "[torch][drop_connect]", float, double) {
  using T = TestType;
  const auto opts = torch::TensorOptions().dtype(dtype<T>());
  torch::manual_seed(7);
  regula::libtorch::DropConnect dc(20, 7, 0.4, regula::Stream(9));
  dc->to(dtype<T>());
  CHECK(dc->weight.sizes() == at::IntArrayRef({7, 20}));
  CHECK(dc->weight.stride(0) == 1);  // regula's column-major out x in matrix, no copy
  // Linear's initialization bound 1/sqrt(in).
  CHECK(dc->weight.abs().max().item<double>() <= 1.0 / std::sqrt(20.0));
  CHECK(dc->bias.abs().max().item<double>() <= 1.0 / std::sqrt(20.0));
  at::Tensor x = torch::randn({13, 20}, opts).requires_grad_(true);
  at::Tensor y = dc->forward(x);
  CHECK(y.sizes() == at::IntArrayRef({13, 7}));
  const at::Tensor dy = torch::randn({13, 7}, opts);
  y.backward(dy);
  // The direct layer on the parameters' memory and the same stream: the same bits.
  const regula::DropConnect<T> layer(regula::DropConnectOptions{0.4});
  const at::Tensor wt = dc->weight.detach().t();  // (in, out) contiguous: regula's out x in
  const auto W = regula::libtorch::view<T>(wt);
  const Eigen::Map<const regula::Vector<T>> b(dc->bias.data_ptr<T>(), 7);
  regula::Stream s(9);
  regula::DropConnectContext<T> c;
  regula::Matrix<T> ry(7, 13), rdx(20, 13), rdw(7, 20);
  regula::Vector<T> rdb(7);
  const at::Tensor xd = x.detach();
  layer.forward(regula::libtorch::view<T>(xd), W, b, ry, s, c);
  layer.backward(regula::libtorch::view<T>(xd), W, regula::libtorch::view<T>(dy), c, rdx, rdw, rdb);
  CHECK(s == dc->stream());
  const at::Tensor yd = y.detach().contiguous();
  CHECK(regula::libtorch::view<T>(yd) == ry);
  const at::Tensor gx = x.grad().contiguous(), gwt = dc->weight.grad().t().contiguous();
  CHECK(regula::libtorch::view<T>(gx) == rdx);
  CHECK(regula::libtorch::view<T>(gwt) == rdw);
  CHECK(Eigen::Map<const regula::Vector<T>>(dc->bias.grad().data_ptr<T>(), 7) == rdb);
  // Some weights were dropped: the training output is not Linear's.
  torch::nn::Linear lin(torch::nn::LinearOptions(20, 7));
  lin->to(dtype<T>());
  {
    torch::NoGradGuard guard;
    lin->weight.copy_(dc->weight);
    lin->bias.copy_(dc->bias);
  }
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  CHECK_FALSE(torch::allclose(y.detach(), lin->forward(xd), tol, tol));
  // Eval: the mean network, torch::nn::Linear with the same parameters (the products' rounding
  // apart), over leading dimensions too; and Linear's gradients.
  dc->eval();
  dc->zero_grad();
  const at::Tensor x3 = torch::randn({2, 5, 20}, opts);
  CHECK(dc->forward(x3).sizes() == at::IntArrayRef({2, 5, 7}));
  CHECK(torch::allclose(dc->forward(x3), lin->forward(x3), tol, tol));
  at::Tensor xe = xd.clone().requires_grad_(true), xl = xd.clone().requires_grad_(true);
  dc->forward(xe).backward(dy);
  lin->forward(xl).backward(dy);
  CHECK(torch::allclose(xe.grad(), xl.grad(), tol, tol));
  CHECK(torch::allclose(dc->weight.grad(), lin->weight.grad(), tol, tol));
  CHECK(torch::allclose(dc->bias.grad(), lin->bias.grad(), tol, tol));
  // Without a bias; and bad inputs named.
  regula::libtorch::DropConnect nb(20, 7, 0.4, regula::Stream(9), false);
  CHECK_FALSE(nb->bias.defined());
  nb->to(dtype<T>());
  at::Tensor xn = xd.clone().requires_grad_(true);
  nb->forward(xn).sum().backward();
  CHECK(xn.grad().defined());
  CHECK_THROWS_WITH(nb->forward(torch::randn({3, 19}, opts)),
                    Catch::Matchers::Contains("x must be a non-empty (..., in_features = 20)"));
  CHECK_THROWS_WITH(regula::libtorch::DropConnect(20, 7, 1.5),
                    Catch::Matchers::Contains("p must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(regula::libtorch::DropConnect(0, 7),
                    Catch::Matchers::Contains("in_features must be at least 1, got 0"));
}

TEMPLATE_TEST_CASE(
    "MultiSampleDropout module equals regula's layer; in eval, Linear + cross_entropy",
    "[torch][multi_sample_dropout]", float, double) {
  using T = TestType;
  const auto opts = torch::TensorOptions().dtype(dtype<T>());
  torch::manual_seed(8);
  const auto options = regula::MultiSampleDropoutOptions{}.with_samples(4).with_p(0.3);
  regula::libtorch::MultiSampleDropout msd(24, 10, options, regula::Stream(21));
  msd->to(dtype<T>());
  CHECK(msd->weight.sizes() == at::IntArrayRef({10, 24}));
  at::Tensor h = torch::randn({16, 24}, opts).requires_grad_(true);
  const at::Tensor labels = torch::randint(0, 10, {16}, torch::TensorOptions().dtype(at::kLong));
  at::Tensor L = msd->forward(h, labels);
  (L * 3.0).backward();  // an incoming gradient of 3
  // The direct layer on the parameters' memory and the same stream: the same bits.
  const regula::MultiSampleDropout<T, regula::PerSampleCrossEntropy<>> layer(options);
  typename regula::MultiSampleDropout<T, regula::PerSampleCrossEntropy<>>::Context c;
  const at::Tensor wt = msd->weight.detach().t();
  const auto W = regula::libtorch::view<T>(wt);
  const Eigen::Map<const regula::Vector<T>> b(msd->bias.data_ptr<T>(), 10);
  regula::Stream s(21);
  const at::Tensor hd = h.detach();
  const T ref = layer.forward(regula::libtorch::view<T>(hd), W, b,
                              regula::libtorch::labels_view(labels), s, c);
  regula::Matrix<T> rdh(24, 16), rdw(10, 24);
  regula::Vector<T> rdb(10);
  layer.backward(W, c, rdh, rdw, rdb);
  CHECK(s == msd->stream());
  CHECK(L.item<T>() == ref);
  const at::Tensor gh = h.grad().contiguous(), gwt = msd->weight.grad().t().contiguous();
  CHECK(regula::libtorch::view<T>(gh) == (rdh * T(3)).eval());
  CHECK(regula::libtorch::view<T>(gwt) == (rdw * T(3)).eval());
  CHECK(Eigen::Map<const regula::Vector<T>>(msd->bias.grad().data_ptr<T>(), 10) ==
        (rdb * T(3)).eval());
  // Eval: the head once, torch::nn::Linear + cross_entropy with the same parameters.
  msd->eval();
  msd->zero_grad();
  at::Tensor he = hd.clone().requires_grad_(true), ht = hd.clone().requires_grad_(true);
  at::Tensor le = msd->forward(he, labels);
  at::Tensor lt = torch::nn::functional::cross_entropy(msd->logits(ht), labels);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  CHECK(std::abs(le.item<double>() - lt.item<double>()) <= tol * lt.item<double>());
  le.backward();
  const at::Tensor gw_eval = msd->weight.grad().clone(), gb_eval = msd->bias.grad().clone();
  msd->zero_grad();
  lt.backward();
  CHECK(torch::allclose(he.grad(), ht.grad(), tol, tol));
  CHECK(torch::allclose(gw_eval, msd->weight.grad(), tol, tol));
  CHECK(torch::allclose(gb_eval, msd->bias.grad(), tol, tol));
  // One context per module: a backward after a later forward is refused, not silently wrong.
  msd->train();
  at::Tensor h1 = hd.clone().requires_grad_(true);
  at::Tensor first = msd->forward(h1, labels);
  at::Tensor second = msd->forward(hd, labels);
  CHECK_THROWS_WITH(first.backward(),
                    Catch::Matchers::Contains("another forward of this module ran after the one"));
  (void)second;
  CHECK_THROWS_WITH(msd->forward(torch::randn({16, 23}, opts), labels),
                    Catch::Matchers::Contains("h must be a (batch, in_features = 24) tensor"));
  CHECK_THROWS_WITH(msd->forward(hd, labels.to(at::kInt)),
                    Catch::Matchers::Contains("labels must be a contiguous 1-D CPU int64 tensor"));
  CHECK_THROWS_WITH(regula::libtorch::MultiSampleDropout(
                        24, 10, regula::MultiSampleDropoutOptions{}.with_samples(0)),
                    Catch::Matchers::Contains("samples (M) must be at least 1, got 0"));
}
