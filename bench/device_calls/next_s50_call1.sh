#!/usr/bin/env bash
# Session 49, call 2 (after call 1, bench/device_calls/s49_call1.sh: the wgmma grad_x kernel's tests pass, and its
# time at M = 64 is 0.51-0.70x of the tensor-core grad_x kernel's, at M = 16 1.3-2.2x, at M = 256 per tensor 0.70-0.75x
# of the dense path's but 1.10-1.18x with g64, at M = 4096 1.16-1.59x):
# 1. Where auto should take it: grad_x by each backend (tensorcore / dense / the wgmma kernel, BITMM_GX_WGMMA=1) and
#    fp16 grad @ W at M = 32 ... 2048, ternary / binary (int2 ran as ternary in call 1), per tensor and g64, three shapes (gx_sweep.json); its tile
#    height BM (BITMM_GX_WG_BM = 64 / 128 / 256 against the plan) at M = 128 / 256 / 1024 on 8192 x 28672 (gx_bm*.json).
# 2. Sanitizers: the new kernel's units (TOOL:0/1@wgx), then racecheck 15/16 (resumed: its first run died in the
#    now cublas-marked test_last_kernel_names_the_kernel_that_ran), racecheck 14/16 and initcheck 13/16 (resumed).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
# 0. The kernel is now auto's default for grad_x at M = 33 ... 128 (fold) / 1024 (plain) on weights over 2^24
#    elements (linear_cuda.cpp use_wg_grad_x): its tests (the new dispatch checks) and the grad_x suites as they are.
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests (default on)" 200
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites (default)" 200
common=(--direction backward --rounds 2)
BITMM_GX_WGMMA=1 timeout 200 python3 bench/decode_probe.py "${common[@]}" --kinds ternary,binary --groups none,64 \
  --shapes 8192x28672,8192x8192,4096x4096 --ms 32,48,64,96,128,192,256,512,1024,2048 \
  --backends fp16,tensorcore,dense,wgmma --out "$OUT/gx_sweep.json" > /tmp/gs.txt 2>&1
mark "grad_x sweep rc=$? $(tail -1 /tmp/gs.txt)"
for bm in 64 128 256; do
  BITMM_GX_WGMMA=1 BITMM_GX_WG_BM=$bm timeout 40 python3 bench/decode_probe.py "${common[@]}" --kinds ternary \
    --groups none,64 --shapes 8192x28672 --ms 128,256,1024 --backends wgmma \
    --out "$OUT/gx_bm$bm.json" > /tmp/gbm.txt 2>&1
  mark "grad_x BM=$bm rc=$? $(tail -1 /tmp/gbm.txt)"
done
tar czf "$OUT/gx_bm.tgz" -C "$OUT" gx_bm64.json gx_bm128.json gx_bm256.json && rm -f "$OUT"/gx_bm{64,128,256}.json
san_tail "${S49_UNITS:-racecheck:0/1@wgx memcheck:0/1@wgx initcheck:0/1@wgx racecheck:15/16@cover3 racecheck:14/16@cover3 initcheck:13/16@cover3}" ${S49_END:-520}
cat "$OUT/log.txt"
