#!/usr/bin/env bash
# Session 15, call 2: tc16, programmatic dependent launch of the tensor-core kernel.  The chain /
# overwrite test and the reduction tests first; A/B of BITMM_PDL=0 against the default in separate
# processes, interleaved, per tensor ternary (4096^2, 8192^2, 8192x28672; M = 1, 4) and int2 g64;
# cuda_bench --quick (the results file); then test_tensorcore.py + test_kernel_coverage.py.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s15_call2.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 120 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider -k "back_to_back or k_split_reduction" > $OUT/pytest_pdl.txt 2>&1
rc=$?; echo "pdl + reduction tests rc=$rc $(tail -1 $OUT/pytest_pdl.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
[ $rc -ne 0 ] && { grep -E "^FAILED|Error" $OUT/pytest_pdl.txt | head -10; exit 1; }
for rep in 1 2; do
  for pdl in 1 0; do
    BITMM_PDL=$pdl timeout 50 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 --shapes 4096x4096,8192x8192,8192x28672 --ms 1,4 \
      --backends tensorcore --out $OUT/probe_pdl${pdl}_$rep.json 2>&1 | grep " us" | sed "s/^/pdl=$pdl#$rep /" >> $OUT/probe.txt
    echo "pdl=$pdl#$rep t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  done
done
timeout 150 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > $OUT/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
left=$(( 585 - ($(date +%s) - start) ))
timeout $left python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > $OUT/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 $OUT/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED" $OUT/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
