#!/usr/bin/env bash
# Session 20, call 5 (the last ~400 device-seconds): why group-wise g64 M = 1 on 28672 x 8192 takes 68-72 us against
# 8192 x 28672's 51 (the same bytes; plan item 1).  (1) ncu of the block-diagonal kernel on both shapes (int2),
# warp-state / memory / occupancy / launch sections; (2) its ring depth on the long-K shape (BITMM_TC_STAGES = 2..6,
# one process each; the rule picks by residency first).  Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call5.sh
source "$(dirname "$0")/prelude.sh"
for c in tc_int2_g64_m1_longk tc_int2_g64_m1; do
  timeout 70 ncu --nvtx --nvtx-include "$c/" --section LaunchStats --section Occupancy --section SpeedOfLight \
    --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --import-source no \
    -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_$c.ncu-rep" --page details > "$OUT/ncu_$c.txt" 2>&1
  mark "ncu $c"
done
P="python3 bench/decode_probe.py --shapes 28672x8192 --kinds int2,binary --ms 1,2 --groups 64 --backends tensorcore"
for v in X=0 BITMM_TC_STAGES=2 BITMM_TC_STAGES=3 BITMM_TC_STAGES=4 BITMM_TC_STAGES=6; do
  env $v timeout 30 $P --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/$v /" >> "$OUT/probe_stages.txt"
done
mark probe
