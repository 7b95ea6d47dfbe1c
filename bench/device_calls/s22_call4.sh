#!/usr/bin/env bash
# Session 22, call 4: group-wise M = 3, 4 on long K.  Call 3 (h200_s22_call3_029d8cf.txt) had 28672 x 8192 g64
# M = 3 / 4 on the block-diagonal path (CM = 2) at 94-98 us (int2 / ternary) and 85-86 (binary), slower than
# M = 5 on the folding path (90.4 / 77.8 / 74.8).  BITMM_TC_BD=2 puts M = 3, 4 on the folding path (tc25's
# CM rule), env only (no rebuild); A = the rule (BD), B = BITMM_TC_BD=2, interleaved A B A B, one process each.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s22_call4.sh
source "$(dirname "$0")/prelude.sh"
probe() {  # $1: label; env passes through
  timeout 60 python3 bench/decode_probe.py --shapes 28672x8192,16384x8192,16384x12288,28672x4096,14336x8192,8192x28672,8192x8192,4096x4096 \
    --kinds int2,ternary,binary --ms 3,4 --groups 64 --backends tensorcore --out "$OUT/m34_$1.json" 2>&1 | grep " us" > /tmp/m34_$1.txt
  sed "s/^/$1 /" /tmp/m34_$1.txt >> "$OUT/m34.txt"
  mark "probe $1"
}
probe A1; BITMM_TC_BD=2 probe B1; probe A2; BITMM_TC_BD=2 probe B2
