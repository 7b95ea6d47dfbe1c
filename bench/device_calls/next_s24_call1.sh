#!/usr/bin/env bash
# Prepared in session 23 for session 24 (session 23 ran out of device time before these):
#  1. tc28's GPU test (per tensor M = 1..3 on two warps along N; the rule itself was timed in session 23 call 3, its
#     test cut by a cap there) and the rules table.
#  2. next_s24_gradx_waves.patch: the tensor-core grad_x grid rounded down to one wave (ncu in session 23: 8192 x 28672
#     M = 1 ran 544 CTAs for 528 slots, SMs active 71% of the cycles).  One build, the old rule through
#     BITMM_GX_SPLITS=0 (A), the new one (B), two whole waves =2 (C), A B C twice, one process each.  Predicted:
#     B 15-25% faster than A at M = 1 on 8192 x 28672 (and on K = 28672: 5 -> 4 splits of 112 slices).
#  3. next_s23_rowsum_split.patch (session 22's plan item 5): per tensor M = 1..3 with fp16 in the same process, before
#     (A, tree of step 2) and after (B).  Predicted: a few % at M = 1 for ternary / int2, nothing for binary.
#  4. The per tensor / channel, grad_x and coverage tests on the final tree in what is left.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s24_call1.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=4 CAP=120 PYTEST_ARGS="tests/test_tensorcore.py tests/test_tc_launch_rules.py" K_EXPR="two_warps or rules" LABEL="tc28 " \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
apply_and_rebuild bench/device_calls/next_s24_gradx_waves.patch gx
for lab in A1 B1 C1 A2 B2 C2; do
  case ${lab:0:1} in A) e=BITMM_GX_SPLITS=0;; B) e="";; C) e=BITMM_GX_SPLITS=2;; esac
  env $e timeout 50 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds ternary,int2,binary --ms 1,4,16 --groups none,64 --backends fp16,auto --out "/tmp/gx_$lab.json" 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/gx.txt"
done
cp /tmp/gx_B1.json "$OUT/gx_B1.json"
mark gx
rprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,2,3 --groups none --backends fp16,tensorcore --out "/tmp/rowsum_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/rowsum.txt"
  mark "probe $1"
}
rprobe A
apply_and_rebuild bench/device_calls/next_s23_rowsum_split.patch rowsum
rprobe B
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_reliability.py tests/test_tc_grad_x.py" \
  K_EXPR="tensor or channel or exact or determin or forward_every or grad_x" source "$(dirname "$0")/gpu_suite_sharded.sh"
