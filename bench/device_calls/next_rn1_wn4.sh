#!/usr/bin/env bash
# Written in session 13 for its last ~225 device-seconds, which were too few to start a machine: NOT RUN.
# The next session's plan item 0 (bench/NOTES.md): BITMM_TC_RN=1 (group-wise M = 9..16 on one row tile
# per warp): its test and the wide-rows / BD tests (2abe4a6 and the fused-LoRA part: not run on a GPU yet), then M = 16 timings with and without it, and WN = 4 at M = 4 (folding path).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_rn1_wn4.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 90 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider -k "one_row_tile_override or wide_rows or grouped_decode" 2>&1 | tail -2 | tee -a $OUT/log.txt
echo "t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
A="--kinds int2,binary --groups 64 --backends tensorcore"
for cfg in "RN=2 16" "RN=1 16" "WN=rule 4" "WN=4 4"; do
  read -r e m <<< "$cfg"
  env_args=""; [ "$e" = "RN=1" ] && env_args="BITMM_TC_RN=1"; [ "$e" = "WN=4" ] && env_args="BITMM_TC_WN=4"
  env $env_args timeout 30 python3 bench/decode_probe.py $A --ms $m --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/$e /" | tee -a $OUT/log.txt
done
echo "t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
