#!/usr/bin/env bash
# Session 40 call 5 (data for the next session's rule change; nothing lands from it): (a) the M = 49-63 band on wide
# N, where call 4 put the crossover between the tensor-core kernel (wins at M = 33-48) and the warp-specialized wgmma
# default (wins at M = 64), forced, per tensor; (b) ncu of wgmma g64 vs per tensor at M = 1024 (the group-wise gap,
# 8192 x 28672: g64 ~885 vs per tensor ~742 us with WS).
source "$(dirname "$0")/prelude.sh"
timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,4096x28672 --ms 40,52,56,60 --backends tensorcore,wgmma \
  --out "$OUT/h100_s40_band.json" 2>&1 | grep " us" > "$OUT/band.txt"
mark "band ($(wc -l < "$OUT/band.txt") lines)"
ncu_raw wg_int2_g64_m1024 wg_int2_g64_m1024
ncu_raw wg_int2_m1024 wg_int2_m1024
