#!/usr/bin/env bash
# Prepared in session 37 (not run; needs an H200: kind nvidia-h200): (a) does wg10's cost model (wg_plan.h, fitted on
# the H100 only) pick the fastest tile on the H200 too (same 132 SMs, faster memory)?  ternary per tensor / g64 at
# M = 128 / 256 / 320 / 512 on four narrow-N shapes, auto's wgmma against each forced tile (BITMM_WG_TILE, the fill
# rule's splits); prediction: within ~5% of the fastest forced tile as on the H100; (b) next_s35_h200.sh's digits
# probe (the digits rule, never checked on an H200).  ~5 min with the build.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s39_h200.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
probe() {  # $1: label, $2: backends, rest: environment
  local label=$1 bes=$2; shift 2
  env "$@" timeout 100 python3 bench/decode_probe.py --kinds ternary --groups none,64 --rounds 3 \
    --shapes 4096x4096,8192x8192,28672x8192,8192x5120 --ms 128,256,320,512 --backends "$bes" \
    --out "$OUT/h200_plan_$label.json" 2>&1 | grep " us" | sed "s/^/$label /" >> "$OUT/h200_plan.txt"
  mark "probe $label"
}
probe model fp16,auto,wgmma
probe t64 wgmma BITMM_WG_TILE=64x1
probe t128 wgmma BITMM_WG_TILE=128x1
probe t256 wgmma BITMM_WG_TILE=256x1
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
  --shapes 8192x28672,4096x28672,2048x32768,8192x57344,8192x8192 --groups none --ms 1,2 \
  --backends fp16,auto,tensorcore,digits --out "$OUT/h200_digits.json" > /tmp/m.txt 2>&1
mark "digits probe ($(grep -c ' us' /tmp/m.txt) lines)"; cp /tmp/m.txt "$OUT/h200_digits.txt"
