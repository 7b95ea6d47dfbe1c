#!/usr/bin/env bash
# Ran as session 44 call 2 (2a34da4, H100, warm; bench/results/s44_device_runs.txt).
# Prepared in session 43 (not run): (1) the K-split pair (64-row tiles, twice the plan's K splits, two CTAs per SM) on
# more long-K shapes, for a rule (session 43 call 8: ternary / int2 28672 x 8192 0.91-0.95 of the plan's time, 8192^2
# 0.97-1.02, binary 1.04-1.19): knobs only, forced wgmma, per tensor without offset, fp16 x, each setting in its own
# process; (2) issue 8's whole-suite racecheck / initcheck: the first units of the cover3 profile (bench/sanitize.sh),
# one process at a time, to the call's end.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
for cfg in plan pair4 pair6; do
  case $cfg in
    plan) ev="BITMM_WG_PAIR=0" ;;
    pair4) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=1" ;;
    pair6) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=6 BITMM_WG_PAIR=1" ;;
  esac
  env $ev timeout 80 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 16384x8192,28672x4096,14336x4096,11008x4096,28672x8192,16384x6144 --ms 17,33,64 --backends fp16,wgmma \
    --out "$OUT/pair_split_$cfg.json" 2>&1 | grep " us" > /dev/null
  mark "pair split $cfg"
done
left=$(( 560 - ($(date +%s) - start) ))
OUT="$OUT" BITMM_SAN_UNITS="racecheck:0/8@cover3 initcheck:0/8@cover3" BITMM_SAN_PAR=1 BITMM_SAN_CAP=$left \
  bash bench/sanitize.sh > /dev/null 2>&1
mark sanitizers
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
