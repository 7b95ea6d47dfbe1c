#!/usr/bin/env bash
# Session 14, call 5: racecheck's 24 hazards of call 4 attributed. The same tests under racecheck with
# the barrier-free K-split reduction (default) and with BITMM_TC_BARRIER_REDUCE=1 (the CTA-barrier
# reduction), each report kept whole.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call5.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 BITMM_SAN_NO_CUBLAS=1
for sel in "k_split_reduction and ternary and 20011" "grouped_decode_block_diagonal and (int2-dtype0-64- or int2-dtype0-96-)"; do
  for br in 0 1; do
    name=$(echo "$sel" | cut -c1-12 | tr ' ' '_')_br$br
    BITMM_TC_BARRIER_REDUCE=$br timeout 70 compute-sanitizer --tool racecheck --kernel-name kns=bitmm --print-limit 200 \
      python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$sel" > /tmp/rc_$name.txt 2>&1
    echo "== racecheck [$sel] BITMM_TC_BARRIER_REDUCE=$br rc=$?: $(grep -E 'RACECHECK SUMMARY' /tmp/rc_$name.txt | tail -1) | $(grep -E 'passed|failed' /tmp/rc_$name.txt | tail -1) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
    gzip -c /tmp/rc_$name.txt > $OUT/racecheck_$name.txt.gz
  done
done
echo "total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
