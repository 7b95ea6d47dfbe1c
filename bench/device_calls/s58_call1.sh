#!/usr/bin/env bash
# Prepared in session 56 (as next_s56_call2.sh), cut down in session 57 (~600 s):
#   S58_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/s58_call1.sh
# 1. Occupancy at M = 1: ncu (session 56) found the tensor-core kernel on 16384 x 53248 ternary at 4 CTAs per SM,
#    limited by shared memory (54 KB: x's 16384 inputs 40 KB with their padding + the 3-slot rings 12 KB; registers
#    allow 6), issue slots ~50% busy, 0.88 eligible warps per scheduler.  Session 57: 6 slots (3 CTAs per SM) lost to
#    the rule's 3 (4 CTAs) by 5% there and 20% on 8192^2, so resident warps matter more than bytes in flight.
#    The K tile capped (BITMM_TC_KT_MAX, read by tc_linear.cuh's launcher): with x in several K tiles the launcher
#    takes its other branch, one CTA per row tile (not persistent) and the deepest ring (6 slots at RN = 1; the stage
#    rule and BITMM_TC_STAGES apply only where x fits one tile).  Per tensor ternary 16384 x 53248 (rows = 1, 4 KB a
#    slot): cap 8192 -> x 20 KB + 24 KB ring ~ 46 KB, 4 CTAs per SM (the rule's count, 6 slots, x restaged twice);
#    cap 4096 -> x 10 KB + 24 KB ~ 36 KB, 6 CTAs per SM (the registers' limit).  Prediction (session 57): 4096 wins
#    5-15% there if resident warps bind (session 57's stages result), 8192 about ties; 8192 x 28672 (K = 8192: x 20 KB, 6
#    CTAs per SM already): 4096 splits x in two for no more CTAs, so it ties or loses.  decode_probe per tensor and g64, M = 1, three
#    kinds.  And cap 8192 with 3 slots (BITMM_TC_STAGES applies to a capped tile since session 57): x 20 + 12 KB ~ 33
#    KB, 6 CTAs per SM with the rule's ring depth, the cleanest test of "more resident warps".  Then 2 / 4 ring slots against the rule's 3 at K = 16384 (2: x 40 + 8 KB, 4 CTAs per SM as now,
#    so it tests depth alone; 4: 3 CTAs, like 6).
# 2. racecheck / initcheck over cover3 on the hash split, from unit 0, to S58_END (no resume file yet: every test of
#    a unit runs; ~200 s a unit).
# At most 8 files come back: the JSON files go in probes.tgz, the rest in rest.tgz.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
END=${S58_END:-560}
# first the tests nothing has run on a GPU yet (session 57): the capped-tile knobs, and the replays test plainly
run_tests tests/test_tensorcore.py "capped_k_tile" "capped-tile knobs" 120
run_tests tests/test_nn.py "replays" "replays (plain)" 120
for v in 0:0 8192:0 4096:0 8192:3; do  # K-tile cap : ring slots (0: the launcher's)
  kt=${v%:*} st=${v#*:}
  BITMM_TC_KT_MAX=$kt BITMM_TC_STAGES=$st timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary \
    --groups none,64 --rounds 3 --shapes 16384x53248,8192x28672 --ms 1 --backends fp16,tensorcore \
    --out "$OUT/kt_${kt}_st_$st.json" > "$OUT/kt_${kt}_st_$st.txt" 2>&1
  mark "kt_max $kt stages $st: $(grep -c ' us ' "$OUT/kt_${kt}_st_$st.txt") lines"
done
for b in 8192_st_0 4096_st_0 8192_st_3; do
  python3 bench/probe_ab.py "$OUT/kt_0_st_0.json" "$OUT/kt_$b.json" >> "$OUT/log.txt" 2>&1
done
for st in 2 4; do
  BITMM_TC_STAGES=$st timeout 40 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 3 \
    --shapes 16384x53248,8192x8192 --ms 1 --backends fp16,tensorcore --out "$OUT/st_$st.json" > "$OUT/st_$st.txt" 2>&1
  echo "stages $st: $(grep tensorcore "$OUT/st_$st.txt" | awk '{print $1, $2, $6}' | tr '\n' ' ')" >> "$OUT/log.txt"
  mark "stages $st"
done
san_tail "$(for i in $(seq 0 15); do printf "racecheck:%d/16@cover3 initcheck:%d/16@cover3 " $i $i; done)" $(( END - 30 ))
(cd "$OUT" && ls *.json > /dev/null 2>&1 && tar czf probes.tgz *.json && rm -f *.json)
pack_out
cat "$OUT/log.txt"
