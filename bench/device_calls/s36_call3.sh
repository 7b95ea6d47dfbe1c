#!/usr/bin/env bash
# Prepared in session 35 (not run): (a) the tests session 35 wrote after its last GPU call (the four-warps grid test
# test_tensorcore_per_tensor_m17_64_wide_n_four_warps_along_n; test_auto_per_tensor_m17_20_split_shapes_take_tensor_core
# with its SM-count guard); (b) the
# leftovers of session 35's calls 4-5 for a wider tc_split_small_m: per tensor M = 17..32 where wgmma's plan splits K,
# tensor core vs wgmma forced, on N = 8192 shapes with K = 4096..28672 (binary won to M = 24-32 on 8192^2 and
# 16384 x 8192; 4096 x 8192 won at M = 17..20 for every kind) and N = 6144 / 4096 controls (4096 lost); (c) on an
# H200, next_s35_h200.sh's digits probe; (d) M = 16 launch overrides (below).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s36_call1.sh
source "$(dirname "$0")/prelude.sh"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); echo "$GPU" >> "$OUT/log.txt"
run_tests "tests/test_tensorcore.py tests/test_wgmma.py" "four_warps or auto" tests 150
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 4096x8192,6144x8192,8192x8192,12288x8192,16384x8192,8192x6144,4096x4096 --groups none --ms 17,20,21,24,28,32 \
  --backends fp16,auto,tensorcore,wgmma --out "$OUT/split.json" > /tmp/a.txt 2>&1
mark "split probe ($(grep -c ' us' /tmp/a.txt) lines)"; cp /tmp/a.txt "$OUT/split.txt"
# (d) issue 5's M = 16 row (3.75x of 5x): 224 128-row CTAs on 132 SMs leave 92 SMs two tiles and 40 one; does a
# smaller K tile (more resident CTAs) or two warps along N (448 CTAs) change that on the H100?  (H200, session 13:
# WN = 4 58.3 vs WN = 2 75.7 us.)
for v in "" BITMM_TC_WN=2 BITMM_TC_KT_MAX=2048 BITMM_TC_KT_MAX=4096; do
  env $v timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,4096x28672 \
    --groups none --ms 16 --backends tensorcore --out "$OUT/m16_${v:-rule}.json" 2>&1 | grep " us" | sed "s/^/${v:-rule} /" >> "$OUT/m16.txt"
done
# The imbalance itself: if 92 SMs with two 128-row tiles set the time, N = 28672 (224 tiles, 1.7 per SM) takes about
# what N = 33792 (264 tiles, 2 per SM) takes, and N = 16896 (132 tiles, 1 per SM) about half of that.
timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x16896,8192x28672,8192x33792 \
  --groups none --ms 16 --backends fp16,tensorcore --out "$OUT/m16_waves.json" 2>&1 | grep " us" | sed "s/^/waves /" >> "$OUT/m16.txt"
mark "m16 ($(wc -l < "$OUT/m16.txt") lines)"
if [[ "$GPU" == *H200* ]]; then
  timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
    --shapes 8192x28672,4096x28672,2048x32768,8192x57344,8192x8192 --groups none --ms 1,2 \
    --backends fp16,auto,tensorcore,digits --out "$OUT/h200_digits.json" > /tmp/m.txt 2>&1
  mark "h200 digits ($(grep -c ' us' /tmp/m.txt) lines)"; cp /tmp/m.txt "$OUT/h200_digits.txt"
fi
