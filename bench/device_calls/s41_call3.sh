#!/usr/bin/env bash
# Session 41 call 3 (warm, after call 2): wg13's correctness on the device: test_wgmma.py's WS-vs-CTA bitwise test
# (g32 / g64 / g96 / g192, with and without offsets), the pipeline variants and the forced-wgmma tests; memcheck,
# synccheck and initcheck over the tests forcing the warp-specialized pipeline (as session 40's call 3).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "ws_matches or pipeline_variants or forced" "test_wgmma.py -k 'ws_matches or pipeline_variants or forced'" 230
export BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1
san() {  # $1: tool, rest: compute-sanitizer options
  local tool=$1; shift
  timeout -s INT 150 compute-sanitizer --tool "$tool" "$@" python3 -m pytest tests/test_wgmma.py -q -rf \
    -p no:cacheprovider -k "pipeline_variants and ws" > "/tmp/san_$tool.txt" 2>&1
  echo "== $tool rc=$? | $(grep -E 'ERROR SUMMARY' /tmp/san_$tool.txt | tail -1) | $(grep -E 'passed|failed' /tmp/san_$tool.txt | tail -1)" >> "$OUT/sanitizers.txt"
  grep -E "^=========  *(Invalid|Error|Warning|Uninit|Barrier|Program)" "/tmp/san_$tool.txt" | cut -c1-160 | sort | uniq -c | head -5 >> "$OUT/sanitizers.txt"
}
san memcheck --kernel-name kns=bitmm &
san synccheck --kernel-name kns=bitmm &
PYTORCH_NO_CUDA_MEMORY_CACHING=1 BITMM_SAN_NO_CUBLAS=1 san initcheck &
wait; mark sanitizers
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
