#!/usr/bin/env bash
# Prepared in session 34 (not run): why the tensor-core kernel's per tensor time drops at M = 60 (bench/NOTES.md,
# session 34, "Per tensor M = 33..128").  launch_tc_cfg's rule, emulated on the CPU for 8192 x 28672: at CM = 8 the
# floor of 2 CTAs per SM picks WN = 2 (448 CTAs, two warps splitting K, a reduction) for ternary / int2 at M = 33..56,
# and at M = 60..64 x no longer fits two K steps beside the reduction, so WN goes back to 4 (224 CTAs, no K split):
# ternary 137-161 us at M = 33..56 against 118-119 at M = 60, 64.  Binary (128-input windows) keeps WN = 4 at every M
# and beats wgmma throughout.  Predicted: BITMM_TC_WN=4 makes ternary / int2 M = 33..56 about M = 64's time (118-129
# us on 8192 x 28672, below wgmma's 130-147), and may help M = 17..32 (CM = 4, the same floor) as the H200 showed
# at M = 16 (WN = 4 58.3 vs WN = 2 75.7 us); narrower N (8192^2, 4096 x 14336) may lose (half the CTAs).
# Before that, in the same call: (a) the auto tests that session 34's last rule (tc_per_tensor_wide) never ran on a
# GPU, with the digits rule's; (b) whether the 25 ms warm-up (3666ca6) alone removes the first-timing bias: one
# round, auto first, then the same kernel forced (session 34: 38.4 then 33.5 us).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s35_call1.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
BITMM_SKIP_HUGE=1 timeout 90 python3 -m pytest tests/test_wgmma.py tests/test_digits.py -q -p no:cacheprovider -rf \
  -k "auto" > /tmp/t.txt 2>&1
{ echo "auto tests: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark tests
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2 --rounds 1 --shapes 8192x28672,28672x8192 --groups none,64 \
  --ms 1 --backends fp16,auto,tensorcore --out "$OUT/bias.json" > /tmp/bias.txt 2>&1
mark "bias ($(grep -c ' us' /tmp/bias.txt) lines)"; grep " us" /tmp/bias.txt >> "$OUT/log.txt"
S=8192x28672,4096x28672,5120x27648,8192x8192,4096x14336,28672x8192
timeout 200 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none \
  --ms 17,24,32,33,40,48,56,64 --backends fp16,auto,tensorcore,wgmma --out "$OUT/rule.json" > /tmp/a.txt 2>&1
mark "rule ($(grep -c ' us' /tmp/a.txt) lines)"
BITMM_TC_WN=4 timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes $S --groups none \
  --ms 17,24,32,33,40,48,56,64 --backends tensorcore --out "$OUT/wn4.json" > /tmp/b.txt 2>&1
mark "wn4 ($(grep -c ' us' /tmp/b.txt) lines)"
BITMM_TC_WN=2 timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 --shapes 8192x28672,8192x8192 \
  --groups none --ms 60,64 --backends tensorcore --out "$OUT/wn2.json" > /tmp/c.txt 2>&1
mark "wn2 ($(grep -c ' us' /tmp/c.txt) lines)"
