// The SIMD distillation kernels against their scalar reference twins, in the default build (the
// per-instruction-set binaries include the same cases).
#include "kernels/kd_cases.hpp"
