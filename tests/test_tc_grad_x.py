"""The tensor-core grad_x kernel (csrc/cuda/tc_grad_x.cuh) against the float64 reference.

auto takes it for fp16 / bf16 grad_y up to 64 rows (32 for small weights; group-wise scales
from 2 rows); use_backend("tensorcore") at any M, as in most tests here.  Its
three scaling modes: "plain" (per-tensor scale, no offset: exact sums, scaled once), "fma" (every
pair v * s + u in grad_y's dtype) and "fma_f32" (float32 s with an offset: v * s + u in fp32,
rounded once).  The bound is tied to the dtype: at most 2x the error of a plain computation
in grad_y's dtype (grad_y @ the dense weight rounded to that dtype), or the dtype's floor.
"""
import pytest
import torch

import bitmm
from bitmm import reference
from helpers import (
    KINDS, assert_kernel_ran, baseline_device, cuda_graphs_capturable, dtype_bound, forced_kernel, make_problem,
    poison_cuda_allocator, rel_err)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# (scale mode, group, scale dtype: "x" = grad_y's dtype or float32, offset): every kernel mode.
SCALINGS = [
    ("tensor", None, "f32", False),  # plain
    ("tensor", None, "x", True),     # fma (per-tensor offset)
    ("channel", None, "f32", False), # fma, fp32 s rounded to the dtype (see the launcher)
    ("channel", None, "f32", True),  # fma_f32
    ("channel", None, "x", True),    # fma
    ("group", 32, "x", True),        # fma, per-group
    ("group", 64, "f32", True),      # fma_f32, per-group
    ("group", 96, "f32", False),     # fma, groups spanning 3 blocks
]
SHAPES = [(1, 300, 37), (3, 520, 100), (8, 4160, 70), (9, 1000, 333), (17, 256, 16), (32, 768, 2000)]


def check_grad_x(kind, M, K, N, mode, G, sdt, offset, dtype, backend="auto"):
    if G is not None and K % G:
        K = (K // G + 1) * G
    _, packed, s, u, _ = make_problem(kind, 1, K, N, mode, G, dtype=torch.float32, device="cuda", offset=offset,
                                      bias=False)
    if sdt == "x":
        s = s.to(dtype)
        u = None if u is None else u.to(dtype)
    g = torch.randn(M, N, device="cuda", dtype=dtype)
    poison_cuda_allocator()
    with bitmm.use_backend(backend):
        got = bitmm.linear_grad_x(g, packed, s, u, kind, K)
    if backend in ("tensorcore", "addsub"):  # (a declined tensor-core launch would run the add/subtract kernel)
        assert_kernel_ran(forced_kernel(backend, dtype, K, G, grad_x=True))
    want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(),
                                   None if u is None else u.cpu().double(), K)
    assert got.dtype == dtype and got.shape == (M, K)
    assert torch.isfinite(got).all()
    # Baseline: grad_y @ W in grad_y's dtype, W dequantized and rounded to that dtype.
    w = reference.dense_weight(kind, packed.cpu(), s.cpu().double(), None if u is None else u.cpu().double(), K)
    dev = baseline_device(g)
    base = rel_err(g.to(dev) @ w.to(dev, dtype), want)
    err = rel_err(got, want)
    bound = dtype_bound(want, dtype, base)
    assert err <= bound, f"relative error {err:.3e} > bound {bound:.3e} (baseline {base:.3e})"
    return got


@cuda_only
@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda c: f"{c[0]}{c[1] or ''}-{c[2]}-{'u' if c[3] else 'nou'}")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tc_grad_x_matches_reference(kind, dtype, scaling, M, K, N):
    check_grad_x(kind, M, K, N, *scaling, dtype, backend="tensorcore")


