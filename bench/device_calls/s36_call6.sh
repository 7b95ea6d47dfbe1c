#!/usr/bin/env bash
# Session 36, call 6: bf16 x where three auto rules take fp16 x only because bf16 was never measured:
# (a) tc_grouped_wide (group-wise M = 17..32, wide N, K <= 8192), (b) tc_per_tensor_wide (per tensor M = 33..64, wide
# N, 4096 <= K <= 8192), (c) tc_split_small_m (per tensor M = 17..20 / binary 17..32 where wgmma's plan splits K):
# tensor core against wgmma forced, with auto and bf16 F.linear ("fp16" = F.linear in x's dtype); then (d) bf16
# decode M = 1 / 4 / 16 through auto against bf16 F.linear.  --rounds 3 throughout.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s36_call6.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
P="timeout 100 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2,binary --rounds 3"
$P --shapes 8192x28672,4096x28672 --groups 64 --ms 17,24,32 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_a.json" > /tmp/a.txt 2>&1; mark "a ($(grep -c ' us' /tmp/a.txt) lines)"
$P --shapes 8192x28672,4096x28672 --groups none --ms 33,48,64 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_b.json" > /tmp/b.txt 2>&1; mark "b ($(grep -c ' us' /tmp/b.txt) lines)"
$P --shapes 8192x8192,4096x8192,16384x8192 --groups none --ms 17,20,24,32 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_c.json" > /tmp/c.txt 2>&1; mark "c ($(grep -c ' us' /tmp/c.txt) lines)"
$P --shapes 8192x28672,8192x8192 --groups none,64 --ms 1,4,16 --backends fp16,auto \
  --out "$OUT/bf16_d.json" > /tmp/d.txt 2>&1; mark "d ($(grep -c ' us' /tmp/d.txt) lines)"
cat /tmp/a.txt /tmp/b.txt /tmp/c.txt /tmp/d.txt | grep " us" > "$OUT/bf16.txt"
