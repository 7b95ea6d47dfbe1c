"""pytest-benchmark suite: every op against float F.linear on the same shapes.

    pytest bench/ --benchmark-only --benchmark-group-by=group --benchmark-json=out.json

Each benchmark's group is one (device, dtype, shape, M) comparison, so each
table reads as a ratio against the `dense` row (F.linear in that dtype); on
CUDA every kernel family (bitmm.set_backend) is timed, fp16 / bf16 / fp32.  Weights rotate among copies that
together exceed the last-level cache (CPU) or the L2 (CUDA); CUDA timings are
synchronized per call (for graph-replay timing use bench/cuda_bench.py).
"""
import os
import sys

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROTATE_BYTES = {"cpu": 64 * 2**20, "cuda": 200 * 2**20}
SHAPES = {"cpu": [(1024, 1024), (4096, 4096)],
          "cuda": [(4096, 4096), (4096, 14336), (14336, 4096), (8192, 8192), (8192, 28672)]}
MS = {"cpu": [1, 16], "cuda": [1, 4, 16, 64, 256, 1024, 4096]}
# activation dtypes: float32 on CPU; fp16, bf16 and fp32 on CUDA (each against F.linear in that dtype)
DTYPES = {"cpu": [torch.float32], "cuda": [torch.float16, torch.bfloat16, torch.float32]}
CASES = [(d, K, N, M, dt) for d in DEVICES for (K, N) in SHAPES[d] for M in MS[d] for dt in DTYPES[d]]
KIND_G = [("ternary", None), ("int2", 64), ("binary", 64)]
# CUDA kernel families (bitmm.set_backend); the CPU has one
BACKENDS = {"cpu": ["auto"], "cuda": ["auto", "addsub", "tensorcore", "dense"]}
FWD_CASES = [(*c, be) for c in CASES for be in BACKENDS[c[0]]]


def _group(device, K, N, M, dtype):
    return f"{device} {str(dtype).replace('torch.', '')} K={K} N={N} M={M}"


def _rotating(fn_list, device):
    state = {"i": 0}

    def call():
        fn_list[state["i"] % len(fn_list)]()
        state["i"] += 1
        if device == "cuda":
            torch.cuda.synchronize()

    return call


def _copies(nbytes, device):
    return max(2, min(32, -(-ROTATE_BYTES[device] // nbytes)))


@pytest.mark.parametrize("device,K,N,M,dtype", CASES)
def test_dense(benchmark, device, K, N, M, dtype):
    benchmark.group = _group(device, K, N, M, dtype)
    x = torch.randn(M, K, device=device, dtype=dtype)
    ws = [torch.randn(N, K, device=device, dtype=dtype) for _ in range(_copies(N * K * x.element_size(), device))]
    benchmark(_rotating([lambda w=w: F.linear(x, w) for w in ws], device))


@pytest.mark.parametrize("kind,G", KIND_G)
@pytest.mark.parametrize("device,K,N,M,dtype,backend", FWD_CASES)
def test_bitmm_forward(benchmark, device, K, N, M, dtype, backend, kind, G):
    if backend == "addsub" and M > 64:
        pytest.skip("the add/subtract kernel's cost grows linearly with M")
    if backend == "tensorcore" and dtype == torch.float32:
        pytest.skip("the tensor-core kernel takes fp16 / bf16 x")
    benchmark.group = _group(device, K, N, M, dtype)
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    x = torch.randn(M, K, device=device, dtype=dtype)
    fns = []
    for _ in range(_copies(formats.packed_nbytes(kind, N, K), device)):
        p = pack(torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8))
        s = torch.tensor(0.02, device=device) if G is None else torch.rand(N, K // G, device=device, dtype=dtype)
        u = None if G is None else torch.randn(N, K // G, device=device, dtype=dtype)
        fns.append(lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u))
    with bitmm.use_backend(backend):
        benchmark(_rotating(fns, device))


@pytest.mark.parametrize("device,K,N,M,dtype", [c for c in CASES if c[3] in (1, 16, 1024)])
def test_bitmm_backward_ternary(benchmark, device, K, N, M, dtype):
    benchmark.group = _group(device, K, N, M, dtype) + " backward"
    g = torch.randn(M, N, device=device, dtype=dtype)
    fns = []
    for _ in range(_copies(formats.packed_nbytes("ternary", N, K), device)):
        p = bitmm.pack_ternary(torch.randint(-1, 2, (N, K), device=device, dtype=torch.int8))
        fns.append(lambda p=p: bitmm.linear_grad_x(g, p, torch.tensor(0.02, device=device), None, "ternary", K))
    benchmark(_rotating(fns, device))


@pytest.mark.parametrize("device,K,N,M,dtype", [c for c in CASES if c[3] in (1, 16, 1024)])
def test_dense_backward(benchmark, device, K, N, M, dtype):
    benchmark.group = _group(device, K, N, M, dtype) + " backward"
    g = torch.randn(M, N, device=device, dtype=dtype)
    ws = [torch.randn(N, K, device=device, dtype=dtype) for _ in range(_copies(N * K * g.element_size(), device))]
    benchmark(_rotating([lambda w=w: g @ w for w in ws], device))
