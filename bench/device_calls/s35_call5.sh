#!/usr/bin/env bash
# Session 35, call 5: tc_split_small_m (per tensor M = 17..20, N >= 8192, K >= 8192: tensor core instead of wgmma's
# split plan).  The auto tests, then auto / tensorcore / wgmma / fp16 at M = 17..24 on the two measured shapes, two
# unmeasured ones (16384 x 8192 inside the rule; 8192 x 12288 meant to be, but wgmma's plan does not split K at
# N = 12288, so auto ran the tensor-core kernel there before the rule too: a note after the run) and one outside it
# (4096 x 8192).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s35_call5.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 timeout 120 python3 -m pytest tests/test_wgmma.py tests/test_tc_launch_rules.py -q -p no:cacheprovider -rf \
  -k "auto or table" > /tmp/t.txt 2>&1
{ echo "tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 8192x8192,28672x8192,8192x12288,16384x8192,4096x8192 --groups none --ms 17,20,21,24 \
  --backends fp16,auto,tensorcore,wgmma --out "$OUT/probe.json" > /tmp/a.txt 2>&1
mark "probe ($(grep -c ' us' /tmp/a.txt) lines)"; cp /tmp/a.txt "$OUT/probe.txt"
