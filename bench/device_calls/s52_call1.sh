#!/usr/bin/env bash
# Session 52, one call in place of the prepared next_s52_call1.sh + next_s52_call2.sh (both removed; refused starts
# made device time short).  Ran as s52_call1.sh (bench/results/s52_device_runs.txt):
# wgx3 (bench/device_calls/next_s51_wgx3.patch, timed in session 51, tests cut) is applied and built; that build is
# the base of wgx4's A/B (bench/device_calls/next_s52_wgx4.patch, on top of wgx3; predicted 5-10% on the wgmma
# grad_x kernel at M = 32 / 64, the 64-row tiles); then wgx4 is applied and the whole of tests/test_wg_grad_x.py and
# tests/test_wgmma.py and the grad_x suites run on wgx3 + wgx4 (session 51's rule checks on small weights included);
# then the wgx4 timing.  If a test fails, wgx4 is reversed and the tree rebuilt before the sanitizer units (initcheck
# 12-15 of cover3) fill the call to S52_END (default 560).
cd "$(dirname "$0")/../.."
P3=bench/device_calls/next_s51_wgx3.patch
P4=bench/device_calls/next_s52_wgx4.patch
patch -p1 < "$P3" > /dev/null || exit 1
source bench/device_calls/prelude.sh  # (builds the tree with wgx3)
mkdir -p build && grep -E '^\+\+\+ b/' "$P3" | cut -c7- >> build/patched_files  # (the next call rebuilds them)
echo "wgx3 applied before the build" >> "$OUT/log.txt"
gx=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192
    --ms 32,64,256 --backends fp16,tensorcore,wgmma)
timeout 70 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx4_gx_base.json" > /tmp/p1.txt 2>&1
mark "gx base (wgx3) rc=$? $(tail -1 /tmp/p1.txt)"
apply_and_rebuild "$P4" wgx4
run_tests "tests/test_wg_grad_x.py tests/test_wgmma.py" "" "wgmma tests (wgx3+wgx4)" 260
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites (wgx3+wgx4)" 100
timeout 70 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx4_gx_new.json" > /tmp/p3.txt 2>&1
mark "gx wgx4 rc=$? $(tail -1 /tmp/p3.txt)"
python3 bench/probe_ab.py "$OUT/wgx4_gx_base.json" "$OUT/wgx4_gx_new.json" > "$OUT/wgx4_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx4_ab.txt" >> "$OUT/log.txt"
if grep -q -E "^FAILED|^E  |no tests ran|error" "$OUT/log.txt" || [ "$(grep -c ' passed' "$OUT/log.txt")" -lt 2 ]; then
  mark "a test failed or was cut: wgx4 reversed before the sanitizer units"
  patch -R -p1 < "$P4" > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
  mark "build-wgx3"
fi
san_tail "${S52_UNITS:-initcheck:12/16@cover3 initcheck:13/16@cover3 initcheck:14/16@cover3 initcheck:15/16@cover3}" ${S52_END:-560}
cat "$OUT/log.txt"
