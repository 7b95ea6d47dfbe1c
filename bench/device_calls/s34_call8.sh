#!/usr/bin/env bash
# Session 34, call 8: auto's digits rule (e37b8e6) on the H100: the tests that touch it, then auto against the forced
# backends where the rule decides (M = 1, 2, 3; shapes on both sides of it), then the issues' forward grid at HEAD.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call8.sh
source "$(dirname "$0")/prelude.sh"
BITMM_SKIP_HUGE=1 timeout 150 python3 -m pytest tests/test_digits.py tests/test_tc_launch_rules.py tests/test_lora.py \
  tests/test_linear_a8.py -q -p no:cacheprovider -rf -x > /tmp/t.txt 2>&1
{ echo "tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
S=8192x28672,4096x28672,2048x32768,4096x128256,8192x57344,5120x27648,4096x14336,8192x22016,8192x8192,28672x8192,16384x53248,1024x131072
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none --ms 1,2,3 \
  --backends fp16,auto,tensorcore,digits --out "$OUT/h100_s34_rule.json" > /tmp/r.txt 2>&1
mark "rule ($(grep -c ' us' /tmp/r.txt) lines) $(grep -vE ' us|^wrote' /tmp/r.txt | tail -2 | tr '\n' ' ')"
timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,8192x8192,4096x4096,28672x8192 \
  --groups none,64 --ms 1,4,16,64,256,1024,4096 --backends fp16,auto --out "$OUT/h100_s34_fw_head.json" > /tmp/fw.txt 2>&1
mark "fw ($(grep -c ' us' /tmp/fw.txt) lines) $(grep -vE ' us|^wrote' /tmp/fw.txt | tail -2 | tr '\n' ' ')"
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,8192x8192 --groups none,64 \
  --ms 2 --backends fp16,auto --out "$OUT/h100_s34_fw_m2_head.json" > /tmp/fw2.txt 2>&1
mark "fw m2 ($(grep -c ' us' /tmp/fw2.txt) lines)"
