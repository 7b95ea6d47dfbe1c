#!/usr/bin/env bash
# Prepared in session 51.  Run first in session 52 (S52_END: the call's end in seconds, default 540):
# 0. wgx3 (bench/device_calls/next_s51_wgx3.patch) was timed in session 51 against the base build in one call
#    (bench/results/h100_s51_wgx3_ab_6ff9550.txt: the wgmma grad_x kernel 0.92-0.95x of its time per tensor at M = 32 /
#    64, 0.95-0.98x g64, M = 256 0.92-1.0x; the forward wgmma kernel within its rounds' spread), but its tests were cut
#    by their 110-s limit (test_wgmma.py takes ~150 s): so it is applied first here and the whole of
#    tests/test_wg_grad_x.py and tests/test_wgmma.py run on it, then the grad_x suites (session 51's rule on small
#    weights: M = 7 / 8 / 128 / 129 plain, 11 / 12 / 64 / 65 with a fold, in test_wg_grad_x.py).  If all pass, the
#    patch goes into main (git apply) after the call.
# 1. Sanitizer units to S52_END on the same build: the three @wgx units (session 51's capped runs on the wgx3 build
#    are resumed from bench/results/s51_san_resume_wgx3_build.txt, only if the tests passed), racecheck 14/16 (resumed),
#    initcheck 12-15.  If a test failed, the patch is reversed and the tree rebuilt first, and the @wgx units rerun whole.
cd "$(dirname "$0")/../.."
P=bench/device_calls/next_s51_wgx3.patch
patch -p1 < "$P" > /dev/null || exit 1
source bench/device_calls/prelude.sh  # (builds the patched tree)
mkdir -p build && grep -E '^\+\+\+ b/' "$P" | cut -c7- >> build/patched_files  # (the next call rebuilds them)
echo "wgx3 applied before the build" >> "$OUT/log.txt"
run_tests "tests/test_wg_grad_x.py tests/test_wgmma.py" "" "wgmma tests (wgx3)" 260
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites (wgx3)" 100
if grep -q -E "^FAILED|^E  |no tests ran|error" "$OUT/log.txt" || [ "$(grep -c ' passed' "$OUT/log.txt")" -lt 2 ]; then
  mark "wgx3: a test failed or was cut; reversing the patch"
  patch -R -p1 < "$P" > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
  mark "build-base"
else
  cp bench/results/s51_san_resume_wgx3_build.txt bench/results/san_resume_s51_wgx3.txt
  mark "wgx3 tests passed: the @wgx units resume session 51's runs on the wgx3 build"
fi
san_tail "${S52_UNITS:-memcheck:0/1@wgx racecheck:0/1@wgx initcheck:0/1@wgx racecheck:14/16@cover3 initcheck:12/16@cover3 initcheck:13/16@cover3 initcheck:14/16@cover3 initcheck:15/16@cover3}" ${S52_END:-540}
cat "$OUT/log.txt"
