#!/usr/bin/env bash
# Session 20, call 1, HEAD (tc21 + kWgmmaMaxM = 2048, neither through the GPU tests yet: session 19's
# call 2 test run timed out at 380 s in one process).  (1) the whole GPU test suite in 4 shards run side
# by side (tests/conftest.py BITMM_SHARD; BITMM_SKIP_HUGE=1), each shard's summary and failures into
# the log; (2) auto vs fp16 F.linear in the same process, per tensor and g64, M = 1, 4, 16 on the four
# shapes (records for the results table).  Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call1.sh
source "$(dirname "$0")/prelude.sh"
for i in 0 1 2 3; do
  OMP_NUM_THREADS=4 BITMM_SKIP_HUGE=1 BITMM_SHARD=$i/4 timeout 330 python3 -m pytest tests -q -rf -x -p no:cacheprovider \
    -o faulthandler_timeout=120 > /tmp/shard$i.txt 2>&1 &
done
wait
for i in 0 1 2 3; do
  echo "shard $i: $(tail -1 /tmp/shard$i.txt)" | tee -a "$OUT/log.txt"
  grep -E "^FAILED|^E  |Error" /tmp/shard$i.txt | head -15 >> "$OUT/log.txt"
done
mark tests
timeout 150 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
  --ms 1,4,16 --groups none,64 --backends fp16,auto --out "$OUT/records_auto.json" 2>&1 | grep " us" > "$OUT/records_auto.txt"
mark probe
