#!/usr/bin/env bash
# Session 35, call 1: next_s35_call1.sh trimmed to fit one call on whichever GPU comes (4 shapes, M = 24..64, no
# WN = 2 leg), plus next_s35_h200.sh's digits probe when the GPU is an H200.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s35_call1.sh
source "$(dirname "$0")/prelude.sh"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); echo "$GPU" >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 timeout 90 python3 -m pytest tests/test_wgmma.py tests/test_digits.py -q -p no:cacheprovider -rf \
  -k "auto" > /tmp/t.txt 2>&1
{ echo "auto tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 45 python3 bench/decode_probe.py --kinds ternary,int2 --rounds 1 --shapes 8192x28672,28672x8192 --groups none,64 \
  --ms 1 --backends fp16,auto,tensorcore --out "$OUT/bias.json" > /tmp/bias.txt 2>&1
mark "bias ($(grep -c ' us' /tmp/bias.txt) lines)"; grep " us" /tmp/bias.txt >> "$OUT/log.txt"
if [[ "$GPU" == *H200* ]]; then
  timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
    --shapes 8192x28672,4096x28672,2048x32768,8192x57344,8192x8192 --groups none --ms 1,2 \
    --backends fp16,auto,tensorcore,digits --out "$OUT/h200_digits.json" > /tmp/m.txt 2>&1
  mark "h200 digits ($(grep -c ' us' /tmp/m.txt) lines)"; cp /tmp/m.txt "$OUT/h200_digits.txt"
fi
S=8192x28672,4096x28672,8192x8192,28672x8192
timeout 170 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none \
  --ms 24,33,40,48,56,64 --backends fp16,auto,tensorcore,wgmma --out "$OUT/rule.json" > /tmp/a.txt 2>&1
mark "rule ($(grep -c ' us' /tmp/a.txt) lines)"; cp /tmp/a.txt "$OUT/rule.txt"
BITMM_TC_WN=4 timeout 110 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none \
  --ms 24,33,40,48,56,64 --backends tensorcore --out "$OUT/wn4.json" > /tmp/b.txt 2>&1
mark "wn4 ($(grep -c ' us' /tmp/b.txt) lines)"; cp /tmp/b.txt "$OUT/wn4.txt"
