#!/usr/bin/env bash
# Prepared in session 36 (not run): s37_nw8.patch, per tensor / channel M = 9..16 on 8 warps per CTA (4 along N,
# K split over 2 through the kernel's shared-memory reduction; tc_linear_w8_kernel, BITMM_TC_NW=8), against the rule's
# 4 warps.  Why (bench/NOTES.md, session 36's M = 16 reasoning): 224 128-row CTAs on 132 SMs cap the warps in flight
# at 8 per SM whatever the registers allow, and more CTAs (64-row tiles, tc41) double x's staging; 8 warps per CTA
# double the warps at the same x traffic.  ptxas (sm_90a, session 36): 124 registers, no spills (2 CTAs of 256
# threads per SM by registers).  Prediction: binary / ternary 8192 x 28672 M = 16 a few to ~20% faster (39.2 / 44.2 us
# at 77718ad).  BITMM_TC_NW=8 takes every N (the test needs small ones), with 4 warps along N: on N < 128 x SMs
# (8192^2: 64 CTAs) half the GPU idles, so 8192^2 is a control expected to lose, not a verdict on the reduction.
# The 8-warp ring is twice as large, so where x is split the K tile shrinks (M = 16, K = 8192: 2048 -> 1280-1536);
# BITMM_TC_NW8_STAGES=2 gives a slot back to it (a fresh-context review's points, session 36).
# (a) base tree: M = 9 / 12 / 16 tensor core times; (b) patched: its override test (+ the tile-config tests), then the
# same times with and without BITMM_TC_NW=8 (the patch changes nothing without it: a control for the rebuild).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_nw8.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
probe() {  # $1: label, rest: environment
  local label=$1; shift
  env "$@" timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
    --shapes 8192x28672,4096x28672,5120x27648,8192x16896,8192x33792,8192x8192 --groups none --ms 9,12,16 \
    --backends tensorcore --out "$OUT/nw_$label.json" 2>&1 | grep " us" | sed "s/^/$label /" >> "$OUT/nw.txt"
  mark "probe $label"
}
probe base BITMM_TC_NW=0
apply_and_rebuild bench/device_calls/s37_nw8.patch nw8
run_tests tests/test_tensorcore.py "eight_warps or row_tile_override or tile_config" tests 150
probe patched_4 BITMM_TC_NW=0
probe patched_8 BITMM_TC_NW=8
probe patched_8s2 BITMM_TC_NW=8 BITMM_TC_NW8_STAGES=2
