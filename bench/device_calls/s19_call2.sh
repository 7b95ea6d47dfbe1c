#!/usr/bin/env bash
# Session 19, call 2.  B = HEAD (tc21: group-wise RN = 2 scale loads through 32-bit offsets; the fp16
# ternary CM = 1 rule on wide N), A = HEAD with s19_call2_tc21.patch reversed (tc21 out; same rule).
# (1) B: group-wise g64 M = 9, 16, 24 probes with fp16 F.linear in the same process, and per tensor fp16
#     ternary M = 5, 8 (the rule); (2) B: the crossover of kWgmmaMaxM (per tensor M = 1536 / 2048 / 3072,
#     dense vs wgmma, fp16 in the same process; session 18's plan item 0b); (3) B: test_tensorcore.py +
#     test_kernel_coverage.py whole, and test_wgmma.py's dispatch tests; (4) A: the same group-wise probes.
# At most 8 files come back from $OUT.  Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s19_call2.sh
source "$(dirname "$0")/prelude.sh"   # builds B
gprobe() {  # $1: A or B
  timeout 90 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary,binary \
    --ms 9,16,24 --groups 64 --backends fp16,tensorcore --out "$OUT/probe_g64_$1.json" 2>&1 | grep " us" > "$OUT/probe_g64_$1.txt"
  mark "probe-g64-$1"
}
gprobe B
timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192 --kinds ternary --ms 5,8 --groups none \
  --backends fp16,tensorcore --out /tmp/p.json 2>&1 | grep " us" > "$OUT/probe_pt_B.txt"
timeout 120 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2 \
  --ms 1536,2048,3072 --groups none --backends fp16,dense,wgmma --out /tmp/c.json 2>&1 | grep " us" >> "$OUT/probe_pt_B.txt"
mark probes-B
timeout 380 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_wgmma.py::test_wgmma_kernel_runs \
  -q -rf -p no:cacheprovider -o faulthandler_timeout=60 > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
patch -R -p1 < bench/device_calls/s19_call2_tc21.patch > /dev/null || exit 1
python3 setup.py build_ext --inplace > /tmp/build2.log 2>&1 || { tail -30 /tmp/build2.log; exit 1; }
mark build-A
gprobe A
