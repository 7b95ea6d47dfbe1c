#!/usr/bin/env bash
# Session 41 call 5: tc47 (tc_grouped_wide per kind after wg13: binary M <= 32, ternary / int2 M <= 20, int2 bf16
# M <= 28) through test_wgmma.py's auto tests, and auto against the forced kernels on both sides of the new bounds.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto" "test_wgmma.py -k auto" 120
for dt in float16 bfloat16; do
  timeout 50 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2 --groups 64 --rounds 2 \
    --shapes 8192x28672 --ms 20,21,28,29 --backends fp16,auto,tensorcore,wgmma \
    --out "$OUT/h100_s41_grouped_auto_$dt.json" 2>&1 | grep " us" >> "$OUT/grouped_auto.txt"
  mark "grouped auto $dt"
done
