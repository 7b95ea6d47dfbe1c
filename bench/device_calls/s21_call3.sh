#!/usr/bin/env bash
# Session 21 call 3.  A = HEAD: the long-K rule of the block-diagonal path (tc_bd_long_k: ternary / int2 one
# warp along N, K tile capped at 4096 inputs, from call 2's probe).  (1) the rule against the previous
# launch (BITMM_TC_WN=2 with no cap) on the measured shape and on two unmeasured ones where it also holds
# (16384 x 8192, 16384 x 16384), fp16 in the same process; (2) session 20's next_s21_call2.sh (folded in here): the A/B of next_s21_sdt.patch
# (g64 M = 9, 16, 24 probes, A then B = A + patch), then on B the group-wise and block-diagonal tests.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s21_call3.sh
source "$(dirname "$0")/prelude.sh"   # builds A
R="python3 bench/decode_probe.py --shapes 28672x8192,16384x8192,16384x16384 --kinds int2,ternary --ms 1,2 --groups 64"
timeout 40 $R --backends fp16,auto,tensorcore --out "$OUT/probe_longk_rule.json" 2>&1 | grep " us" | sed "s/^/rule /" > "$OUT/probe_longk.txt"
BITMM_TC_WN=2 BITMM_TC_KT_MAX=1000000 timeout 40 $R --backends tensorcore --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/prev /" >> "$OUT/probe_longk.txt"
mark "longk rule"
gprobe() {  # $1: A or B
  timeout 90 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary,binary \
    --ms 9,16,24 --groups 64 --backends fp16,tensorcore --out "$OUT/probe_g64_$1.json" 2>&1 | grep " us" > "$OUT/probe_g64_$1.txt"
  mark "probe-g64-$1"
}
gprobe A
apply_and_rebuild bench/device_calls/next_s21_sdt.patch B
gprobe B
SHARDS=4 CAP=230 LABEL="B " PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py" \
  K_EXPR="grouped or fold or scale_offsets or two_row or coverage or block_diagonal" \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
