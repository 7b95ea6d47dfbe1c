#!/usr/bin/env bash
# Session 43 call 4 (warm): per tensor M = 1536 / 2048 / 4096, forced wgmma (wg16) against dense (auto's choice from
# M = 2048, kWgmmaMaxM) and fp16 F.linear, four shapes; the sanitizer runs of call 3 again with pytest's summary line.
source "$(dirname "$0")/prelude.sh"
timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 1536,2048,4096 --backends fp16,wgmma,dense \
  --out "$OUT/h100_s43_large_m.json" 2>&1 | grep " us" > /tmp/large.txt
mark "large M ($(wc -l < /tmp/large.txt) lines)"
export BITMM_SKIP_HUGE=1
for tool in memcheck initcheck racecheck; do
  ev="BITMM_SAN_NO_CUBLAS=1"; kns="--kernel-name kns=bitmm"
  [ $tool = initcheck ] && ev="$ev PYTORCH_NO_CUDA_MEMORY_CACHING=1" && kns=""
  [ $tool = racecheck ] && ev="$ev BITMM_WG_WS=0"
  left=$(( 560 - ($(date +%s) - start) )); [ $left -lt 30 ] && { echo "== $tool NOT STARTED" >> "$OUT/sanitizers.txt"; continue; }
  env $ev BITMM_UNDER_SANITIZER=1 timeout -s INT $left compute-sanitizer --tool $tool $kns --print-limit 20 \
    python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "scale_dtypes or without_offset" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$? t=$(( $(date +%s) - start )) | $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(grep -E 'passed|failed' /tmp/san_$tool.txt | tail -1)" >> "$OUT/sanitizers.txt"
done
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
