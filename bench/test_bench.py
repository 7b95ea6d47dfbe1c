"""pytest-benchmark suite: every op against float F.linear on the same shapes.

    pytest bench/ --benchmark-only --benchmark-group-by=group --benchmark-json=out.json

Each benchmark's group is one (device, dtype, shape, M) comparison, so each
table reads as a ratio against the `dense` row (F.linear in that dtype); on
CUDA every kernel family (bitmm.set_backend) is timed, fp16 / bf16 / fp32.
Weights rotate among copies that together exceed the last-level cache (CPU) or
the L2 (CUDA).  CUDA: one CUDA graph holds CALLS calls cycling through the
copies and a round is one replay + synchronize, so the reported times are per
CALLS calls (the same CALLS for every row of a group; `extra_info` has
`median_us_per_call`).  The saved JSON carries device, torch and commit
(bench/conftest.py).  `bench/cuda_bench.py` is the event-timed equivalent behind
the committed results table.
"""
import os
import sys
import time

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402
from bitmm.benchmark_timing import capture_cuda_graph, warm_graph  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROTATE_BYTES = {"cpu": 64 * 2**20, "cuda": 200 * 2**20}
SHAPES = {"cpu": [(1024, 1024), (4096, 4096)],
          "cuda": [(4096, 4096), (4096, 14336), (14336, 4096), (8192, 8192), (8192, 28672)]}
MS = {"cpu": [1, 16], "cuda": [1, 4, 16, 64, 256, 1024, 4096]}
# activation dtypes: float32 on CPU; fp16, bf16 and fp32 on CUDA (each against F.linear in that dtype)
DTYPES = {"cpu": ["float32"], "cuda": ["float16", "bfloat16", "float32"]}  # names: readable ids and JSON
CASES = [(d, K, N, M, dt) for d in DEVICES for (K, N) in SHAPES[d] for M in MS[d] for dt in DTYPES[d]]
KIND_G = [("ternary", None), ("int2", 64), ("binary", 64)]
# CUDA kernel families (bitmm.set_backend); the CPU has one
# ("prepacked": the CPU op reading cpu_prepack's layout, what PackedLinear runs on the CPU)
BACKENDS = {"cpu": ["auto", "prepacked"], "cuda": ["auto", "addsub", "tensorcore", "dense", "digits"]}
FWD_CASES = [(*c, be) for c in CASES for be in BACKENDS[c[0]]]


def _group(device, K, N, M, dtype):
    return f"{device} {dtype} K={K} N={N} M={M}"


# calls per CUDA graph replay (per benchmark round), by M: every row of a group uses the same
CALLS = {"small_m": 32, "large_m": 8}
ROUND_SECONDS = 0.1  # target time of the rounds of one CUDA benchmark


def _calls_per_round(M):
    return CALLS["small_m"] if M < 1024 else CALLS["large_m"]


