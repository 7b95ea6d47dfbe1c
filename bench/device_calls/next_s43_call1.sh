#!/usr/bin/env bash
# Prepared in session 42 (not run): (1) wg15 on K-split plans, through the existing knobs (no code change): on shapes
# whose 64-row plan splits K in two on one CTA per SM (8192^2, 28672 x 8192, 4096 x 8192, 8192 x 6144 at M <= 64:
# 48-64 tiles), two CTAs per SM with twice the splits (BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=1: 192-256
# CTAs, one wave of pairs) against the plan (PAIR=0) and the one-CTA control with the same 4 splits (PAIR=0, SPLIT=4);
# forced wgmma, per tensor, fp16 x, each setting in its own process.  If the pair wins, wg_plan needs the pair's
# splits (tiles x splits <= 2 x SMs) and the glue's workspace with them.  (2) issue 8's whole-suite racecheck /
# initcheck: the first units of the cover3 profile (bench/sanitize.sh), one process at a time, to the call's end.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
for cfg in plan pair4 one4; do
  case $cfg in
    plan) ev="BITMM_WG_PAIR=0" ;;
    pair4) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=1" ;;
    one4) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=0" ;;
  esac
  env $ev timeout 80 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 8192x8192,28672x8192,4096x8192,8192x6144 --ms 17,33,64 --backends fp16,wgmma \
    --out "$OUT/pair_split_$cfg.json" 2>&1 | grep " us" > /dev/null
  mark "pair split $cfg"
done
left=$(( 560 - ($(date +%s) - start) ))
OUT="$OUT" BITMM_SAN_UNITS="racecheck:0/8@cover3 initcheck:0/8@cover3" BITMM_SAN_PAR=1 BITMM_SAN_CAP=$left \
  bash bench/sanitize.sh > /dev/null 2>&1
mark sanitizers
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
