#include <torch/torch.h>

#include <cstring>

#include "regula/integrations/torch.hpp"
#include "support/catch.hpp"

namespace {

template <class T>
at::ScalarType dtype() {
  return std::is_same_v<T, float> ? at::kFloat : at::kDouble;
}

}  // namespace

TEMPLATE_TEST_CASE("A (batch, features) tensor is a features x batch view of the same bytes", "[torch][adapter]",
                   float, double) {
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

TEMPLATE_TEST_CASE("libtorch::dropout equals regula's Dropout, forward and autograd backward", "[torch][dropout]",
                   float, double) {
  using T = TestType;
  at::Tensor x = torch::randn({33, 40}, torch::TensorOptions().dtype(dtype<T>())).requires_grad_(true);
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
