#!/usr/bin/env bash
# Session 48 call 2 (warm, right after call 1): resume the capped units (racecheck 7/16, initcheck 5/16, racecheck 10/16;
# bench/results/san_resume_s48.txt deselects what call 1 saw pass), then initcheck 7/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
san_tail "${S48_UNITS:-racecheck:7/16@cover3 initcheck:5/16@cover3 racecheck:10/16@cover3 initcheck:7/16@cover3}" ${S48_END:-520}
cat "$OUT/log.txt"
