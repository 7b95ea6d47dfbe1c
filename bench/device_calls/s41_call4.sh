#!/usr/bin/env bash
# Session 41 call 4: tc46 (tc_split_small_m redrawn against the warp-specialized default: fp16 x M = 17 only, bf16
# M <= 20, binary bf16 M <= 24 where K <= 16384) through test_wgmma.py's auto tests; the group-wise wide-N band
# (tc_grouped_wide, M = 17..32) forced with wg13's faster group-wise wgmma, both x dtypes; issue 5's group-wise grid
# at M = 64 / 256 / 1024 and per tensor M = 64 through auto, for h100.json.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto" "test_wgmma.py -k auto" 200
for dt in float16 bfloat16; do
  timeout 60 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups 64,128 --rounds 2 \
    --shapes 8192x28672,4096x28672 --ms 17,24,28,32 --backends tensorcore,wgmma \
    --out "$OUT/h100_s41_grouped_wide_$dt.json" 2>&1 | grep " us" > "/tmp/gw_$dt.txt"
  mark "grouped wide $dt ($(wc -l < /tmp/gw_$dt.txt) lines)"
done
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64 --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 64,256,1024 --backends fp16,auto \
  --out "$OUT/h100_s41_auto_grid_g64.json" 2>&1 | grep " us" > /tmp/grid.txt
mark "grid g64 ($(wc -l < /tmp/grid.txt) lines)"
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 64 --backends fp16,auto \
  --out "$OUT/h100_s41_auto_grid_m64.json" 2>&1 | grep " us" > /tmp/grid64.txt
mark "grid m64 ($(wc -l < /tmp/grid64.txt) lines)"
