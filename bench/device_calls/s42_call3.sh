#!/usr/bin/env bash
# Session 42 call 3: wg15's rule (wg_plan.h wg_pair_ctas: two CTAs per SM where the 64-row plan is per tensor, unsplit
# and has one wave of pairs) and tc47's new bound (ternary / int2 M <= 21, both dtypes): the tests (the new auto-pair
# test, the grouped auto test, the pipeline variants), test_autocast.py's CUDA cases with grad tolerance; the rule
# (BITMM_WG_PAIR unset) against BITMM_WG_PAIR=0 on more N (136 / 160 / 224 / 264 tiles) and K, fp16 and bf16, forced
# wgmma; the per tensor / g64 grid through auto at M = 1 / 4 / 16 / 64 (tc48's int2 and the pair rule) for h100.json;
# memcheck and racecheck over the pair tests (the pair runs the CTA-barrier pipeline, which racecheck judges).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_autocast.py "cuda" "test_autocast.py -k cuda" 120
run_tests "tests/test_wgmma.py tests/test_wg_plan.py" "pairs_ctas or auto_grouped or pipeline_variants or pair_ctas" "test_wgmma + wg_plan -k 'pairs_ctas or auto_grouped or pipeline_variants or pair_ctas'" 240
for dt in float16 bfloat16; do
  for pr in rule 0; do
    if [ $pr = rule ]; then ev="BITMM_WG_PAIR="; else ev="BITMM_WG_PAIR=0"; fi
    env $ev timeout 80 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none --rounds 2 \
      --shapes 8192x28672,4096x28672,2048x28672,14336x20480,8192x33792,8192x17408 --ms 17,49,64 --backends fp16,wgmma \
      --out "$OUT/pair_rule_${dt}_$pr.json" 2>&1 | grep " us" > /dev/null
    mark "pair rule $dt $pr"
  done
done
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 1,4,16,64 --backends fp16,auto \
  --out "$OUT/h100_s42_auto_grid.json" 2>&1 | grep " us" > /tmp/grid.txt
mark "grid ($(wc -l < /tmp/grid.txt) lines)"
# (after the timings: the sanitizer processes share the GPU)
export BITMM_SKIP_HUGE=1
for tool in memcheck racecheck; do
  ( BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1 timeout -s INT $(( 555 - ($(date +%s) - start) )) compute-sanitizer --tool $tool --kernel-name kns=wg_linear \
      --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "pairs_ctas or pair-64 or pair-split3" \
      > /tmp/san_$tool.txt 2>&1
    echo "== $tool rc=$? | $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt)" >> "$OUT/sanitizers.txt" ) &
done
wait
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
