#!/usr/bin/env bash
# Session 15, call 3: the tree with the CTA-barrier reduction only (tc13's counters removed) and tc16's
# programmatic dependent launch in three variants (BITMM_PDL=1 trigger at the start + L2 prefetch,
# =2 trigger at the last row tile, =3 no prefetch) against =0, interleaved, twice; cuda_bench --quick
# (default, =1) for the results file; then test_tensorcore.py + test_kernel_coverage.py.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s15_call3.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
for v in 0 2 3; do
  BITMM_PDL=$v timeout 80 python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "back_to_back or long_k or (k_split_reduction and 20011)" > /tmp/pt_$v.txt 2>&1
  echo "BITMM_PDL=$v chain / reduction tests rc=$? $(tail -1 /tmp/pt_$v.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
done
for rep in 1 2; do
  for v in 1 0 2 3; do
    BITMM_PDL=$v timeout 50 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 \
      --shapes 4096x4096,8192x8192,8192x28672 --ms 1,4 --backends tensorcore --out /tmp/probe_${v}_$rep.json 2>&1 \
      | grep " us" | sed "s/^/pdl=$v#$rep /" >> $OUT/probe.txt
    echo "pdl=$v#$rep t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  done
done
cp /tmp/probe_1_1.json $OUT/probe_pdl1_1.json
timeout 170 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt
left=$(( 560 - ($(date +%s) - start) ))
timeout $left python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > /tmp/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED" /tmp/pytest_tc.txt | head -5 >> $OUT/log.txt; true
