#!/usr/bin/env bash
# Prepared in session 26 (no device was lent that session): the fused W2A8 kernel (csrc/cuda/a8_linear.cu, M <= 256,
# behind BITMM_A8_FUSED=1) on a GPU for the first time, and linear_a8's unfused CUDA path (never run either).
#  1. tests: the host emulation (test_a8_emulation.py), test_linear_a8.py with BITMM_A8_FUSED=1 in each CTA
#     configuration (CUDA == CPU bit for bit over M = 1..256, odd K / N, misaligned xq / packed_w, every output and
#     scale dtype; the kernel-choice test);
#  2. probe, per tensor, M = 1 / 4 / 16 / 64 / 256, four shapes, three kinds: fp16 F.linear, auto (the
#     fp16-activation path), a8op unfused (unpack + torch's int8 GEMM + epilogue), a8op fused by the rule and (M <= 16)
#     in each CTA configuration, a8 fused (with absmax_int8 per call);
#  3. absmax_int8's one kernel against the composite;
#  4. compute-sanitizer memcheck / racecheck / initcheck over the fused kernel's tests (a subset of shapes), the three
#     CTA configurations, as long as time is left; then ncu of a8_ternary_m1 / a8_binary_m1 fused; the fused kernel's
#     SASS from the built extension.
# Predicted (sm_90a SASS, session 26): step loop 87 instructions per 4096 two-plane weights (the fp16-activation
# tensor-core kernel's per tensor step: 224 per 4096, tc34), 106 per 8192 binary weights; if it streams at the fp16 path's rate or better, ternary 8192 x 28672
# M = 1 ~20-25 us (5-6x of fp16's ~125), binary ~15-18 us; M = 16 ~1.3-2x M = 1.  The unfused path at
# M <= 16 is expected far slower (W unpacked to int8 every call: ~235 MB written on 8192 x 28672).  M = 64 / 256:
# where the fused kernel (16 rows of x per CTA, weights re-read from L2 per 16 rows) and torch's int8 GEMM on
# unpacked codes cross (kA8MaxM = 256 is a guess until this probe).
# Two calls (~585 s each is too little for all of it): PART=tests (1 and 4: the tests, then the sanitizers) and
# PART=probe (2, 3 and the ncu / SASS of 4).
# Session 27 added the digits backend (same kernel, fp16 / bf16 x as int8 digit rows): its tests in PART=tests, its
# timing in PART=digits (a third call).
# Run as: BITMM_COMMIT=<sha> PART=tests|probe|digits bash bench/device_calls/next_a8_fused.sh
source "$(dirname "$0")/prelude.sh"
left() { echo $(( 585 - ($(date +%s) - start) )); }  # seconds left in the call
T="python3 -m pytest -q -p no:cacheprovider -rf"
PART=${PART:-tests}
if [ "$PART" = tests ]; then
# (each step's limit cut to the call's time left: tl N = min(N, left - 40); a step with under 60 s left is skipped)
tl() { local l=$(( $(left) - 40 )); echo $(( l < $1 ? l : $1 )); }
step() { local name=$1 lim=$2; shift 2; [ $(left) -lt 60 ] && { echo "skipped (time)" > /tmp/$name.txt; return; }
  timeout $(tl $lim) "$@" > /tmp/$name.txt 2>&1; }
