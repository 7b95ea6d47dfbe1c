#!/usr/bin/env bash
# Session 23 call 4 (the last ~250 device-seconds): tc28 extended to M = 2, 3 (K <= 6144, binary 4096) from call 3's
# forced WN = 2 data.  Its GPU test (M = 1, 2, 3) and the rules table in 4 shards, then auto at per tensor M = 1..3
# with the rule (A) against BITMM_TC_WN=1 (B, the launch before tc28), one process each.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s23_call4.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=4 CAP=90 PYTEST_ARGS="tests/test_tensorcore.py tests/test_tc_launch_rules.py" K_EXPR="two_warps or rules" \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
for lab in A B; do
  env $([ $lab = B ] && echo BITMM_TC_WN=1) timeout 30 python3 bench/decode_probe.py --shapes 4096x8192,6144x9216,8192x8192 \
    --kinds ternary,int2,binary --ms 1,2,3 --groups none --backends fp16,auto --out "$OUT/pt_$lab.json" 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/pt.txt"
done
mark probes
