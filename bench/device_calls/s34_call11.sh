#!/usr/bin/env bash
# Session 34, call 11: the per tensor M = 33..64 wide-N rule (tc_per_tensor_wide) on the H100: its tests and the auto
# tests around it, then auto vs fp16 where it decides.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call11.sh
source "$(dirname "$0")/prelude.sh"
BITMM_SKIP_HUGE=1 timeout 120 python3 -m pytest tests/test_wgmma.py tests/test_digits.py -q -p no:cacheprovider -rf \
  -k "auto" > /tmp/t.txt 2>&1
{ echo "tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,4096x28672,8192x8192 \
  --groups none --ms 33,48,60,64 --backends fp16,auto --out "$OUT/h100_s34_rule_mid.json" > /tmp/m.txt 2>&1
mark "rule mid ($(grep -c ' us' /tmp/m.txt) lines) $(grep -vE ' us|^wrote' /tmp/m.txt | tail -2 | tr '\n' ' ')"
