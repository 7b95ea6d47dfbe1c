#!/usr/bin/env bash
# Session 56, second start (~250 s):
#   BITMM_COMMIT=<full sha> bash bench/device_calls/next_s56_call2.sh
# 1. Occupancy at M = 1: ncu (session 56 call 3) found the tensor-core kernel on 16384 x 53248 ternary at 4 CTAs per SM,
#    limited by shared memory (54 KB: x's 16384 inputs 32 KB + the 6-slot rings 24 KB; registers allow 6), issue
#    slots ~50% busy, 0.88 eligible warps per scheduler, the top stalls "wait" and long scoreboard.  The K tile capped
#    (BITMM_TC_KT_MAX, read by tc_linear.cuh's launcher) at 8192 / 4096 inputs frees shared memory for 5-6 CTAs:
#    decode_probe per tensor and g64, M = 1, three kinds, 16384 x 53248 and 8192 x 28672, tensorcore / fp16.
# 2. cudagraph_pool_probe under memcheck: the unconverted net (bits 0, the control: no bitmm op), bits 2 without the
#    eager graph first (EAGER_GRAPH=0), bits 2 as the test (the leaked blocks' sizes from the snapshot).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
for kt in 0 8192 4096; do
  BITMM_TC_KT_MAX=$kt timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
    --shapes 16384x53248,8192x28672 --ms 1 --backends fp16,tensorcore --out "$OUT/kt_$kt.json" > "$OUT/kt_$kt.txt" 2>&1
  mark "kt_max $kt: $(grep -c ' us ' "$OUT/kt_$kt.txt") lines"
done
python3 bench/probe_ab.py "$OUT/kt_0.json" "$OUT/kt_8192.json" >> "$OUT/log.txt" 2>&1
python3 bench/probe_ab.py "$OUT/kt_0.json" "$OUT/kt_4096.json" >> "$OUT/log.txt" 2>&1
pool_mc() {  # $1: label, $2: bits; environment passes through
  BITMM_UNDER_SANITIZER=1 timeout 120 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
    python3 bench/cudagraph_pool_probe.py $2 > "$OUT/pool_mc_$1.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_mc_$1.txt"
  echo "== pool probe memcheck $1" >> "$OUT/log.txt"
  grep -E "^ok|FAILED|leaked block|replays|ERROR SUMMARY|rc=" "$OUT/pool_mc_$1.txt" | head -14 >> "$OUT/log.txt"
  mark "pool $1"
}
pool_mc control 0
EAGER_GRAPH=0 pool_mc no_eager_graph 2
pool_mc bits2 2
pack_out
cat "$OUT/log.txt"
