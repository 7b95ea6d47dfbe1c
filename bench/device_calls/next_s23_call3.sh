#!/usr/bin/env bash
# Prepared in session 22 for session 23: (1) ncu with stall counts of the group-wise folding path at M = 32 and of
# the tensor-core grad_x kernel at M = 1
# (CM = 4; 8192 x 28672 g64: int2 153 us, ternary 137, against M = 16's 91.5 / 79.7 for a step loop only 6%
# longer in the SASS: what limits it?); (2) compute-sanitizer memcheck / racecheck / initcheck over the
# tensor-core forward coverage tests (every launch configuration on small problems, now with tc25's typed
# CM = 1 folding instances and tc26's M = 3, 4 routing), one process per tool and kind side by side.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s23_call3.sh
source "$(dirname "$0")/prelude.sh"
ncu_raw tc_int2_g64_m32 tc_int2_g64_m32
ncu_raw tc_ternary_g64_m32 tc_ternary_g64_m32
ncu_raw gradx_ternary_m1 gradx_ternary_m1   # grad_x M = 1 (1.83x of fp16 grad @ W; issue 4 asks 4x)
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1
CAP=$(( 580 - ($(date +%s) - start) ))
for tool in memcheck racecheck initcheck; do
  for kind in ternary binary int2; do
    kns="--kernel-name kns=bitmm"; extra=""
    # initcheck sees every kernel's writes without the caching allocator (as bench/sanitize.sh); racecheck /
    # initcheck with the tests' cuBLAS baselines on the CPU (cuBLAS's sm_90 GEMMs die under racecheck)
    [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
    [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
    ( env $extra timeout "$CAP" compute-sanitizer --tool $tool $kns --print-limit 50 python3 -m pytest tests/test_kernel_coverage.py \
        -q -p no:cacheprovider -k "forward_every_kernel_configuration and $kind-tensorcore-cuda" > /tmp/san_${tool}_$kind.txt 2>&1
      echo "== $tool $kind rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_${tool}_$kind.txt | tail -1) | $(tail -1 /tmp/san_${tool}_$kind.txt)" >> /tmp/san_summary.txt ) &
  done
done
wait
cat /tmp/san_summary.txt | tee -a "$OUT/log.txt"
cat /tmp/san_*_*.txt | gzip -c > "$OUT/san_all.txt.gz"
mark sanitizers
