#!/usr/bin/env bash
# Prepared in session 21 for session 22 (plan items 1 and 2): ncu of (1) the group-wise folding path at M = 16 after
# tc24 (int2 / binary g64 on 8192 x 28672: 91.5 / 92.0 us, 1.25-1.29x of fp16) with per tensor ternary M = 16 (47 us)
# as the reference, and (2) tc23's M = 1 loss on 16384 x 12288 (2.9 32-row CTAs per SM: 47.8 us two warps along N,
# K whole vs 66.7 with one warp and the 4096-input K tile), the rule's launch vs the forced cap.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s22_call3.sh
source "$(dirname "$0")/prelude.sh"
ncu_case() {  # $1: case (bench/ncu_profile.py), $2: output label; env passes through
  timeout 90 ncu --nvtx --nvtx-include "$1/" --section LaunchStats --section Occupancy --section SpeedOfLight \
    --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section InstructionStats \
    --import-source no -f -o "/tmp/ncu_$2" python3 bench/ncu_profile.py "$1" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_$2.ncu-rep" --page details > "$OUT/ncu_$2.txt" 2>&1
  mark "ncu $2"
}
ncu_case tc_int2_g64_m16 tc_int2_g64_m16
ncu_case tc_binary_g64_m16 tc_binary_g64_m16
ncu_case tc_ternary_m16 tc_ternary_m16
ncu_case tc_int2_g64_m1_n12288 tc_int2_g64_m1_n12288_rule
BITMM_TC_WN=1 BITMM_TC_KT_MAX=4096 ncu_case tc_int2_g64_m1_n12288 tc_int2_g64_m1_n12288_cap
