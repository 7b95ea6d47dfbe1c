#!/usr/bin/env bash
# Prepared in session 24 for session 25, to run on the tree where next_s25_gx_scales.patch / next_s25_gx_dn.patch
# landed (after next_s25_call1.sh and the whole-suite call): compute-sanitizer memcheck / racecheck / initcheck over
# the grad_x coverage test (every grad_x kernel configuration on small problems: plain, fma, fma_f32 and group-wise
# modes, M = 0 .. 65, fp16 / bf16 / fp32) on the tensorcore backend, one process per tool and kind side by side
# (as session 23's s23_call3.sh did for the forward), and the patches' layout / non-finite tests of test_tc_grad_x.py.
# Covers tc31's splits, tc33's subnormal unpacking / G mma / incremental addresses, tc36's last-CTA conversion, the
# tiled scale transpose.  The patches must be committed first (this script applies none).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s25_call3.sh
source "$(dirname "$0")/prelude.sh"
export BITMM_SKIP_HUGE=1
SCAP=$(( 560 - ($(date +%s) - start) ))
for tool in memcheck racecheck initcheck; do
  for kind in ternary binary int2; do
    kns="--kernel-name kns=bitmm"; extra=""
    # initcheck sees every kernel's writes without the caching allocator (as bench/sanitize.sh); racecheck /
    # initcheck with the tests' cuBLAS baselines on the CPU (cuBLAS's sm_90 GEMMs die under racecheck)
    [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
    [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
    ( env $extra BITMM_UNDER_SANITIZER=1 timeout -s INT "$SCAP" compute-sanitizer --tool $tool $kns --print-limit 50 python3 -m pytest \
        tests/test_kernel_coverage.py tests/test_tc_grad_x.py -q -p no:cacheprovider \
        -k "(grad_x_every_kernel_configuration and $kind-tensorcore-cuda) or (copy_any_layout and $kind) or (nonfinite and $kind)" \
        > /tmp/san_${tool}_$kind.txt 2>&1
      echo "== $tool $kind rc=$? t=$(( $(date +%s) - start )): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_${tool}_$kind.txt | tail -1) | reports: $(grep -c -E '^========= +(Invalid|Race|Uninitialized|Error:|Warning:|Program hit)' /tmp/san_${tool}_$kind.txt) | $(tail -1 /tmp/san_${tool}_$kind.txt)" >> "$OUT/sanitizers.txt" ) &
  done
done
wait
mark sanitizers
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_*.txt)
