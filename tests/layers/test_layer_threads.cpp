// The element walk every stream-driven layer shares (detail::for_each_element_run): the same
// bits for 1, 2 and 4 threads, forward and backward, for contiguous inputs and for column blocks
// of a wider matrix (the column-by-column walk inside a chunk), in place and not.
#include <cstring>

#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"

#include "support/catch.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using regula::Index;
using regula::Stream;
template <class T>
using Mat = regula::Matrix<T>;

void set_threads(int t) {
#if defined(_OPENMP)
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}

template <class T>
Mat<T> ramp(Index rows, Index cols) {
  Mat<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<T>(1 + (i % 23)) * T(0.125) - T(1);
  return x;
}

template <class T>
bool bitwise_equal(const Mat<T>& a, const Mat<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

// y and dx of one forward + backward of `layer` on a (rows × cols) block of a wider matrix
// (strided = true) or on a contiguous matrix, from Stream(seed), with `threads` threads.
template <class T, class Layer>
std::pair<Mat<T>, Mat<T>> run(const Layer& layer, bool strided, bool in_place, int threads) {
  constexpr Index rows = 1001, cols = 301;  // several 65536-element chunks, ragged tiles
  set_threads(threads);
  const Mat<T> wide = ramp<T>(rows + 7, cols);
  const Mat<T> dense = wide.topRows(rows);
  Mat<T> y(rows, cols), dx(rows, cols);
  Stream s(2718);
  typename Layer::Context ctx;
  if (strided) {
    Mat<T> ywide = Mat<T>::Zero(rows + 7, cols);
    auto yb = ywide.topRows(rows);
    layer.forward(wide.topRows(rows), yb, s, ctx);
    y = yb;
  } else if (in_place) {
    y = dense;
    layer.forward(y, y, s, ctx);
  } else {
    layer.forward(dense, y, s, ctx);
  }
  dx = dense * T(-0.5);
  layer.backward(dx, ctx, dx);
  set_threads(1);
  return {y, dx};
}

}  // namespace

TEMPLATE_TEST_CASE("AlphaDropout and GaussianDropout give the same bits for 1, 2 and 4 threads",
                   "[layers][threads]", float, double) {
  using T = TestType;
  const regula::AlphaDropout<T> alpha(regula::AlphaDropoutOptions{0.3});
  const regula::GaussianDropout<T> gauss(regula::GaussianDropoutOptions{0.3});
  for (const bool strided : {false, true}) {
    for (const bool in_place : {false, true}) {
      if (strided && in_place) continue;
      const auto a1 = run<T>(alpha, strided, in_place, 1);
      const auto g1 = run<T>(gauss, strided, in_place, 1);
      // The layers did something: a dropped element of alpha dropout is a·α′ + b, not x.
      CHECK_FALSE(bitwise_equal(a1.first, Mat<T>(ramp<T>(1008, 301).topRows(1001))));
      for (const int threads : {2, 4}) {
        INFO("strided " << strided << ", in place " << in_place << ", threads " << threads);
        const auto a = run<T>(alpha, strided, in_place, threads);
        const auto g = run<T>(gauss, strided, in_place, threads);
        CHECK(bitwise_equal(a.first, a1.first));
        CHECK(bitwise_equal(a.second, a1.second));
        CHECK(bitwise_equal(g.first, g1.first));
        CHECK(bitwise_equal(g.second, g1.second));
      }
    }
  }
}
