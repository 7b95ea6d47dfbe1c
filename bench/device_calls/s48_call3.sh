#!/usr/bin/env bash
# Session 48 call 3 (cold): racecheck 11/16 and 12/16 resumed past their crash (bench/results/san_resume_s48b.txt;
# sanitize.sh now leaves tests marked cublas out of racecheck), racecheck 13/16, initcheck 12/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
san_tail "${S48_UNITS:-racecheck:11/16@cover3 racecheck:12/16@cover3 racecheck:13/16@cover3 initcheck:12/16@cover3}" ${S48_END:-520}
cat "$OUT/log.txt"
