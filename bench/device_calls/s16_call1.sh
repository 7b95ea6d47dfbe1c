#!/usr/bin/env bash
# Written in session 15 for the next session's first call (bench/NOTES.md, "Plan for the next device
# session (written in session 15)", item 0): the tests at HEAD (the PDL launch rule, PDL gated on the
# kernel's PTX version, the forced-PDL chain test, auto's binary M = 1 rule), cuda_bench --quick with
# the rule (per tensor 8192^2 M = 1 should be the plain launch, ~13.2 us), and the rule's choice
# checked against BITMM_PDL=0 / 2 on the probe shapes.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s16_call1.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 280 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > /tmp/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
grep -E "^FAILED" /tmp/pytest_tc.txt | head -8 >> $OUT/log.txt
for v in 1 0 2; do
  BITMM_PDL=$v timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 \
    --shapes 4096x4096,8192x8192,8192x28672 --ms 1,4 --backends tensorcore --out /tmp/probe_$v.json 2>&1 \
    | grep " us" | sed "s/^/pdl=$v /" >> $OUT/probe.txt
  echo "pdl=$v t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
done
timeout 90 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt; true
