#!/usr/bin/env bash
# Session 37, call 5: wg_plan.h's cost model (per x tile the one-wave K splits, then the least waves x (rows + 192) x
# stages per split), landed after call 4, which it fits on all 72 measured cases.
# (a) test_wgmma.py and test_wg_plan.py in 6 shards side by side;
# (b) the model's picks that no call measured (M = 65 / 100 / 384 / 768 on narrow N, 5120 x 27648 at M = 320 / 384,
#     2048^2) against each forced tile (BITMM_WG_TILE=64x1 / 128x1 / 256x1, the fill rule's splits), ternary per
#     tensor; prediction: the model's pick within a few % of the fastest forced tile everywhere;
# (c) issue 5's M = 256 rows through auto (four shapes, three kinds, per tensor / g64) against fp16 F.linear.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_call5.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
PYTEST_ARGS="tests/test_wgmma.py tests/test_wg_plan.py" SHARDS=6 CAP=200 LABEL="wgmma tests " \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
probe() {  # $1: label, rest: environment
  local label=$1; shift
  env "$@" timeout 120 python3 bench/decode_probe.py --kinds ternary --groups none --rounds 3 \
    --shapes 4096x11008,8192x5120,5120x27648,2048x2048,4096x4096,14336x4096 --ms 65,100,320,384,768 \
    --backends wgmma --out "/tmp/q_$label.json" 2>&1 | grep " us" | sed "s/^/$label /" >> "$OUT/probe.txt"
  mark "probe $label"
}
probe model
probe t64 BITMM_WG_TILE=64x1
probe t128 BITMM_WG_TILE=128x1
probe t256 BITMM_WG_TILE=256x1
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
  --shapes 4096x4096,8192x8192,28672x8192,8192x28672 --ms 256 --backends fp16,auto \
  --out /tmp/q_m256.json 2>&1 | grep " us" | sed "s/^/m256 /" >> "$OUT/probe.txt"; mark "m256"
tar czf "$OUT/q_json.tgz" -C /tmp $(cd /tmp && ls q_*.json)
