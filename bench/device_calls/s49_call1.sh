#!/usr/bin/env bash
# Prepared in session 48.  Run it first in session 49 (build ~75 s, then to S49_END, default 520 s):
# 1. The Hopper wgmma grad_x kernel (csrc/cuda/wg_grad_x.cuh), written in session 48 without a GPU and taken only
#    under BITMM_GX_WGMMA=1: its tests (tests/test_wg_grad_x.py; child processes with the knob set), then its time
#    against the current grad_x dispatch (tensor-core kernel to M = 64, dense above) and fp16 grad @ W, backward,
#    fp16, M = 16 / 32 / 64 / 256 / 1024 / 4096, per tensor and g64, ternary and int2, 8192 x 28672 and 8192^2:
#      python bench/probe_ab.py gx_base.json gx_wgx.json        (auto: knob off / on; M <= 64 stays tensor core)
#      python bench/probe_ab.py --backends auto wgmma gx_wgx.json (M <= 64: the tensor-core kernel / the new one)
#    Prediction (bench/NOTES.md, wgx1, H100, 8192 x 28672): M = 256 150-250 us (fp16 ~170-190), M = 64 100-160 us,
#    M = 1024 / 4096 0.8-1.2x of fp16.  Then: the default (drop the knob) if the tests pass and it wins.
# 2. initcheck 12/16's 63 reports in torch's unrolled_elementwise_kernel (session 48, all 106 tests passed): the
#    suspect alone (its QAT weight gradient is a bf16 cuBLAS GEMM, whose writes initcheck does not see).
# 3. Sanitizer units: racecheck 13/16 resumed (bench/results/san_resume_s48c.txt), racecheck 14/16, initcheck 13/16,
#    racecheck 15/16 (then initcheck 14 / 15 / 12-without-cublas next time).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests" 300
cp /tmp/t.txt /tmp/t_wgx.txt
# on a failure: where the kernel goes wrong (bench/wgx_debug.py: error patterns by k / m position), plan and unsplit BM 64
if grep -qE "failed|error" /tmp/t.txt; then
  { BITMM_GX_WGMMA=1 timeout 90 python3 bench/wgx_debug.py; echo "== --splits 1 --bm 64";
    BITMM_GX_WGMMA=1 timeout 60 python3 bench/wgx_debug.py --splits 1 --bm 64; } > "$OUT/wgx_debug.txt" 2>&1
  mark "wgx_debug: $(grep -h 'cases with wrong' "$OUT/wgx_debug.txt" | tr '\n' ' ')"
fi
# the forward wgmma kernel's launcher now shares wg_tensor_map / wg_launch_splitk_reduce with it (host code only; its
# sm_90a PTX is byte-identical): its K-split and forced-tile tests
run_tests "tests/test_wgmma.py" "k_splits or forced_tiles" "wgmma forward splits / tiles" 120
common=(--direction backward --kinds ternary,int2 --groups none,64 --rounds 2 --shapes 8192x28672,8192x8192
        --ms 16,32,64,256,1024,4096)
timeout 200 python3 bench/decode_probe.py "${common[@]}" --backends fp16,auto,t_auto --out "$OUT/gx_base.json" > /tmp/gb.txt 2>&1
mark "grad_x base rc=$? $(tail -1 /tmp/gb.txt)"
BITMM_GX_WGMMA=1 timeout 200 python3 bench/decode_probe.py "${common[@]}" --backends fp16,auto,wgmma \
  --out "$OUT/gx_wgx.json" > /tmp/gw.txt 2>&1
mark "grad_x wgmma rc=$? $(tail -1 /tmp/gw.txt)"
python3 bench/probe_ab.py "$OUT/gx_base.json" "$OUT/gx_wgx.json" > "$OUT/gx_ab.txt" 2>&1
python3 bench/probe_ab.py --backends auto wgmma "$OUT/gx_wgx.json" >> "$OUT/gx_ab.txt" 2>&1
tail -8 "$OUT/gx_ab.txt" >> "$OUT/log.txt"
# (added in session 49) if its own tests passed: the grad_x suites with the knob on (auto takes it above M = 64;
# tests that force the wgmma backend take it at every M)
if ! grep -qE "failed|error" /tmp/t_wgx.txt; then
  BITMM_GX_WGMMA=1 run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py" "" \
    "grad_x suites, BITMM_GX_WGMMA=1" 200
fi
PYTORCH_NO_CUDA_MEMORY_CACHING=1 BITMM_SAN_NO_CUBLAS=1 BITMM_AUTO_NO_DENSE=1 timeout 120 compute-sanitizer --tool initcheck \
  --print-limit 20 python3 -m pytest -q -p no:cacheprovider "tests/test_nn.py::test_bitlinear_half_precision_and_1d_input" \
  > /tmp/ic_suspect.txt 2>&1
mark "initcheck suspect rc=$? $(grep -c 'Uninitialized' /tmp/ic_suspect.txt) reports: $(grep -m1 -A1 'Uninitialized' /tmp/ic_suspect.txt | tail -1 | cut -c1-120) | $(tail -1 /tmp/ic_suspect.txt)"
san_tail "${S49_UNITS:-racecheck:13/16@cover3 racecheck:14/16@cover3 initcheck:13/16@cover3 racecheck:15/16@cover3}" ${S49_END:-520}
cat "$OUT/log.txt"
