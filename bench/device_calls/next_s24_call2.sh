#!/usr/bin/env bash
# Prepared in session 23 for session 24, after next_s24_call1.sh (run on the tree with what call 1 kept):
#  1. next_s24_addsub_prefetch.patch A/B: the add/subtract kernel (auto's group-wise M = 1 with bf16 x, layers under
#     2^24 weights, fp32 x) loaded s and u at each group flush and converted them at once; the patch loads them where
#     the piece starts (sm_90a SASS: 8 loads per chunk now used ~620-700 instructions later) at the cost of registers
#     (f16 R = 8 instances 96 -> 128: maybe a CTA less per SM).  A = HEAD, B = A + patch, bf16 and fp16 x, g64 M = 1, 2
#     on four shapes, addsub backend forced and auto.  Predicted: 5-15% where the flush waits dominated (g64: a flush
#     per chunk), nothing per tensor.
#  2. next_s23_rowsum_split.patch's A/B (session 22's plan, its script folded in here) (per tensor M = 1..3), as a second patch on B (tree C).
#  3. The add/subtract, per tensor and coverage tests on tree C.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s24_call2.sh
source "$(dirname "$0")/prelude.sh"
aprobe() {  # $1: label
  for dt in bfloat16 float16; do
    timeout 40 python3 bench/decode_probe.py --dtype $dt --shapes 8192x28672,8192x8192,4096x4096,2048x2048 --kinds int2,ternary,binary \
      --ms 1,2 --groups 64 --backends fp16,addsub,auto --out "/tmp/as_$1_$dt.json" 2>&1 | grep " us" | sed "s/^/$1 $dt /" >> "$OUT/addsub.txt"
  done
  mark "probe $1"
}
aprobe A
apply_and_rebuild bench/device_calls/next_s24_addsub_prefetch.patch B
aprobe B
rprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,2,3 --groups none --backends fp16,tensorcore --out "/tmp/rowsum_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/rowsum.txt"
  mark "rowsum probe $1"
}
rprobe B
apply_and_rebuild bench/device_calls/next_s23_rowsum_split.patch C
rprobe C
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="final " PYTEST_ARGS="tests/test_linear.py tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_reliability.py" \
  K_EXPR="addsub or per_tensor or exact or determin or every or cuda" source "$(dirname "$0")/gpu_suite_sharded.sh"
