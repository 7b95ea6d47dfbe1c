#!/usr/bin/env bash
# Session 16, call 2: tc17, the block-diagonal path for group-wise M = 3..8 (CM = 2 / 4 activation
# tiles of 2 rows of x each).  Tests: the BD / grouped / reduction tests and the coverage file.
# Probe (decode_probe, CUDA graphs, weights rotated past L2): group-wise g64 at M = 3, 4, 5, 8 on four
# shapes, the new default (BD up to M = 8) against the folding path (BITMM_TC_BD=2) and BD with the
# warp split forced (BITMM_TC_WN=1 / 2); fp16 F.linear in the first process.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s16_call2.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "block_diagonal or grouped or k_split or every_kernel" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
P="--kinds int2,binary,ternary --groups 64 --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 3,4,5,8"
run() {  # name, env..., extra backends
  local name=$1; shift
  env "$@" timeout 70 python3 bench/decode_probe.py $P --backends ${BES:-tensorcore} --out /tmp/probe_$name.json 2>&1 \
    | grep " us" | sed "s/^/$name /" >> $OUT/probe.txt
  echo "$name t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
}
BES=fp16,tensorcore run bd BITMM_NOP=1
run fold BITMM_TC_BD=2
run bd_wn1 BITMM_TC_WN=1
run bd_wn2 BITMM_TC_WN=2
run bd2 BITMM_NOP=1
cp /tmp/probe_bd.json $OUT/probe_bd.json; true
