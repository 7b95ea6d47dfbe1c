#!/usr/bin/env bash
# Session 41 call 6 (the budget's last ~240 s): the test additions made after the device time, smallest first:
# wg15's pipeline variants (two CTAs per SM) and the CTA one with the positional instance check, then the bitwise
# WS-vs-CTA test on the unsplit 128-row tile (BM = 128's 11-slot ring).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "pipeline_variants and (pair or cta)" "pipeline_variants pair / cta" 60
run_tests tests/test_wgmma.py "ws_matches and tile128" "bitwise tile128" 90
