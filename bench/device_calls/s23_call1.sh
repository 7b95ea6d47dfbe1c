#!/usr/bin/env bash
# Prepared in session 22 for session 23: next_s23_lop3_merge.patch (the two-plane E / O merge as one LOP3 bit
# select per word instead of two: tc_linear / tc_grad_x / wg_linear; sm_90a SASS of the fp16 ternary file: the per
# tensor M = 1 step loop 243 -> 235 instructions, M = 16 907 -> 872, block-diagonal M = 1 725 -> 713).  A = HEAD,
# B = A + patch in one machine: per tensor M = 1 / 4 / 16 and g64 M = 1 / 16 on three shapes, fp16 in the same
# process; then the whole GPU suite on B (the patch touches every two-plane kernel) in what is left of the call.
# Keep B if it is not slower (predicted: 0-4%) and the suite passes.  Also BITMM_TC_WN=2 at per tensor M = 1 (below).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s23_call1.sh
source "$(dirname "$0")/prelude.sh"   # builds A
lprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,4,16 --groups none,64 --backends fp16,auto --out "$OUT/lop3_$1.json" 2>&1 | grep " us" > /tmp/lop3_$1.txt
  sed "s/^/$1 /" /tmp/lop3_$1.txt >> "$OUT/lop3.txt"
  mark "probe $1"
}
lprobe A
apply_and_rebuild bench/device_calls/next_s23_lop3_merge.patch B
lprobe B
# Per tensor M = 1 with two warps along N (BITMM_TC_WN=2: 16 load steps per warp per 32-row tile, half the per-tile
# epilogues, which took 14% of the instructions and 27% of the stall samples in session 14's source profile) against
# the rule (WN = 1), on tree B, A B C A B C, one process each.
# C: all four warps along N (BITMM_TC_WN=4: 64-row CTAs, each warp one 16-row tile over all of K, no K-split
# reduction; 448 CTAs on 8192 x 28672, 3.4 warps per scheduler instead of 6).
for lab in A1 B1 C1 A2 B2 C2; do
  wn=""; [ ${lab:0:1} = B ] && wn=BITMM_TC_WN=2; [ ${lab:0:1} = C ] && wn=BITMM_TC_WN=4
  env $wn timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds ternary,int2,binary --ms 1 --groups none --backends tensorcore --out /tmp/wn_$lab.json 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/wn.txt"
done
mark wn
CAP=$(( 585 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
