#!/usr/bin/env bash
# Session 14, call 2: tc13 (lean step loop, barrier-free K-split reduction at M <= 8, per-config
# launch bounds), the folding path's WN rule at M = 3..8 and binary's RN = 1 at M = 9..16:
# the tensor-core and coverage tests, then the quick benchmark vs fp16, the per tensor
# probe with and without BITMM_TC_BALANCE=1, and ncu source counts of the per tensor M = 1 kernel.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call2.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 280 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -x -p no:cacheprovider > $OUT/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 $OUT/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED|Error" $OUT/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
timeout 150 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json 2>&1 | tail -40 > $OUT/quick.txt
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
P="--kinds ternary --groups none --shapes 8192x28672,8192x8192,4096x4096,28672x8192 --ms 1,4 --backends tensorcore"
for bal in 0 1; do
  BITMM_TC_BALANCE=$bal timeout 60 python3 bench/decode_probe.py $P --out $OUT/probe_bal$bal.json 2>&1 | grep " us" | sed "s/^/bal=$bal /" | tee -a $OUT/log.txt
done
timeout 40 python3 bench/decode_probe.py --kinds int2,binary --groups 64 --shapes 8192x28672 --ms 1,2,4,16 --backends tensorcore,addsub --out $OUT/probe_grouped.json 2>&1 | grep " us" | tee -a $OUT/log.txt
echo "t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
c=tc_ternary_m1
timeout 90 ncu --nvtx --nvtx-include "$c/" --section InstructionStats --section SourceCounters --section LaunchStats \
  --section Occupancy --section SpeedOfLight --import-source no -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
ncu -i "/tmp/ncu_$c.ncu-rep" --page details > "$OUT/ncu_$c.txt" 2>&1
ncu -i "/tmp/ncu_$c.ncu-rep" --page source --csv --print-source sass 2>&1 | gzip > "$OUT/ncu_src_$c.csv.gz"
grep -E "Duration|Registers Per|Executed Instructions  |Achieved Active" "$OUT/ncu_$c.txt" | head -5 | tee -a $OUT/log.txt
echo "total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
