#!/usr/bin/env bash
# Prepared in session 46 (its device time went to six refused starts and one call, s46_call1.sh).  Run it first in
# session 47 (~1 min + sanitizer units to S47_END, default 560 s):
# (1) the test order of racecheck / initcheck 9/16 over cover3 (collected on the device: the host's differs), into
#     $OUT/order_9of16.txt: both units were capped twice at 107 tests after
#     test_wgmma_3d_noncontiguous_misaligned_and_graph[ternary] with no report, so the test after it runs for minutes
#     under the sanitizers; the list names it;
# (2) sanitizer units, four at a time: the two 9/16 units resumed (bench/results/san_resume_s46.txt deselects the 102
#     tests each passed), then racecheck 4/16 and initcheck 2/16, racecheck 5/16 and initcheck 3/16;
# before them (~2 min): tc_linear.cuh's L2 prefetch of (G, N)-stored group-wise scales (session 46, unmeasured;
# session 46 measured (G, N) through auto without it 0.95-1.08 of (N, G) at M = 16, 0.997 at M = 1): (N, G) and (G, N)
# with it, then (G, N) without it (next_s47_gn_prefetch_off.patch), M = 1 / 16 / 64, g64 / g128, three kinds; and the
# tensor-core and wgmma tests on (G, N) scales with it (-k "grouped_strided or column_major").
# Compare: python bench/probe_ab.py gn_off.json gn_on.json (the prefetch), ng.json gn_on.json (the layout).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
K9="(not cpu and not compile and not a8_emulation and not wg_plan) and not dense and not auto and not a8 and not act_bits"
BITMM_SHARD=9/16 BITMM_TEST_PROFILE=cover3 BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 timeout 60 python3 -m pytest tests \
  --collect-only -q -p no:cacheprovider -k "$K9 and not (pipeline_variants and ws) and not ws_matches_cta" \
  2> /dev/null | grep "::" > "$OUT/order_9of16.txt"
mark "9/16 order: $(wc -l < "$OUT/order_9of16.txt") ids, after graph[ternary]: $(grep -A2 'misaligned_and_graph\[ternary\]' "$OUT/order_9of16.txt" | tail -2 | tr '\n' ' ')"
run_tests "tests/test_tensorcore.py tests/test_wgmma.py" "grouped_strided or column_major" "(G, N) scale tests" 120
gn_probe() {  # $1: layout, $2: output name
  timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64,128 --rounds 2 --scale-layout $1 \
    --shapes 8192x28672,8192x8192 --ms 1,16,64 --backends fp16,auto --out "$OUT/$2.json" 2>&1 | grep " us" > /dev/null
  mark "scale layout $2"
}
gn_probe ng ng; gn_probe gn gn_on
apply_and_rebuild bench/device_calls/next_s47_gn_prefetch_off.patch prefetch-off
gn_probe gn gn_off
patch -R -p1 < bench/device_calls/next_s47_gn_prefetch_off.patch > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
mark "rebuilt HEAD"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
san_tail "${S47_UNITS:-racecheck:9/16@cover3 initcheck:9/16@cover3 racecheck:4/16@cover3 initcheck:2/16@cover3 racecheck:5/16@cover3 initcheck:3/16@cover3}" ${S47_END:-560}
cat "$OUT/log.txt"
