/// @file
/// The umbrella header: every public header of regula except integrations/. Including the one
/// header you use is cheaper to compile.
#ifndef REGULA_REGULA_HPP
#define REGULA_REGULA_HPP

#include "regula/config.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/philox.hpp"
#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/alpha_dropout.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/kernels/gaussian_dropout.hpp"
#include "regula/kernels/multi_sample_dropout.hpp"
#include "regula/kernels/nested_dropout.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/forget_rate.hpp"
#include "regula/selection/label_noise.hpp"
#include "regula/selection/small_loss.hpp"
#include "regula/version.hpp"

#endif  // REGULA_REGULA_HPP
