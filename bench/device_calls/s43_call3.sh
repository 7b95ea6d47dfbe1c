#!/usr/bin/env bash
# Session 43 call 3: wg_rules_fold_only (linear_cuda.cpp: the two per tensor tensor-core rules only with an offset):
# the auto tests of test_wgmma.py (the new no-offset test and the old ones, which run with an offset); the per tensor
# grid through auto at M = 16..64 on the issue shapes (records for h100.json); then memcheck / initcheck / racecheck
# (CTA-barrier pipeline) over the wgmma scale-dtype tests (with and without an offset: wg16's no-fold instances).
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_wgmma.py "auto" "test_wgmma -k auto" 200
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 16,17,24,32,33,48,64 --backends fp16,auto \
  --out "$OUT/h100_s43_auto_small_m.json" 2>&1 | grep " us" > /tmp/grid.txt
mark "auto grid ($(wc -l < /tmp/grid.txt) lines)"
export BITMM_SKIP_HUGE=1
for tool in memcheck initcheck racecheck; do
  ev="BITMM_SAN_NO_CUBLAS=1"; kns="--kernel-name kns=bitmm"
  [ $tool = initcheck ] && ev="$ev PYTORCH_NO_CUDA_MEMORY_CACHING=1" && kns=""
  [ $tool = racecheck ] && ev="$ev BITMM_WG_WS=0"
  left=$(( 560 - ($(date +%s) - start) )); [ $left -lt 30 ] && { echo "== $tool NOT STARTED" >> "$OUT/sanitizers.txt"; continue; }
  env $ev BITMM_UNDER_SANITIZER=1 timeout -s INT $left compute-sanitizer --tool $tool $kns --print-limit 20 \
    python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "scale_dtypes" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$? t=$(( $(date +%s) - start )) | $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt)" >> "$OUT/sanitizers.txt"
done
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
