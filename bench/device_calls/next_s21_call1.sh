#!/usr/bin/env bash
# Prepared in session 20 (no device time was left to run it) for session 21: session 20 call 5's ncu showed the block-diagonal kernel on 28672 x 8192 (g64 M = 1)
# at 92 KB of shared memory per CTA (x of one row: 57 KB), 2 CTAs per SM, 1.93 warps per scheduler, against 35 KB, 4 CTAs
# and 3.2 warps on 8192 x 28672.  Probe: the K tile capped (BITMM_TC_KT_MAX, x restaged per K tile) x the warp split.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call6.sh
source "$(dirname "$0")/prelude.sh"
P="python3 bench/decode_probe.py --shapes 28672x8192 --kinds int2,binary --ms 1,2 --groups 64 --backends tensorcore"
for kt in 0 16384 8192 4096; do
  for wn in 0 1 2; do
    BITMM_TC_KT_MAX=$kt BITMM_TC_WN=$wn timeout 25 $P --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/KT=$kt WN=$wn /" >> "$OUT/probe_kt.txt"
  done
  mark "kt $kt"
done
