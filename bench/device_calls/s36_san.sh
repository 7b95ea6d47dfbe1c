#!/usr/bin/env bash
# Prepared in session 35 (not run): issue 8's racecheck and initcheck over the selection of s35_san.sh (every kernel
# instance of tests/test_kernel_coverage.py without its auto / dense cases, plus the fused W2A8 / digits sanitizer
# cases; memcheck ran clean over it in session 35), ONE process at a time, all kinds in it: session 35 ran nine
# processes at once and got 3-4 of 13 tests per kind through racecheck in 420 s, where one racecheck process over the
# coverage file's 27 tests took 183 s in session 12 (README "Sanitizers": the GPU time-slices between processes).
# racecheck first, then initcheck, each stopped at its share of END; a capped process lists (-v) how far it got.
# Run as: BITMM_COMMIT=<sha> END=560 bash bench/device_calls/next_s36_racecheck.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
END=${END:-560}
export BITMM_A8_FUSED=1 BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1
SEL="not cpu and not auto and not dense and (every or generic or fused_lora or pack_unpack or fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks)"
for TOOL in racecheck initcheck; do
  extra=""; kns="--kernel-name kns=bitmm"
  [ "$TOOL" = initcheck ] && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1" && kns=""
  left=$(( END - ($(date +%s) - start) )); cap=$([ $TOOL = racecheck ] && echo $(( left * 3 / 4 )) || echo $(( left - 10 )))
  env $extra timeout -s INT "$cap" compute-sanitizer --tool "$TOOL" $kns --print-limit 50 \
    python3 -m pytest tests/test_kernel_coverage.py tests/test_linear_a8.py tests/test_digits.py -v -p no:cacheprovider \
    -k "$SEL" > "/tmp/san_$TOOL.txt" 2>&1
  echo "== $TOOL rc=$? t=$(( $(date +%s) - start )): $(grep -cE ' PASSED' /tmp/san_$TOOL.txt) passed, $(grep -cE ' FAILED' /tmp/san_$TOOL.txt) failed | $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$TOOL.txt | tail -1) | reports: $(grep -c -E '^========= +(Invalid|Race|Uninitialized|Error:|Warning:|Program hit)' /tmp/san_$TOOL.txt)" >> "$OUT/sanitizers.txt"
done
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_racecheck.txt san_initcheck.txt)
mark done
