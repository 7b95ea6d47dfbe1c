#!/usr/bin/env bash
# Prepared in session 20 for session 21 (not run): A/B of next_s21_sdt.patch, the group-wise folding path
# (RN = 2 / binary RN = 1 at CM = 2, 4: M = 9..32) with one kernel per scale dtype, as the block-diagonal
# kernel got in tc14 (64.6 -> 54.1 us there: the dtype branches had serialized the scale loads).  ptxas
# (sm_90a, local): fp16 int2 RN = 2, CM = 2 255 -> 218 registers with fp16 scales (208 bf16, 247 fp32);
# static SASS of its step loop: BRA ~1 -> 0.7 per HMMA, the fp32-scale FFMA / F2FP path gone from the
# fp16-scale instance.  A = HEAD, B = HEAD + patch (rebuilt in place).  (1) g64 M = 9, 16, 24 probes on
# three shapes, fp16 F.linear in the same process, A then B; (2) on B the group-wise tests in 4 shards.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s21_call2.sh
source "$(dirname "$0")/prelude.sh"   # builds A
gprobe() {  # $1: A or B
  timeout 90 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary,binary \
    --ms 9,16,24 --groups 64 --backends fp16,tensorcore --out "$OUT/probe_g64_$1.json" 2>&1 | grep " us" > "$OUT/probe_g64_$1.txt"
  mark "probe-g64-$1"
}
gprobe A
apply_and_rebuild bench/device_calls/next_s21_sdt.patch B
gprobe B
SHARDS=4 CAP=240 LABEL="B " PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py" \
  K_EXPR="grouped or fold or scale_offsets or two_row or coverage" \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
