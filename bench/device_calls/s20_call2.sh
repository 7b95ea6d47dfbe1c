#!/usr/bin/env bash
# Session 20, call 2.  (1) The GPU suite's items that call 1 did not finish or failed on (call 1's shards
# 0, 2, 3 of 4 = shards {0, 4, 2, 6, 3, 7} of 8: shard 2 timed out at 330 s, 0 and 3 stopped at the
# scale-offset test's K = 1095, which group-wise scales do not allow), six processes side by side, no -x;
# (2) group-wise M = 1, 2 on the long-K shape 28672 x 8192 (auto takes the add/subtract kernel there,
# the block-diagonal path only for K <= 8192: session 14 measured 82.1 vs 77.8 us): fp16, auto,
# addsub, tensorcore, and tensorcore with BITMM_TC_WN = 1 / 2 / 4.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call2.sh
source "$(dirname "$0")/prelude.sh"
for i in 0 4 2 6 3 7; do
  OMP_NUM_THREADS=2 BITMM_SKIP_HUGE=1 BITMM_SHARD=$i/8 timeout 300 python3 -m pytest tests -q -rf -p no:cacheprovider \
    --durations=5 -o faulthandler_timeout=100 > /tmp/shard$i.txt 2>&1 &
done
wait
for i in 0 4 2 6 3 7; do
  echo "shard $i/8: $(tail -1 /tmp/shard$i.txt)" | tee -a "$OUT/log.txt"
  grep -E "^FAILED|^E  |Error|Timeout|^[0-9.]+s (call|setup)" /tmp/shard$i.txt | head -15 >> "$OUT/log.txt"
done
mark tests
P="python3 bench/decode_probe.py --shapes 28672x8192,8192x8192 --kinds int2,ternary,binary --ms 1,2 --groups 64"
timeout 60 $P --backends fp16,auto,addsub,tensorcore --out /tmp/a.json 2>&1 | grep " us" > "$OUT/probe_longk.txt"
for wn in 1 2 4; do
  BITMM_TC_WN=$wn timeout 40 $P --backends tensorcore --out /tmp/w.json 2>&1 | grep " us" | sed "s/^/WN=$wn /" >> "$OUT/probe_longk.txt"
done
mark probe
