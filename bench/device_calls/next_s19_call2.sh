#!/usr/bin/env bash
# Written at the end of session 18 (plan item 0b): the three kernel test files at HEAD (session 18's dispatch
# test test_auto_per_tensor_dense_from_m4096 and the dense dequantization test among them), then the unmeasured
# crossover of kWgmmaMaxM: ternary / int2 per tensor at M = 1536, 2048, 3072 with dense and wgmma forced, fp16
# F.linear in the same process.  At most 8 files come back from $OUT.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s19_call2.sh
source "$(dirname "$0")/prelude.sh"
timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2 \
  --ms 1536,2048,3072 --groups none --backends fp16,dense,wgmma --out $OUT/probe_crossover.json 2>&1 | grep " us" > $OUT/probe_crossover.txt
mark probe
timeout 420 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_wgmma.py -q -rf -p no:cacheprovider \
  -o faulthandler_timeout=60 > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
