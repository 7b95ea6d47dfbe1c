#!/usr/bin/env bash
# Prepared in session 53.  Run first in session 54 (S54_END: the call's end in seconds, default 580):
#   S54_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s54_call1.sh
# The three `TOOL:0/1@wgx` units (tests/test_wg_grad_x.py under memcheck, racecheck and initcheck), whole, on main with
# wgx3 + wgx4 (session 51 capped them at 379 s on wgx3 alone: memcheck 7, racecheck 5, initcheck 3 of 9 tests; the
# file has 10 tests since).  A fourth process takes memcheck over cover3's sixteenths in turn (no session has run them:
# ~130 tests each, counted with BITMM_SAN_COLLECT=1); units not reached are listed NOT STARTED.  Capped units leave their
# passed ids in $OUT/san_resume.txt: commit it as bench/results/san_resume_s54.txt, so the next call resumes them.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
san_tail "${S54_UNITS:-memcheck:0/1@wgx racecheck:0/1@wgx initcheck:0/1@wgx $(for i in $(seq 0 15); do printf "memcheck:%d/16@cover3 " $i; done)}" "${S54_END:-580}"
cat "$OUT/log.txt"
