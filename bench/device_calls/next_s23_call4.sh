#!/usr/bin/env bash
# Prepared in session 22 for session 23: next_s23_rowsum_split.patch.  Per tensor / channel M = 1..3 (ternary / int2 on
# fp16 subnormal codes, or any kind with an offset) need x's row sums; one warp of each CTA summed a whole row after
# staging (~850 instructions at K = 8192) while the other three went on and then waited for it at the first row tile's
# K-split reduction barrier (17% of the stall samples sit at that barrier in session 14's source profile).  The patch
# splits a row over the kTcWarps / rows warps (fixed part order: deterministic).  A = HEAD, B = A + patch in one
# machine: per tensor M = 1 / 2 / 3 on four shapes, fp16 in the same process; then the per tensor / channel and
# coverage tests on B.  Predicted: a few % at M = 1 for ternary / int2, nothing for binary.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s23_call4.sh
source "$(dirname "$0")/prelude.sh"   # builds A
rprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,2,3 --groups none --backends fp16,tensorcore --out "$OUT/rowsum_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/rowsum.txt"
  mark "probe $1"
}
rprobe A
apply_and_rebuild bench/device_calls/next_s23_rowsum_split.patch B
rprobe B
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_reliability.py" \
  K_EXPR="tensor or channel or exact or determin or forward_every" source "$(dirname "$0")/gpu_suite_sharded.sh"
