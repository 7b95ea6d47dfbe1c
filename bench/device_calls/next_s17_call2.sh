#!/usr/bin/env bash
# Written in session 16 for the next session (issue 8): the block-diagonal kernel's two-activation-tile
# instances (M = 3, 4; tc17) under compute-sanitizer memcheck, racecheck and initcheck: its BD tests at
# M = 3 / 4 (fp16 g64 and bf16 g96: flush runs of 2 blocks and of 1), the exact / NaN test at M = 4,
# and the many-row-tile reduction test at M = 3 / 4 group-wise (N = 60013: all warps along N for the
# two-plane kinds, several row tiles per CTA).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s17_call2.sh
source "$(dirname "$0")/prelude.sh"
SEL="(grouped_decode_block_diagonal and (-3] or -4]) and (dtype0-64 or dtype1-96)) or (exact_and_nonfinite and 4]) or (k_split_reduction_many and group and 60013 and (-3- or -4-))"
export BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1
for tool in memcheck racecheck initcheck; do
  kns="--kernel-name kns=bitmm"; extra=""
  # initcheck must see every kernel's writes, and (as bench/sanitize.sh) runs without torch's caching
  # allocator, so a skipped write is caught even in a recycled block
  [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
  [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
  env $extra timeout 150 compute-sanitizer --tool $tool $kns --print-limit 50 \
    python3 -m pytest tests/test_tensorcore.py -q -p no:cacheprovider -k "$SEL" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt) t=$(( $(date +%s) - start ))" | tee -a $OUT/log.txt
  gzip -c /tmp/san_$tool.txt > $OUT/san_$tool.txt.gz
done
true
