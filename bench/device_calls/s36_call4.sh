#!/usr/bin/env bash
# Session 36, call 4: tc40 (tc_split_small_m widened: M = 17..20 for every kind and M = 21..32 for binary, N >= 6144,
# K >= 4096; binary's M = 21..32 K <= 16384) through auto: its test and the other auto tests, then auto against both
# forced kernels on the probe's shapes and on shapes inside the rule not measured before (5120 x 8192, 8192 x 7168,
# 4096 x 6144) and binary's K > 16384 edge (28672 x 8192, kept on wgmma at M = 21..32: is that right?).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s36_call4.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
run_tests "tests/test_tensorcore.py tests/test_wgmma.py" "four_warps or auto or split" tests 150
timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 4096x8192,5120x8192,8192x8192,16384x8192,8192x6144,8192x7168,4096x6144,28672x8192 --groups none --ms 17,20,21,24,32 \
  --backends fp16,auto,tensorcore,wgmma --out "$OUT/auto.json" > /tmp/a.txt 2>&1
mark "auto probe ($(grep -c ' us' /tmp/a.txt) lines)"; cp /tmp/a.txt "$OUT/auto.txt"