step a8_emu 60 $T tests/test_a8_emulation.py
# the digits backend first (session 27: fp16 / bf16 x as four int8 digit rows per row on the same fused kernel; it
# does not need BITMM_A8_FUSED): all of test_digits.py under the configuration rule (CUDA ==
# bitmm.reference.linear_digits bit for bit, the kernels taken, fallbacks, graphs, grad_x), then each CTA
# configuration on a subset; the non-finite x / scale policy through it
step digits_rule 200 $T tests/test_digits.py
DK="(matches_reference_bits and 4099) or extreme or short_chunks or sanitizer_cases or cancellation"
for c in 1 2 3; do BITMM_A8_CFG=$c step digits_cfg$c 80 $T tests/test_digits.py -k "$DK"; done
step digits_nonfinite 60 $T tests/test_reliability.py -k "nonfinite and digits"
# W2A8 (test_linear_a8.py without BITMM_A8_FUSED, the unfused path: in next_s26_call1.sh's test step): every CTA
# configuration (a8_config: 4 warps on one row tile, the rule's choice for the tests' small N; 8 warps on 4 row tiles;
# 8 warps on 8), every test shape
for c in 1 2 3; do BITMM_A8_FUSED=1 BITMM_A8_CFG=$c step a8_fused_cfg$c 100 $T tests/test_linear_a8.py; done
# the hypothesis fuzz over the shared draws (CUDA == CPU bit for bit, the float64 reference) through the rule
BITMM_A8_FUSED=1 BITMM_FUZZ_EXAMPLES=300 step a8_fuzz 60 $T tests/test_reliability.py -k fuzz_linear_a8
for f in a8_emu digits_rule digits_cfg1 digits_cfg2 digits_cfg3 digits_nonfinite a8_fused_cfg1 a8_fused_cfg2 a8_fused_cfg3 a8_fuzz; do
  { echo "$f: $(tail -1 /tmp/$f.txt)"; grep -E "^FAILED|^E  " /tmp/$f.txt | head -20; } >> "$OUT/log.txt"
done
mark "a8 tests"
SK="fused_sanitizer_cases or digits_sanitizer_cases"  # (M <= 256 only: with BITMM_A8_FUSED=1 no cuBLAS GEMM, which racecheck kills; the digits cases compare with the CPU)
for unit in memcheck:1 racecheck:2 initcheck:1 memcheck:3 racecheck:3 racecheck:1 memcheck:2 initcheck:3; do
  tool=${unit%:*}
  [ $(left) -lt 100 ] && { echo "sanitizer $unit: skipped (time)" >> "$OUT/log.txt"; continue; }
  kns="--kernel-name kns=bitmm"; extra="BITMM_A8_CFG=${unit#*:}"
  [ $tool = initcheck ] && kns="" && extra="$extra PYTORCH_NO_CUDA_MEMORY_CACHING=1"
  env $extra BITMM_A8_FUSED=1 BITMM_UNDER_SANITIZER=1 timeout $(( $(left) < 120 ? $(left) - 20 : 100 )) compute-sanitizer --tool $tool $kns --print-limit 20 \
    $T tests/test_linear_a8.py tests/test_digits.py -k "$SK" > /tmp/san_a8_$tool.txt 2>&1
  echo "== $tool $extra rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_a8_$tool.txt | tail -1) | $(tail -1 /tmp/san_a8_$tool.txt)" >> "$OUT/log.txt"
  grep -E "^========= +(Invalid|Race|Uninitialized|Error)" /tmp/san_a8_$tool.txt | sort | uniq -c | head -5 >> "$OUT/log.txt"
