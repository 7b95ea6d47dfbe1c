#!/usr/bin/env bash
# Prepared in session 25 for session 26 (session 25's device time ran out).  Two grad_x patches, compiled and
# reviewed locally, never run on a GPU:
#  - next_s26_gx_parts.patch (tc38): the tensor-core grad_x kernel without atomics.  One row split: the CTA writes
#    grad_x itself (no zero-fill kernel, no cast kernel); several: each CTA stores its fp32 sums at
#    parts[split][m][k] (PyTorch's caching allocator) and gx_sum_splits_kernel adds them in index order into grad_x.
#    The 4-warp reduction is shared by the 4 warps (warp 0 alone did all 64 values per lane, ~640 serial
#    instructions after a 28-tile loop at per tensor M = 1 on 8192 x 28672).  Bitwise reproducible, so the
#    deterministic mode takes this kernel too.  sm_90a: <= 128 registers, no spills, 32 KB static shared memory
#    (4 CTAs per SM kept).  Predicted: per tensor M = 1 35 -> 31-33 us (ternary 8192 x 28672; issue 4 asks 4x of
#    fp16's ~124 us: <= 31 us), g64 M = 1 2-4 us less, M = 16 within 2%.
#  - next_s26_gx_typed_scales.patch (tc39, on top): the fma modes (per channel, group-wise, any offset) know the
#    scale dtype at compile time (a kFmaS32 instance for fp32 s without an offset) and advance s / u byte offsets per
#    tile instead of 64-bit products.  sm_90a tile loop, SASS instructions, fp16 and bf16 alike: kFma int2 681 -> 528,
#    ternary 557 -> 403, binary 522 -> 364; kFmaF32 fp16 929 -> 777, 807 -> 654, 769 -> 617 (bf16 1001 -> 852,
#    871 -> 716, 833 -> 681); <= 128 registers, no spills (sm_80 too).  Predicted: g64 M = 1-16 10-20% faster.
# A = HEAD, B = + tc38, C = + tc39, A2 = both reversed, C2 = both re-applied (rebuilt each time; drift: A2 / A and
# C2 / C).  grad_x probe per tensor and g64, M = 1 / 4 / 16, three shapes, every kind, fp16; then bf16 M = 1.  Then
# on C2: test_tc_grad_x.py, the grad_x coverage test, test_reliability's determinism tests (~550 s in all).  Land
# what wins (tc38, then tc39), then next_s26_call2.sh (sanitizers, huge index tests) and next_s26_call3.sh twice (the
# whole suite, 16 shards, 8 a call).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s26_call1.sh
source "$(dirname "$0")/prelude.sh"
P=bench/device_calls/next_s26_gx_parts.patch
gprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192 \
    --kinds int2,ternary,binary --ms 1,4,16 --groups none,64 --backends fp16,auto --out "/tmp/gs_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/gx.txt"
  timeout 40 python3 bench/decode_probe.py --direction backward --dtype bfloat16 --shapes 8192x28672,8192x8192 \
    --kinds int2,ternary,binary --ms 1 --groups none,64 --backends fp16,auto --out "/tmp/gs_$1_bf16.json" 2>&1 \
    | grep " us" | sed "s/^/$1 bf16 /" >> "$OUT/gx.txt"
  mark "probe $1"
}
P2=bench/device_calls/next_s26_gx_typed_scales.patch
gprobe A
apply_and_rebuild $P B
gprobe B
apply_and_rebuild $P2 C
gprobe C
patch -R -p1 < $P2 > /dev/null && patch -R -p1 < $P > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 \
  && mark build-A2 && gprobe A2 && patch -p1 < $P > /dev/null && apply_and_rebuild $P2 C2 && gprobe C2
(cd /tmp && tar czf "$OUT/gx_json.tgz" gs_*.json)
# (+ test_linear_a8.py: W2A8 landed in session 25 without a GPU run; its CUDA path is untested until here)
SHARDS=4 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="tests " \
  PYTEST_ARGS="tests/test_tc_grad_x.py tests/test_kernel_coverage.py tests/test_reliability.py tests/test_linear_a8.py" \
  K_EXPR="grad_x or tc_grad_x or determin or a8 or int8" source "$(dirname "$0")/gpu_suite_sharded.sh"
