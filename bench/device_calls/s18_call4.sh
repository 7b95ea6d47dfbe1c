#!/usr/bin/env bash
# Session 18, call 4: A/B of the three kernel changes of s18_call4_change.patch in one machine, then
# the tests they touch on the changed tree, and memcheck over the new dequantization test.
#  - int2, fp16 x, per tensor / channel, two or more mma tiles per warp (M >= 9): subnormal codes with
#    one accumulator set (NQ = 1: a shift and a LOP3 per pair instead of shift, LOP3, HSUB2);
#  - the RN = 2, CM = 1 instance (tc18, per tensor M <= 8) under a launch bound of 4 CTAs per SM
#    (<= 128 registers, no spills) instead of 5 (96, fp16 spilled);
#  - the dense path's dequantization kernel (dequant.cu) without 64-bit divisions per 8 weights.
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
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary \
    --ms 1024,4096 --groups none --backends fp16,dense,auto --out $OUT/probe_dense_$1.json 2>&1 | grep " us" > $OUT/probe_dense_$1.txt
  timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds int2 \
    --ms 1024,4096 --groups 64 --backends dense --out $OUT/probe_dense_g64_$1.json 2>&1 | grep " us" > $OUT/probe_dense_g64_$1.txt
  mark probe-$1
}
probe A
patch -p1 < bench/device_calls/s18_call4_change.patch > /dev/null || exit 1
python3 setup.py build_ext --inplace > /tmp/build2.log 2>&1 || { tail -30 /tmp/build2.log; exit 1; }
mark build-B
probe B
# (the tests of what changed: int2 per tensor / channel, tc18's instance, the dense path; ~800 tests)
timeout 170 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider -o faulthandler_timeout=60 \
  -k "(int2 and not group) or two_row_tiles or m5_8 or dense_dequantization or (every and dense) or exact_on_integers" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
BITMM_UNDER_SANITIZER=1 timeout 60 compute-sanitizer --tool memcheck --kernel-name kns=dequant python3 -m pytest \
  tests/test_tensorcore.py -q -p no:cacheprovider -k "dense_dequantization and not 70001 and not 8192" > /tmp/mc.txt 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' /tmp/mc.txt | tail -1) $(grep -E 'passed|failed' /tmp/mc.txt | tail -1)" | tee -a $OUT/log.txt
mark memcheck
