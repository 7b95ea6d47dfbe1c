#!/usr/bin/env bash
# Ran as session 44 call 1 (2a34da4, H100; bench/results/s44_device_runs.txt).
# Prepared in session 43 (not run; run it first in session 44): the tests that gained wg16 cases after session 43's
# device time ran out (a fresh-context review found the forced-configuration tests built every per tensor / channel
# problem with an offset, i.e. only the folding path): test_wgmma.py's pipeline variants (the pair, WS and K-split
# instances without an offset), forced tiles, the WS-vs-CTA bitwise test, default K splits, the new non-finite test;
# and the > 2^31-output test's wgmma case, which now asserts the wgmma kernel ran.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "pipeline_variants or forced_tiles or default_k_splits or without_offset" \
  "test_wgmma -k 'pipeline_variants or forced_tiles or default_k_splits or without_offset'" 240
run_tests tests/test_wgmma.py "ws_matches" "test_wgmma -k ws_matches" 200
BITMM_SKIP_HUGE= timeout 100 python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -rf -k "past_2_31_outputs" > /tmp/t.txt 2>&1
{ echo "test_reliability -k past_2_31_outputs: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
cat "$OUT/log.txt"
