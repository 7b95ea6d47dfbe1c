#!/usr/bin/env bash
# Ran as session 45 call 1 (4a1c09c, H100, S45_END=450; bench/results/s45_device_runs.txt).
# Prepared in session 44 (its device time ran out first; run it first in session 45, ~4-5 min):
# (1) the new wgmma tests: column-major (stride (1, N)) group-wise s / u, the BITMM_WG_SCALE_T knob's bitwise
#     neutrality, and the K-split pair test in its sanitizer-safe form;
# (2) the group-wise scale layout at large M: the wgmma kernel's scale warps load row n0 + lane of one group per lane,
#     so with contiguous (N, G) scales a warp's 32 loads touch 32 sectors (256 B apart at G = 128), with (G, N) storage
#     two.  8192 x 28672 at M = 1024 g64 reads ~940 MB of scale sectors from L2 (4 x tiles x 28672 rows x 128 groups
#     x 2 x 32 B) for 14.7 MB of scales, and session 42's ncu had the scale warps waiting on those loads (long
#     scoreboard 19.7% of all samples vs 5.3% per tensor).  Three settings, forced wgmma, fp16 x, each in its own
#     process: ng (the default), gn (the caller stores (G, N): decode_probe --scale-layout gn) and ng with
#     BITMM_WG_SCALE_T=1 (the glue copies s / u to (G, N) per call: its cost included).  Predicted: if the L2 sector
#     traffic is part of g64's gap to per tensor (831 vs 664 us at 8192 x 28672 M = 1024), gn 5-15% faster there;
#     the knob a little less (a ~10 us copy per call).
# (3) then, time left: s44_call4.sh's sanitizer units (racecheck 1/8 and initcheck 0/8 of cover3).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests tests/test_wgmma.py "column_major or doubled_k_splits or scale_transpose" "wgmma scale layouts + pair split" 150
for cfg in ng gn knob; do
  lay=$cfg; ev="BITMM_WG_SCALE_T="
  [ $cfg = knob ] && lay=ng && ev="BITMM_WG_SCALE_T=1"
  env $ev timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64 --rounds 2 \
    --scale-layout $lay --shapes 8192x28672,28672x8192,8192x8192 --ms 256,1024 --backends fp16,wgmma \
    --out "$OUT/scale_layout_$cfg.json" 2>&1 | grep " us" > /dev/null
  mark "scale layout $cfg"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
left=$(( ${S45_END:-560} - ($(date +%s) - start) ))
# (session 45: units in sixteenths, four at a time: a sixteenth is half an eighth (tests/conftest.py shards by
# index mod n, so i/8 = i/16 + (i+8)/16 and finished eighths stay valid), so a capped unit wastes less)
[ $left -gt 150 ] && OUT="$OUT" BITMM_SAN_UNITS="${S45_UNITS:-racecheck:0/1@a8fused initcheck:0/16@cover3 initcheck:8/16@cover3 racecheck:1/16@cover3}" BITMM_SAN_PAR=4 \
  BITMM_SAN_CAP=$left bash bench/sanitize.sh > /dev/null 2>&1 && mark sanitizers
[ -f "$OUT/sanitizers.txt" ] && cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
# compare: python bench/probe_ab.py scale_layout_ng.json scale_layout_gn.json (and scale_layout_knob.json)
