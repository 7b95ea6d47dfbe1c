#!/usr/bin/env bash
# Session 21 call 2: call 1's suite ran with CAP = 260 and 6 of its 8 shards were cut off (no failure in what
# ran; shards 4 and 6 passed in 226-232 s): those 6 again with CAP = 420.  Then the K-tile cap on the
# block-diagonal path (call 1: int2 M = 2 on 28672 x 8192 82.0 -> 66.8 us with KT = 4096 WN = 1, M = 1
# 70.9 -> 68.5; binary lost with WN = 1), repeated (each setting twice, one process each) on int2 and
# ternary, 28672 x 8192 and 28672 x 4096, with KT = 2048 too.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s21_call2.sh
source "$(dirname "$0")/prelude.sh"
SHARD_IDS="0 1 2 3 5 7" CAP=420 source "$(dirname "$0")/gpu_suite_sharded.sh"
P="python3 bench/decode_probe.py --shapes 28672x8192,28672x4096 --kinds int2,ternary --ms 1,2 --groups 64 --backends tensorcore"
for rep in 1 2; do
  for cfg in "0 0" "4096 1" "2048 1" "4096 2"; do
    set -- $cfg
    BITMM_TC_KT_MAX=$1 BITMM_TC_WN=$2 timeout 25 $P --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/r$rep KT=$1 WN=$2 /" >> "$OUT/probe_kt.txt"
  done
  mark "rep $rep"
done
