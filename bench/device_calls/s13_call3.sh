#!/usr/bin/env bash
# (kept as run; session 13 device calls, paths relative to the repository root)
# session 13, third device call: the M = 1 group-wise auto rule (tc_bd_wide) -- tests, bf16 probe, decode bench.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))"
timeout 240 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -x -rf -p no:cacheprovider > /tmp/pt.txt 2>&1
echo "pytest test_tensorcore+coverage rc=$?: $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt; grep -E "^FAILED|Error" /tmp/pt.txt | head -5 | tee -a $OUT/log.txt
echo "t=$(( $(date +%s) - start ))"
timeout 60 python3 bench/decode_probe.py --dtype bfloat16 --kinds int2,ternary,binary --shapes 8192x28672 --groups 64,128 --ms 1 \
  --backends auto,tensorcore,addsub --out $OUT/probe_bf16.json 2>&1 | tee -a $OUT/log.txt | tail -20
echo "t=$(( $(date +%s) - start ))"
timeout 300 python3 bench/cuda_bench.py --decode --out $OUT/decode.json > /tmp/decode.txt 2>&1; echo "decode rc=$?"; tail -5 /tmp/decode.txt
echo "t=$(( $(date +%s) - start ))"
