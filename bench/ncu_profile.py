"""Kernels to profile with Nsight Compute (run under `ncu`, see bench/device_run.sh).

Each case warms up twice, then runs once inside an NVTX range named after it,
so `ncu --nvtx --nvtx-include "<name>/"` picks exactly one launch.
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import quant  # noqa: E402

CASES = [  # name, kind, K, N, M, group, backend, direction
    ("tc_ternary_m1", "ternary", 8192, 28672, 1, None, "tensorcore", "forward"),
    ("addsub_ternary_m1", "ternary", 8192, 28672, 1, None, "addsub", "forward"),
    ("addsub_int2_g64_m1", "int2", 8192, 28672, 1, 64, "addsub", "forward"),
    ("tc_int2_g64_m1", "int2", 8192, 28672, 1, 64, "tensorcore", "forward"),  # the block-diagonal path (tc11)
    ("tc_int2_g64_m1_longk", "int2", 28672, 8192, 1, 64, "tensorcore", "forward"),  # the same bytes on long K (tc22)
    # tc23's loss at M = 1 on 2.9 32-row CTAs per SM (run with BITMM_TC_WN=1 BITMM_TC_KT_MAX=4096 for the cap)
    ("tc_int2_g64_m1_n12288", "int2", 16384, 12288, 1, 64, "tensorcore", "forward"),
    # session 59: the block-diagonal path on 16384 x 53248 g64 M = 1 took 174.8 us with the K tile capped at 8192 and 3
    # ring slots (a grid of one row tile per CTA) against 197.3 with x whole (persistent CTAs): why (run with
    # BITMM_TC_KT_MAX=1000000 for x whole)
    ("tc_ternary_g64_m1_wide_longk", "ternary", 16384, 53248, 1, 64, "tensorcore", "forward"),
    ("tc_ternary_m16", "ternary", 8192, 28672, 16, None, "tensorcore", "forward"),
    ("tc_int2_g64_m16", "int2", 8192, 28672, 16, 64, "tensorcore", "forward"),  # the folding path, RN = 2
    ("tc_binary_g64_m16", "binary", 8192, 28672, 16, 64, "tensorcore", "forward"),  # the folding path, RN = 1
    # group-wise M = 32 (CM = 4: 1.7x M = 16's time for a 6% longer step loop; session 22)
    ("tc_int2_g64_m32", "int2", 8192, 28672, 32, 64, "tensorcore", "forward"),
    ("tc_ternary_g64_m32", "ternary", 8192, 28672, 32, 64, "tensorcore", "forward"),
    # tc49 (session 42): group-wise M = 21 -> 22 costs the tensor-core kernel 10-15% (112.8 -> 125.5 us, both CM = 4,
    # the same K tile of 1536 inputs): what differs
    ("tc_ternary_g64_m21", "ternary", 8192, 28672, 21, 64, "tensorcore", "forward"),
    ("tc_ternary_g64_m22", "ternary", 8192, 28672, 22, 64, "tensorcore", "forward"),
    ("gradx_ternary_m1", "ternary", 8192, 28672, 1, None, "auto", "backward"),
    # group-wise grad_x on the tensor-core kernel (auto takes the add/subtract kernel at M = 1 there: 192-209 us on
    # the tensor core in session 6, against per-channel fp32's 72; next_s24_scale_bits.patch)
    ("gradx_int2_g64_m1_tc", "int2", 8192, 28672, 1, 64, "tensorcore", "backward"),
    # session 50: the wgmma grad_x kernel at M = 64 (64-row tiles, two splits; flat at ~145 us per tensor / ~230 g64
    # from M = 16 to 64 in session 49: latency-bound in the unpacking?), its stall reasons, before / after wgx2a
    ("wgx_ternary_m64", "ternary", 8192, 28672, 64, None, "wgmma", "backward"),
    ("wgx_ternary_g64_m64", "ternary", 8192, 28672, 64, 64, "wgmma", "backward"),
    ("wg_ternary_m4096", "ternary", 8192, 28672, 4096, None, "wgmma", "forward"),
    ("wg_ternary_m64", "ternary", 8192, 28672, 64, None, "wgmma", "forward"),
    # session 43: after wg16 the per tensor wgmma kernel takes longer at M = 17 than at M = 64 on this shape (92.9 vs
    # 80.3 us; same 224 tiles, same two-CTAs-per-SM plan, the TMA box's rows past M zero-filled): what differs
    ("wg_ternary_m17", "ternary", 8192, 28672, 17, None, "wgmma", "forward"),
    ("wg_int2_g64_m1024", "int2", 8192, 28672, 1024, 64, "wgmma", "forward"),
    ("wg_int2_m1024", "int2", 8192, 28672, 1024, None, "wgmma", "forward"),  # its per tensor control (session 40)
    # the dense path at M = 4096 (dequantization of all of W, then cuBLAS): int2 g64 3100 us against fp16's 2802
    # (0.90x; session 18): ~300 us of it the dequantization kernel, ~1.8 TB/s for 545 MB moved (is it at its floor?)
    ("dense_int2_g64_m4096", "int2", 8192, 28672, 4096, 64, "dense", "forward"),
    # W2A8 (bitmm.linear_a8 on x quantized once; run with BITMM_A8_FUSED=1 for the fused kernel, a8_linear.cu)
    ("a8_ternary_m1", "ternary", 8192, 28672, 1, None, "auto", "a8"),
    ("a8_binary_m1", "binary", 8192, 28672, 1, None, "auto", "a8"),
    # session 28: the fused kernel at M = 4 on long K (88 us against 28 at M = 1: x staged whole per CTA, 4 x 28 KB)
    # and at M = 16 (59 us against 26.5: 128 KB of x per CTA, one CTA per SM)
    ("a8_ternary_m4_longk", "ternary", 28672, 8192, 4, None, "auto", "a8"),
    ("a8_ternary_m16", "ternary", 8192, 28672, 16, None, "auto", "a8"),
    # the digits backend (fp16 x as four int8 digit rows per row on the fused int8 kernel, session 27): x_digits, then
    # a8_linear_kernel with its float64 digits epilogue
    ("digits_ternary_m1", "ternary", 8192, 28672, 1, None, "digits", "forward"),
    ("digits_ternary_m16", "ternary", 8192, 28672, 16, None, "digits", "forward"),
    # session 54: the M = 1 streaming gap (bench/results/h100_s54_fixed_stream_fit_e53e0a3.txt): on 16384 x 53248 the
    # tensor-core kernel moves its 218 MB at 1.93 TB/s, fp16 F.linear its 1745 MB at 2.95; 8192^2 (16.8 MB, 12.5 us)
    # is stream-bound too.  What each achieves per SM (dram throughput, bytes in flight, stall reasons) side by side;
    # backend "fp16": F.linear on the dense fp16 weight (cuBLAS's GEMV)
    ("tc_ternary_m1_huge", "ternary", 16384, 53248, 1, None, "tensorcore", "forward"),
    ("fp16_m1_huge", "ternary", 16384, 53248, 1, None, "fp16", "forward"),
    ("tc_ternary_m1_8192sq", "ternary", 8192, 8192, 1, None, "tensorcore", "forward"),
]


def main() -> None:
    only = sys.argv[1:]
    torch.manual_seed(0)
    for name, kind, K, N, M, G, be, direction in CASES:
        if only and name not in only:
            continue
        lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
        q = torch.randint(lo, hi, (N, K), device="cuda", dtype=torch.int8)
        p = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind](q)
        if G is None:
            s, u = torch.tensor(0.01, device="cuda"), None
        else:
            s = torch.rand(N, K // G, device="cuda", dtype=torch.float16)
            u = torch.rand(N, K // G, device="cuda", dtype=torch.float16)
        with bitmm.use_backend("auto" if be == "fp16" else be):
            if be == "fp16":  # the baseline: cuBLAS on the dense fp16 weight
                w16 = bitmm.unpack_ternary(p, K).to(torch.float16) if kind == "ternary" else q.to(torch.float16)
                del p, q
                x = torch.randn(M, K, device="cuda", dtype=torch.float16)
                f = lambda: torch.nn.functional.linear(x, w16)  # noqa: E731
            elif direction == "a8":
                xq, xs = quant.absmax_int8(torch.randn(M, K, device="cuda", dtype=torch.float16))
                f = lambda: bitmm.linear_a8(kind, xq, xs, p, s, u, out_dtype=torch.float16)  # noqa: E731
            elif direction == "forward":
                x = torch.randn(M, K, device="cuda", dtype=torch.float16)
                f = lambda: bitmm.linear(kind, x, p, s, u)  # noqa: E731
            else:
                g = torch.randn(M, N, device="cuda", dtype=torch.float16)
                f = lambda: bitmm.linear_grad_x(g, p, s, u, kind, K)  # noqa: E731
            f(); f()
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push(name)
            f()
            torch.cuda.nvtx.range_pop()
            torch.cuda.synchronize()


if __name__ == "__main__":
    main()
