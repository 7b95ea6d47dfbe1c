#!/usr/bin/env bash
# Session 15, call 2: tc16, programmatic dependent launch of the tensor-core kernel, and the K-split
# reduction now through CTA barriers by default.  The chain / overwrite and reduction tests first;
# A/B in separate processes (knobs read once), interleaved, twice: BITMM_PDL=1/0 x default / tc13's
# counters (BITMM_TC_ATOMIC_REDUCE=1), per tensor and g64, ternary and int2, 4096^2 .. 8192x28672,
# M = 1, 4; racecheck on the reduction / PDL tests; then test_tensorcore.py +
# test_kernel_coverage.py.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s15_call2.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 150 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider -k "back_to_back or k_split_reduction" > /tmp/pytest_pdl.txt 2>&1
rc=$?; echo "pdl + reduction tests rc=$rc $(tail -1 /tmp/pytest_pdl.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
[ $rc -ne 0 ] && { grep -E "^FAILED|Error" /tmp/pytest_pdl.txt | head -10 | tee -a $OUT/log.txt; exit 1; }
for rep in 1 2; do
  for pdl in 1 0; do
    for red in barrier atomic; do
      a=0; [ $red = atomic ] && a=1
      BITMM_PDL=$pdl BITMM_TC_ATOMIC_REDUCE=$a timeout 50 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 \
        --shapes 4096x4096,8192x8192,8192x28672 --ms 1,4 --backends tensorcore --out /tmp/probe_${pdl}_${red}_$rep.json 2>&1 \
        | grep " us" | sed "s/^/pdl=$pdl,$red#$rep /" >> $OUT/probe.txt
      echo "pdl=$pdl,$red#$rep t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
    done
  done
done
cp /tmp/probe_1_barrier_1.json $OUT/probe_pdl1_barrier_1.json
BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 BITMM_SAN_NO_CUBLAS=1 timeout 100 compute-sanitizer --tool racecheck --kernel-name kns=bitmm --print-limit 50 \
  python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "(k_split_reduction and 20011) or back_to_back or (grouped_decode_block_diagonal and (int2-dtype0-64- or int2-dtype0-96-))" > /tmp/san_rc.txt 2>&1
echo "== racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY' /tmp/san_rc.txt | tail -1) | $(tail -1 /tmp/san_rc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
gzip -c /tmp/san_rc.txt > $OUT/racecheck.txt.gz
left=$(( 585 - ($(date +%s) - start) ))
timeout $left python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > /tmp/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED" /tmp/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
