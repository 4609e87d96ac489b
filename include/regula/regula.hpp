/// @file
/// The umbrella header: every header of regula's public API, integrations/ excepted. The raw
/// kernels (kernels/, core/simd.hpp) are not exported: the headers that use them include them,
/// and they stay includable on their own. Including the one header you use is cheaper to
/// compile.
#ifndef REGULA_REGULA_HPP
#define REGULA_REGULA_HPP

#include "regula/activations/softmax.hpp"
#include "regula/activations/softmax_collapse.hpp"
#include "regula/activations/stablemax.hpp"
#include "regula/config.hpp"
#include "regula/core/checks.hpp"
#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/normalizer.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/philox.hpp"
#include "regula/core/reduction.hpp"
#include "regula/core/stream.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/feature_alpha_dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"
#include "regula/losses/binary_kl.hpp"
#include "regula/losses/coverage.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/dual_head.hpp"
#include "regula/losses/js.hpp"
#include "regula/losses/kd_common.hpp"
#include "regula/losses/kd_kl.hpp"
#include "regula/losses/logit_mse.hpp"
#include "regula/losses/reverse_kl.hpp"
#include "regula/losses/sinkhorn_kd.hpp"
#include "regula/losses/total_variation.hpp"
#include "regula/optim/perp_grad.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/forget_rate.hpp"
#include "regula/selection/jocor.hpp"
#include "regula/selection/label_noise.hpp"
#include "regula/selection/small_loss.hpp"
#include "regula/version.hpp"

#endif  // REGULA_REGULA_HPP
