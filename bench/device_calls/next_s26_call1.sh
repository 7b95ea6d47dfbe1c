#!/usr/bin/env bash
# Prepared in session 25 for session 26 (session 25's device time ran out).  next_s26_gx_parts.patch (tc38): the
# tensor-core grad_x kernel without atomics.  One row split: the CTA writes grad_x itself (no zero-fill kernel, no
# cast kernel); several: each CTA stores its fp32 sums at parts[split][m][k] (PyTorch's caching allocator) and
# gx_sum_splits_kernel adds them in index order into grad_x (the fill and the cast go, one small kernel comes).
# The 4-warp reduction is shared by the 4 warps (each a quarter of the k-steps; warp 0 alone did all 64 values per
# lane, ~640 serial instructions after a 28-tile loop at per tensor M = 1 on 8192 x 28672).  Bitwise reproducible,
# so the deterministic mode takes this kernel too.  sm_90a: <= 128 registers, no spills, 32 KB static shared memory
# (4 CTAs per SM kept).  Predicted: per tensor M = 1 35 -> 31-33 us (ternary 8192 x 28672; issue 4 asks 4x of fp16's
# ~124 us: <= 31 us), g64 M = 1 2-4 us less, M = 16 within 2%.
# A = HEAD, B = the patch, A2 / B2 reversed and re-applied with rebuilds (the machine's drift: A2 / A).  grad_x probe
# per tensor and g64, M = 1 / 4 / 16, three shapes, every kind, fp16; then bf16 M = 1.  Then on B2: test_tc_grad_x.py,
# the grad_x coverage test, test_reliability's determinism tests (~470 s in all).  If B wins: commit the patch, then
# next_s26_call2.sh (sanitizers, huge index tests) and next_s26_call3.sh twice (the whole suite, 16 shards, 8 a call).
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
gprobe A
apply_and_rebuild $P B
gprobe B
patch -R -p1 < $P > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 && mark build-A2 && gprobe A2 \
  && apply_and_rebuild $P B2 && gprobe B2
(cd /tmp && tar czf "$OUT/gx_json.tgz" gs_*.json)
SHARDS=4 CAP=150 LABEL="tests " PYTEST_ARGS="tests/test_tc_grad_x.py tests/test_kernel_coverage.py tests/test_reliability.py" \
  K_EXPR="grad_x or tc_grad_x or determin" source "$(dirname "$0")/gpu_suite_sharded.sh"