done
mark "a8 sanitizers"
fi
if [ "$PART" = digits ]; then
# The digits backend against fp16 F.linear and auto (fp16 activations, the issues' target rows), per tensor, M = 1-64,
# four shapes, three kinds; each CTA configuration at M = 1 / 4 / 16; PDL off; bf16; ncu at M = 1 and 16.
# Predicted (session 27): the fused kernel's M = 4-16 loop at M = 1 (4 digit rows: one B tile; 87 SASS instructions
# per 4096 two-plane weights against tc34's 224) plus the x_digits kernel (one CTA per row, overlapped by PDL):
# ternary 8192 x 28672 M = 1 ~20-25 us if it streams (auto: 31.4 us, 3.97x, H200 session 25), M = 4 (16 digit rows,
# two B tiles) ~25-30 us, M = 16 (64 digit rows, 4 chunks of 16) ~40-50 us, M = 64 slower than auto.
dprobe() {  # $1: label, $2: backends, $3: M list, $4: extra decode_probe arguments; the environment passes through
  timeout 170 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" ${4:-} --out "$OUT/digits_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/digits.txt"
  mark "digits $1"
}
dprobe rule fp16,auto,digits 1,2,4,8,16,64
BITMM_A8_CFG=1 dprobe cfg1 digits 1,4,16
BITMM_A8_CFG=2 dprobe cfg2 digits 1,4,16
BITMM_A8_CFG=3 dprobe cfg3 digits 1,4,16
BITMM_A8_PDL=0 dprobe nopdl digits 1,16
dprobe bf16 fp16,auto,digits 1,16 "--dtype bfloat16"
# grad_x (issue 4's row: ternary per tensor 8192 x 28672 M = 1, 4x fp16 grad @ W; tensor-core grad_x 35.2 us, 3.53x):
# through the forward op on the cached W^T (PackedLinear.transposed_backward), under auto and under digits
# (argparse keeps the last --shapes / --kinds: the 4th argument narrows the probe)
dprobe bwd fp16,auto,t_auto,t_digits 1,4,16 "--direction backward --shapes 8192x28672,28672x8192 --kinds ternary,binary"
python3 bench/digits_rule.py "$OUT"/digits_rule.json "$OUT"/digits_bf16.json "$OUT"/digits_bwd.json > "$OUT/digits_table.txt" 2>&1
[ $(left) -gt 120 ] && for c in digits_ternary_m1 digits_ternary_m16; do ncu_raw $c $c; done
mark done
fi
if [ "$PART" = probe ]; then
aprobe() {  # $1: label, $2: backends, $3: M list; the environment passes through
  timeout 170 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" --out "$OUT/a8f_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/a8f.txt"
  mark "probe $1"
}
aprobe unfused fp16,auto,a8op 1,4,16,64,256
BITMM_A8_FUSED=1 BITMM_A8_CFG=1 aprobe fused_cfg1 a8op 1,4,16
BITMM_A8_FUSED=1 BITMM_A8_CFG=2 aprobe fused_cfg2 a8op 1,4,16
BITMM_A8_FUSED=1 BITMM_A8_CFG=3 aprobe fused_cfg3 a8op 1,4,16
BITMM_A8_FUSED=1 aprobe fused_rule fp16,a8op,a8 1,4,16,64,256  # (fp16 in the same process: the records' baseline)
BITMM_A8_FUSED=1 BITMM_A8_PDL=0 aprobe fused_nopdl a8 1,16  # (programmatic dependent launch off: its A/B)
# absmax_int8 (one kernel, session 26) against the PyTorch composite it replaced, in CUDA graphs, fp16 x
timeout 60 python3 - >> "$OUT/a8f.txt" 2>&1 <<'PY'
import torch
from bitmm import quant, reference
from bitmm.benchmark_timing import cuda_time_us
for M, K in ((1, 8192), (16, 8192), (1, 28672), (4096, 8192)):
    xs = [torch.randn(M, K, device="cuda", dtype=torch.float16) for _ in range(8)]
    op = cuda_time_us([lambda x=x: quant.absmax_int8(x) for x in xs])
    ref = cuda_time_us([lambda x=x: reference.absmax_int8(x) for x in xs])
    print(f"absmax_int8 M={M} K={K}: op {op:.2f} us, composite {ref:.2f} us", flush=True)
PY
mark "absmax probe"
[ $(left) -gt 150 ] && for c in a8_ternary_m1 a8_binary_m1; do BITMM_A8_FUSED=1 ncu_raw $c $c; done
so=$(ls bitmm/_C*.so | head -1)
cuobjdump --dump-sass "$so" > /tmp/all.sass 2>/dev/null && python3 bench/sass_report.py /tmp/all.sass | grep -A5 "a8_linear_kernel" > "$OUT/sass_a8.txt"
mark done
fi
