#!/usr/bin/env bash
# Prepared in session 21 for session 22 (plan item 0): the whole GPU suite at HEAD (tc23's M = 1 narrowing and
# auto's tc_grouped_wide with its routing test have not run on a GPU; shards took 290-330 s in session 21, so
# CAP = 420), then auto records against fp16 in one process: g64 M = 17, 24, 32 on four shapes (tc_grouped_wide's
# 1.5-tiles boundary; M = 25..32 on wide N), the tensor-core kernel at M = 25, 32 on 8192 x 28672 (extend the rule
# to 32?), and the long-K shapes at M = 1, 2 (tc23 as narrowed).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s22_call1.sh
source "$(dirname "$0")/prelude.sh"
timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds int2,ternary,binary \
  --ms 17,24,32 --groups 64 --backends fp16,auto --out "$OUT/records_g64_m17_32.json" 2>&1 | grep " us" > "$OUT/records.txt"
timeout 40 python3 bench/decode_probe.py --shapes 8192x28672 --kinds int2,ternary,binary --ms 25,32 --groups 64 \
  --backends tensorcore,wgmma --out /tmp/p.json 2>&1 | grep " us" >> "$OUT/records.txt"
timeout 40 python3 bench/decode_probe.py --shapes 28672x8192,16384x12288,16384x8192 --kinds int2,ternary,binary --ms 1,2 \
  --groups 64 --backends fp16,auto --out "$OUT/records_longk.json" 2>&1 | grep " us" >> "$OUT/records.txt"
mark records
# Records first (session 22): the suite then gets what is left of the 600 s call (its shards took 290-330 s).
CAP=$(( 590 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
