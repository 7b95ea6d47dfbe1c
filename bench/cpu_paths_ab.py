"""Same-process A/B of the CPU forward entry points, calls alternated one by one.

The plain ``<kind>_linear`` op (the kernel transposes the packed words per K tile) against
``cpu_prepacked_linear`` on the ``cpu_prepack`` blob, and for group-wise scales the blob with
``prepacked_scales`` (``cpu_prepack_scales``; both are what ``bitmm.nn.PackedLinear`` runs on CPU),
weights rotated past 2x 64 MB so each call reads them from DRAM.  On a shared 2-core machine the
speed drifts by 10-30% within minutes; alternating call by call puts both paths in the same minute,
which separate runs (bench/cpu_bench.py) do not.  Medians in us, the Python call included.

    python bench/cpu_paths_ab.py --M 1,4,16 [--rounds 25] [--scale-dtype float16]
    BITMM_CPU_ISA=avx2 python bench/cpu_paths_ab.py      # the AVX2 kernels (read once per process)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402

SHAPES = [("ternary", 4096, 4096, None), ("int2", 4096, 4096, 64), ("binary", 4096, 4096, 64),
          ("int2", 4096, 4096, 128), ("ternary", 4096, 11008, None), ("int2", 4096, 11008, 64),
          ("int2", 4096, 4096, 32)]  # (kind, K, N, G)


def random_packed(kind: str, N: int, K: int) -> torch.Tensor:
    lo, hi = {"binary": (0, 2), "ternary": (-1, 2), "int2": (0, 4)}[kind]
    return getattr(bitmm, f"pack_{kind}")(torch.randint(lo, hi, (N, K)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--M", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--scale-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--shapes", default="", help="indices into SHAPES, e.g. 1,2 (default: all)")
    args = ap.parse_args()
    sdt = getattr(torch, args.scale_dtype)
    shapes = [SHAPES[int(i)] for i in args.shapes.split(",")] if args.shapes else SHAPES
    torch.manual_seed(0)
    for kind, K, N, G in shapes:
        kid = formats.KINDS[kind]
        copies = max(2, min(64, -(-2 * 64 * 2**20 // (N * K // 4))))
        ws = [random_packed(kind, N, K) for _ in range(copies)]
        blobs = [torch.ops.bitmm.cpu_prepack(w, kid, K) for w in ws]
        # per weight copy its own scales and offsets (and their layout), so they are read cold as well
        ss = [(torch.rand(N, K // G) + 0.5 if G else torch.tensor(0.7)).to(sdt) for _ in range(copies)]
        us = [(torch.randn(N, K // G) * 0.1).to(sdt) if G else None for _ in range(copies)]
        sps = [torch.ops.bitmm.cpu_prepack_scales(s, u, N, K) if G else None for s, u in zip(ss, us)]
        op = getattr(torch.ops.bitmm, f"{kind}_linear")
        for M in (int(v) for v in args.M.split(",")):
            x = torch.randn(M, K)
            paths = {"plain": lambda c: op(x, ws[c], ss[c], us[c], None),
                     "prepacked": lambda c: torch.ops.bitmm.cpu_prepacked_linear(x, ws[c], blobs[c], ss[c], us[c],
                                                                                 None, kid)}
            if G:
                paths["+scales"] = lambda c: torch.ops.bitmm.cpu_prepacked_linear(x, ws[c], blobs[c], ss[c], us[c],
                                                                                  None, kid, sps[c])
            times = {name: [] for name in paths}
            i = 0
            for r in range(args.rounds + 2):  # two warm-up rounds
                for name, fn in paths.items():
                    c = i % copies
                    i += 1
                    t0 = time.perf_counter()
                    fn(c)
                    if r >= 2:
                        times[name].append((time.perf_counter() - t0) * 1e6)
            med = {name: statistics.median(t) for name, t in times.items()}
            extra = (f"  +scales {med['+scales']:8.1f} us  (+scales / prepacked {med['+scales'] / med['prepacked']:.2f})"
                     if "+scales" in med else "")
            print(f"{kind:7s} K={K} N={N} M={M:2d} G={G} {args.scale_dtype}: plain {med['plain']:8.1f} us  prepacked "
                  f"{med['prepacked']:8.1f} us  (prepacked / plain {med['prepacked'] / med['plain']:.2f}){extra}",
                  flush=True)


if __name__ == "__main__":
    main()
