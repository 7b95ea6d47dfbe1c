#!/usr/bin/env bash
# Prepared in session 45 (its device time went to six refused starts and two calls; run it first in session 46, ~5 min
# + sanitizer units to S46_END, default 560 s):
# (1) the K-split pair rule's new cases (wg_plan.h: plans of 3 and 4 splits doubled to 6 / 8 since session 45, from
#     forced probes only): test_wgmma_auto_pairs_ctas_on_doubled_k_splits (3 -> 6 on N = 5119, 4 -> 8 on N = 4095,
#     float64 reference) and the host plan tests;
# (2) the rule against BITMM_WG_PAIR=0, fp16 and bf16 x, each setting in its own process: a measured shape of each
#     (40 tiles 3 -> 6, 32 tiles 4 -> 8) and the rule's edges, unmeasured: 34 tiles (N = 4352) at exactly 64 stages a
#     doubled split (K = 24576), 44 tiles (N = 5632), 27 and 33 tiles (N = 3456 / 4224) at K = 32768;
# (3) the group-wise scale layout where the other kernels read it (M = 1 / 16 / 64, auto: addsub / digits /
#     tensorcore / wgmma by M): session 45 measured (G, N) storage 0.955 / 0.962 of (N, G) in wgmma at M = 256 / 1024
#     (and the per-call copy knob 1.19 / 1.03: rejected), so the layers could keep (G, N) storage if the small-M
#     kernels lose nothing with it (predicted: addsub / digits read a row's groups in order, so (G, N) may cost them);
# (4) sanitizer units in sixteenths, four at a time: racecheck 9/16 (capped at 98% in session 45), initcheck 9/16
#     (its a8 reports were torch's kernels on cuBLASLt output; bench/sanitize.sh now leaves a8 out of initcheck), the
#     a8fused units under initcheck and racecheck (grown in session 45 to the fused kernel's few-rows test and
#     absmax_int8's tests, ~250), then racecheck 3/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wgmma.py tests/test_wg_plan.py" "doubled_k_splits or pair_split" "pair split rule tests" 150
for dt in float16 bfloat16; do
  for cfg in rule 0; do
    ev="BITMM_WG_PAIR="; [ $cfg = 0 ] && ev="BITMM_WG_PAIR=0"
    env $ev timeout 80 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 2 --dtype $dt \
      --shapes 28672x5120,32768x4096,24576x4352,28672x5632,32768x3456,32768x4224 --ms 17,33,64 --backends fp16,wgmma \
      --out "$OUT/pair_rule_${dt}_$cfg.json" 2>&1 | grep " us" > /dev/null
    mark "pair rule $dt $cfg"
  done
done
for lay in ng gn; do
  timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64,128 --rounds 2 --scale-layout $lay \
    --shapes 8192x28672,8192x8192 --ms 1,16,64 --backends fp16,auto --out "$OUT/small_m_layout_$lay.json" 2>&1 | grep " us" > /dev/null
  mark "small-M scale layout $lay"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
# (a capped unit leaves $OUT/san_resume.txt: commit it as bench/results/san_resume_sNN.txt; san_tail resumes from it)
san_tail "${S46_UNITS:-racecheck:9/16@cover3 initcheck:9/16@cover3 initcheck:0/1@a8fused racecheck:0/1@a8fused racecheck:3/16@cover3}" ${S46_END:-560}
cat "$OUT/log.txt"
# compare: python bench/probe_ab.py pair_rule_float16_0.json pair_rule_float16_rule.json; small_m_layout_ng.json small_m_layout_gn.json
