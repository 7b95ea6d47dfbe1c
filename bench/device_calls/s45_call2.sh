#!/usr/bin/env bash
# Ran as session 45 call 2 (4a1c09c, H100, warm, S45_END=380; bench/results/s45_device_runs.txt).
# Session 45 call 2 (prepared while call 1 waited for a machine): wg17's unmeasured cases, knobs only, forced
# wgmma, per tensor without offset, fp16 x, each setting in its own process: plans of 3 K splits (40 weight tiles:
# N = 5120, K >= 24576) doubled to 6 on the pair instance, and of 4 splits (32 tiles: N = 4096, K >= 32768) doubled
# to 8.  The rule takes only 2 -> 4 (measured 0.90-0.98 of the plan); predicted: 3 -> 6 and 4 -> 8 gain less (the
# doubled split's reduction pass is a larger share, and 6 / 8 splits x 40 / 32 tiles = 240 / 256 CTAs on 132 SMs
# x 2 slots is ~0.9-0.97 of one wave), so ~0.95-1.0.  Then sanitizer units to the call's end.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
for cfg in plan pair6 pair8; do
  case $cfg in
    plan) ev="BITMM_WG_PAIR=0"; sh="28672x5120,32768x5120,32768x4096,65536x4096" ;;
    pair6) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=6 BITMM_WG_PAIR=1"; sh="28672x5120,32768x5120" ;;
    pair8) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=8 BITMM_WG_PAIR=1"; sh="32768x4096,65536x4096" ;;
  esac
  env $ev timeout 80 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 2 \
    --shapes $sh --ms 17,33,64 --backends fp16,wgmma --out "$OUT/pair_split_$cfg.json" 2>&1 | grep " us" > /dev/null
  mark "pair split $cfg"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
left=$(( ${S45_END:-560} - ($(date +%s) - start) ))
[ $left -gt 150 ] && OUT="$OUT" BITMM_SAN_UNITS="${S45_UNITS:-racecheck:9/16@cover3 racecheck:2/16@cover3 initcheck:1/16@cover3 initcheck:9/16@cover3}" BITMM_SAN_PAR=4 \
  BITMM_SAN_CAP=$left bash bench/sanitize.sh > /dev/null 2>&1 && mark sanitizers
[ -f "$OUT/sanitizers.txt" ] && cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
