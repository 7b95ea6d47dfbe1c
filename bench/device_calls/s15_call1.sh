#!/usr/bin/env bash
# Session 15, call 1: tc15's named-barrier K-split reduction.  A/B in separate processes (the knobs
# are read once): default (named barriers), BITMM_TC_ATOMIC_REDUCE=1 (tc13's counters),
# BITMM_TC_BARRIER_REDUCE=1 (CTA barriers), twice each, interleaved; then racecheck and synccheck on
# the reduction tests with the default; then test_tensorcore.py + test_kernel_coverage.py.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s15_call1.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 120 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider -k "k_split_reduction or many_row_tiles" > $OUT/pytest_red.txt 2>&1
rc=$?; echo "reduction tests rc=$rc $(tail -1 $OUT/pytest_red.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
[ $rc -ne 0 ] && { grep -E "^FAILED|Error" $OUT/pytest_red.txt | head -10; exit 1; }
for rep in 1 2; do
  for mode in named atomic barrier; do
    e="BITMM_X=0"; [ $mode = atomic ] && e="BITMM_TC_ATOMIC_REDUCE=1"; [ $mode = barrier ] && e="BITMM_TC_BARRIER_REDUCE=1"
    env $e timeout 45 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 --shapes 8192x28672,8192x8192 --ms 1,2,4 \
      --backends tensorcore --out $OUT/probe_${mode}_$rep.json 2>&1 | grep " us" | sed "s/^/$mode#$rep /" >> $OUT/probe.txt
    echo "$mode#$rep t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  done
done
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 BITMM_SAN_NO_CUBLAS=1
SEL="(k_split_reduction and ternary and 20011) or (grouped_decode_block_diagonal and (int2-dtype0-64- or int2-dtype0-96-))"
for tool in racecheck synccheck; do
  timeout 75 compute-sanitizer --tool $tool --kernel-name kns=bitmm --print-limit 50 python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$SEL" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  gzip -c /tmp/san_$tool.txt > $OUT/$tool.txt.gz
done
unset BITMM_UNDER_SANITIZER BITMM_SAN_NO_CUBLAS
left=$(( 580 - ($(date +%s) - start) ))
timeout $left python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > $OUT/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 $OUT/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED" $OUT/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
