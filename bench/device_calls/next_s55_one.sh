#!/usr/bin/env bash
# Session 55, for when only one call fits the device time left (refused starts took most of it):
#   S55_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s55_one.sh
# bench/stream_probe.cu first (~15 s: the streaming gap's pattern / bytes-in-flight / issue question, see
# next_s55_call2.sh), then next_s55_call1.sh's steps (the cudagraph pool probe plain and under memcheck, then the
# sanitizer units left) until S55_END; everything but log.txt in $OUT/rest.tgz.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/stream_probe bench/stream_probe.cu > "$OUT/stream_probe.txt" 2>&1 \
  && timeout 90 /tmp/stream_probe >> "$OUT/stream_probe.txt" 2>&1
cat "$OUT/stream_probe.txt" >> "$OUT/log.txt"; mark stream_probe
for b in 1.58 2; do
  echo "== cudagraph_pool_probe $b plain" >> "$OUT/log.txt"
  timeout 120 python3 bench/cudagraph_pool_probe.py $b > "$OUT/pool_probe_$b.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_$b.txt"
  grep -E "ok$|FAILED|leaked|equal|rc=" "$OUT/pool_probe_$b.txt" | head -8 >> "$OUT/log.txt"
done
mark "pool probe plain"
echo "== cudagraph_pool_probe 1.58 under memcheck" >> "$OUT/log.txt"
BITMM_UNDER_SANITIZER=1 timeout 150 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
  python3 bench/cudagraph_pool_probe.py 1.58 > "$OUT/pool_probe_memcheck.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_memcheck.txt"
grep -E "ok$|FAILED|leaked|equal|ERROR SUMMARY|rc=" "$OUT/pool_probe_memcheck.txt" | head -8 >> "$OUT/log.txt"
mark "pool probe memcheck"
san_tail "${S55_UNITS:-memcheck:6/16@cover3 memcheck:8/16@cover3 racecheck:0/1@wgx initcheck:0/1@wgx memcheck:2/16@cover3 memcheck:3/16@cover3}" "${S55_END:-480}"
pack_out
cat "$OUT/log.txt"
