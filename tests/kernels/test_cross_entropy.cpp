// The cross-entropy kernel cases for the default instruction set (test_isa.cpp compiles them
// for each other one).
#include "kernels/xent_cases.hpp"
