#!/usr/bin/env bash
# Prepared in session 42 (not run; warm, after next_s43_call1.sh): tc49's unexplained step, the tensor-core kernel at
# group-wise M = 21 vs 22 (ternary 8192 x 28672 g64, 112.8 vs 125.5 us in session 42, same CM = 4 and K tile):
# ncu details + raw stall / instruction metrics of each (bench/ncu_profile.py cases), then the source counters for
# bench/ncu_source_blocks.py.
source "$(dirname "$0")/prelude.sh"
for c in tc_ternary_g64_m21 tc_ternary_g64_m22; do
  ncu_raw "$c" "$c"
  timeout 120 ncu --nvtx --nvtx-include "$c/" --section SourceCounters --section InstructionStats --import-source no \
    -f -o "/tmp/ncu_src_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_src_$c.ncu-rep" --page source --csv --print-source sass | gzip > "$OUT/ncu_src_$c.csv.gz"
  mark "ncu source $c"
done
cat "$OUT/log.txt"
