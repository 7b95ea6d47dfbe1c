#!/usr/bin/env bash
# Session 40 call 4 (warm, after call 3, same tree): issue 5's M = 1024 / 4096 grid through auto with the
# warp-specialized wgmma pipeline as the default, fp16 F.linear timed beside it, for h100.json.
source "$(dirname "$0")/prelude.sh"
timeout 280 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 1024,4096 --backends fp16,auto \
  --out "$OUT/h100_s40_auto_large_m.json" 2>&1 | grep " us" > "$OUT/auto_large_m.txt"
mark "probe ($(wc -l < "$OUT/auto_large_m.txt") lines)"
