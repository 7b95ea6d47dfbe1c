#!/usr/bin/env bash
# Session 42 call 4: wg15's rule with binary from M = 33 (wg_plan.h wg_pair_ctas): the auto-pair test, the host rule
# test, the auto tests (which now meet the pair instance at wide N), the rest of test_wgmma.py (forced tiles, splits,
# config sweeps: the default instance changed for per tensor 64-row plans of 133-264 tiles); synccheck and initcheck
# over the pair pipeline variants (memcheck and racecheck ran in call 3: 0 errors, 0 hazards on the pair instances).
source "$(dirname "$0")/prelude.sh"
export BITMM_SKIP_HUGE=1
( for tool in synccheck initcheck; do
    ex=""; [ $tool = initcheck ] && ex="PYTORCH_NO_CUDA_MEMORY_CACHING=1 BITMM_SAN_NO_CUBLAS=1"
    env $ex BITMM_UNDER_SANITIZER=1 timeout -s INT 300 compute-sanitizer --tool $tool --print-limit 20 \
      python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "pair-64 or pair-split3" > /tmp/san_$tool.txt 2>&1
    echo "== $tool rc=$? | $(grep -E 'ERROR SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt)" >> "$OUT/sanitizers.txt"
  done ) &
run_tests "tests/test_wgmma.py tests/test_wg_plan.py" "pairs_ctas or pair_ctas or auto" "test_wgmma + wg_plan -k 'pairs_ctas or pair_ctas or auto'" 200
run_tests tests/test_wgmma.py "not ws_matches and not pipeline_variants and not auto and not pairs_ctas" "test_wgmma.py (the rest)" 230
wait
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
cat "$OUT/log.txt"
