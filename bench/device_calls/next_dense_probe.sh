#!/usr/bin/env bash
# Prepared in session 24, for a session with ~250 device-seconds to spare: the dense path at large M (issue 5's
# >= 0.95x for group-wise weights; bench/NOTES.md plan item 5).  ncu of its dequantization kernel at int2 g64
# M = 4096 (is ~300 us for ~545 MB its floor?), then bench/wg_probe.py --cases dense with BITMM_DEQUANT_GRID_Y
# unset / 1056 / 2112 / 4224 (rows in flight; each CTA then walks several rows), one process each.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_dense_probe.sh
source "$(dirname "$0")/prelude.sh"
ncu_raw dense_int2_g64_m4096 dense_int2_g64_m4096
timeout 300 python3 bench/wg_probe.py --out "$OUT/dense_grid_y.json" --cases dense \
  --tiles auto,auto:BITMM_DEQUANT_GRID_Y=1056,auto:BITMM_DEQUANT_GRID_Y=2112,auto:BITMM_DEQUANT_GRID_Y=4224 2>&1 \
  | tail -40 > "$OUT/dense_grid_y.txt"
mark "dense probe"
