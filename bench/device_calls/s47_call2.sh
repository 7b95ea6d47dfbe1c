#!/usr/bin/env bash
# Session 47, call 2 (~1.5 min + sanitizer units to S47_END): tc50 reverted (call 1: its prefetch of (G, N) scales cost
# M = 1 7.6%), so the (G, N) scale tests again; the new BITMM_AUTO_NO_DENSE knob's test (auto keeps to bitmm's kernels
# under it; the control without it takes dense); then the sanitizer units: racecheck 4/16 resumed (call 1's run died in
# cuBLAS under racecheck, a layer's grad_x through auto's dense path; its 98 tests passed before it are in
# bench/results/san_resume_s47_racecheck4.txt), initcheck 2/16, racecheck 5/16 and initcheck 3/16 resumed
# (san_resume_s47.txt), then racecheck 6/16 and initcheck 4/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_tensorcore.py tests/test_wgmma.py tests/test_linear.py" "grouped_strided or column_major or auto_no_dense" "(G, N) scale tests + no-dense knob" 90
san_tail "${S47_UNITS:-racecheck:4/16@cover3 initcheck:2/16@cover3 racecheck:5/16@cover3 initcheck:3/16@cover3 racecheck:6/16@cover3 initcheck:4/16@cover3}" ${S47_END:-400}
cat "$OUT/log.txt"
