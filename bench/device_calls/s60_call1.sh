#!/usr/bin/env bash
# Prepared in session 59 (one call of up to 600 s: tests and probes ~300 s typical, then sanitizer units to S60_END):
#   SAN_PAR=3 S60_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s60_call1.sh
# 1. Session 59's launch rule (tc_bd_long_k, tc_launch_rules.h: ternary / int2 block-diagonal M <= 2 on K >= 16384
#    where N is wide or the two-warps rule holds: K tile capped at 8192 inputs, 3 ring slots) was landed from
#    BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probes, and its tests have not run on a GPU at the rule's own launch:
#    the block-diagonal long-K tests first (the M = 1 wide-N K = 16384 one capped and, in a child, uncapped; the
#    two-warps one at K = 64 x 257 / 64 x 449; the capped-tile knobs).
# 2. decode_probe of the rule on session 59's four shapes (h100_s59_bd_kt8192_st3_219951c.json was the probe with
#    the environment; prediction: the same times within 2%, i.e. 16384 x 53248 g64 M = 1 ternary / int2 ~175 us).
# 3. The band the rule leaves out, 8192 < K < 16384 and narrow N on long K (28672 x 4096): the plan against
#    BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 on 14336 x 8192, 11008 x 4096, 14336 x 4096, 28672 x 4096 (unmeasured;
#    prediction: K > 8192 gains like 16384^2 where N gives >= 2 32-row CTAs per SM, i.e. 14336 x 8192 5-10%, and
#    nothing or a loss on N = 4096, as session 21's 4096 cap lost on 28672 x 4096).
# 4. bf16 x, the rule against the launch before session 59 (the rule is taken for bf16 x unmeasured): on 16384 x 53248
#    BITMM_TC_KT_MAX=1000000 (x whole), on 28672 x 8192 BITMM_TC_KT_MAX=4096 (session 21's cap; with the variable
#    set, tc_bd_long_k's 3 slots do not apply, so the ring is the deepest, as before).
# 4b. K = 8192 (8192 x 28672, 8192^2; issue 4's int2 / binary g64 rows): the plan (x whole, persistent) against
#    BITMM_TC_KT_MAX=4096 BITMM_TC_STAGES=3 (two K tiles, one row tile per CTA), in case the capped grid's gain is
#    the non-persistent grid's and not K's (prediction: within 3%; session 58's caps at K = 8192 with the deepest
#    ring were within 2%).
# 5. ncu of 16384 x 53248 ternary g64 M = 1 (bench/ncu_profile.py tc_ternary_g64_m1_wide_longk), the rule's capped
#    launch and x whole (BITMM_TC_KT_MAX=1000000): why the capped, non-persistent grid won 11% (not understood;
#    session 59's quad layout ruled out the ring depth at 4 CTAs per SM).
# 6. racecheck / initcheck over cover3 on the hash split, the units left after session 59 (initcheck 6, racecheck /
#    initcheck 7-15; sessions 58-59 finished racecheck 0-6 and initcheck 0-5).
# At most 8 files come back: the JSON files go in probes.tgz, the rest in rest.tgz.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
END=${S60_END:-560}
mkdir -p /tmp/p
probe() {  # $1: label, $2: shapes, $3: dtype; the environment passes through
  timeout 75 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64,128 --rounds 3 \
    --shapes "$2" --ms 1,2 --backends fp16,tensorcore --dtype "${3:-float16}" \
    --out "/tmp/p/bd_$1.json" > "/tmp/p/bd_$1.txt" 2>&1
  tar czf "$OUT/probes.tgz" -C /tmp/p .
  mark "probe $1: $(grep -c ' us ' "/tmp/p/bd_$1.txt") lines"
}
ab() { echo "== $1 -> $2" >> "$OUT/log.txt"; python3 bench/probe_ab.py "/tmp/p/bd_$1.json" "/tmp/p/bd_$2.json" >> "$OUT/log.txt" 2>&1; }
run_tests tests/test_tensorcore.py "long_k or m1_wide or capped_k_tile" "BD long-K tests at the s59 rule" 150
S4=16384x53248,16384x16384,8192x28672,28672x8192
BAND=14336x8192,11008x4096,14336x4096,28672x4096
probe rule "$S4"
probe band_plan "$BAND"
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe band_kt8192_st3 "$BAND"
probe bf16_rule_wide 16384x53248 bfloat16
BITMM_TC_KT_MAX=1000000 probe bf16_before_wide 16384x53248 bfloat16
probe bf16_rule_longk 28672x8192 bfloat16
BITMM_TC_KT_MAX=4096 probe bf16_before_longk 28672x8192 bfloat16
probe k8192_plan 8192x28672,8192x8192
BITMM_TC_KT_MAX=4096 BITMM_TC_STAGES=3 probe k8192_kt4096_st3 8192x28672,8192x8192
ab band_plan band_kt8192_st3
ab k8192_plan k8192_kt4096_st3
ab bf16_before_wide bf16_rule_wide
ab bf16_before_longk bf16_rule_longk
ncu_raw tc_ternary_g64_m1_wide_longk cap
BITMM_TC_KT_MAX=1000000 ncu_raw tc_ternary_g64_m1_wide_longk whole
san_tail "initcheck:6/16@cover3 $(for i in $(seq 7 15); do printf "racecheck:%d/16@cover3 initcheck:%d/16@cover3 " $i $i; done)" $(( END - 30 ))
pack_out  # (rest.tgz: the sanitizer files; probes.tgz stays as it is)
cat "$OUT/log.txt"
