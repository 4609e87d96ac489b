// A user's program: takes regula through CMake and applies Dropout to a small batch.
#include <cstdio>

#include <regula/regula.hpp>

int main() {
  regula::Dropout<float> drop(regula::DropoutOptions{0.5});
  regula::Stream stream(7);
  regula::Matrix<float> x = regula::Matrix<float>::Ones(8, 4);
  regula::Matrix<float> y(8, 4);
  const auto ctx = drop.forward(x, y, stream);
  regula::Matrix<float> dx(8, 4);
  drop.backward(x, ctx, dx);
  const bool ok = y == dx && (y.array() == 0.0F || y.array() == 2.0F).all();
  std::printf("regula %d.%d.%d consumer: %s\n", REGULA_VERSION_MAJOR, REGULA_VERSION_MINOR,
              REGULA_VERSION_PATCH, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