@cuda_only
@pytest.mark.parametrize("M", [33, 40, 100])
@pytest.mark.parametrize("kind", KINDS)
def test_tc_grad_x_forced_at_larger_m(kind, M):
    # Past auto's limit (dense there) the forced kernel walks several 8-row tiles of grad_y.
    check_grad_x(kind, M, 700, 45, "group", 64, "x", True, torch.float16, backend="tensorcore")
    check_grad_x(kind, M, 520, 130, "tensor", None, "f32", False, torch.bfloat16, backend="tensorcore")


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_tc_grad_x_exact_on_integers(kind):
    # Per-tensor scale 1 / 2 (values 2t / 2b / q - 1 times a power of two), integer grad_y: every
    # product and partial sum is an integer below 2^24, so the fp32 sums are exact whatever
    # their order (row splits, warps, atomics), and the fp16 output is the exact integer.
    M, K, N = 5, 640, 600
    v = torch.randint(*{"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind], (N, K), dtype=torch.int8)
    packed = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind](v).cuda()
    s = torch.tensor(1.0, device="cuda")
    g = torch.randint(-1, 2, (M, N), device="cuda").half()  # N = 600 rows: several row splits
    got = bitmm.linear_grad_x(g, packed, s, None, kind, K)
    values = v.double() - (1 if kind == "int2" else 0)
    want = g.cpu().double() @ values
    assert want.abs().max() < 2048  # exact in fp16
    assert torch.equal(got.cpu().double(), want)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["channel", "tensor"])  # fma; plain (fp16: the subnormal codes and G)
def test_tc_grad_x_nonfinite_rows_stay_in_their_row(mode, kind):
    # A NaN / Inf in row m of grad_y reaches row m of grad_x only (as through fp16 matmul).
    _, packed, s, u, _ = make_problem(kind, 1, 300, 37, mode, device="cuda", offset=mode == "channel")
    g = torch.randn(6, 37, device="cuda", dtype=torch.float16)
    g[1, 5] = float("nan")
    g[4, 0] = float("inf")
    got = bitmm.linear_grad_x(g, packed, s, u, kind, 300)
    finite = torch.isfinite(got).all(dim=1).cpu()
    assert finite.tolist() == [True, False, True, True, False, True]


@cuda_only
@pytest.mark.parametrize("kind", ["ternary", "int2"])
def test_tc_grad_x_plain_fp16_cancellation(kind):
    # Plain mode with fp16 grad_y sums code * gy (code = value + 1) and subtracts G = sum gy (tc33), so its
    # fp32 error grows with sum |gy| rather than with sum |value * gy|: the worst case is weights mostly
    # 0 (code 1) and grad_y far from zero mean.  Still within 2x a plain fp16 matmul's error.
    M, K, N = 3, 512, 4096
    v = torch.zeros(N, K, dtype=torch.int8)
    nz = torch.rand(N, K) < 0.05
    v[nz] = torch.randint(0, 2, (int(nz.sum()),), dtype=torch.int8) * 2 - 1  # +-1 at 5%
    packed = {"ternary": bitmm.pack_ternary, "int2": bitmm.pack_int2}[kind](v + (1 if kind == "int2" else 0)).cuda()
    s = torch.tensor(0.75, device="cuda")
    g = (1.0 + 0.01 * torch.randn(M, N, device="cuda")).half()
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        got = bitmm.linear_grad_x(g, packed, s, None, kind, K)
    want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(), None, K)
    w = reference.dense_weight(kind, packed.cpu(), s.cpu().double(), None, K)
    base = rel_err(g.to(baseline_device(g)) @ w.to(baseline_device(g), torch.float16), want)
    assert rel_err(got, want) <= dtype_bound(want, torch.float16, base), (rel_err(got, want), base)


@cuda_only
def test_tc_grad_x_backends_agree_and_autograd_uses_it():
    # auto (tensor core at M <= 32), the add/subtract kernel and the deterministic mode agree within
    # the bound; the autograd backward of a PackedLinear-style call takes the same op.
    kind, M, K, N = "int2", 4, 1024, 300
    x, packed, s, u, _ = make_problem(kind, M, K, N, "group", 64, dtype=torch.float16, device="cuda", bias=False)
    g = torch.randn(M, N, device="cuda", dtype=torch.float16)
    want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(), K)
    outs = {}
    for be in ("auto", "tensorcore", "addsub"):
        with bitmm.use_backend(be):
            outs[be] = bitmm.linear_grad_x(g, packed, s, u, kind, K)
    for be, o in outs.items():
        assert rel_err(o, want) < 2e-3, be
    x.requires_grad_(True)
    y = bitmm.linear(kind, x, packed, s, u)
    y.backward(g)
    assert rel_err(x.grad, want) < 2e-3


