#!/usr/bin/env bash
# Prepared in session 24 for session 25 (session 24's device time ran out first):
#  1. Group-wise grad_x's (groups, N) copies of s and u.  Session 24's ncu (h200_s24_ncu_B_gradx_int2_g64_m1_c8fa0f7
#     .txt.gz, 8192 x 28672 int2 g64 M = 1) saw PyTorch's transposing copy take 27 us twice beside a 109 us grad_x
#     kernel.  A = HEAD (that copy), B = HEAD with BITMM_GX_SCALES_T=0 (no copy: the kernel reads s / u as stored,
#     16 sectors per tile instead of 1; session 6 measured it slower at M = 4 before tc30 took the scale loads off the
#     critical path), C = next_s25_gx_scales.patch (a 32 x 32 tiled transpose kernel), B2 = tree C with
#     BITMM_GX_SCALES_T=0 (the same code as B: the machine's drift between builds).  Predicted: B or C 25-45 us
#     faster at M = 1 on 8192 x 28672 (int2 ~125 -> ~85 us), C >= B at M = 4 / 16.
#  2. auto's group-wise grad_x at M = 1 (kTcGradXMinMGrouped = 2 sends M = 1 to the add/subtract kernel, chosen in
#     session 6 on 89.6 / 174 us (binary / int2) against a tensor core then at 192 / 209): addsub vs tensorcore vs
#     auto, g64 M = 1, 2, every kind, on tree C (tensorcore int2 was 140 us after tc30, before tc31).
#  3. test_tc_grad_x.py whole (the patch's new layout test included), grad_x coverage and LoRA tests on tree C.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s25_call1.sh
source "$(dirname "$0")/prelude.sh"
gprobe() {  # $1: label; the environment passes through
  timeout 60 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192 \
    --kinds int2,ternary,binary --ms 1,4,16 --groups 64 --backends fp16,tensorcore --out "/tmp/gs_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/gx_scales.txt"
  mark "probe $1"
}
gprobe A
BITMM_GX_SCALES_T=0 gprobe B
apply_and_rebuild bench/device_calls/next_s25_gx_scales.patch C
gprobe C
BITMM_GX_SCALES_T=0 gprobe B2
timeout 60 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
  --kinds int2,ternary,binary --ms 1,2 --groups 64 --backends fp16,addsub,tensorcore,auto --out /tmp/gs_rule.json 2>&1 \
  | grep " us" | sed "s/^/R /" >> "$OUT/gx_rule.txt"
mark "rule probe"
ncu_raw gradx_int2_g64_m1_tc C_gradx_int2_g64_m1
(cd /tmp && tar czf "$OUT/gx_json.tgz" gs_*.json) && gzip "$OUT"/ncu_*.txt
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="final " \
  PYTEST_ARGS="tests/test_tc_grad_x.py tests/test_kernel_coverage.py tests/test_lora.py tests/test_tensorcore.py" \
  K_EXPR="grad_x or lora or backward" source "$(dirname "$0")/gpu_suite_sharded.sh"
