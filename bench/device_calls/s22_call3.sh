#!/usr/bin/env bash
# Session 22, call 3: tc25 (group-wise M = 5..8 on CM = 2 where N is wide enough, else CM = 1 with one
# kernel per scale dtype: tc_grouped_mid_m_two_tiles) and auto's tc_grouped_wide up to M = 32.  The
# group-wise tests of the tensor-core / coverage / wgmma-routing files and the rule tables (8 shards),
# then auto against fp16 in one process at g64 M = 3..8 and 25, 32 on four shapes.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s22_call3.sh
source "$(dirname "$0")/prelude.sh"
timeout 90 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds int2,ternary,binary \
  --ms 3,4,5,6,7,8,25,32 --groups 64 --backends fp16,auto --out "$OUT/records_g64_m3_8_25_32.json" 2>&1 | grep " us" > "$OUT/records.txt"
mark records
# ncu (before the suite, ~10 s each in call 2): stall reasons (raw page) of per tensor ternary M = 1 (issue 4's
# headline, 3.7x of fp16) and of the folding path at g64 M = 16 (call 2: 1.7 warps per scheduler, IPC 0.41).
# (ncu_raw: defined here when the call ran, moved unchanged to prelude.sh afterwards)
ncu_raw tc_ternary_m1 tc_ternary_m1
ncu_raw tc_int2_g64_m16 tc_int2_g64_m16_raw
SHARDS=8 CAP=$(( 560 - ($(date +%s) - start) )) PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_wgmma.py tests/test_tc_launch_rules.py" \
  K_EXPR="grouped or fold or group or rules or table" source "$(dirname "$0")/gpu_suite_sharded.sh"
