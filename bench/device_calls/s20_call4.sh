#!/usr/bin/env bash
# Session 20, call 4, HEAD (auto's M = 1 group-wise rule: the block-diagonal path for every kind with
# fp16 x where K > 8192 and N gives every SM a 16-row tile).  (1) auto's M = 1 routing test, the long-K
# block-diagonal test, the rule tables, in 3 shards; (2) fp16 / auto / addsub at g64 M = 1 on the call 3
# shapes and 4096^2 (records at the rule).  Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call4.sh
source "$(dirname "$0")/prelude.sh"
SEL="grouped_m1 or two_warps or launch_rules or grouped_block_diagonal"
for i in 0 1 2; do
  OMP_NUM_THREADS=4 BITMM_SHARD=$i/3 timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_tc_launch_rules.py \
    -k "$SEL" -q -rf -p no:cacheprovider --durations=3 > /tmp/shard$i.txt 2>&1 &
done
wait
for i in 0 1 2; do
  echo "shard $i/3: $(tail -1 /tmp/shard$i.txt)" | tee -a "$OUT/log.txt"
  grep -E "^FAILED|^E  |Error|Timeout|^[0-9.]+s (call|setup)" /tmp/shard$i.txt | head -15 >> "$OUT/log.txt"
done
mark tests
timeout 90 python3 bench/decode_probe.py --shapes 28672x8192,14336x8192,28672x4096,14336x4096,11008x4096,8192x8192,4096x4096 \
  --kinds int2,ternary,binary --ms 1 --groups 64 --backends fp16,auto,addsub --out "$OUT/records_m1.json" 2>&1 | grep " us" > "$OUT/records_m1.txt"
mark probe
