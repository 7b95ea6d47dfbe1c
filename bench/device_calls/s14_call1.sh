#!/usr/bin/env bash
# Session 14, call 1: session 13's unrun plan item 0 (next_rn1_wn4.sh: RN = 1 at M = 16, WN = 4 at M = 4,
# the tests of what landed after the last GPU run), then executed-instruction counts per SASS instruction
# (ncu source page) of the two M = 1 tensor-core kernels: per tensor ternary (tc10) and the block-diagonal
# int2 g64 path (tc12), to find where the instructions outside the HMMA/unpack core go.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s14_call1.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
OUT=$OUT bash bench/device_calls/next_rn1_wn4.sh
for c in tc_ternary_m1 tc_int2_g64_m1; do
  timeout 150 ncu --nvtx --nvtx-include "$c/" --section InstructionStats --section SourceCounters --section LaunchStats \
    --section Occupancy --section SpeedOfLight --import-source no -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > "/tmp/ncu_$c.log" 2>&1
  echo "ncu $c rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  ncu -i "/tmp/ncu_$c.ncu-rep" --page details > "$OUT/ncu_$c.txt" 2>&1
  ncu -i "/tmp/ncu_$c.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_src_$c.csv" 2>&1
  ncu -i "/tmp/ncu_$c.ncu-rep" --page raw --csv --print-metric-instances values --metrics sass__inst_executed_per_opcode,smsp__inst_executed.sum,launch__registers_per_thread > "$OUT/ncu_opc_$c.csv" 2>&1
  grep -E "Duration|Registers Per|Executed Instructions  " "$OUT/ncu_$c.txt" | head -5 | tee -a $OUT/log.txt
done
gzip -f $OUT/ncu_src_*.csv 2>/dev/null
echo "total t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
