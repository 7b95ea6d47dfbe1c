#!/usr/bin/env bash
# Session 41 call 1: session 40's call 6 as written (tc45's auto tests and the bitwise WS test's later
# additions, then auto against the forced kernels with fp16 x), then bf16 x against the warp-specialized wgmma
# default on tc45's shapes (the rules kept session 36's bf16 bounds, measured against the CTA-barrier pipeline).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto or ws_matches" "test_wgmma.py -k 'auto or ws_matches'" 150
timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,4096x28672 --ms 36,48,52,64 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/h100_s41_rule_auto.json" 2>&1 | grep " us" > "$OUT/rule_auto.txt"
mark "auto probe ($(wc -l < "$OUT/rule_auto.txt") lines)"
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 2 \
  --shapes 8192x8192,28672x8192 --ms 20,22,24 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/h100_s41_split_auto.json" 2>&1 | grep " us" > "$OUT/split_auto.txt"
mark "split probe ($(wc -l < "$OUT/split_auto.txt") lines)"
# bf16 x: per tensor wide N (M = 33..64) and split shapes (M = 17..24), forced tensor core vs wgmma
timeout 100 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,4096x28672 --ms 33,40,48,56,64 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s41_bf16_wide.json" 2>&1 | grep " us" > "$OUT/bf16_wide.txt"
mark "bf16 wide ($(wc -l < "$OUT/bf16_wide.txt") lines)"
timeout 80 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x8192,28672x8192 --ms 17,20,24,32 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s41_bf16_split.json" 2>&1 | grep " us" > "$OUT/bf16_split.txt"
mark "bf16 split ($(wc -l < "$OUT/bf16_split.txt") lines)"
# bf16 group-wise wide N (tc_grouped_wide, M = 17..32)
timeout 60 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2,binary --groups 64 --rounds 2 \
  --shapes 8192x28672 --ms 17,24,32 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s41_bf16_grouped.json" 2>&1 | grep " us" > "$OUT/bf16_grouped.txt"
mark "bf16 grouped ($(wc -l < "$OUT/bf16_grouped.txt") lines)"
