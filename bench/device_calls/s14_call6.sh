#!/usr/bin/env bash
# Session 14, call 6 (the last ~280 device-seconds): the folding path's warp split at M = 3..8 in one
# tree -- the rule (WN = 4 from M = 4, WN = 1 at M = 3) against BITMM_TC_WN=1 and =4 -- and the
# launcher tests that touch it.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call6.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
for wn in rule 1 4; do
  e=""; [ $wn != rule ] && e="BITMM_TC_WN=$wn"
  env $e timeout 40 python3 bench/decode_probe.py --kinds int2,binary,ternary --groups 64 --shapes 8192x28672 --ms 3,4,5,8 \
    --backends tensorcore --out $OUT/probe_wn_$wn.json 2>&1 | grep " us" | sed "s/^/WN=$wn /" | tee -a $OUT/log.txt
done
echo "t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 60 python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "wide_rows or override or k_split_reduction and 20011" 2>&1 | tail -1 | tee -a $OUT/log.txt
echo "total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
