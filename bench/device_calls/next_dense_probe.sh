#!/usr/bin/env bash
# Prepared in sessions 24-25, for a session with ~400 device-seconds to spare: the dense path at large M (issue 5's
# >= 0.95x for group-wise weights; bench/NOTES.md, session 24's plan item 5).  Its dequantization pass runs at
# ~1.8 TB/s (int2 g64 8192 x 28672 M = 4096: ~300 us of 3100; fp16's GEMM alone 2802).  A = HEAD: ncu of the dequant
# kernel at int2 g64 M = 4096, then bench/wg_probe.py --cases dense (M = 2048 / 4096 on four shapes, fp16 in the same
# process) with BITMM_DEQUANT_GRID_Y unset / 2112 (rows in flight).  B = next_dequant_rows.patch (tc40: a thread
# loads 4 rows' words and scales before it converts and stores any; 4x fewer CTAs; sm_90a 40-56 registers, no
# spills, was 32): the same ncu and probe (GRID_Y unset / 528 batches).  Then the dense-path tests on B.
# Predicted: dequant ~300 -> ~180-200 us at 235 M weights (toward the ~3+ TB/s copy rate), M = 4096 int2 g64
# 0.90 -> ~0.94x.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_dense_probe.sh
source "$(dirname "$0")/prelude.sh"
dprobe() {  # $1: label, $2: the GRID_Y variant
  timeout 120 python3 bench/wg_probe.py --out "$OUT/dense_$1.json" --cases dense --tiles "auto,auto:BITMM_DEQUANT_GRID_Y=$2" \
    2>&1 | tail -20 | sed "s/^/$1 /" >> "$OUT/dense.txt"
  mark "dense probe $1"
}
ncu_raw dense_int2_g64_m4096 A_dense_int2_g64_m4096
dprobe A 2112
apply_and_rebuild bench/device_calls/next_dequant_rows.patch B
ncu_raw dense_int2_g64_m4096 B_dense_int2_g64_m4096
dprobe B 528
gzip "$OUT"/ncu_*.txt
SHARDS=4 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="dense tests " PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_reliability.py" \
  K_EXPR="dense" source "$(dirname "$0")/gpu_suite_sharded.sh"
