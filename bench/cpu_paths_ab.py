"""Same-process A/B of the two CPU forward entry points, calls alternated one by one.

The plain ``<kind>_linear`` op (the kernel transposes the packed words per K tile) against
``cpu_prepacked_linear`` on the ``cpu_prepack`` blob (what ``bitmm.nn.PackedLinear`` runs on CPU),
weights rotated past 2x 64 MB so each call reads them from DRAM.  On a shared 2-core machine the
speed drifts by 10-30% within minutes; alternating call by call puts both paths in the same minute,
which separate runs (bench/cpu_bench.py) do not.  Medians in us, the Python call included.

    python bench/cpu_paths_ab.py --M 1,4,16 [--rounds 25]
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
          ("ternary", 4096, 11008, None)]  # (kind, K, N, group size)


def random_packed(kind: str, N: int, K: int) -> torch.Tensor:
    lo, hi = {"binary": (0, 2), "ternary": (-1, 2), "int2": (0, 4)}[kind]
    return getattr(bitmm, f"pack_{kind}")(torch.randint(lo, hi, (N, K)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--M", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=25)
    args = ap.parse_args()
    torch.manual_seed(0)
    for kind, K, N, G in SHAPES:
        kid = formats.KINDS[kind]
        copies = max(2, min(64, -(-2 * 64 * 2**20 // (N * K // 4))))
        ws = [random_packed(kind, N, K) for _ in range(copies)]
        blobs = [torch.ops.bitmm.cpu_prepack(w, kid, K) for w in ws]
        s = torch.rand(N, K // G) + 0.5 if G else torch.tensor(0.7)
        u = torch.randn(N, K // G) * 0.1 if G else None
        op = getattr(torch.ops.bitmm, f"{kind}_linear")
        for M in (int(v) for v in args.M.split(",")):
            x = torch.randn(M, K)
            paths = {"plain": lambda w, blob: op(x, w, s, u, None),
                     "prepacked": lambda w, blob: torch.ops.bitmm.cpu_prepacked_linear(x, w, blob, s, u, None, kid)}
            times = {name: [] for name in paths}
            i = 0
            for r in range(args.rounds + 2):  # two warm-up rounds
                for name, fn in paths.items():
                    w, blob = ws[i % copies], blobs[i % copies]
                    i += 1
                    t0 = time.perf_counter()
                    fn(w, blob)
                    if r >= 2:
                        times[name].append((time.perf_counter() - t0) * 1e6)
            med = {name: statistics.median(t) for name, t in times.items()}
            print(f"{kind:7s} K={K} N={N} M={M:2d} G={G}: plain {med['plain']:8.1f} us  prepacked "
                  f"{med['prepacked']:8.1f} us  (prepacked / plain {med['prepacked'] / med['plain']:.2f})", flush=True)


if __name__ == "__main__":
    main()
