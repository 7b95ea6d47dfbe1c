#!/usr/bin/env bash
# (kept as run; session 13 device calls, paths relative to the repository root)
# session 13, first device call (bench/NOTES.md session-12 plan items 0 and 1): build, the tests that
# landed after the last GPU run, the BD kernel under three sanitizers, the warps-along-N probe.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
BITMM_GPU_SANITIZE=0 BITMM_TESTS=0 BITMM_BENCH=none BITMM_EAGER=0 bash bench/device_run.sh > $OUT/build.txt 2>&1
tail -5 $OUT/build.txt; echo "t=$(( $(date +%s) - start ))"
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_reliability.py -q -x -rf \
  -p no:cacheprovider -k "grouped or many_row or lora or nonfinite or exact_on_integers or forward_every" > $OUT/pytest_sel.txt 2>&1
echo "pytest rc=$?"; tail -4 $OUT/pytest_sel.txt; echo "t=$(( $(date +%s) - start ))"
for wn in 1 2 4; do BITMM_TC_WN=$wn timeout 60 python3 bench/decode_probe.py --out $OUT/probe_wn$wn.json > $OUT/probe_wn$wn.txt 2>&1; echo "wn=$wn rc=$?"; done
echo "t=$(( $(date +%s) - start ))"
for tool in memcheck racecheck initcheck; do
  extra=""; [ $tool = racecheck ] && extra="--kernel-name kns=bitmm"
  BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 timeout 90 compute-sanitizer --tool $tool $extra python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider \
    -k "grouped_decode and (64 or 96) and not 256" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(grep -E 'passed|failed' /tmp/san_$tool.txt | tail -1)" | tee -a $OUT/san_bd.txt
  grep -E "^========= (Invalid|Race|Uninit|Error|Program)" /tmp/san_$tool.txt | sort | uniq -c | head -4 | tee -a $OUT/san_bd.txt
done
echo "t=$(( $(date +%s) - start ))"
