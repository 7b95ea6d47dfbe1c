#!/usr/bin/env bash
# Prepared in session 51: A/B of wgx4 (bench/device_calls/next_s52_wgx4.patch, on top of wgx3: run it once wgx3 is in
# main, after next_s52_call1.sh).  wgx4 cuts the wgmma grad_x kernel's per-stage issue path: the fold's s / u by
# pointers advanced a stage per issue and a 32-bit rows-left count (each issue multiplied out n * s_sn + group * s_sg
# in 64 bits), the weights' row check by a rows-left count, the s / u store offset computed once, and that offset, the
# lane's weight-row offset and the PRMT selector kept in registers (opaque to ptxas, which rebuilt them from SR_TID.X).
# sm_90a SASS here (two-stage loop, both fold branches, static count; wgx3 -> wgx4): ternary 64-row 571 -> 482, binary
# 523 -> 444, int2 600 -> 512, ternary fp32 scales 684 -> 594, ternary 256-row 576 -> 490; predicated 77 -> 37
# (ternary); registers at BM = 64 at most 125 (cap 128), no spills.  Predicted: 5-10% faster at M = 32 / 64 (the
# 64-row tiles, issue-bound), with a fold a little more, M = 256 0-3%.
cd "$(dirname "$0")/../.."
# (session 52) wgx3 first, where the copied tree lacks it (it goes into main only after next_s52_call1.sh's tests):
# the patch is applied only if it applies forward (-N skips a tree that has it).
P3=bench/device_calls/next_s51_wgx3.patch
if patch -p1 -N --dry-run -s < "$P3" > /dev/null 2>&1; then
  patch -p1 < "$P3" > /dev/null || exit 1
  mkdir -p build && grep -E '^\+\+\+ b/' "$P3" | cut -c7- >> build/patched_files.next
  echo "wgx3 applied before the build" >> "${OUT:-/tmp/out}/log.txt"
fi
source bench/device_calls/prelude.sh
[ -f build/patched_files.next ] && cat build/patched_files.next >> build/patched_files && rm -f build/patched_files.next
gx=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192
    --ms 32,64,256 --backends fp16,tensorcore,wgmma)
timeout 70 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx4_gx_base.json" > /tmp/p1.txt 2>&1
mark "gx base rc=$? $(tail -1 /tmp/p1.txt)"
apply_and_rebuild bench/device_calls/next_s52_wgx4.patch wgx4
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests (wgx4)" 120
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites (wgx4)" 100
timeout 70 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx4_gx_new.json" > /tmp/p3.txt 2>&1
mark "gx wgx4 rc=$? $(tail -1 /tmp/p3.txt)"
python3 bench/probe_ab.py "$OUT/wgx4_gx_base.json" "$OUT/wgx4_gx_new.json" > "$OUT/wgx4_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx4_ab.txt" >> "$OUT/log.txt"
cat "$OUT/log.txt"
