#!/usr/bin/env bash
# Prepared in session 60 after call 1 (one call of up to 600 s: two probes ~40 s, then the sanitizer units left):
#   SAN_PAR=4 S60_UNITS="<units left>" S60_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s60_call2.sh
# 1. Call 1's band probe (h100_s60_bd_band_{plan,kt8192_st3}_d492af3.json) lost at M = 1 everywhere (1.04-1.31) but
#    won at M = 2 for ternary / int2 on 14336 x 8192 g64 (0.87; g128 0.97) and 28672 x 4096 (0.93), and lost on
#    11008 x 4096 / 14336 x 4096 (1.05-1.14): one process each, three rounds.  Before any rule, the same A/B at M = 2
#    on more shapes between and around them, twice (prediction, from those four points: the cap wins where the
#    weights are >= ~100 M and K > 8192, i.e. 14336 x 8192, 12288 x 8192 (?), 28672 x 4096, 20480 x 4096 (?); loses
#    on N * K < 64 M).
# 2. racecheck / initcheck units left after call 1 (resumed from bench/results/san_resume_race_init_s60.txt).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
mkdir -p /tmp/p
probe2() {  # $1: label; the environment passes through
  timeout 75 python3 bench/decode_probe.py --kinds ternary,int2 --groups 64,128 --rounds 3 \
    --shapes 14336x8192,12288x8192,10240x8192,28672x4096,20480x4096,14336x6144,28672x2048 --ms 2 \
    --backends fp16,tensorcore --dtype float16 --out "/tmp/p/m2_$1.json" > "/tmp/p/m2_$1.txt" 2>&1
  tar czf "$OUT/probes.tgz" -C /tmp/p .
  mark "probe $1: $(grep -c ' us ' "/tmp/p/m2_$1.txt") lines"
}
probe2 plan_a
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe2 kt8192_st3_a
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe2 kt8192_st3_b
probe2 plan_b
for p in a b; do echo "== m2 plan_$p -> kt8192_st3_$p" >> "$OUT/log.txt"
  python3 bench/probe_ab.py "/tmp/p/m2_plan_$p.json" "/tmp/p/m2_kt8192_st3_$p.json" >> "$OUT/log.txt" 2>&1; done
san_tail "${S60_UNITS:?the units left}" ${S60_END:-560}
pack_out
cat "$OUT/log.txt"
