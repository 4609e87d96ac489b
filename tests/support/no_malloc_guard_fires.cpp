// Must fail: allocates an Eigen matrix while the no-allocation guard is active. ctest expects
// this program to fail (WILL_FAIL); if it exits 0 the guard is broken. Eigen's assertion
// aborts; the handler turns the abort into exit status 1, which WILL_FAIL can invert.
#define EIGEN_RUNTIME_NO_MALLOC
#include <csignal>
#include <cstdio>

#include <Eigen/Core>

#include "no_malloc.hpp"
#include <unistd.h>

extern "C" void on_abort(int) { _exit(1); }

int main() {
  std::signal(SIGABRT, on_abort);
  int result = 0;
  {
    regula::test::NoMalloc guard;
    Eigen::MatrixXf m(64, 64);
    m.setZero();
    result = static_cast<int>(m(0, 0));
  }
  std::puts("allocated under the guard without failing");
  return result;
}
