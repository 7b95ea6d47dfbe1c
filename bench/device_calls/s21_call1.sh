#!/usr/bin/env bash
# Session 21 call 1: plan item 0 (the whole GPU suite in 8 shards: validates d02797f's CM <= 4 limit on tc21,
# the tightened two-warps rule, the unsigned offsets and the review's new tests) then plan item 1
# (session 20's next_s21_call1.sh, folded in here: the block-diagonal K tile capped x the warp split on 28672 x 8192 g64, M = 1, 2).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s21_call1.sh
source "$(dirname "$0")/prelude.sh"
CAP=260 source "$(dirname "$0")/gpu_suite_sharded.sh"
P="python3 bench/decode_probe.py --shapes 28672x8192 --kinds int2,binary --ms 1,2 --groups 64 --backends tensorcore"
for kt in 0 16384 8192 4096; do
  for wn in 0 1 2; do
    BITMM_TC_KT_MAX=$kt BITMM_TC_WN=$wn timeout 25 $P --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/KT=$kt WN=$wn /" >> "$OUT/probe_kt.txt"
  done
  mark "kt $kt"
done
