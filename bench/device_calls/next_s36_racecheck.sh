#!/usr/bin/env bash
# Prepared in session 35 (not run): issue 8's racecheck (TOOL=racecheck) or initcheck (TOOL=initcheck) over the
# selection of s35_san.sh (every kernel instance of tests/test_kernel_coverage.py without its auto / dense cases, plus
# the fused W2A8 / digits sanitizer cases), one tool per call: three processes (one per kind), not nine (session 35's
# nine got 3-4 of 13 tests per kind through in 420 s).  Stopped at END seconds; the verdict per process in
# $OUT/sanitizers.txt (a capped process lists how far it got: rerun the rest with -k).
# Run as: BITMM_COMMIT=<sha> TOOL=racecheck END=560 bash bench/device_calls/next_s36_racecheck.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
TOOL=${TOOL:-racecheck}; END=${END:-560}
export BITMM_A8_FUSED=1 BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1
SEL="not cpu and not auto and not dense and (every or generic or fused_lora or pack_unpack or fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks)"
extra=""; kns="--kernel-name kns=bitmm"
[ "$TOOL" = initcheck ] && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1" && kns=""
cap=$(( END - ($(date +%s) - start) ))
for kind in ternary binary int2; do
  ( env $extra timeout -s INT "$cap" compute-sanitizer --tool "$TOOL" $kns --print-limit 50 \
      python3 -m pytest tests/test_kernel_coverage.py tests/test_linear_a8.py tests/test_digits.py -v -p no:cacheprovider \
      -k "$kind and $SEL" > "/tmp/san_${TOOL}_$kind.txt" 2>&1
    echo "== $TOOL $kind rc=$? t=$(( $(date +%s) - start )): $(grep -cE ' PASSED' /tmp/san_${TOOL}_$kind.txt) passed, $(grep -cE ' FAILED' /tmp/san_${TOOL}_$kind.txt) failed | $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_${TOOL}_$kind.txt | tail -1) | reports: $(grep -c -E '^========= +(Invalid|Race|Uninitialized|Error:|Warning:|Program hit)' /tmp/san_${TOOL}_$kind.txt)" >> "$OUT/sanitizers.txt" ) &
done
wait
(cd /tmp && tar czf "$OUT/san_${TOOL}_logs.tgz" san_${TOOL}_*.txt)
mark done
