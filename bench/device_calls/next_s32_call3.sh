#!/usr/bin/env bash
# Session 32, call 3: the binary launch-bounds A/B (next_s29_binary_lb.patch: __launch_bounds__(32 kWarps,
# 24 / kWarps) on the binary one-x-tile a8 instances, sm_90a ptxas 94-96 -> 80 registers, no spills: 6 CTAs of 4
# warps per SM instead of 5).  A B A2 B2 with rebuilds in one machine, a8op binary M = 1 / 4 on four shapes (and
# ternary as the untouched control), then B's fused tests.  Predicted: binary M = 1 a few % faster.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s32_call3.sh
source "$(dirname "$0")/prelude.sh"
aprobe() {  # $1: label, $2: time limit
  BITMM_A8_FUSED=1 timeout $2 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds binary,ternary --ms 1,4 --groups none --backends fp16,a8op --out "$OUT/lb_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/lb.txt"
  mark "probe $1"
}
P=bench/device_calls/next_s29_binary_lb.patch
aprobe A 60
apply_and_rebuild $P B
aprobe B 60
BITMM_A8_FUSED=1 timeout 90 python3 -m pytest tests/test_linear_a8.py -q -p no:cacheprovider -rf -k "binary" > /tmp/lb_tests.txt 2>&1
{ echo "B binary a8 tests: $(tail -1 /tmp/lb_tests.txt)"; grep -E "^FAILED|^E  " /tmp/lb_tests.txt | head; } >> "$OUT/log.txt"
mark "B tests"
patch -R -p1 < $P > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 && mark build-A2
aprobe A2 60
apply_and_rebuild $P B2
aprobe B2 60
mark done
cd "$OUT" && tar czf s32_call3.tgz *.json && rm -f *.json