@cuda_only
def test_tc_grad_x_in_cuda_graph():
    if not cuda_graphs_capturable():
        pytest.skip("CUDA graphs need torch's caching allocator (PYTORCH_NO_CUDA_MEMORY_CACHING=1 here)")
    _, packed, s, u, _ = make_problem("ternary", 1, 4096, 1000, "channel", dtype=torch.float16, device="cuda")
    g = torch.randn(3, 1000, device="cuda", dtype=torch.float16)
    eager = bitmm.linear_grad_x(g, packed, s, u, "ternary", 4096)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = bitmm.linear_grad_x(g, packed, s, u, "ternary", 4096)
    graph.replay()
    torch.cuda.synchronize()
    # atomics across row splits: the same sums, possibly in another order
    assert rel_err(out, eager.double()) < 1e-3


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_tc_grad_x_padding_rows_add_exactly_zero(dtype):
    # N = 17: the last 16-row tile has 15 padding rows, whose zero-filled codes unpack to nonzero
    # values.  Row 16's scale is the dtype's largest and its offset -100: with them on the padding
    # rows, v * s + u = -2 * 65504 / 2 - 100 overflows to -Inf in fp16, and -Inf * 0 = NaN in
    # every output (found in review).  The real row's weight, 65504 - 100, is finite.
    N, K = 17, 128
    big = torch.finfo(dtype).max
    v = torch.ones(N, K, dtype=torch.int8)
    packed = bitmm.pack_ternary(v).cuda()
    s = torch.ones(N, dtype=dtype, device="cuda")
    s[16] = big
    u = torch.zeros(N, dtype=dtype, device="cuda")
    u[16] = -100
    g = torch.full((1, N), 1.0, dtype=dtype, device="cuda")
    g[0, 16] = 0.5
    with bitmm.use_backend("tensorcore"):
        got = bitmm.linear_grad_x(g, packed, s, u, "ternary", K)
    want = reference.linear_grad_x("ternary", g.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(), K)
    assert torch.isfinite(got).all()
    assert rel_err(got, want) < 1e-2


@cuda_only
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("kind", KINDS)
def test_tc_grad_x_group_scales_any_layout(kind, layout):
    # The kernel reads group-wise s / u as stored, through their strides: stored contiguous, as a
    # transposed view (strides (1, N)) or as every other column of a wider tensor whose other columns
    # are NaN (a stride slip reads them); N odd, 130 groups, fp16 and fp32 s / u, M = 1 and 3, against
    # the float64 reference, outputs poisoned.  Auto takes this kernel for group-wise M = 1 too since
    # session 25 (linear_cuda.cpp, use_tc_grad_x), checked through the profiler where it sees kernels.
    from test_wgmma import kernel_names, profiler_sees_kernels
    K, N, G = 4160, 2001, 32
    for sdt in (torch.float16, torch.float32):
        _, packed, s, u, _ = make_problem(kind, 1, K, N, "group", G, dtype=torch.float32, device="cuda", bias=False)
        s, u = s.to(sdt), u.to(sdt)
        if layout == "transposed":
            s, u = s.t().contiguous().t(), u.t().contiguous().t()
        elif layout == "strided":
            s = torch.stack([s, torch.full_like(s, float("nan"))], dim=2).flatten(1)[:, ::2]
            u = torch.stack([u, torch.full_like(u, float("nan"))], dim=2).flatten(1)[:, ::2]
        for M in (1, 3):
            g = torch.randn(M, N, device="cuda", dtype=torch.float16)
            poison_cuda_allocator()
            with bitmm.use_backend("tensorcore"):
                got = bitmm.linear_grad_x(g, packed, s, u, kind, K)
            with bitmm.use_backend("auto"):
                names = kernel_names(lambda: bitmm.linear_grad_x(g, packed, s, u, kind, K))
            if profiler_sees_kernels():
                assert any("tc_grad_x_kernel" in n for n in names), (M, names)
            want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(), K)
            w = reference.dense_weight(kind, packed.cpu(), s.cpu().double(), u.cpu().double(), K)
            base = rel_err(g.to(baseline_device(g)) @ w.to(baseline_device(g), torch.float16), want)
            assert torch.isfinite(got).all(), (layout, sdt, M)
            assert rel_err(got, want) <= dtype_bound(want, torch.float16, base), (layout, sdt, M, rel_err(got, want), base)
