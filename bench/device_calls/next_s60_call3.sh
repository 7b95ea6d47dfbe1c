#!/usr/bin/env bash
# Prepared in session 60 for a short call (~170 s; the budget left after refused starts):
#   BITMM_COMMIT=<full sha> bash bench/device_calls/next_s60_call3.sh
# A/B: the block-diagonal kernel at M <= 2 (CM = 1) for ternary / int2 under __launch_bounds__(128, 5) instead of 4
# (next_s61_bd_lb5.patch).  Call 1's ncu (16384 x 53248 ternary g64 M = 1) had it latency-bound at 25% occupancy,
# 4 CTAs of 128 threads per SM by registers (128 each) and by shared memory (x whole); ptxas here with 5: 96 registers,
# 20-48 bytes spilled (f16 ternary).  Prediction: where shared memory lets a fifth CTA in (the capped K tile: 35 KB;
# K = 8192 x whole ~19 KB), M = 1 5-10% faster if the spills stay out of the step loop; else slower by the spills.
# Then, if time is left, next_s60_call2.sh's M = 2 band probes (plan and cap, once each).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
mkdir -p /tmp/p
probe3() {  # $1: label, $2: shapes, $3: Ms; the environment passes through
  timeout 60 python3 bench/decode_probe.py --kinds ternary,int2 --groups 64 --rounds 3 --shapes "$2" --ms "$3" \
    --backends fp16,tensorcore --dtype float16 --out "/tmp/p/$1.json" > "/tmp/p/$1.txt" 2>&1
  tar czf "$OUT/probes.tgz" -C /tmp/p .
  mark "probe $1: $(grep -c ' us ' "/tmp/p/$1.txt") lines"
}
S=8192x28672,8192x8192,16384x53248,28672x8192
probe3 lb4 "$S" 1
apply_and_rebuild bench/device_calls/next_s61_bd_lb5.patch lb5
probe3 lb5 "$S" 1
echo "== lb4 -> lb5" >> "$OUT/log.txt"; python3 bench/probe_ab.py /tmp/p/lb4.json /tmp/p/lb5.json >> "$OUT/log.txt" 2>&1
M2=14336x8192,12288x8192,28672x4096,20480x4096,14336x4096
probe3 m2_lb5_plan "$M2" 2
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe3 m2_lb5_kt8192_st3 "$M2" 2
echo "== m2 (lb5 build) plan -> kt8192_st3" >> "$OUT/log.txt"
python3 bench/probe_ab.py /tmp/p/m2_lb5_plan.json /tmp/p/m2_lb5_kt8192_st3.json >> "$OUT/log.txt" 2>&1
cat "$OUT/log.txt"
