// The README's usage snippet, compiled and run by CI.
#include <iostream>

#include <regula/regula.hpp>

int main() {
  // A batch is features × batch: here 4 features of 3 samples.
  regula::Matrix<float> x = regula::Matrix<float>::Random(4, 3);
  regula::Matrix<float> y(4, 3), dy = regula::Matrix<float>::Ones(4, 3), dx(4, 3);

  regula::Dropout<float> drop(regula::DropoutOptions{0.1});  // p = probability of zeroing
  regula::Stream stream(/*seed=*/42);                        // counter-based, reproducible

  auto ctx = drop.forward(x, y, stream);  // y = x ⊙ m / (1 − p)
  drop.backward(dy, ctx, dx);             // dx = dy ⊙ m / (1 − p): m recomputed, not stored

  drop.eval();  // identity at inference, like torch.nn.Dropout
  std::cout << "y =\n" << y << "\ndx =\n" << dx << '\n';
}
