#!/usr/bin/env bash
# Session 16, call 3: tc17 with the block-diagonal path up to M = 4 (CM = 4 removed after call 2).
# The whole test_tensorcore.py + test_kernel_coverage.py; then the weight-ring depth at M = 2..4
# (call 2: BD M = 3 ran 3 CTAs per SM with 2 slots, slower than M = 4 at 2 CTAs with 3 slots):
# BITMM_TC_STAGES=3 / 4 against the rule, and the folding path (BITMM_TC_BD=0), g64, four shapes.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s16_call3.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 300 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
P="--kinds int2,binary,ternary --groups 64 --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 2,3,4"
run() {  # name, env...
  local name=$1; shift
  env "$@" timeout 60 python3 bench/decode_probe.py $P --backends tensorcore --out /tmp/probe_$name.json 2>&1 \
    | grep " us" | sed "s/^/$name /" >> $OUT/probe.txt
  echo "$name t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
}
run rule BITMM_NOP=1
run st3 BITMM_TC_STAGES=3
run st4 BITMM_TC_STAGES=4
run fold BITMM_TC_BD=0
run st2 BITMM_TC_STAGES=2
true
