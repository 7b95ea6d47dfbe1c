#!/usr/bin/env bash
# Session 17, second call.  (1) ncu of the group-wise M = 16 folding path (int2 RN = 2, binary RN = 1) against
# per tensor ternary M = 16 on 8192 x 28672 (why is group-wise 3x slower: bench/NOTES.md plan item 2), with
# the warp-state and memory sections; and a decode_probe of M = 8, 16 with the RN / WN / ring-depth overrides.
# (2) As prepared in session 16 (issue 8): the block-diagonal kernel's two-activation-tile instances (M = 3, 4;
# tc17) under compute-sanitizer memcheck, racecheck and initcheck.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s17_call2.sh
source "$(dirname "$0")/prelude.sh"
for c in tc_int2_g64_m16 tc_ternary_m16; do
  timeout 80 ncu --nvtx --nvtx-include "$c/" --section InstructionStats --section LaunchStats --section Occupancy \
    --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section SourceCounters --import-source no -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_$c.ncu-rep" --page details > "$OUT/ncu_$c.txt" 2>&1
  ncu -i "/tmp/ncu_$c.ncu-rep" --page source --csv --print-source sass 2>&1 | gzip > "$OUT/ncu_src_$c.csv.gz"
  mark "ncu $c"
done
P="--kinds int2,binary --groups 64 --shapes 8192x28672,8192x8192 --ms 8,16 --backends tensorcore"
for v in "X=0" "BITMM_TC_RN=1" "BITMM_TC_RN=2" "BITMM_TC_WN=2" "BITMM_TC_STAGES=2" "BITMM_TC_STAGES=3"; do
  env $v timeout 40 python3 bench/decode_probe.py $P --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/$v /" >> $OUT/probe.txt
done
timeout 40 python3 bench/decode_probe.py --kinds int2,ternary --groups none --shapes 8192x28672,8192x8192 --ms 8,16 \
  --backends fp16,tensorcore --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/pertensor /" >> $OUT/probe.txt
mark probe
SEL="(grouped_decode_block_diagonal and (-3] or -4]) and (dtype0-64 or dtype1-96)) or (exact_and_nonfinite and 4]) or (k_split_reduction_many and group and 60013 and (-3- or -4-))"
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1
for tool in memcheck racecheck initcheck; do
  kns="--kernel-name kns=bitmm"; extra=""
  # initcheck must see every kernel's writes, and (as bench/sanitize.sh) runs without torch's caching
  # allocator, so a skipped write is caught even in a recycled block
  [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
  [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
  env $extra timeout 110 compute-sanitizer --tool $tool $kns --print-limit 50 \
    python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$SEL" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  gzip -c /tmp/san_$tool.txt > $OUT/san_$tool.txt.gz
done
true
