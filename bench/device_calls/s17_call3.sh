#!/usr/bin/env bash
# Session 17, third call: M = 5..8 with x in several K tiles.  Per tensor / channel: two 16-row tiles per
# warp (RN = 2, CM = 1, new) against the one-tile configuration (BITMM_TC_M8=0, the old path) and M = 9..16's
# (BITMM_TC_M8=1); group-wise (folding path): WN = 2 (new rule) against BITMM_TC_WN=1 / 4.  fp16 F.linear in
# the first process of each.  Then test_tensorcore.py whole (the new tests among it).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s17_call3.sh
source "$(dirname "$0")/prelude.sh"
S="--shapes 8192x28672,8192x8192,28672x8192,4096x4096 --ms 5,8 --kinds int2,ternary,binary"
timeout 60 python3 bench/decode_probe.py $S --groups none --backends fp16,tensorcore --out $OUT/probe_pt_rule.json 2>&1 \
  | grep " us" | sed "s/^/rule /" >> $OUT/probe.txt
for v in BITMM_TC_M8=0 BITMM_TC_M8=1; do
  env $v timeout 60 python3 bench/decode_probe.py $S --groups none --backends tensorcore --out /tmp/p.json 2>&1 \
    | grep " us" | sed "s/^/$v /" >> $OUT/probe.txt
done
timeout 60 python3 bench/decode_probe.py $S --groups 64 --backends fp16,tensorcore --out $OUT/probe_g64_rule.json 2>&1 \
  | grep " us" | sed "s/^/rule /" >> $OUT/probe.txt
for v in BITMM_TC_WN=1 BITMM_TC_WN=4; do
  env $v timeout 60 python3 bench/decode_probe.py $S --groups 64 --backends tensorcore --out /tmp/p.json 2>&1 \
    | grep " us" | sed "s/^/$v /" >> $OUT/probe.txt
done
mark probes
timeout 330 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
