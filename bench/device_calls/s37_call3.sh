#!/usr/bin/env bash
# Session 37, call 3: the wgmma plan (wg_plan.h) where issue 5's "never slower" misses most, no rebuild.
# (a) M = 256 on narrow N (README: 4096^2 int2 g64 0.47x, 8192^2 ternary 0.76x, 28672 x 8192 0.55-0.76x): the plan
#     runs 64- or 128-row x tiles there with no K split (4096^2: 128 CTAs of 64 rows, 64 stages each, ~0.56 us a
#     stage for ~0.15 us of MMA), so the forced tile x split grid (BITMM_WG_TILE / BITMM_WG_SPLIT) against the
#     plan, and the warp-specialized pipeline (BITMM_WG_WS=1), and dense.  Prediction: a larger x tile with K split
#     (fewer weight re-reads, larger wgmma's) 10-30% faster on 4096^2 / 8192^2; none reaches fp16 on 4096^2.
# (b) M = 1024 on four shapes: BITMM_WG_WS=1 against the default pipeline (H200 session 11: 3-15% faster).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_call3.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
probe() {  # $1: label, $2: shapes, $3: M list, $4: backends, rest: environment
  local label=$1 shapes=$2 ms=$3 bes=$4; shift 4
  env "$@" timeout 120 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 --rounds 3 \
    --shapes "$shapes" --ms "$ms" --backends "$bes" --out "/tmp/wg_$label.json" 2>&1 | grep " us" \
    | sed "s/^/$label /" >> "$OUT/wgplan.txt"
  mark "probe $label"
}
S256=4096x4096,8192x8192,28672x8192,4096x14336,14336x4096
probe plan $S256 256 fp16,wgmma,dense
probe t128s2 $S256 256 wgmma BITMM_WG_TILE=128x1 BITMM_WG_SPLIT=2
probe t256s2 $S256 256 wgmma BITMM_WG_TILE=256x1 BITMM_WG_SPLIT=2
probe t256s4 $S256 256 wgmma BITMM_WG_TILE=256x1 BITMM_WG_SPLIT=4
probe t128s4 $S256 256 wgmma BITMM_WG_TILE=128x1 BITMM_WG_SPLIT=4
probe t64s2 $S256 256 wgmma BITMM_WG_TILE=64x1 BITMM_WG_SPLIT=2
probe ws $S256 256 wgmma BITMM_WG_WS=1
S1K=8192x28672,28672x8192,8192x8192,4096x4096
probe plan1k $S1K 1024 fp16,wgmma
probe ws1k $S1K 1024 wgmma BITMM_WG_WS=1
probe ws256s2 $S256 256 wgmma BITMM_WG_WS=1 BITMM_WG_TILE=256x1 BITMM_WG_SPLIT=2
tar czf "$OUT/wg_json.tgz" -C /tmp $(cd /tmp && ls wg_*.json)
