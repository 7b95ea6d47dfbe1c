#!/usr/bin/env bash
# Session 51, one call (refused starts left room for one long call): the prepared next_s51_call1.sh's tests and boundary
# timings, then next_s51_call2.sh's wgx3 A/B, in that order; the sanitizer units are left to a later call.  (Both
# prepared scripts ran here, next_s51_call1.sh's sanitizer units in the second call; they were removed after.)
# 0. Session 50's grad_x rule's dispatch checks (test_wg_grad_x.py: M = 15 / 16 / 20 / 64 / 65 small weights,
#    24 / 25 large; the grad_x suites; test_linear's no-dense knob test at M = 100).
# 1. The new boundaries timed (tensorcore / wgmma / auto at M = 17-32 on 8192 x 28672 and 8192^2; small weights
#    tensorcore / dense / wgmma / auto at M = 8-128).
# 2. wgx3 (bench/device_calls/next_s51_wgx3.patch; bench/NOTES.md, "wgx3 prepared", has the prediction) against the
#    base build in this call, with its tests on the patched build.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests" 120
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites" 120
common=(--direction backward --rounds 2 --kinds ternary,binary,int2 --groups none,64)
timeout 70 python3 bench/decode_probe.py "${common[@]}" --shapes 8192x28672,8192x8192 --ms 17,20,24,25,28,32 \
  --backends fp16,tensorcore,wgmma,auto --out "$OUT/gx_low.json" > /tmp/gl.txt 2>&1
mark "grad_x M = 17-32 rc=$? $(tail -1 /tmp/gl.txt)"
timeout 60 python3 bench/decode_probe.py "${common[@]}" --shapes 4096x4096,4096x2048 --ms 8,12,16,64,65,96,128 \
  --backends fp16,tensorcore,dense,wgmma,auto --out "$OUT/gx_small.json" > /tmp/gsm.txt 2>&1
mark "grad_x small weights rc=$? $(tail -1 /tmp/gsm.txt)"
gx=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192
    --ms 32,64,256 --backends fp16,tensorcore,wgmma)
fw=(--rounds 3 --kinds ternary,int2 --groups none,64 --shapes 8192x28672 --ms 64,256,1024 --backends fp16,wgmma)
timeout 60 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx3_gx_base.json" > /tmp/p1.txt 2>&1
mark "gx base rc=$? $(tail -1 /tmp/p1.txt)"
timeout 40 python3 bench/decode_probe.py "${fw[@]}" --out "$OUT/wgx3_fw_base.json" > /tmp/p2.txt 2>&1
mark "fw base rc=$? $(tail -1 /tmp/p2.txt)"
apply_and_rebuild bench/device_calls/next_s51_wgx3.patch wgx3
run_tests "tests/test_wg_grad_x.py tests/test_wgmma.py" "" "wgmma tests (wgx3)" 110
timeout 60 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx3_gx_new.json" > /tmp/p3.txt 2>&1
mark "gx wgx3 rc=$? $(tail -1 /tmp/p3.txt)"
timeout 40 python3 bench/decode_probe.py "${fw[@]}" --out "$OUT/wgx3_fw_new.json" > /tmp/p4.txt 2>&1
mark "fw wgx3 rc=$? $(tail -1 /tmp/p4.txt)"
{ python3 bench/probe_ab.py "$OUT/wgx3_gx_base.json" "$OUT/wgx3_gx_new.json"
  python3 bench/probe_ab.py "$OUT/wgx3_fw_base.json" "$OUT/wgx3_fw_new.json"; } > "$OUT/wgx3_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx3_ab.txt" >> "$OUT/log.txt"
cat "$OUT/log.txt"
