#!/usr/bin/env bash
# Prepared in session 47.  Run it first in session 48 (~1 min build + sanitizer units to S48_END, default 520 s):
# issue 8's cover3 sixteenths, four at a time: racecheck 6/16 and initcheck 4/16 resumed (session 47 capped them at
# 80 / 89 tests with no report; bench/results/san_resume_s47b.txt deselects the tests they passed), racecheck 7/16 and
# initcheck 5/16, then racecheck 10/16 and initcheck 6/16.  Commit $OUT/san_resume.txt as bench/results/san_resume_s48.txt.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
san_tail "${S48_UNITS:-racecheck:6/16@cover3 initcheck:4/16@cover3 racecheck:7/16@cover3 initcheck:5/16@cover3 racecheck:10/16@cover3 initcheck:6/16@cover3}" ${S48_END:-520}
cat "$OUT/log.txt"
