#!/usr/bin/env bash
# Session 43 call 7 (warm): ncu of the per tensor wgmma kernel at M = 17 and M = 64 (8192 x 28672, after wg16): why
# M = 17 takes longer.
source "$(dirname "$0")/prelude.sh"
for c in wg_ternary_m17 wg_ternary_m64; do ncu_raw "$c" "$c"; done
cat "$OUT/log.txt"
