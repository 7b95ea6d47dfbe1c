#!/usr/bin/env bash
# Prepared in session 50.  Run first in session 51 (build ~60 s, then to S51_END, default 520 s):
# 0. Session 50's grad_x rule (the wgmma grad_x kernel from M = 25, from M = 16 to 64 on weights of at most 2^24
#    elements; wgx2a's two 64-row CTAs per SM) has not run its dispatch checks on a GPU: test_wg_grad_x.py (boundaries
#    M = 15 / 16 / 20 / 64 / 65 small, 24 / 25 large), the grad_x suites, test_linear's no-dense knob test (M = 100 now).
# 1. The new boundaries timed: tensorcore / wgmma / auto at M = 17-32 on 8192 x 28672 and 8192^2 (M = 25-31 were
#    predicted from M = 32 by the tensor-core kernel's 8-row steps), and on small weights (4096^2, 4096 x 2048) tensorcore /
#    dense / wgmma / auto at M = 8-128 (above 64 the dense path kept, not measured against the wgmma kernel).
# 2. Sanitizers: the wgmma grad_x kernel's units under all three tools (rerun whole: wgx2a changed its ring and
#    occupancy), racecheck 14/16 (resumed), initcheck 12/16 .. 15/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests" 150
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites" 150
common=(--direction backward --rounds 2 --kinds ternary,binary,int2 --groups none,64)
timeout 100 python3 bench/decode_probe.py "${common[@]}" --shapes 8192x28672,8192x8192 --ms 17,20,24,25,28,32 \
  --backends fp16,tensorcore,wgmma,auto --out "$OUT/gx_low.json" > /tmp/gl.txt 2>&1
mark "grad_x M = 17-32 rc=$? $(tail -1 /tmp/gl.txt)"
timeout 100 python3 bench/decode_probe.py "${common[@]}" --shapes 4096x4096,4096x2048 --ms 8,12,16,64,65,96,128 \
  --backends fp16,tensorcore,dense,wgmma,auto --out "$OUT/gx_small.json" > /tmp/gsm.txt 2>&1
mark "grad_x small weights rc=$? $(tail -1 /tmp/gsm.txt)"
san_tail "${S51_UNITS:-memcheck:0/1@wgx racecheck:0/1@wgx initcheck:0/1@wgx racecheck:14/16@cover3 initcheck:13/16@cover3 initcheck:12/16@cover3 initcheck:14/16@cover3 initcheck:15/16@cover3}" ${S51_END:-520}
cat "$OUT/log.txt"
