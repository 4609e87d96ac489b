// The exp and log cases for the default instruction set (test_isa.cpp compiles them for each
// other one).
#include "kernels/exp_log_cases.hpp"
