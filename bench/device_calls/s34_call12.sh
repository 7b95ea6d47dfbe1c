#!/usr/bin/env bash
# Session 34, call 12 (the last ~250 device-seconds; may land on an H200): the auto tests of both session-34 rules
# (digits at M <= 2 on wide N; tensor core at per tensor M = 33..64 on wide N), then digits / tensor core / auto at
# M = 1, 2 on two wide shapes (on an H200: does the H100's digits rule hold there?).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call12.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 timeout 70 python3 -m pytest tests/test_wgmma.py tests/test_digits.py -q -p no:cacheprovider -rf \
  -k "auto" > /tmp/t.txt 2>&1
{ echo "tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,4096x28672 \
  --groups none --ms 1,2,64 --backends fp16,auto,tensorcore,digits --out "$OUT/s34_call12_probe.json" > /tmp/m.txt 2>&1
mark "probe ($(grep -c ' us' /tmp/m.txt) lines)"
