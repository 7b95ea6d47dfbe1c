#!/usr/bin/env bash
# Session 35, call 3: the per tensor M = 17..64 wide-N rule (tc_per_tensor_wide_four_warps_n: 4 warps along N at CM = 4
# / 8; tc_per_tensor_wide from M = 33 for every kind).  Its tests (auto picks and results against the float64
# reference), then auto against fp16 / tensorcore / wgmma at M = 17..64 on the measured wide shapes, a wide shape not
# measured before (5120 x 27648) and a narrow control (8192^2, unchanged).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s35_call3.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 timeout 120 python3 -m pytest tests/test_wgmma.py tests/test_tc_launch_rules.py -q -p no:cacheprovider -rf \
  -k "auto or table" > /tmp/t.txt 2>&1
{ echo "tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 8192x28672,4096x28672,5120x27648,8192x8192 --groups none --ms 17,24,32,33,48,56,64 \
  --backends fp16,auto,tensorcore,wgmma --out "$OUT/probe.json" > /tmp/a.txt 2>&1
mark "probe ($(grep -c ' us' /tmp/a.txt) lines)"; cp /tmp/a.txt "$OUT/probe.txt"
