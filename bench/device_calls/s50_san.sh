#!/usr/bin/env bash
# Session 50, sanitizer call: a clean build (a warm machine may hold call 1's patched build), then bench/sanitize.sh's
# units to S50_END: the wgmma grad_x kernel's own units, racecheck 15/16 and 14/16, initcheck 13/16 (resumed from
# bench/results/san_resume_*.txt), initcheck 12/16 (rerun without the cublas tests), 14/16.
cd "$(dirname "$0")/../.."
rm -rf build bitmm/_C*.so
source bench/device_calls/prelude.sh
san_tail "${S50_UNITS:-racecheck:0/1@wgx memcheck:0/1@wgx initcheck:0/1@wgx racecheck:15/16@cover3 racecheck:14/16@cover3 initcheck:13/16@cover3 initcheck:12/16@cover3 initcheck:14/16@cover3}" ${S50_END:-520}
cat "$OUT/log.txt"
