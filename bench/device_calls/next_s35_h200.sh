#!/usr/bin/env bash
# Prepared in session 34 (not run): does the H100's digits rule (tc_launch_rules.h digits_auto_rule, compute
# capability 9.x) hold on an H200 (same 132 SMs, faster memory)?  digits / tensor core / auto at M = 1, 2 on wide and
# narrow shapes.  Session 28 (H200, before session 29's a8 unpacking) had digits slower on 11 of 12 M = 1 cases.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s35_h200.sh   (after the auto tests; next_s35_call1.sh ran trimmed as s35_call1.sh)
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 8192x28672,4096x28672,2048x32768,8192x57344,8192x8192 --groups none --ms 1,2 \
  --backends fp16,auto,tensorcore,digits --out "$OUT/h200_digits.json" > /tmp/m.txt 2>&1
mark "probe ($(grep -c ' us' /tmp/m.txt) lines)"
