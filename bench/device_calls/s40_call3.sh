#!/usr/bin/env bash
# Session 40 call 3: the warp-specialized wgmma pipeline as the default (wg12).  (a) auto at M = 64-512, where auto
# runs wgmma on these shapes, with BITMM_WG_WS=0 (the old default) and unset, each in its own process beside fp16;
# (b) the whole GPU suite with the new default, including test_wgmma_ws_matches_cta_pipeline_bitwise; (c) memcheck,
# synccheck and initcheck over the tests that force the warp-specialized pipeline; (d) below.
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
probe() {  # $1: label, rest: environment
  local label=$1; shift
  env "$@" timeout 60 python3 bench/decode_probe.py --kinds ternary,int2 --groups none,64 --rounds 2 \
    --shapes 8192x28672,8192x8192 --ms 64,256,512 --backends fp16,auto \
    --out "$OUT/ws_mid_$label.json" 2>&1 | grep " us" | sed "s/^/$label /" >> "$OUT/ws_mid.txt"
  mark "probe $label"
}
probe ws0 BITMM_WG_WS=0
probe default
# (d) issue 5's M = 1024 / 4096 grid through auto with the new default (was s40_call4.sh), for h100.json
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 1024,4096 --backends fp16,auto \
  --out "$OUT/h100_s40_auto_large_m.json" 2>&1 | grep " us" > "$OUT/auto_large_m.txt"
mark "auto probe ($(wc -l < "$OUT/auto_large_m.txt") lines)"
SHARDS=7 CAP=200 RERUN_CAP=40 source "$(dirname "$0")/gpu_suite_sharded.sh"
export BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1
san() {  # $1: tool, rest: compute-sanitizer options
  local tool=$1; shift
  timeout -s INT 130 compute-sanitizer --tool "$tool" "$@" python3 -m pytest tests/test_wgmma.py -q -rf \
    -p no:cacheprovider -k "pipeline_variants and ws" > "/tmp/san_$tool.txt" 2>&1
  echo "== $tool rc=$? | $(grep -E 'ERROR SUMMARY' /tmp/san_$tool.txt | tail -1) | $(grep -E 'passed|failed' /tmp/san_$tool.txt | tail -1)" >> "$OUT/sanitizers.txt"
  grep -E "^=========  *(Invalid|Error|Warning|Uninit|Barrier|Program)" "/tmp/san_$tool.txt" | cut -c1-160 | sort | uniq -c | head -5 >> "$OUT/sanitizers.txt"
}
san memcheck --kernel-name kns=bitmm &
san synccheck --kernel-name kns=bitmm &
PYTORCH_NO_CUDA_MEMORY_CACHING=1 BITMM_SAN_NO_CUBLAS=1 san initcheck &
wait; mark sanitizers
