#!/usr/bin/env bash
# Session 49, the short form of next_s49_call2.sh for the device time left after six refused starts (~300 s of command):
# the wgmma grad_x kernel as auto's new default (its tests, the grad_x suites), then a small sweep of the backends at the
# rule's edges (M = 48 ... 512, ternary, per tensor / g64, 8192 x 28672 and 8192^2) and one tile: BM = 256 at M = 256.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests (default on)" 120
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites (default)" 100
common=(--direction backward --rounds 2 --kinds ternary --groups none,64 --shapes 8192x28672,8192x8192)
BITMM_GX_WGMMA=1 timeout 60 python3 bench/decode_probe.py "${common[@]}" --ms 48,96,128,192,512 \
  --backends fp16,tensorcore,dense,wgmma --out "$OUT/gx_sweep.json" > /tmp/gs.txt 2>&1
mark "grad_x sweep rc=$? $(tail -1 /tmp/gs.txt)"
BITMM_GX_WGMMA=1 BITMM_GX_WG_BM=256 timeout 30 python3 bench/decode_probe.py "${common[@]}" --ms 256 --backends fp16,wgmma \
  --out "$OUT/gx_bm256.json" > /tmp/gbm.txt 2>&1
mark "grad_x BM=256 rc=$? $(tail -1 /tmp/gbm.txt)"
cat "$OUT/log.txt"
