// The loss functor the multi-sample dropout benchmarks plug into MultiSampleDropout: softmax
// cross-entropy per sample (log-sum-exp), written plainly.
#ifndef REGULA_BENCH_MSD_SOFTMAX_CE_HPP
#define REGULA_BENCH_MSD_SOFTMAX_CE_HPP

#include <cmath>

#include "regula/layers/multi_sample_dropout.hpp"

namespace regula::bench {

/// ℓ_n = log Σ_c exp(z_cn) − z_{y_n n}, dz = softmax(z) − e_y, per column.
struct SoftmaxCE {
  void operator()(const MatrixCRef<float>& z, const LabelView& y, VectorRef<float> loss,
                  MatrixRef<float> dz) const {
    for (Index n = 0; n < z.cols(); ++n) {
      const float mx = z.col(n).maxCoeff();
      dz.col(n) = (z.col(n).array() - mx).exp();
      const float sum = dz.col(n).sum();
      loss(n) = mx + std::log(sum) - z(y(n), n);
      dz.col(n) *= 1.0F / sum;
      dz(y(n), n) -= 1.0F;
    }
  }
};

}  // namespace regula::bench

#endif
