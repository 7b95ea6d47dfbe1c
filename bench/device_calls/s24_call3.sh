#!/usr/bin/env bash
# Session 24 call 3 (about 460 device-seconds left), on the tree with tc30-tc32 landed:
#  1. next_s23_rowsum_split.patch A/B (per tensor M = 1..3, fp16: x's row sums split over the warps instead of one
#     warp per row; session 22's plan item 5).  A = HEAD, C = A + patch, A C A C with one rebuild between
#     (probes are one process each; a second rebuild would cost more than the repeat).  Predicted: 2-8% at M = 1
#     on the shapes with one K tile per CTA (ternary / int2 only; binary has no row sum).
#  2. ncu of the group-wise folding path at M = 32 (int2, ternary 8192 x 28672 g64), never run.
#  3. The per tensor / exact / coverage tests on tree C in what is left.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s24_call3.sh
source "$(dirname "$0")/prelude.sh"
rprobe() {  # $1: label
  timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,2,3 --groups none --backends fp16,tensorcore --out "/tmp/rowsum_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/rowsum.txt"
  mark "rowsum probe $1"
}
rprobe A
ncu_raw tc_int2_g64_m32 tc_int2_g64_m32
ncu_raw tc_ternary_g64_m32 tc_ternary_g64_m32
(cd "$OUT" && tar czf ncu_m32.tgz ncu_*.txt && rm -f ncu_*.txt)
apply_and_rebuild bench/device_calls/next_s23_rowsum_split.patch C
rprobe C
P=bench/device_calls/next_s23_rowsum_split.patch  # (the device's copy has no .git: the patch is reversed)
patch -R -p1 < $P > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 && mark build-A2 && rprobe A2 \
  && apply_and_rebuild $P C2 && rprobe C2
SHARDS=8 CAP=$(( 440 - ($(date +%s) - start) )) LABEL="final " PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_linear.py" \
  K_EXPR="per_tensor or exact or every or determin" source "$(dirname "$0")/gpu_suite_sharded.sh"
