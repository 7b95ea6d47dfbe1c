#!/usr/bin/env bash
# Session 56, second start (~250 s):
#   BITMM_COMMIT=<full sha> bash bench/device_calls/next_s56_call2.sh
# 1. Occupancy at M = 1: ncu (session 56 call 3) found the tensor-core kernel on 16384 x 53248 ternary at 4 CTAs per SM,
#    limited by shared memory (54 KB: x's 16384 inputs 40 KB with their padding + the 3-slot rings 12 KB; registers
#    allow 6), issue
#    slots ~50% busy, 0.88 eligible warps per scheduler, the top stalls "wait" and long scoreboard.  The K tile capped
#    (BITMM_TC_KT_MAX, read by tc_linear.cuh's launcher) at 8192 / 4096 inputs frees shared memory for 5-6 CTAs:
#    decode_probe per tensor and g64, M = 1, three kinds, 16384 x 53248 and 8192 x 28672, tensorcore / fp16.
#    And the ring depth (BITMM_TC_STAGES 2 / 4 / 6 against the rule's, which picked 3 slots there: 2 steps = 2 KB in
#    flight per warp, ~32 KB per SM, about what Little's law asks at 3 TB/s and ~1.3 us; the stream probe's 4-slot
#    ring at 4 CTAs per SM read at 2.80 TB/s, the 2-slot one at 2.48), three shapes.
# 2. cudagraph_pool_probe under memcheck (session 56: 8 blocks of partition_0's intermediates, bitmm.int2_linear
#    outputs and the embedding's, left live after the reduce-overhead warm-up; plain runs pass): the unconverted net
#    (bits 0: no bitmm op, so memcheck instruments no kernel under kns=bitmm), bits 2 under a --kernel-name filter that
#    matches no kernel (bitmm's ops, nothing instrumented: separates "bitmm" from "an instrumented kernel"), bits 2
#    without the eager graph first (EAGER_GRAPH=0), bits 2 as the test (the blocks' sizes from the snapshot).
# At most 8 files come back: the JSON files go in probes.tgz, the rest in rest.tgz.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
for kt in 0 8192 4096; do
  BITMM_TC_KT_MAX=$kt timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
    --shapes 16384x53248,8192x28672 --ms 1 --backends fp16,tensorcore --out "$OUT/kt_$kt.json" > "$OUT/kt_$kt.txt" 2>&1
  mark "kt_max $kt: $(grep -c ' us ' "$OUT/kt_$kt.txt") lines"
done
for st in 2 4 6; do
  BITMM_TC_STAGES=$st timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
    --shapes 16384x53248,8192x28672,8192x8192 --ms 1 --backends fp16,tensorcore --out "$OUT/st_$st.json" > "$OUT/st_$st.txt" 2>&1
  mark "stages $st: $(grep -c ' us ' "$OUT/st_$st.txt") lines"
done
BITMM_TC_STAGES=0 timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
  --shapes 8192x8192 --ms 1 --backends fp16,tensorcore --out "$OUT/st_rule_8192sq.json" > /dev/null 2>&1
python3 - "$OUT" <<'PY' >> "$OUT/log.txt" 2>&1
import json, sys
out = sys.argv[1]
rows = {}
for name in ["kt_0", "st_rule_8192sq", "st_2", "st_4", "st_6"]:
    try:
        recs = json.load(open(f"{out}/{name}.json"))["records"]
    except Exception as e:
        print(name, "missing", e); continue
    for r in recs:
        if r["backend"] == "tensorcore":
            rows.setdefault((r["op"], r["K"], r["N"], r["group_size"]), {})["rule" if name in ("kt_0", "st_rule_8192sq") else name] = r["us"]
print("stages (BITMM_TC_STAGES) vs the rule, tensorcore us at M = 1:")
for k, v in sorted(rows.items(), key=str):
    print(k, " ".join(f"{n}={v[n]:.1f}" for n in ("rule", "st_2", "st_4", "st_6") if n in v))
PY
python3 bench/probe_ab.py "$OUT/kt_0.json" "$OUT/kt_8192.json" >> "$OUT/log.txt" 2>&1
python3 bench/probe_ab.py "$OUT/kt_0.json" "$OUT/kt_4096.json" >> "$OUT/log.txt" 2>&1
pool_mc() {  # $1: label, $2: bits, $3: kernel-name filter (default kns=bitmm); environment passes through
  BITMM_UNDER_SANITIZER=1 timeout 120 compute-sanitizer --tool memcheck --kernel-name "${3:-kns=bitmm}" --print-limit 20 \
    python3 bench/cudagraph_pool_probe.py $2 > "$OUT/pool_mc_$1.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_mc_$1.txt"
  echo "== pool probe memcheck $1" >> "$OUT/log.txt"
  grep -E "^ok|FAILED|leaked block|replays|ERROR SUMMARY|rc=" "$OUT/pool_mc_$1.txt" | head -14 >> "$OUT/log.txt"
  mark "pool $1"
}
pool_mc control 0
pool_mc bits2_no_kernel 2 kns=no_such_kernel_name
EAGER_GRAPH=0 pool_mc no_eager_graph 2
pool_mc bits2 2
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
pack_out
cat "$OUT/log.txt"
