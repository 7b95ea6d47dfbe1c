#!/usr/bin/env bash
# Prepared in session 25: W2A8 (bitmm.linear_a8, landed in session 25 and run on CPU only) on the GPU.  First its
# tests (test_linear_a8.py: exact integer sums, float64 reference, CUDA == CPU bit for bit over every CUDA route:
# torch's _int_mm with the fused epilogue at M > 16 and padded M <= 16, the floating fallback at K or N not a
# multiple of 8), then the probe: ternary / int2 / binary per tensor, M = 256 / 1024 / 4096, four shapes, fp16 x;
# fp16 F.linear, auto (the float path), a8 (quant.absmax_int8 + linear_a8 per call, as PackedLinear(act_bits=8,
# int8_matmul=True) runs it).  A = HEAD; B = + next_unpack_blocks.patch (the CUDA unpack kernel one thread per
# 32-weight block with 16-byte stores, instead of one thread per weight with a 64-bit division and a byte store:
# linear_a8 unpacks W on every call), with the pack / unpack tests on B.
# Predicted at M = 4096, 8192 x 28672: int8 GEMM ~1.4 ms + unpack + epilogue ~0.2 ms against fp16's ~2.8 ms; A's
# unpack may take ~1 ms by itself (235 M threads of ~60 instructions), B's ~0.1 ms: B ~1.6x of fp16, M = 1024 ~1.2x,
# M = 256 below fp16 (the per-call unpack).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_a8_probe.sh
source "$(dirname "$0")/prelude.sh"
timeout 120 python3 -m pytest tests/test_linear_a8.py -q -p no:cacheprovider -rf > /tmp/a8_tests.txt 2>&1
{ echo "a8 tests: $(tail -1 /tmp/a8_tests.txt)"; grep -E "^FAILED|^E  " /tmp/a8_tests.txt | head -20; } >> "$OUT/log.txt"
mark "a8 tests"
aprobe() {  # $1: label
  timeout 200 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 256,1024,4096 --groups none --backends fp16,auto,a8 --out "$OUT/a8_probe_$1.json" 2>&1 | grep " us" \
    | sed "s/^/$1 /" >> "$OUT/a8_probe.txt"
  mark "a8 probe $1"
}
aprobe A
apply_and_rebuild bench/device_calls/next_unpack_blocks.patch B
aprobe B
timeout 150 python3 -m pytest tests/test_formats.py tests/test_kernel_coverage.py tests/test_linear_a8.py -q -p no:cacheprovider \
  -k "pack or a8 or int8" > /tmp/b_tests.txt 2>&1
{ echo "B tests: $(tail -1 /tmp/b_tests.txt)"; grep -E "^FAILED|^E  " /tmp/b_tests.txt | head -20; } >> "$OUT/log.txt"
mark "B tests"
