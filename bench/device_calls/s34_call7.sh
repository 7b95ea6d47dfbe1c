#!/usr/bin/env bash
# Session 34, call 7: digits vs the tensor-core kernel at M = 1, 2 on more wide-N shapes (call 6: digits won on
# N = 28672 at K = 4096 and 8192 for every kind and dtype, 0.62-0.94 of the tensor-core time; between N = 13824
# and 22016 it won or lost by shape), to bound a rule "digits where N >= X": fp16 and bf16 x.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call7.sh
source "$(dirname "$0")/prelude.sh"
S=5120x27648,8192x29568,2048x32768,4096x32000,3584x37888,8192x57344,4096x128256,16384x53248,1024x131072
for dt in float16 bfloat16; do
  timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none --ms 1,2 \
    --backends fp16,tensorcore,digits --dtype $dt --out "$OUT/h100_s34_digits_wide_$dt.json" > /tmp/d_$dt.txt 2>&1
  mark "$dt ($(grep -c ' us' /tmp/d_$dt.txt) lines) $(grep -vE ' us|^wrote' /tmp/d_$dt.txt | tail -2 | tr '\n' ' ')"
done
