#!/usr/bin/env bash
# Session 25, on the commit where tc33 (grad_x plain-mode subnormal unpacking, per-tile addresses) landed with
# group-wise s / u read as stored and auto taking the tensor-core grad_x at group-wise M = 1 (s25_call1.sh's results:
# bench/results/h200_s25_call1_0e8a574.txt).
# 1. grad_x probe for the records and the rule: fp16 and bf16 grad_y, per tensor and g64, M = 1 / 4 / 16, four shapes,
#    every kind; fp16 `grad @ W`, tensorcore and auto; the add/subtract kernel at M = 1 (auto's old group-wise choice,
#    bf16 never compared).
# 2. compute-sanitizer memcheck / racecheck / initcheck over the grad_x coverage test (every grad_x kernel
#    configuration on small problems: plain, fma, fma_f32 and group-wise modes, M = 0 .. 65, fp16 / bf16 / fp32) on
#    the tensorcore backend, and test_tc_grad_x.py's layout / non-finite / cancellation tests: tc31's splits, tc33's
#    subnormal unpacking, G mma and per-tile addresses, the scales read as stored.
# 0. test_tc_grad_x.py and the grad_x coverage test on this commit (s25_call2.sh's whole suite ran out of time in
#    three of its eight shards; s25_call1.sh ran these tests on tree D, not this one).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s25_call3.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=4 CAP=120 LABEL="grad_x tests " PYTEST_ARGS="tests/test_tc_grad_x.py tests/test_kernel_coverage.py" \
  K_EXPR="grad_x" source "$(dirname "$0")/gpu_suite_sharded.sh"
for dt in float16 bfloat16; do
  timeout 60 python3 bench/decode_probe.py --direction backward --dtype $dt --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds int2,ternary,binary --ms 1,4,16 --groups none,64 --backends fp16,tensorcore,auto --out "$OUT/gx_$dt.json" 2>&1 \
    | grep " us" | sed "s/^/$dt /" >> "$OUT/gx.txt"
  timeout 40 python3 bench/decode_probe.py --direction backward --dtype $dt --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
    --kinds int2,ternary,binary --ms 1 --groups none,64 --backends fp16,addsub,tensorcore --out "$OUT/gx_rule_$dt.json" 2>&1 \
    | grep " us" | sed "s/^/R $dt /" >> "$OUT/gx.txt"
  mark "probe $dt"
done
san_each_kind "tests/test_kernel_coverage.py tests/test_tc_grad_x.py" \
  "(grad_x_every_kernel_configuration and KIND-tensorcore-cuda) or (any_layout and KIND) or (nonfinite and KIND) or (cancellation and KIND)" 560
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_*.txt)
