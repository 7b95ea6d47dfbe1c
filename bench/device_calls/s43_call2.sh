#!/usr/bin/env bash
# Session 43 call 2: the tensor-core / wgmma band after wg16 (per tensor without an offset now ~17-25% faster on wgmma at
# M = 17-64, s43_call1.sh), for auto's rules (linear_cuda.cpp tc_per_tensor_wide, tc_split_small_m, kWgmmaMinM*):
# forced tensorcore vs wgmma, per tensor (fp32 s, no offset), fp16 and bf16 x, M = 8..64 on wide-N and split shapes.
source "$(dirname "$0")/prelude.sh"
for dt in float16 bfloat16; do
  timeout 130 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 8192x28672,4096x28672,8192x8192,28672x8192,4096x4096,4096x8192,8192x6144 \
    --ms 8,12,16,17,20,24,28,33,40,48,64 --backends tensorcore,wgmma \
    --out "$OUT/wg16_band_$dt.json" 2>&1 | grep " us" > /dev/null
  mark "band $dt"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
