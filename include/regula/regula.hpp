/// @file
/// The umbrella header: every public header of regula except integrations/. Including the one
/// header you use is cheaper to compile.
#ifndef REGULA_REGULA_HPP
#define REGULA_REGULA_HPP

#include "regula/activations/softmax.hpp"
#include "regula/activations/stablemax.hpp"
#include "regula/config.hpp"
#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/normalizer.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/philox.hpp"
#include "regula/core/reduction.hpp"
#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/cross_entropy.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/kernels/stablemax.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/losses/binary_kl.hpp"
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
#include "regula/version.hpp"

#endif  // REGULA_REGULA_HPP
