#!/usr/bin/env bash
# Session 34, call 9: the tensor-core (mma.sync) / wgmma crossover on the H100.  Call 4 (one round): 8192x28672
# M = 64 per tensor tensorcore 116.9 us vs auto's wgmma 132.1 (int2 126.7 vs 141.9, binary 109.7 vs 128.7), but
# 8192^2 M = 64 wgmma 38.4 vs 80.1.  M = 32..128 over five shapes, per tensor and g64, rounds 3.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call9.sh
source "$(dirname "$0")/prelude.sh"
timeout 400 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 8192x28672,28672x8192,4096x28672,8192x8192,4096x14336 --groups none,64 --ms 32,48,64,96,128 \
  --backends fp16,auto,tensorcore,wgmma --out "$OUT/h100_s34_mid.json" > /tmp/m.txt 2>&1
mark "mid ($(grep -c ' us' /tmp/m.txt) lines) $(grep -vE ' us|^wrote' /tmp/m.txt | tail -2 | tr '\n' ' ')"
