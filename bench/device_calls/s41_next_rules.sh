#!/usr/bin/env bash
# Prepared in session 41 (not run): the bounds tc46 / tc47 left unmeasured, forced tensor core vs wgmma.
# (a) tc47, group-wise wide N: M = 21-23 (the crossover lies between 21 and 24), both x dtypes; int2 bf16 M = 29-31;
# (b) tc46, per tensor split shapes at N / K other than 8192 / 28672, M = 17-24, both x dtypes.
source "$(dirname "$0")/prelude.sh"
for dt in float16 bfloat16; do
  timeout 60 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2 --groups 64,128 --rounds 2 \
    --shapes 8192x28672,4096x28672 --ms 21,22,23,29,30,31 --backends tensorcore,wgmma \
    --out "$OUT/grouped_band_$dt.json" 2>&1 | grep " us" >> "$OUT/grouped_band.txt"
  mark "grouped band $dt"
  timeout 80 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 4096x8192,16384x8192,8192x6144 --ms 17,18,20,22,24 --backends tensorcore,wgmma \
    --out "$OUT/split_other_$dt.json" 2>&1 | grep " us" >> "$OUT/split_other.txt"
  mark "split other shapes $dt"
done
