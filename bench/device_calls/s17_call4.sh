#!/usr/bin/env bash
# Session 17, fourth call.  (1) The tc18 tests (per tensor M = 5..8 on two 16-row tiles per warp, the rule
# for fp16 ternary, the overrides incl. BITMM_TC_RN2_FROM) and the coverage file's forward test; (2) the
# default at M = 5, 8 with fp16 F.linear (records for the speedup table), bf16 per tensor CM = 1 vs 2;
# (3) per tensor M = 1..4 on the two-row-tile configurations (BITMM_TC_RN2_FROM=1) vs the default;
# (4) the new RN = 2, CM = 1 instance under memcheck / racecheck / initcheck; (5) cuda_bench --quick.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s17_call4.sh
source "$(dirname "$0")/prelude.sh"
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "m5_8 or tile_config or row_tile_override or block_diagonal_limit or small_m_two_row_tiles or forward_every" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
S="--shapes 8192x28672,8192x8192,28672x8192,4096x4096 --kinds int2,ternary,binary"
timeout 60 python3 bench/decode_probe.py $S --ms 5,8 --groups none,64 --backends fp16,tensorcore --out $OUT/probe_m58.json 2>&1 \
  | grep " us" | sed "s/^/rule /" >> $OUT/probe.txt
for v in X=0 BITMM_TC_M8=1 BITMM_TC_M8=2; do
  env $v timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192 --kinds int2,ternary,binary --ms 5,8 \
    --groups none --dtype bfloat16 --backends tensorcore --out /tmp/p.json 2>&1 | grep " us" | sed "s/^/bf16 $v /" >> $OUT/probe.txt
done
for v in X=0 BITMM_TC_RN2_FROM=1 "BITMM_TC_RN2_FROM=1 BITMM_TC_M8=2" "BITMM_TC_RN2_FROM=1 BITMM_TC_M8=1"; do
  env $v timeout 50 python3 bench/decode_probe.py $S --ms 1,2,3,4 --groups none --backends tensorcore --out /tmp/p.json 2>&1 \
    | grep " us" | sed "s/^/small ${v// /,} /" >> $OUT/probe.txt
done
mark probes
SEL="m5_8_long_k_two_row_tiles and 9001 and (int2 or ternary)"
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1
for tool in memcheck racecheck initcheck; do
  kns="--kernel-name kns=bitmm"; extra=""
  [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
  [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
  env $extra timeout $([ $tool = racecheck ] && echo 90 || echo 60) compute-sanitizer --tool $tool $kns --print-limit 50 \
    python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$SEL" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
done
unset BITMM_UNDER_SANITIZER
timeout 60 python3 bench/cuda_bench.py --quick --out $OUT/h200_quick.json > /tmp/quick.txt 2>&1
echo "quick rc=$? t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt; grep -E " us" /tmp/quick.txt > $OUT/quick.txt; true
