#!/usr/bin/env bash
# Session 43 call 5: no dense path for per tensor / channel without an offset (wgmma at every M from the rules'
# bounds): the auto tests of test_wgmma.py, and the per tensor grid through auto at M = 2048 / 4096 (h100.json).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto or kernel_runs" "test_wgmma -k 'auto or kernel_runs'" 200
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 2048,4096 --backends fp16,auto \
  --out "$OUT/h100_s43_auto_large_m.json" 2>&1 | grep " us" > /tmp/grid.txt
mark "auto grid ($(wc -l < /tmp/grid.txt) lines)"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
