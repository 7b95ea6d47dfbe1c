#!/usr/bin/env bash
# Prepared in session 52.  Run first in session 53 (S53_END: the call's end in seconds, default 560):
#   S53_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s53_call1.sh
# 0. wgx3 (next_s51_wgx3.patch) + wgx4 (next_s52_wgx4.patch) are timed (session 51: wgx3 0.92-0.95x of the wgmma grad_x
#    kernel's time per tensor at M = 32 / 64; session 52: wgx4 0.957-0.965x more, geomean, g64 M = 256 0.935x) and the
#    grad_x suites passed on them (616, session 52), but tests/test_wg_grad_x.py and tests/test_wgmma.py were cut by
#    their limit twice (110 s in session 51, 260 s for both files in session 52; 849 tests in test_wgmma.py).  So here
#    they run as four processes at once, each under its own limit (the counts of a cut run are printed: prelude.sh
#    run_tests), and the four parts must each end with a summary and no failure.  If both
#    finish with no failure, both patches go into main after the call (git apply, in order); else both are reversed
#    and the tree rebuilt before the sanitizer units.
# 1. Sanitizer units to S53_END on the resulting build: racecheck 14/16 (its stuck test, test_concurrent_python_threads
#    [cuda], is marked cublas since session 52 and left out), initcheck 12-15 of cover3, then the three @wgx units
#    (whole: session 51's resumed ids were on the wgx3 build alone).
cd "$(dirname "$0")/../.."
P3=bench/device_calls/next_s51_wgx3.patch
P4=bench/device_calls/next_s52_wgx4.patch
patch -p1 < "$P3" > /dev/null && patch -p1 < "$P4" > /dev/null || exit 1
source bench/device_calls/prelude.sh  # (builds the tree with wgx3 + wgx4)
mkdir -p build && grep -h -E '^\+\+\+ b/' "$P3" "$P4" | cut -c7- >> build/patched_files  # (the next call rebuilds them)
echo "wgx3 + wgx4 applied before the build" >> "$OUT/log.txt"
# Four pytest processes at once (the child-process tests, ~10-27 s each, are most of test_wgmma.py's time: session
# 43's run of 23 of them took 256 s, the other 657 tests 57 s): test_wg_grad_x.py; the slow tests in two shards; the rest.
slow="pipeline_variants or ws_matches or forced or auto or knob"
run_tests "tests/test_wg_grad_x.py" "" "wgx tests: test_wg_grad_x.py" 150 &
RT_ENV="BITMM_SHARD=0/2" run_tests "tests/test_wgmma.py" "$slow" "wgx tests: test_wgmma.py slow 0/2" 330 &
RT_ENV="BITMM_SHARD=1/2" run_tests "tests/test_wgmma.py" "$slow" "wgx tests: test_wgmma.py slow 1/2" 330 &
run_tests "tests/test_wgmma.py" "not ($slow)" "wgx tests: test_wgmma.py rest" 330 &
wait
sums=$(grep -E "^wgx tests: .*passed" "$OUT/log.txt")
if [ "$(grep -c . <<< "$sums")" -ne 4 ] || grep -q -E "failed|error" <<< "$sums" || grep -q -E "^FAILED|^E  |CUT at" "$OUT/log.txt"; then
  mark "wgx3 + wgx4: a test failed or was cut; both reversed"
  patch -R -p1 < "$P4" > /dev/null && patch -R -p1 < "$P3" > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
  mark "build-base"
else
  mark "wgx3 + wgx4: both test files passed (land both after the call)"
fi
san_tail "${S53_UNITS:-racecheck:14/16@cover3 initcheck:12/16@cover3 initcheck:13/16@cover3 initcheck:14/16@cover3 initcheck:15/16@cover3 memcheck:0/1@wgx racecheck:0/1@wgx initcheck:0/1@wgx}" ${S53_END:-560}
cat "$OUT/log.txt"
