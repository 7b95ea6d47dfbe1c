#!/usr/bin/env bash
# Session 44 call 3: the K-split pair rule (wg_plan.h wg_pair_split) on the GPU: (1) its tests (the host plan tests,
# the auto instance / grid / reference test, the pipeline variants' pair cases); (2) the rule against BITMM_WG_PAIR=0
# (the plan's splits on one CTA per SM) through the wgmma backend, the shapes it takes and one it does not (8192^2),
# ternary / int2 / binary, per tensor without offset, M = 17 / 33 / 64, fp16 and bf16 x (bf16 unmeasured before), each
# setting in its own process; (3) issue 8's cover3 sanitizer units to the call's end (racecheck 1/8, initcheck 0/8
# again: call 2 capped it one test short).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_plan.py tests/test_wgmma.py" "test_wg_plan or doubled_k_splits or pairs_ctas or (pipeline_variants and pair)" \
  "wg_plan + pair tests" 200
for dt in float16 bfloat16; do
  for pr in rule 0; do
    if [ $pr = rule ]; then ev="BITMM_WG_PAIR="; else ev="BITMM_WG_PAIR=0"; fi
    env $ev timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 --dtype $dt \
      --shapes 28672x8192,16384x8192,16384x6144,8192x8192 --ms 17,33,64 --backends fp16,wgmma \
      --out "$OUT/pair_split_rule_${dt}_$pr.json" 2>&1 | grep " us" > /dev/null
    mark "pair split $dt $pr"
  done
done
left=$(( 480 - ($(date +%s) - start) ))
OUT="$OUT" BITMM_SAN_UNITS="racecheck:1/8@cover3 initcheck:0/8@cover3" BITMM_SAN_PAR=2 BITMM_SAN_CAP=$left \
  bash bench/sanitize.sh > /dev/null 2>&1
mark sanitizers
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
