#!/usr/bin/env bash
# Prepared in session 23 for session 24 (session 23 ran out of device time before these):
#  1. tc28's GPU test (per tensor M = 1..3 on two warps along N; the rule was timed in session 23 call 3, its test never
#     ran: that call's -k expression selected 2915 tests) and the rules table.
#  2. next_s24_scale_bits.patch A/B: scale / offset (and grad_x's grad_y) values loaded a step ahead are kept as raw bits
#     and converted where used.  In HEAD's sm_90a SASS a conversion (HADD2.F32 / PRMT) sits 1-10 instructions after
#     each such load, so the warp waits for the load's whole latency at every step of every group-wise kernel and at
#     every tile of grad_x (the prefetch a step ahead does nothing).  Results are bit-identical (the same conversions).
#     A = HEAD, B = A + patch: group-wise g64 forward M = 1 / 4 / 16 on three shapes (per tensor as a control: it
#     has no such loads), grad_x per tensor and g64 M = 1 / 4 / 16 (tensorcore backend: auto takes the add/subtract
#     kernel at group-wise M = 1).  Predicted: group-wise 5-20% faster where latency-bound (M = 1 block-diagonal, the
#     folding path at M = 9..16, ncu: long scoreboard 0.70 per issue), grad_x g64 much faster (192-209 us against
#     per-channel's 72 in session 6: the scale loads' latency at each of 8 loads per tile), per tensor unchanged.
#  3. next_s24_gradx_waves.patch on B (tree C): grad_x splits by tc_gx_splits (one wave where rounding up made a
#     1.03-wave grid); BITMM_GX_SPLITS=0 the old rounding, =2 two waves, in one build, C0 C1 C2 twice.  Predicted:
#     C1 15-25% faster than C0 at M = 1 on 8192 x 28672 (ncu: SMs active 71% of cycles).
#     ncu (stall counts) of the block-diagonal path g64 M = 1 and of group-wise grad_x M = 1 on A and on B.
#  4. The group-wise / grad_x / coverage / LoRA tests on tree C in what is left.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s24_call1.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=4 CAP=90 PYTEST_ARGS="tests/test_tensorcore.py tests/test_tc_launch_rules.py" K_EXPR="small_m_two_warps or test_tc_launch_rules" \
  LABEL="tc28 " source "$(dirname "$0")/gpu_suite_sharded.sh"
fprobe() {  # $1: label; forward g64 (+ per tensor control) and grad_x, one process each
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192 --kinds int2,ternary,binary --ms 1,4,16 \
    --groups none,64 --backends fp16,auto --out "/tmp/fw_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/fw.txt"
  timeout 50 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,8192x8192 --kinds int2,ternary,binary \
    --ms 1,4,16 --groups none,64 --backends fp16,tensorcore --out "/tmp/bw_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/bw.txt"
  mark "probe $1"
}
fprobe A
ncu_raw tc_int2_g64_m1 A_tc_int2_g64_m1            # the block-diagonal path at M = 1: long-scoreboard stalls before / after
ncu_raw gradx_int2_g64_m1_tc A_gradx_int2_g64_m1
apply_and_rebuild bench/device_calls/next_s24_scale_bits.patch B
fprobe B
ncu_raw tc_int2_g64_m1 B_tc_int2_g64_m1
ncu_raw gradx_int2_g64_m1_tc B_gradx_int2_g64_m1
cp /tmp/fw_B.json /tmp/bw_B.json "$OUT/" 2>/dev/null
apply_and_rebuild bench/device_calls/next_s24_gradx_waves.patch C
for lab in C0 C1 C2 C0 C1 C2; do
  e=""; [ $lab != C1 ] && e=BITMM_GX_SPLITS=${lab:1:1}
  env $e timeout 30 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192 \
    --kinds ternary,binary --ms 1,16 --groups none,64 --backends fp16,tensorcore --out "/tmp/gx_$lab.json" 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/gx.txt"
done
mark gx
# At most 8 files come back from $OUT: the ncu reports and JSONs in one archive.
(cd "$OUT" && tar czf ncu_json.tgz ncu_*.txt ./*.json 2>/dev/null && rm -f ncu_*.txt ./*.json)
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="final " \
  PYTEST_ARGS="tests/test_tensorcore.py tests/test_tc_grad_x.py tests/test_kernel_coverage.py tests/test_lora.py tests/test_tc_launch_rules.py" \
  K_EXPR="group or grouped or g64 or fold or block_diagonal or grad_x or every or rules" source "$(dirname "$0")/gpu_suite_sharded.sh"
