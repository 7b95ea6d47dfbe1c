#!/usr/bin/env bash
# Session 15, call 4 (the last ~300 device-seconds): tc16 with its L2 prefetch capped at 16 KB per CTA
# (the default, BITMM_PDL=1) against no prefetch (=3) and no PDL (=0), interleaved, twice; the chain /
# long-K / reduction tests; cuda_bench --quick for the results file.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s15_call4.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 60 python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "back_to_back or long_k or (k_split_reduction and 20011)" > /tmp/pt.txt 2>&1
echo "chain / reduction tests rc=$? $(tail -1 /tmp/pt.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
for rep in 1 2; do
  for v in 1 3 0; do
    BITMM_PDL=$v timeout 40 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 \
      --shapes 4096x4096,8192x8192,8192x28672 --ms 1,4 --backends tensorcore --out /tmp/probe_${v}_$rep.json 2>&1 \
      | grep " us" | sed "s/^/pdl=$v#$rep /" >> $OUT/probe.txt
    echo "pdl=$v#$rep t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  done
done
cp /tmp/probe_1_1.json $OUT/probe_pdl1_1.json
timeout 60 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt; true
