#!/usr/bin/env bash
# Prepared in session 21 for session 22: group-wise g64 M = 5..8 (the folding path at CM = 1) is now slower than
# M = 9..16 after tc24 (8192 x 28672 int2 M = 8 140 us vs M = 9 92.4; 0.81-0.95x of fp16).  Two candidates, each
# against A = HEAD in one machine: B = next_s22_fold_m5.patch (M = 5..8 on the M = 9..16 configuration, half its
# B columns idle), C = next_s22_fold_typed1.patch (the CM = 1 folding path with one kernel per scale dtype, as
# tc24; ptxas sm_90a: 128 registers, no spills).  g64 M = 5, 6, 8 on four shapes, fp16 in the same process; the
# group-wise tests on B and on C (8 shards each).  Keep the winner (M = 5..8 takes one of them).
# Session 22: the tests of B and C moved to a later call (the winner only), ncu of the folding path at M = 16
# (next_s22_call3.sh's first case) and its per tensor reference after probe A, so the call fits 600 s.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s22_call2.sh
source "$(dirname "$0")/prelude.sh"   # builds A
gprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds int2,ternary,binary \
    --ms 5,6,8 --groups 64 --backends fp16,tensorcore --out "$OUT/probe_m5_8_$1.json" 2>&1 | grep " us" > "$OUT/probe_m5_8_$1.txt"
  mark "probe-$1"
}
ncu_case() {  # $1: case (bench/ncu_profile.py), $2: output label; env passes through (from next_s22_call3.sh)
  timeout 90 ncu --nvtx --nvtx-include "$1/" --section LaunchStats --section Occupancy --section SpeedOfLight \
    --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section InstructionStats \
    --import-source no -f -o "/tmp/ncu_$2" python3 bench/ncu_profile.py "$1" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_$2.ncu-rep" --page details > "$OUT/ncu_$2.txt" 2>&1
  mark "ncu $2"
}
gprobe A
ncu_case tc_int2_g64_m16 tc_int2_g64_m16
ncu_case tc_ternary_m16 tc_ternary_m16
apply_and_rebuild bench/device_calls/next_s22_fold_m5.patch B
gprobe B
patch -R -p1 < bench/device_calls/next_s22_fold_m5.patch > /dev/null || exit 1
apply_and_rebuild bench/device_calls/next_s22_fold_typed1.patch C
gprobe C
