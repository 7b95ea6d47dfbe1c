#!/usr/bin/env bash
# Session 40 call 4: with the warp-specialized wgmma pipeline now the default, do the auto rules that send
# M = 17-64 to the tensor-core kernel (tc_per_tensor_wide: per tensor M = 33-64 on wide N; tc_split_small_m:
# M = 17-20 / binary to 32 on N = 6144-8192; tc_grouped_wide: group-wise M = 17-32 on wide N), fitted against the
# CTA-barrier pipeline, still pick the faster kernel?  Forced tensorcore vs wgmma, fp16 beside them, one process.
source "$(dirname "$0")/prelude.sh"
timeout 130 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,4096x28672,8192x8192 --ms 17,24,33,48,64 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s40_rules_pt.json" 2>&1 | grep " us" > "$OUT/rules_pt.txt"
mark "per tensor ($(wc -l < "$OUT/rules_pt.txt") lines)"
timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64 --rounds 2 \
  --shapes 8192x28672,4096x28672 --ms 17,24,32 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s40_rules_g64.json" 2>&1 | grep " us" > "$OUT/rules_g64.txt"
mark "g64 ($(wc -l < "$OUT/rules_g64.txt") lines)"
