#!/usr/bin/env bash
# Prepared in session 36 (not run): tc42 (bf16 x in tc_grouped_wide / tc_per_tensor_wide / tc_split_small_m), landed
# after session 36's last GPU call: (a) the auto routing tests with their new bf16 cases and the kernels' bf16 tests;
# (b) auto against both forced kernels with bf16 x on the rules' shapes (auto should run the tensor-core kernel
# wherever call 6 timed it faster, within ~2% of it); (c) on an H200 (either card may come), the digits probe of
# next_s35_h200.sh, which no session has run.  ~4 min on a warm build.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s37_call1.sh
source "$(dirname "$0")/prelude.sh"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); echo "$GPU" >> "$OUT/log.txt"
run_tests "tests/test_wgmma.py tests/test_tensorcore.py" "auto or split or four_warps" tests 200
P="timeout 100 python3 bench/decode_probe.py --dtype bfloat16 --kinds ternary,int2,binary --rounds 3"
$P --shapes 8192x28672,4096x28672 --groups 64 --ms 17,32 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_grouped.json" > /tmp/a.txt 2>&1; mark "grouped ($(grep -c ' us' /tmp/a.txt) lines)"
$P --shapes 8192x28672,5120x27648 --groups none --ms 33,64 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_wide.json" > /tmp/b.txt 2>&1; mark "wide ($(grep -c ' us' /tmp/b.txt) lines)"
$P --shapes 8192x8192,28672x8192,8192x6144 --groups none --ms 17,20,24,32 --backends fp16,auto,tensorcore,wgmma \
  --out "$OUT/bf16_split.json" > /tmp/c.txt 2>&1; mark "split ($(grep -c ' us' /tmp/c.txt) lines)"
cat /tmp/a.txt /tmp/b.txt /tmp/c.txt | grep " us" > "$OUT/bf16_auto.txt"
if [[ "$GPU" == *H200* ]]; then
  timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 \
    --shapes 8192x28672,4096x28672,2048x32768,8192x57344,8192x8192 --groups none --ms 1,2 \
    --backends fp16,auto,tensorcore,digits --out "$OUT/h200_digits.json" > /tmp/m.txt 2>&1
  mark "h200 digits ($(grep -c ' us' /tmp/m.txt) lines)"; cp /tmp/m.txt "$OUT/h200_digits.txt"
fi
