// One training step of a 784-1024-1024-10 MLP with dropout 0.5 after each hidden layer, batch
// 256, in libtorch: torch::nn::Dropout against regula's Dropout through the adapter. Group
// `torch`; one thread.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "regula/integrations/torch.hpp"

namespace {

template <class DropoutModule>
struct Mlp : torch::nn::Module {
  Mlp(DropoutModule d1, DropoutModule d2)
      : fc1(register_module("fc1", torch::nn::Linear(784, 1024))),
        fc2(register_module("fc2", torch::nn::Linear(1024, 1024))),
        fc3(register_module("fc3", torch::nn::Linear(1024, 10))),
        drop1(register_module("drop1", d1)),
        drop2(register_module("drop2", d2)) {}
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = drop1->forward(torch::relu(fc1->forward(x)));
    h = drop2->forward(torch::relu(fc2->forward(h)));
    return fc3->forward(h);
  }
  torch::nn::Linear fc1, fc2, fc3;
  DropoutModule drop1, drop2;
};

template <class DropoutModule>
void step(benchmark::State& state, DropoutModule d1, DropoutModule d2) {
  torch::set_num_threads(1);
  torch::manual_seed(0);
  Mlp<DropoutModule> net(d1, d2);
  net.train();
  torch::optim::SGD opt(net.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const at::Tensor x = torch::rand({256, 784});
  const at::Tensor y = torch::randint(10, {256}, torch::kLong);
  for (auto _ : state) {
    opt.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(net.forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
  }
}

void torch_dropout(benchmark::State& state) {
  step(state, torch::nn::Dropout(0.5), torch::nn::Dropout(0.5));
}

void regula_dropout(benchmark::State& state) {
  step(state, regula::libtorch::Dropout(0.5, regula::Stream(1, 0)),
       regula::libtorch::Dropout(0.5, regula::Stream(1, 1)));
}

}  // namespace

BENCHMARK(torch_dropout)->Name("torch/mlp_step_784_1024_1024_10_B256/torch_dropout")->UseRealTime();
BENCHMARK(regula_dropout)->Name("torch/mlp_step_784_1024_1024_10_B256/regula")->UseRealTime();

BENCHMARK_MAIN();
