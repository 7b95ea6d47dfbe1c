#!/usr/bin/env bash
# Session 14, call 3: tc14 (block-diagonal kernel per scale dtype; cp.async wait fast path out of the
# jump table; the reduction leader by mask): its tests, the group-wise decode probe at M = 1 / 2 on
# four shapes (tensor core vs add/subtract: does the block-diagonal path now win where auto's M = 1
# rule sends it to add/subtract?), fp32 scales, the quick benchmark, and ncu of the BD kernel.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call3.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -x -p no:cacheprovider \
  -k "grouped or decode or block_diagonal or k_split or override or wide or many_row or scale_dtypes or forward_every or exact" > $OUT/pytest_tc.txt 2>&1
echo "tests rc=$? $(tail -1 $OUT/pytest_tc.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E "^FAILED|Error" $OUT/pytest_tc.txt | head -5 | tee -a $OUT/log.txt
timeout 120 python3 bench/decode_probe.py --kinds int2,ternary,binary --groups 64,128 --shapes 8192x28672,8192x8192,4096x4096,28672x8192 \
  --ms 1,2 --backends tensorcore,addsub --out $OUT/probe_bd.json 2>&1 | grep " us" > $OUT/probe_bd.txt
echo "probe rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 100 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
c=tc_int2_g64_m1
timeout 90 ncu --nvtx --nvtx-include "$c/" --section InstructionStats --section SourceCounters --section LaunchStats \
  --section Occupancy --section SpeedOfLight --section SchedulerStats --import-source no -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
ncu -i "/tmp/ncu_$c.ncu-rep" --page details > "$OUT/ncu_$c.txt" 2>&1
ncu -i "/tmp/ncu_$c.ncu-rep" --page source --csv --print-source sass 2>&1 | gzip > "$OUT/ncu_src_$c.csv.gz"
grep -E "Duration|Registers Per|Executed Instructions  |Achieved Active|Issue Slots|Eligible Warps" "$OUT/ncu_$c.txt" | head -8 | tee -a $OUT/log.txt
echo "total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
