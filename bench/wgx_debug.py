"""Where the wgmma grad_x kernel (csrc/cuda/wg_grad_x.cuh) goes wrong, if it does: for each kind and scale mode on a
few small shapes, the largest error against the float64 reference, and the pattern of the wrong outputs by position
(input k mod 32 and its half-word, k's 128-input tile, gradient row m mod 8 / mod BM, NaN / poison), which points at
the part of the kernel at fault (A fragment mapping, scale staging, epilogue, row chunks).  Not with BITMM_GX_WGMMA=0
(the kernel is on by default since session 49):

    python bench/wgx_debug.py [--splits N] [--bm 64|128|256]

(--splits / --bm set BITMM_GX_WG_SPLIT / BITMM_GX_WG_BM for this process.)  Written in session 48 for the first
device run of the kernel.
"""
import argparse
import os
import sys
from collections import Counter

ap = argparse.ArgumentParser()
ap.add_argument("--splits", type=int, default=0)
ap.add_argument("--bm", type=int, default=0)
args = ap.parse_args()
if args.splits:
    os.environ["BITMM_GX_WG_SPLIT"] = str(args.splits)
if args.bm:
    os.environ["BITMM_GX_WG_BM"] = str(args.bm)
if os.environ.get("BITMM_GX_WGMMA") == "0":
    sys.exit("BITMM_GX_WGMMA=0 turns the kernel off")

import torch  # noqa: E402

import bitmm  # noqa: E402
from bitmm import reference  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from helpers import make_problem  # noqa: E402

torch.manual_seed(0)
CASES = [  # (M, K, N)
    (8, 128, 64), (70, 256, 128), (130, 300, 200), (300, 512, 2000)]
MODES = [("tensor", None, False), ("tensor", None, True), ("channel", None, False), ("group", 64, True),
         ("group", 32, False)]
bad_cases = 0
for kind in ("binary", "ternary", "int2"):
    for mode, G, off in MODES:
        for M, K, N in CASES:
            if G and K % G:
                K = (K // G + 1) * G
            _, p, s, u, _ = make_problem(kind, 1, K, N, mode, G, dtype=torch.float16, device="cuda", offset=off,
                                         bias=False)
            g = torch.randn(M, N, device="cuda", dtype=torch.float16)
            with bitmm.use_backend("wgmma"):
                got = bitmm.linear_grad_x(g, p, s, u, kind, K)
                ran = bitmm.backend.last_kernel()
            want = reference.linear_grad_x(kind, g.cpu().double(), p.cpu(), s.cpu().double(),
                                           None if u is None else u.cpu().double(), K)
            err = (got.cpu().double() - want).abs()
            tol = 2e-2 * want.abs().max().item() + 1e-3
            wrong = (err > tol) | ~torch.isfinite(got.cpu())
            line = f"{kind:8s} {mode}{G or ''}{'+u' if off else ''} M={M} K={K} N={N} ran={ran} " \
                   f"max|err|={err.max().item():.3g} (max|ref| {want.abs().max().item():.3g}) wrong={int(wrong.sum())}"
            if wrong.any():
                bad_cases += 1
                ms, ks = wrong.nonzero(as_tuple=True)
                pat = {
                    "k%32": Counter((ks % 32).tolist()).most_common(6),
                    "k half (k%2)": Counter((ks % 2).tolist()).most_common(2),
                    "k tile (k//128)": Counter((ks // 128).tolist()).most_common(4),
                    "m%8": Counter((ms % 8).tolist()).most_common(4),
                    "m tile (m//64)": Counter((ms // 64).tolist()).most_common(4),
                    "non-finite": int((~torch.isfinite(got.cpu())).sum()),
                }
                line += f"\n    pattern {pat}"
            print(line, flush=True)
print(f"{bad_cases} cases with wrong outputs")