def _run(benchmark, fns, device, M):
    """Times `fns` (closures over different weight copies): rotation on the CPU,
    CUDA-graph replays on CUDA."""
    if device == "cpu":
        benchmark(_rotating(fns, device))
        return
    calls = _calls_per_round(M)
    graph = capture_cuda_graph([fns[i % len(fns)] for i in range(calls)])

    def replay():
        graph.replay()
        torch.cuda.synchronize()

    warm_graph(graph, 1)  # (at least WARMUP_MS of replays: bitmm/benchmark_timing.py cuda_time_us)
    t0 = time.perf_counter()
    replay()
    est = time.perf_counter() - t0
    rounds = max(3, min(20, int(ROUND_SECONDS / max(est, 1e-6))))
    benchmark.extra_info["calls_per_round"] = calls
    benchmark.extra_info["weight_copies"] = len(fns)
    benchmark.pedantic(replay, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["median_us_per_call"] = round(benchmark.stats.stats.median * 1e6 / calls, 2)


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
    dtype = getattr(torch, dtype)
    x = torch.randn(M, K, device=device, dtype=dtype)
    ws = [torch.randn(N, K, device=device, dtype=dtype) for _ in range(_copies(N * K * x.element_size(), device))]
    _run(benchmark, [lambda w=w: F.linear(x, w) for w in ws], device, M)


@pytest.mark.parametrize("kind,G", KIND_G)
@pytest.mark.parametrize("device,K,N,M,dtype,backend", FWD_CASES)
def test_bitmm_forward(benchmark, device, K, N, M, dtype, backend, kind, G):
    if backend == "addsub" and M > 64:
        pytest.skip("the add/subtract kernel's cost grows linearly with M")
    if backend == "tensorcore" and dtype == "float32":
        pytest.skip("the tensor-core kernel takes fp16 / bf16 x")
    if backend == "tensorcore" and M >= 1024:
        pytest.skip("auto takes the dense path here; the mma.sync kernel is ~0.2x fp16 (bench/results sweeps)")
    if backend == "digits" and (dtype == "float32" or G is not None or M > 64):
        pytest.skip("the digits backend takes fp16 / bf16 x, per tensor / per channel scales, M <= 64")
    benchmark.group = _group(device, K, N, M, dtype)
    dtype = getattr(torch, dtype)
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    x = torch.randn(M, K, device=device, dtype=dtype)
    fns = []
    for _ in range(_copies(formats.packed_nbytes(kind, N, K), device)):
        p = pack(torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8))
        s = torch.tensor(0.02, device=device) if G is None else torch.rand(N, K // G, device=device, dtype=dtype)
        u = None if G is None else torch.randn(N, K // G, device=device, dtype=dtype)
        if backend == "prepacked":
            pre = bitmm.ops.cpu_prepack(p, kind, K)
            fns.append(lambda p=p, pre=pre, s=s, u=u: bitmm.ops.cpu_prepacked_linear(kind, x, p, pre, s, u))
        else:
            fns.append(lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u))
    if backend == "prepacked":
        backend = "auto"
    with bitmm.use_backend(backend):  # the backend is chosen when the graph is captured
        _run(benchmark, fns, device, M)


# grad_x = grad_y @ W (the backward w.r.t. x): the add/subtract kernel or the dense path on CUDA
# (there is no tensor-core grad_x kernel), one kernel on the CPU; "transposed": the forward op on
# the cached W^T (PackedLinear.transposed_backward; per-tensor / per-channel scales only; on CPU
# through W^T's lookup layout).
BWD_BACKENDS = {"cpu": ["auto", "transposed"], "cuda": ["auto", "addsub", "dense", "transposed", "transposed_digits"]}
BWD_CASES = [(*c, be) for c in CASES if c[3] in (1, 16, 1024) for be in BWD_BACKENDS[c[0]]]


@pytest.mark.parametrize("kind,G", KIND_G)
@pytest.mark.parametrize("device,K,N,M,dtype,backend", BWD_CASES)
def test_bitmm_backward(benchmark, device, K, N, M, dtype, backend, kind, G):
    if backend == "addsub" and M > 64:
        pytest.skip("the add/subtract kernel's cost grows linearly with M")
    if backend.startswith("transposed") and G is not None:
        pytest.skip("the transposed backward takes per-tensor / per-channel scales")
    if backend == "transposed_digits" and (dtype == "float32" or M > 64):
        pytest.skip("the digits backend takes fp16 / bf16 x, M <= 64")
    benchmark.group = _group(device, K, N, M, dtype) + " backward"
    dtype = getattr(torch, dtype)
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    g = torch.randn(M, N, device=device, dtype=dtype)
    fns = []
    for _ in range(_copies(formats.packed_nbytes(kind, N, K), device)):
        p = pack(torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8))
        s = torch.tensor(0.02, device=device) if G is None else torch.rand(N, K // G, device=device, dtype=dtype)
        u = None if G is None else torch.randn(N, K // G, device=device, dtype=dtype)
        if backend.startswith("transposed"):
            wt = bitmm.ops.transpose_packed(p, kind, K)
            pre = bitmm.ops.cpu_prepack(wt, kind, N) if device == "cpu" else None
            fns.append(lambda wt=wt, pre=pre, s=s, u=u: bitmm.ops.linear_grad_x_transposed(kind, g, wt, s, u, pre))
        else:
            fns.append(lambda p=p, s=s, u=u: bitmm.linear_grad_x(g, p, s, u, kind, K))
    with bitmm.use_backend({"transposed": "auto", "transposed_digits": "digits"}.get(backend, backend)):
        _run(benchmark, fns, device, M)


@pytest.mark.parametrize("device,K,N,M,dtype", [c for c in CASES if c[3] in (1, 16, 1024)])
def test_dense_backward(benchmark, device, K, N, M, dtype):
    benchmark.group = _group(device, K, N, M, dtype) + " backward"
    dtype = getattr(torch, dtype)
    g = torch.randn(M, N, device=device, dtype=dtype)
    ws = [torch.randn(N, K, device=device, dtype=dtype) for _ in range(_copies(N * K * g.element_size(), device))]
    _run(benchmark, [lambda w=w: g @ w for w in ws], device, M)


# W2A8 (bitmm.linear_a8): per-token int8 quantization of x (quant.absmax_int8) and the int8 op, per call, as
# PackedLinear(act_bits=8, int8_matmul=True) runs it; per tensor scales (the op takes per tensor / per channel
# only); in the forward groups, so each row reads against F.linear in that dtype.  CUDA: M >= 256 (it unpacks W
# to int8 on every call).
A8_CASES = [c for c in CASES if c[0] == "cuda" and c[3] >= 256] + [c for c in CASES if c[0] == "cpu"]


@pytest.mark.parametrize("kind", ["ternary", "int2", "binary"])
@pytest.mark.parametrize("device,K,N,M,dtype", A8_CASES)
def test_bitmm_linear_a8(benchmark, device, K, N, M, dtype, kind):
    from bitmm import quant
    benchmark.group = _group(device, K, N, M, dtype)
    dtype = getattr(torch, dtype)
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    x = torch.randn(M, K, device=device, dtype=dtype)
    s = torch.tensor(0.02, device=device)

    def call(p):
        xq, xs = quant.absmax_int8(x)
        return bitmm.linear_a8(kind, xq, xs, p, s, out_dtype=dtype)

    ps = [pack(torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8))
          for _ in range(_copies(formats.packed_nbytes(kind, N, K), device))]
    _run(benchmark, [lambda p=p: call(p) for p in ps], device, M)
