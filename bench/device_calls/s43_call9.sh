#!/usr/bin/env bash
# Session 43 call 9 (the budget's last ~300 s): the WS-vs-CTA bitwise test after wg16 (its cases with and without an
# offset: the no-fold path through both pipelines), the plan and the 64-row-tile variants, as long as the call lasts.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "ws_matches and (plan or tile64)" "test_wgmma -k 'ws_matches and (plan or tile64)'" 150
cat "$OUT/log.txt"
