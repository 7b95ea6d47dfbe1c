#!/usr/bin/env bash
# Session 16, call 4: tc17 with the block-diagonal kernels' residency rule (fewest resident CTAs that
# still need the fewest row tiles per CTA).  The block-diagonal / group-wise / reduction tests and the
# coverage file; the probe at M = 2..4 (rule against the folding path); cuda_bench --quick.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s16_call4.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "block_diagonal or grouped or k_split or every_kernel or long_k or back_to_back" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
timeout 60 python3 bench/decode_probe.py --kinds int2,binary,ternary --groups 64 --shapes 4096x4096,8192x8192,8192x28672 \
  --ms 2,3,4 --backends fp16,tensorcore --out $OUT/h200_decode_probe_bd.json 2>&1 | grep " us" | sed "s/^/rule /" >> $OUT/probe.txt
echo "probe t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 90 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt; true
