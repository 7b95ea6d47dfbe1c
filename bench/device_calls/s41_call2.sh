#!/usr/bin/env bash
# Session 41 call 2: wg13, the warp-specialized wgmma kernel's group-wise s / u fetched by three scale warps into a
# ring in shared memory (s41_su_ring.patch) against the base (the consumers' own loads a stage ahead), forced wgmma,
# each build timed with fp16 F.linear beside it; then fp16 x at M = 17..24 on the split shapes (tensor core vs
# wgmma, for tc_split_small_m against the warp-specialized default); ncu of the new build's int2 g64 M = 1024.
cd "$(dirname "$0")/../.."
patch -R -p1 < bench/device_calls/s41_su_ring.patch > /dev/null || exit 1
source bench/device_calls/prelude.sh
probe() {  # $1: label
  timeout 80 python3 bench/decode_probe.py --kinds int2,ternary,binary --groups 64,128 --rounds 2 \
    --shapes 8192x28672,8192x8192,28672x8192 --ms 64,256,1024 --backends fp16,wgmma \
    --out "$OUT/h100_s41_su_$1.json" 2>&1 | grep " us" > "/tmp/su_$1.txt"
  mark "probe $1 ($(wc -l < /tmp/su_$1.txt) lines)"
}
probe base
apply_and_rebuild bench/device_calls/s41_su_ring.patch su
probe su
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x8192,28672x8192 --ms 17,18,19,20,21,24 --backends fp16,tensorcore,wgmma \
  --out "$OUT/h100_s41_split_f16.json" 2>&1 | grep " us" > /tmp/split_f16.txt
mark "split f16 ($(wc -l < /tmp/split_f16.txt) lines)"
ncu_raw wg_int2_g64_m1024 wg_int2_g64_m1024_su
