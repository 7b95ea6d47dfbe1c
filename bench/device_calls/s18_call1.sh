#!/usr/bin/env bash
# Written at the end of session 17 for the next session's first call (bench/NOTES.md, "Plan for the next device
# session (written in session 17)", item 0): the final tc18 rule's tests first (which kernel runs per tensor at
# M <= 8: x split on the call's rows, x large, M = 3, 4 on wide N; the overrides; the coverage file's tensor-core
# forward test at K = 6000), then the rest of test_tensorcore.py + test_kernel_coverage.py (session 18: the selection is left out of the
# second run so the call fits 600 s), then decode_probe per tensor
# M = 1..8 with fp16 F.linear (a record file at the final rule), and cuda_bench --quick.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s18_call1.sh
source "$(dirname "$0")/prelude.sh"
timeout 120 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "two_row_tiles or m5_8_override or tile_config or (forward_every and tensorcore)" > /tmp/pt1.txt 2>&1
echo "tc18 tests rc=$? $(tail -1 /tmp/pt1.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt1.txt | head -12 >> $OUT/log.txt
mark tc18-tests
timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192,4096x4096 --kinds int2,ternary,binary \
  --ms 1,2,3,4,5,8 --groups none --backends fp16,tensorcore --out $OUT/probe_pt.json 2>&1 | grep " us" > $OUT/probe.txt
mark probe
timeout 60 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
grep -E " us" /tmp/quick.txt > $OUT/quick.txt; mark quick
timeout 300 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "not (two_row_tiles or m5_8_override or tile_config or (forward_every and tensorcore))" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
