#!/usr/bin/env bash
# Session 18, call 4: A/B of the two kernel changes of s18_call4_change.patch in one machine, then
# the kernel test files on the changed tree.
#  - int2, fp16 x, per tensor / channel, two or more mma tiles per warp (M >= 9): subnormal codes with
#    one accumulator set (NQ = 1: a shift and a LOP3 per pair instead of shift, LOP3, HSUB2);
#  - the RN = 2, CM = 1 instance (tc18, per tensor M <= 8) under a launch bound of 4 CTAs per SM
#    (<= 128 registers, no spills) instead of 5 (96, fp16 spilled).
# A = the tree with the patch reversed, B = as committed.  Each probe in its own process, A then B.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s18_call4.sh
patch -R -p1 < bench/device_calls/s18_call4_change.patch > /dev/null || exit 1
source "$(dirname "$0")/prelude.sh"   # builds A
probe() {  # $1: A or B
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary,binary \
    --ms 1,2,3,4,5,8 --groups none --backends fp16,tensorcore --out $OUT/probe_rn2_$1.json 2>&1 | grep " us" > $OUT/probe_rn2_$1.txt
  timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192 --kinds int2,ternary,binary \
    --ms 3,5,8 --groups none --backends tensorcore --dtype bfloat16 --out $OUT/probe_rn2_bf16_$1.json 2>&1 | grep " us" > $OUT/probe_rn2_bf16_$1.txt
  timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary \
    --ms 9,12,16,24,32 --groups none --backends fp16,tensorcore --out $OUT/probe_m16_$1.json 2>&1 | grep " us" > $OUT/probe_m16_$1.txt
  mark probe-$1
}
probe A
patch -p1 < bench/device_calls/s18_call4_change.patch > /dev/null || exit 1
python3 setup.py build_ext --inplace > /tmp/build2.log 2>&1 || { tail -30 /tmp/build2.log; exit 1; }
mark build-B
probe B
timeout 330 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -o faulthandler_timeout=60 > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
