#!/usr/bin/env bash
# Prepared in session 60 (no machine came after its first call; one call of up to 600 s):
#   SAN_PAR=4 S61_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s61_call1.sh
# 1. A/B, next_s61_bd_lb.patch: the block-diagonal kernel at M <= 2 (CM = 1) under __launch_bounds__(128, 5) for
#    ternary / int2 (was 4) and (128, 4) for binary (was 3).  Session 60's ncu (16384 x 53248 ternary g64 M = 1,
#    h100_s60_ncu_bd_wide_longk_*_d492af3.txt) had the kernel latency-bound at 25% occupancy: 4 CTAs of 128 threads
#    per SM, by registers (128).  sm_90a ptxas here (f16): ternary / int2 128 -> 96 registers, 20-48 bytes spilled,
#    the innermost mma step loop 736 -> 766 instructions with one LDL; binary 165-167 -> 127-128 registers, no spills,
#    its step loop 1277 -> 1302.  The launcher reads the registers at run time (by_regs), so the persistent grid and
#    ring follow.  Against it: tc19 (NOTES) took an RN = 2 kernel from 96 to 128 registers and gained 5-27%.
#    Prediction: binary M = 1 / 2 5-10% faster where shared memory admits a fourth CTA (8192 x 28672 g64: issue 4's
#    binary row, 40.6 us); ternary / int2 within +-5% (a fifth CTA against the spills and the 4% more instructions).
#    The patched build's BD tests run before its probe (a rule from it needs them).
# 2. Session 60's band probe at M = 2 (cap 8192 + 3 slots won on 14336 x 8192 g64 and 28672 x 4096, lost on
#    11008 / 14336 x 4096; one process each): the plan vs BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 on seven shapes,
#    twice (on the base build; prediction: the cap wins where N * K >= ~100 M and K > 8192).
# 3. The racecheck / initcheck units left, on main's build again (resumed from
#    bench/results/san_resume_race_init_s60.txt): racecheck 7, 8 and initcheck 7 (capped in session 60), initcheck 8,
#    racecheck / initcheck 9-15.  Steps 1-2 take ~400 s, so the units go to a chained next_s61_san.sh unless
#    >= 250 s are left.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
END=${S61_END:-560}
mkdir -p /tmp/p
probe() {  # $1: label, $2: shapes, $3: Ms, $4: kinds; the environment passes through
  timeout 75 python3 bench/decode_probe.py --kinds "${4:-ternary,int2,binary}" --groups 64,128 --rounds 3 \
    --shapes "$2" --ms "$3" --backends fp16,tensorcore --dtype float16 --out "/tmp/p/$1.json" > "/tmp/p/$1.txt" 2>&1
  tar czf "$OUT/probes.tgz" -C /tmp/p .
  mark "probe $1: $(grep -c ' us ' "/tmp/p/$1.txt") lines"
}
ab() {  # $1 -> $2: probe_ab.py's lines into the log
  echo "== $1 -> $2" >> "$OUT/log.txt"; python3 bench/probe_ab.py "/tmp/p/$1.json" "/tmp/p/$2.json" >> "$OUT/log.txt" 2>&1
}
M2=14336x8192,12288x8192,10240x8192,28672x4096,20480x4096,14336x6144,28672x2048
probe m2_plan_a "$M2" 2 ternary,int2
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe m2_kt8192_st3_a "$M2" 2 ternary,int2
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe m2_kt8192_st3_b "$M2" 2 ternary,int2
probe m2_plan_b "$M2" 2 ternary,int2
S=8192x28672,8192x8192,16384x53248,28672x8192,4096x4096
probe lb_base "$S" 1,2
apply_and_rebuild bench/device_calls/next_s61_bd_lb.patch lb
run_tests tests/test_tensorcore.py "grouped_decode_block_diagonal or m1_wide" "BD tests, lb build" 180
probe lb_new "$S" 1,2
ab lb_base lb_new
ab m2_plan_a m2_kt8192_st3_a
ab m2_plan_b m2_kt8192_st3_b
# The sanitizers on main's build, not the patch's: reversed and rebuilt (~70 s) only where >= 250 s are left, else
# left to a chained next_s61_san.sh (whose prelude rebuilds the files the patch touched: build/patched_files).
if [ $(( END - ($(date +%s) - start) )) -ge 250 ]; then
  patch -R -p1 < bench/device_calls/next_s61_bd_lb.patch > /dev/null \
    && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 && mark "build-main again" \
    && san_tail "$(echo racecheck:7/16@cover3 initcheck:7/16@cover3 racecheck:8/16@cover3 initcheck:8/16@cover3; \
      for i in $(seq 9 15); do printf "racecheck:%d/16@cover3 initcheck:%d/16@cover3 " $i $i; done)" $(( END - 30 ))
fi
pack_out
cat "$OUT/log.txt"
