#!/usr/bin/env bash
# (kept as run; session 13 device calls, paths relative to the repository root)
# session 13, fourth device call: HEAD's auto rule (bf16 int2 back on add/subtract at M = 1), then the whole GPU suite.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
# BITMM_COMMIT: bench/.commit is written here before the call (git rev-parse --short HEAD > bench/.commit)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=$(cat bench/.commit)
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))"
timeout 60 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider -k "wide_rows or grouped_decode" 2>&1 | tail -3 | tee -a $OUT/log.txt
timeout 60 python3 bench/decode_probe.py --dtype bfloat16 --kinds int2,ternary --shapes 8192x28672 --groups 64 --ms 1 \
  --backends auto,addsub --out $OUT/probe_bf16_auto.json 2>&1 | tee -a $OUT/log.txt | tail -5
echo "t=$(( $(date +%s) - start ))"
left=$(( 400 - ($(date +%s) - start) ))
timeout $left python3 -X faulthandler -m pytest tests -q -p no:cacheprovider -rf > $OUT/pytest_all.txt 2>&1
echo "whole suite (cap ${left}s) rc=$?: $(tail -1 $OUT/pytest_all.txt)" | tee -a $OUT/log.txt; grep -E "^FAILED" $OUT/pytest_all.txt | head -5
echo "t=$(( $(date +%s) - start ))"
