#!/usr/bin/env bash
# Session 36, call 5: per tensor M = 9..16 on one 16-row weight tile per warp (RN = 1, CM = 2: 64-row CTAs, 448 of
# them on 8192 x 28672) through the new override BITMM_TC_RN=1, against the rule's RN = 2 (224 128-row CTAs; call 3:
# binary / int2 take at N = 28672 the time of N = 33792, two tiles on every SM).  ptxas (sm_90a, here): 128 registers
# against 124, so no occupancy from registers; the bet is the finer tiles (3-4 per SM instead of 1-2).
# Prediction: binary 8192 x 28672 M = 16 39.9 -> ~35 us, int2 58.3 -> ~52, ternary ~43 (call 3's wave numbers).
# Ran at 77718ad (the override was removed again in the next commit: RN = 1 lost, bench/NOTES.md tc41).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s36_call5.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
run_tests tests/test_tensorcore.py "row_tile_override or tile_config" tests 120
for v in "" BITMM_TC_RN=1; do
  env $v timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
    --shapes 8192x28672,4096x28672,8192x8192,28672x8192,4096x14336 --groups none --ms 9,12,16 \
    --backends tensorcore --out "$OUT/rn_${v:+1}.json" 2>&1 | grep " us" | sed "s/^/${v:-rule} /" >> "$OUT/rn.txt"
  mark "probe ${v:-rule}"
done
