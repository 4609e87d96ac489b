// The Sinkhorn KD kernels against their scalar twins in the default build (the per-ISA binaries
// run the same cases, tests/kernels/test_isa.cpp).
#include "kernels/sinkhorn_cases.hpp"
