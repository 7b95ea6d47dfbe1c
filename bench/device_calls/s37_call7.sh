#!/usr/bin/env bash
# Session 37, call 7: (a) memcheck over the wgmma split / tile tests under the cost-model plan (bitmm kernels only);
# (b) call 5 read ternary 8192 x 28672 M = 256 at 246.8 us (fp16 215.7) where h100.json has 196.6 (fp16 197.8) with
#     the same plan (256-row tiles, no split: unchanged by the model): the same case again, first in the process, with
#     the pre-session plan forced (BITMM_WG_TILE=256x1 gives the same plan) as a control, and the M = 1024 rows.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_call7.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader >> "$OUT/log.txt"
timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
  --shapes 8192x28672 --ms 256,1024 --backends fp16,auto --out /tmp/r_wide.json 2>&1 | grep " us" \
  | sed "s/^/wide /" >> "$OUT/probe.txt"; mark "wide"
BITMM_WG_TILE=256x1 timeout 60 python3 bench/decode_probe.py --kinds ternary --groups none --rounds 3 \
  --shapes 8192x28672 --ms 256 --backends fp16,wgmma --out /tmp/r_ctl.json 2>&1 | grep " us" \
  | sed "s/^/ctl256 /" >> "$OUT/probe.txt"; mark "control"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 timeout 200 compute-sanitizer --tool memcheck --kernel-name kns=bitmm \
  --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "k_splits or forced_tiles" \
  > /tmp/mc.txt 2>&1; { echo "memcheck rc=$?: $(grep 'ERROR SUMMARY' /tmp/mc.txt | tail -1) | $(tail -1 /tmp/mc.txt)"; } >> "$OUT/log.txt"
mark memcheck
tar czf "$OUT/r_json.tgz" -C /tmp r_wide.json r_ctl.json
