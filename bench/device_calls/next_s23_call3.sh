#!/usr/bin/env bash
# Prepared in session 22 for session 23: (1) ncu with stall counts of the group-wise folding path at M = 32 and of
# the tensor-core grad_x kernel at M = 1 (that one ran in session 23, h200_s23_ncu_gradx_ternary_m1_1aa4d98.txt)
# (CM = 4; 8192 x 28672 g64: int2 153 us, ternary 137, against M = 16's 91.5 / 79.7 for a step loop only 6%
# longer in the SASS: what limits it?); (2) compute-sanitizer memcheck / racecheck / initcheck over the
# tensor-core forward coverage tests (every launch configuration on small problems, now with tc25's typed
# CM = 1 folding instances and tc26's M = 3, 4 routing), one process per tool and kind side by side.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s23_call3.sh
# Its sanitizer part (2) ran in session 23 as s23_call3.sh (9 of 9 clean) and is left out here.
source "$(dirname "$0")/prelude.sh"
ncu_raw tc_int2_g64_m32 tc_int2_g64_m32
ncu_raw tc_ternary_g64_m32 tc_ternary_g64_m32
