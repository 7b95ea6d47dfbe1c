#!/usr/bin/env bash
# Session 37, call 4: the new wgmma plan (wg_plan.h: the smallest x tile holding M, then K splits to fill one wave)
# and tc_split_small_m at M = 21..24 (K >= 5120), both landed after call 3.
# (a) test_wgmma.py whole (every wgmma test runs under the new plan) and test_wg_plan.py, in 6 shards side by side;
# (b) auto / wgmma (new plan) against the old plan, which BITMM_WG_TILE=64x1 / 128x1 reproduces (the fill rule then
#     picks the old splits), ternary per tensor / g64, M = 128 .. 512 on six narrow-N shapes, each case's old tile
#     picked in the analysis (bench/NOTES.md, session 37); prediction: 20-50% faster at M = 192 / 256 on N = 4096 /
#     8192, unknown at M = 128 / 320 / 512 and N = 5120 / 11008;
# (c) the split rule through auto, fp16 and bf16, M = 20 / 21 / 24 / 25 on three shapes (auto should match the
#     tensor-core kernel at M <= 24 and wgmma at 25).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_call4.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
PYTEST_ARGS="tests/test_wgmma.py tests/test_wg_plan.py" SHARDS=6 CAP=200 LABEL="wgmma tests " \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
probe() {  # $1: label, $2: shapes, $3: M list, $4: backends, $5 dtype, rest: environment
  local label=$1 shapes=$2 ms=$3 bes=$4 dt=$5; shift 5
  env "$@" timeout 150 python3 bench/decode_probe.py --kinds ternary --groups none,64 --rounds 3 --dtype $dt \
    --shapes "$shapes" --ms "$ms" --backends "$bes" --out "/tmp/p_$label.json" 2>&1 | grep " us" \
    | sed "s/^/$label /" >> "$OUT/probe.txt"
  mark "probe $label"
}
S=4096x4096,8192x8192,28672x8192,14336x4096,4096x11008,8192x5120
probe new $S 128,192,256,320,512 fp16,auto,wgmma float16
probe old64 $S 128,192,256,320,512 wgmma float16 BITMM_WG_TILE=64x1
probe old128 8192x8192,28672x8192,4096x11008,8192x5120,4096x4096 192,256,320,512 wgmma float16 BITMM_WG_TILE=128x1
timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 3 \
  --shapes 8192x8192,28672x8192,5120x8192 --ms 20,21,24,25 --backends fp16,auto,tensorcore,wgmma \
  --out /tmp/p_split.json 2>&1 | grep " us" | sed "s/^/split16 /" >> "$OUT/probe.txt"; mark "split fp16"
timeout 100 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2 --groups none --rounds 3 \
  --shapes 8192x8192,5120x8192 --ms 21,24,25 --backends fp16,auto \
  --out /tmp/p_splitbf.json 2>&1 | grep " us" | sed "s/^/splitbf /" >> "$OUT/probe.txt"; mark "split bf16"
tar czf "$OUT/p_json.tgz" -C /tmp $(cd /tmp && ls p_*.json)
