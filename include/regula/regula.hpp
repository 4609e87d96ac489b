/// @file
/// The umbrella header: every public header of regula except integrations/. Including the one
/// header you use is cheaper to compile.
#ifndef REGULA_REGULA_HPP
#define REGULA_REGULA_HPP

#include "regula/activations/softmax.hpp"
#include "regula/activations/softmax_collapse.hpp"
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
#include "regula/kernels/coverage.hpp"
#include "regula/kernels/cross_entropy.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/kernels/perp_grad.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/kernels/stablemax.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/losses/coverage.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/optim/perp_grad.hpp"
#include "regula/version.hpp"

#endif  // REGULA_REGULA_HPP
