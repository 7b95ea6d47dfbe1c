"""Where the tensor-core kernel's group-wise decode time goes (session 12, bench/NOTES.md tc11).

int2, K x N = 8192 x 28672, M = 1 and 2, fp16: the group size swept from 64 to 4096 (the per-group
work -- scale loads and flushes -- shrinks with it, the rest stays), per tensor for reference, the
tensor-core kernel (block-diagonal path at M <= 2) and the add/subtract kernel, each timed like
cuda_bench.py (CUDA-graph replays, weights rotated past L2, median).

    python bench/decode_probe.py --out bench/results/<file>.json
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402
from bitmm.benchmark_timing import copies_for, cuda_time_us, write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    K, N = 8192, 28672
    records = []
    for G in (None, 64, 128, 256, 1024, 4096):
        sbytes = 0 if G is None else 2 * 2 * N * (K // G)
        ws = []
        for _ in range(copies_for(formats.packed_nbytes("int2", N, K) + sbytes)):
            p = bitmm.pack_int2(torch.randint(0, 4, (N, K), device="cuda", dtype=torch.int8))
            if G is None:
                ws.append((p, torch.tensor(0.02, device="cuda"), None))
            else:
                ws.append((p, (torch.rand(N, K // G, device="cuda") * 0.02).half(),
                           (torch.randn(N, K // G, device="cuda") * 0.01).half()))
        for M in (1, 2):
            x = torch.randn(M, K, device="cuda", dtype=torch.float16)
            for be in ("tensorcore", "addsub"):
                calls = [lambda p=p, s=s, u=u: bitmm.linear("int2", x, p, s, u) for p, s, u in ws]
                with bitmm.use_backend(be):
                    us = cuda_time_us(calls, replays=20)
                records.append({"op": "int2", "direction": "forward", "K": K, "N": N, "M": M, "group_size": G,
                                "dtype": "float16", "backend": be, "us": round(us, 2)})
                print(f"int2 G={str(G):5s} M={M} {be:10s} {us:8.2f} us", flush=True)
        del ws
        torch.cuda.empty_cache()
    write_results(args.out, torch.cuda.get_device_name(), records)


if __name__ == "__main__":
    main()
