// The SIMD-versus-scalar cases compiled for one instruction set (REGULA_TEST_ISA), run only on
// a CPU that has it.
#include "kernels/exp_log_cases.hpp"
#include "kernels/kd_cases.hpp"
#include "kernels/layer_isa_cases.hpp"
#include "kernels/simd_cases.hpp"
#include "kernels/sinkhorn_cases.hpp"
#include "kernels/tile_cases.hpp"
#include "kernels/xent_cases.hpp"

TEST_CASE("this binary runs on a CPU with its instruction set", "[kernels][isa]") {
  INFO("ISA " << REGULA_TEST_ISA << ", xsimd arch " << regula::default_arch::name());
  CHECK(xsimd::available_architectures().best >= regula::default_arch::version());
}
