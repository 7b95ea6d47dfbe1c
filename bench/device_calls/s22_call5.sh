#!/usr/bin/env bash
# Session 22, call 5: tc26 (group-wise M = 3, 4 on the folding path for ternary / binary: tc_grouped_bd_two_tiles)
# in auto's records against fp16 (g64 M = 1..4, one process); the folding path at M = 1, 2 (BITMM_TC_BD=0)
# against the block-diagonal default, tensor-core backend, A B A B (call 4 found the typed CM = 1 folding
# path ahead of the block-diagonal one at M = 3, 4 for binary); then the whole GPU suite in what is left.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s22_call5.sh
source "$(dirname "$0")/prelude.sh"
SH=8192x28672,28672x8192,8192x8192,4096x4096,16384x12288
timeout 60 python3 bench/decode_probe.py --shapes $SH --kinds int2,ternary,binary --ms 1,2,3,4 --groups 64 \
  --backends fp16,auto --out "$OUT/records_g64_m1_4.json" 2>&1 | grep " us" > "$OUT/records.txt"
mark records
probe() {  # $1: label; env passes through
  timeout 60 python3 bench/decode_probe.py --shapes $SH --kinds int2,ternary,binary --ms 1,2 --groups 64 \
    --backends tensorcore --out "/tmp/m12_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/m12.txt"
  mark "probe $1"
}
probe A1; BITMM_TC_BD=0 probe B1; probe A2; BITMM_TC_BD=0 probe B2
CAP=$(( 585 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
