#!/usr/bin/env bash
# Written in session 16 for the next session's first call (bench/NOTES.md, "Plan for the next device
# session (written in session 16)", item 0): the whole test_tensorcore.py + test_kernel_coverage.py at
# HEAD (the block-diagonal path to M = 4, its residency rule and shared-memory reservation), then
# group-wise M = 2..4 with the reservation (default) against BITMM_PDL=0, fp16 F.linear in the first
# process (decode_probe now warms up first), and cuda_bench --quick.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s17_call1.sh
source "$(dirname "$0")/prelude.sh"
timeout 320 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
P="--kinds binary,int2,ternary --groups 64 --shapes 4096x4096,8192x8192,8192x28672 --ms 2,3,4"
BITMM_NOP=1 timeout 60 python3 bench/decode_probe.py $P --backends fp16,tensorcore --out $OUT/probe_rule.json 2>&1 \
  | grep " us" | sed "s/^/rule /" >> $OUT/probe.txt
echo "probe rule t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
BITMM_PDL=0 timeout 60 python3 bench/decode_probe.py $P --backends tensorcore --out /tmp/probe_pdl0.json 2>&1 \
  | grep " us" | sed "s/^/pdl0 /" >> $OUT/probe.txt
echo "probe pdl0 t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
timeout 90 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt; true
