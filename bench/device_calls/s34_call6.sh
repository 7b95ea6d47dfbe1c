#!/usr/bin/env bash
# Session 34, call 6: where does the digits backend beat the tensor-core kernel on the H100?  Call 5 (rounds 3):
# per tensor M = 1 / 2 on 8192x28672 digits won for every kind (ternary 29.5 vs 33.3 us, int2 29.3 vs 33.2, binary
# 19.5 vs 24.9), and lost on 8192^2, 4096^2 and 28672x8192.  More shapes of both proportions, fp16 and bf16 x:
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call6.sh
source "$(dirname "$0")/prelude.sh"
S=4096x14336,5120x13824,3584x18944,8192x16384,8192x22016,2048x8192,4096x28672,8192x28672,14336x4096
for dt in float16 bfloat16; do
  timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none --ms 1,2 \
    --backends fp16,tensorcore,digits --dtype $dt --out "$OUT/h100_s34_digits_$dt.json" > /tmp/d_$dt.txt 2>&1
  mark "$dt ($(grep -c ' us' /tmp/d_$dt.txt) lines) $(grep -vE ' us|^wrote' /tmp/d_$dt.txt | tail -2 | tr '\n' ' ')"
done
