#!/usr/bin/env bash
# Session 21 call 4: HEAD = tc24 (next_s21_sdt.patch, kept after call 3's A/B) + the long-K rule narrowed
# to < 3 32-row CTAs per SM (call 3: 16384 x 16384 M = 1 lost with the cap).  (1) the rule against the
# previous launch again, with 16384 x 12288 (2.9 CTAs per SM: capped) and 16384 x 16384 (uncapped now);
# (2) auto vs fp16 at g64 M = 9, 16, 24 (does auto take the new kernels); (3) the tensor-core, coverage
# and rule tests in 6 shards.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s21_call4.sh
source "$(dirname "$0")/prelude.sh"
R="python3 bench/decode_probe.py --shapes 28672x8192,16384x12288,16384x16384 --kinds int2,ternary,binary --ms 1,2 --groups 64"
timeout 40 $R --backends fp16,auto --out "$OUT/probe_longk_rule.json" 2>&1 | grep " us" | sed "s/^/rule /" > "$OUT/probe_longk.txt"
BITMM_TC_WN=2 BITMM_TC_KT_MAX=1000000 timeout 40 $R --backends tensorcore --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/prev /" >> "$OUT/probe_longk.txt"
mark "longk rule"
timeout 90 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary,binary \
  --ms 9,16,24 --groups 64 --backends fp16,auto --out "$OUT/probe_g64_auto.json" 2>&1 | grep " us" > "$OUT/probe_g64_auto.txt"
mark "probe-g64-auto"
SHARDS=6 CAP=240 PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_tc_launch_rules.py" \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
