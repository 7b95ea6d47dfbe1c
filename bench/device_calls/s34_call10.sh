#!/usr/bin/env bash
# Session 34, call 10: per tensor M = 33..128 runs one tensor-core configuration (RN = 2, CM = 8), yet call 9 timed it
# at 145 us for M = 48 and 118 for M = 64 on 8192x28672 (ternary; wgmma 134 at both).  M = 40..80 on three wide shapes.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call10.sh
source "$(dirname "$0")/prelude.sh"
timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,4096x28672,5120x27648 \
  --groups none --ms 33,40,48,52,56,60,64,72,80 --backends tensorcore,wgmma --out "$OUT/h100_s34_m33_80.json" > /tmp/m.txt 2>&1
mark "m33-80 ($(grep -c ' us' /tmp/m.txt) lines) $(grep -vE ' us|^wrote' /tmp/m.txt | tail -2 | tr '\n' ' ')"
