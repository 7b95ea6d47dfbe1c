#!/usr/bin/env bash
# Session 14, call 4: the final tree's tensor-core tests (tc14's zero window for BD, auto's new M = 1
# rule), racecheck / memcheck / initcheck of the barrier-free K-split reduction and the BD kernel,
# then the tensor-core / auto sweep at M = 1, 4, 16 (all kinds and shapes, for the speedup table) and
# cuda_bench --decode with auto only (the M = 1 rule).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call4.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 230 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > $OUT/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 $OUT/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED" $OUT/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
SEL="(k_split_reduction and ternary and 20011) or (grouped_decode_block_diagonal and (int2-dtype0-64- or int2-dtype0-96-))"
for tool in racecheck memcheck initcheck; do
  kn="--kernel-name kns=bitmm"; [ $tool = initcheck ] && kn=""
  BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 BITMM_SAN_NO_CUBLAS=1 timeout 100 compute-sanitizer --tool $tool $kn python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$SEL" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
done
timeout 200 python3 bench/cuda_bench.py --backends tensorcore,auto --ms 1,4,16 --forward-only --out $OUT/h200_tc_sweep.json > $OUT/sweep.txt 2>&1
echo "sweep rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
left=$(( 540 - ($(date +%s) - start) ))
[ $left -gt 20 ] && timeout $left python3 bench/cuda_bench.py --decode --backends auto --out $OUT/h200_decode_auto.json > $OUT/decode.txt 2>&1
echo "decode rc=$? total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
