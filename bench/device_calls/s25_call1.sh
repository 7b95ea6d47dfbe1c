#!/usr/bin/env bash
# Ran in session 25 (results: bench/results/h200_s25_call1_0e8a574.txt).  next_s25_gx_dn.patch landed in ad25d4a and was
# deleted (git show 0e8a574:bench/device_calls/next_s25_gx_dn.patch); the other two were rejected and stay as records.
# Prepared in session 24 for session 25 (session 24's device time ran out first).  Three grad_x patches:
#  - next_s25_gx_scales.patch: group-wise grad_x's (groups, N) copies of s and u by a 32 x 32 tiled transpose
#    kernel (session 24's ncu, h200_s24_ncu_B_gradx_int2_g64_m1_c8fa0f7.txt.gz: PyTorch's transposing copy took
#    27 us twice beside a 109 us grad_x kernel, 8192 x 28672 int2 g64 M = 1), with a layout test.
#  - next_s25_gx_dn.patch (tc33): plain mode (per tensor scale, no offset) with fp16 grad_y unpacks codes as fp16
#    subnormals, one LOP3 per pair (the forward's trick; two-plane codes' + 1 undone by G, one extra mma on an
#    all-ones A per tile), and every mode's copy / grad_y addresses advance per tile instead of 64-bit index math.
#    sm_90a tile loop (SASS instructions per 16-row tile, fp16): plain int2 403 -> 200, ternary 275 -> 200, binary
#    235 -> 158; fma modes 25-40 fewer (711 -> 680 int2 ...); registers <= 128 (4 CTAs per SM), no spills.  Its
#    bit logic was checked on the CPU by an emulation of both unpackings (bench/gx_dn_emulate.py: 0 mismatches).
#  - next_s25_gx_lastcta.patch (tc36, on top of both): the last CTA of each (slice, row tile) converts the fp32 sums
#    into grad_x itself (counters after the sums in the one zeroed buffer, reset by that CTA), so no cast kernel
#    follows (2.6 us at M = 1 in session 24's ncu); a test of two row chunks (M > 65535) reusing the counters.
# A = HEAD; B = HEAD with BITMM_GX_SCALES_T=0 (the kernel reads s / u as stored, no copy); C = scales + dn patches;
# B2 = C with BITMM_GX_SCALES_T=0 (B2 / B: tc33's address change alone on the fma path); D = C + lastcta.  Per tensor
# and g64, M = 1 / 4 / 16, three shapes, every kind.  Predicted: per tensor M = 1 ternary 40 -> 32-35 us at C
# (3.6-3.9x; issue 4's target is 4x), int2 more, binary less; D a further 2-4 us at M = 1; g64 M = 1 C 40-60 us
# faster than A (copies, then 5% from the addresses).
# Then auto's group-wise grad_x M = 1 rule (kTcGradXMinMGrouped: the add/subtract kernel at M = 1, chosen in session
# 6 on 89.6 / 174 us against 192 / 209): addsub vs tensorcore vs auto, g64 M = 1, 2; ncu of per tensor grad_x M = 1
# on D; test_tc_grad_x.py whole (the patches' tests) and the grad_x coverage test on D.
# Land what wins (in order: scales, dn, lastcta), then s25_call2.sh (the whole suite) and s25_call3.sh.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s25_call1.sh
source "$(dirname "$0")/prelude.sh"
gprobe() {  # $1: label; the environment passes through
  timeout 80 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192 \
    --kinds int2,ternary,binary --ms 1,4,16 --groups none,64 --backends fp16,tensorcore --out "/tmp/gs_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/gx.txt"
  mark "probe $1"
}
gprobe A
BITMM_GX_SCALES_T=0 gprobe B
patch -p1 < bench/device_calls/next_s25_gx_scales.patch > /dev/null || { mark "scales patch failed (run from a clean HEAD)"; exit 1; }
apply_and_rebuild bench/device_calls/next_s25_gx_dn.patch C
gprobe C
BITMM_GX_SCALES_T=0 gprobe B2
apply_and_rebuild bench/device_calls/next_s25_gx_lastcta.patch D
gprobe D
timeout 60 python3 bench/decode_probe.py --direction backward --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
  --kinds int2,ternary,binary --ms 1,2 --groups 64 --backends fp16,addsub,tensorcore,auto --out /tmp/gs_rule.json 2>&1 \
  | grep " us" | sed "s/^/R /" >> "$OUT/gx_rule.txt"
mark "rule probe"
ncu_raw gradx_ternary_m1 D_gradx_ternary_m1            # auto = the tensor-core kernel at per tensor M = 1
(cd /tmp && tar czf "$OUT/gx_json.tgz" gs_*.json) && gzip "$OUT"/ncu_*.txt
# The index-math tests past 2^31 elements (8.6 GB packed weights; the sharded suites skip them with
# BITMM_SKIP_HUGE=1): tc31 / tc33 / tc36 changed grad_x's row and address counting; plain mode added in session 24.
timeout 150 python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -k "past_2_31" > /tmp/huge.txt 2>&1
{ echo "huge: $(tail -1 /tmp/huge.txt)"; grep -E "^FAILED|^E  " /tmp/huge.txt | head -10; } >> "$OUT/log.txt"
mark huge
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) LABEL="final " PYTEST_ARGS="tests/test_tc_grad_x.py tests/test_kernel_coverage.py" \
  K_EXPR="grad_x" source "$(dirname "$0")/gpu_suite_sharded.sh"
