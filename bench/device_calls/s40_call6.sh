#!/usr/bin/env bash
# Session 40 call 6: tc_per_tensor_wide capped for fp16 x (ternary / int2 M <= 48, binary <= 36) after calls 4-5, and
# tc_split_small_m's K >= 5120 band (M = 21..24) no longer for fp16 ternary / int2;
# its auto tests and the other auto-boundary tests of test_wgmma.py, then auto against the forced kernels at
# M = 33-64 on the wide shapes.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto or ws_matches" "test_wgmma.py -k 'auto or ws_matches'" 150
timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,4096x28672 --ms 36,48,52,64 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/h100_s40_rule_auto.json" 2>&1 | grep " us" > "$OUT/rule_auto.txt"
mark "auto probe ($(wc -l < "$OUT/rule_auto.txt") lines)"
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 2 \
  --shapes 8192x8192,28672x8192 --ms 20,22,24 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/h100_s40_split_auto.json" 2>&1 | grep " us" > "$OUT/split_auto.txt"
mark "split probe ($(wc -l < "$OUT/split_auto.txt") lines)"
