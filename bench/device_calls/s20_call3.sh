#!/usr/bin/env bash
# Session 20, call 3, HEAD (the block-diagonal path's two warps along N on long K, tc_bd_two_warps_n,
# and auto's M = 1 group-wise rule taking it for fp16 two-plane kinds).  (1) Tests: the rule's table,
# the new long-K block-diagonal test, auto's M = 1 routing, the block-diagonal / grouped tests, in 3
# shards side by side; (2) group-wise g64 M = 1, 2 on long and control K: fp16, auto, addsub,
# tensorcore (the rule), then tensorcore with BITMM_TC_WN = 1 and 2 forced (one process each), then
# the rule's process again (process-to-process noise).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s20_call3.sh
source "$(dirname "$0")/prelude.sh"
SEL="block_diagonal or bd or grouped_m1 or launch_rules or two_warps or grouped_two_row or dispatch"
for i in 0 1 2; do
  OMP_NUM_THREADS=4 BITMM_SHARD=$i/3 timeout 240 python3 -m pytest tests/test_tensorcore.py tests/test_tc_launch_rules.py \
    tests/test_kernel_coverage.py -k "$SEL" -q -rf -p no:cacheprovider --durations=3 > /tmp/shard$i.txt 2>&1 &
done
wait
for i in 0 1 2; do
  echo "shard $i/3: $(tail -1 /tmp/shard$i.txt)" | tee -a "$OUT/log.txt"
  grep -E "^FAILED|^E  |Error|Timeout|^[0-9.]+s (call|setup)" /tmp/shard$i.txt | head -15 >> "$OUT/log.txt"
done
mark tests
P="python3 bench/decode_probe.py --shapes 28672x8192,14336x8192,28672x4096,14336x4096,11008x4096,8192x8192 --kinds int2,ternary,binary --ms 1,2 --groups 64"
timeout 120 $P --backends fp16,auto,addsub,tensorcore --out "$OUT/probe_rule.json" 2>&1 | grep " us" > "$OUT/probe_longk.txt"
mark probe-rule
for wn in 1 2; do
  BITMM_TC_WN=$wn timeout 60 $P --backends tensorcore --out /tmp/w.json 2>&1 | grep " us" | sed "s/^/WN=$wn /" >> "$OUT/probe_longk.txt"
  mark "probe-wn$wn"
done
timeout 60 $P --backends tensorcore --out /tmp/w.json 2>&1 | grep " us" | sed "s/^/again /" >> "$OUT/probe_longk.txt"
mark probe-again
