#!/usr/bin/env bash
# Session 32, call 3: two a8 (fused W2A8) kernel A/Bs, A B C A2 B2 C2 with rebuilds in one machine, a8op
# M = 1 / 4 on four shapes, binary and ternary (each variant's untouched kind is its control):
#   B: next_s29_binary_lb.patch, __launch_bounds__(32 kWarps, 24 / kWarps) on the binary one-x-tile instances
#      (sm_90a ptxas 94-96 -> 80 registers, no spills: 6 CTAs of 4 warps per SM instead of 5).  Predicted: binary
#      M = 1 a few % faster.
#   C: next_s32_a8_l2ahead.patch, an L2 prefetch of each lane's uint4s 6 steps ahead (the register loads run 2
#      ahead; ncu at M = 1 showed the kernel latency-bound at 39% of DRAM bandwidth).  Same registers, no spills.
#      Predicted: M = 1 5-15% faster if the DRAM round trip is what the warps wait on.
# then the fused binary / ternary tests on the last variant (C).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s32_call3.sh
source "$(dirname "$0")/prelude.sh"
aprobe() {  # $1: label, $2: time limit
  BITMM_A8_FUSED=1 timeout $2 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds binary,ternary --ms 1,4 --groups none --backends fp16,a8op --out "$OUT/ab_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/ab.txt"
  mark "probe $1"
}
applied=""
switch_to() {  # $1: patch ("" = none), $2: label
  if [ -n "$applied" ]; then patch -R -p1 < "$applied" > /dev/null || exit 1; fi
  if [ -n "$1" ]; then patch -p1 < "$1" > /dev/null || exit 1; fi
  applied=$1
  python3 setup.py build_ext --inplace > /tmp/build_ab.log 2>&1 || { tail -30 /tmp/build_ab.log; exit 1; }
  mark "build-$2"
}
LB=bench/device_calls/next_s29_binary_lb.patch L2=bench/device_calls/next_s32_a8_l2ahead.patch
aprobe A 60
switch_to $LB B; aprobe B 60
switch_to $L2 C; aprobe C 60
switch_to "" A2; aprobe A2 60
switch_to $LB B2; aprobe B2 60
switch_to $L2 C2; aprobe C2 60
BITMM_A8_FUSED=1 timeout 90 python3 -m pytest tests/test_linear_a8.py -q -p no:cacheprovider -rf > /tmp/ab_tests.txt 2>&1
{ echo "C a8 tests: $(tail -1 /tmp/ab_tests.txt)"; grep -E "^FAILED|^E  " /tmp/ab_tests.txt | head; } >> "$OUT/log.txt"
mark done
cd "$OUT" && tar czf s32_call3.tgz *.json && rm -f *.json
