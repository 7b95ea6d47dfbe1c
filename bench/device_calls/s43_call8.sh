#!/usr/bin/env bash
# Session 43 call 8: after wg16, does wg15's pair rule still beat the one-CTA warp-specialized pipeline?  (ncu, call 7:
# the pair's per-stage CTA barrier is 0.85 stalls per issue; WS has none.)  Knobs only: the rule (BITMM_WG_PAIR unset)
# against BITMM_WG_PAIR=0, forced wgmma, per tensor without offset, fp16 x, the rule's shapes (136-264 tiles) at
# M = 17 / 33 / 64, each setting in its own process.  Then, time left: next_s43_call1.sh's K-split pair (64-row tiles,
# 4 splits, two CTAs per SM) against the plan and the one-CTA 4-split control on the split shapes.
source "$(dirname "$0")/prelude.sh"
for pr in rule 0; do
  if [ $pr = rule ]; then ev="BITMM_WG_PAIR="; else ev="BITMM_WG_PAIR=0"; fi
  env $ev timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 8192x28672,4096x28672,14336x20480,8192x17408 --ms 17,33,64 --backends fp16,wgmma \
    --out "$OUT/pair_ws_$pr.json" 2>&1 | grep " us" > /dev/null
  mark "pair vs ws: $pr"
done
for cfg in plan pair4 one4; do
  case $cfg in
    plan) ev="BITMM_WG_PAIR=0" ;;
    pair4) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=1" ;;
    one4) ev="BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=4 BITMM_WG_PAIR=0" ;;
  esac
  env $ev timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 8192x8192,28672x8192 --ms 17,33,64 --backends fp16,wgmma \
    --out "$OUT/pair_split_$cfg.json" 2>&1 | grep " us" > /dev/null
  mark "pair split $cfg"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
