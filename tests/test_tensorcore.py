"""The tensor-core CUDA kernels and the backend switch.

Every CUDA op runs either the add/subtract kernels or the tensor-core kernels
(fp16 / bf16 x, groups multiple of 32).  These tests force each backend and
cover every launch-configuration boundary of the tensor-core kernel (rows of x
per CTA: 8, 16, 32, 64; K tiles; the last partial load step of a row).
"""
import os

import pytest
import torch

import bitmm
from bitmm import reference
from conftest import DEVICES
from helpers import (
    KINDS, PACKERS, assert_close_to_reference, assert_close_to_reference_by_rows, assert_kernel_ran, forced_kernel, check_3d_noncontiguous_misaligned, check_deterministic_and_graph,
    check_exact_on_integers, check_scale_dtypes_and_optional_terms, cuda_graphs_capturable, make_problem,
    poison_cuda_allocator, random_values, rel_err, run_in_child)

cuda_only = pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA device")
BACKENDS = ["addsub", "tensorcore", "dense", "auto"]


def test_backend_switch_round_trip():
    assert bitmm.get_backend() == "auto"
    with bitmm.use_backend("addsub"):
        assert bitmm.get_backend() == "addsub"
        with bitmm.use_backend("tensorcore"):
            assert bitmm.get_backend() == "tensorcore"
        assert bitmm.get_backend() == "addsub"
    assert bitmm.get_backend() == "auto"
    assert bitmm.set_backend("auto") == "auto"
    with pytest.raises(ValueError, match="backend must be one of"):
        bitmm.set_backend("fast")
    with pytest.raises(ValueError, match="mode must be 0"):
        torch.ops.bitmm._set_backend(6)
    with bitmm.use_backend("dense"):
        assert bitmm.get_backend() == "dense"
    with bitmm.use_backend("digits"):
        assert bitmm.get_backend() == "digits"
    assert bitmm.get_backend() == "auto"


@pytest.mark.cublas  # its forced "dense" backend is a cuBLAS GEMM (racecheck died in it, session 49)
def test_last_kernel_names_the_kernel_that_ran():
    # bitmm.backend.last_kernel: what the tests' assert_kernel_ran reads.  CPU calls leave it as it was.
    before = bitmm.backend.last_kernel()
    assert before in ("none", "addsub", "tensorcore", "dense", "wgmma", "digits", "generic", "a8_fused", "a8_unfused")
    x, packed, s, u, b = make_problem("ternary", 3, 256, 40)
    bitmm.ternary_linear(x, packed, s, u, b)
    assert bitmm.backend.last_kernel() == before
    if not torch.cuda.is_available():
        return
    for dtype, backend, want in ((torch.float16, "addsub", "addsub"), (torch.bfloat16, "tensorcore", "tensorcore"),
                                 (torch.float16, "dense", "dense"), (torch.float32, "tensorcore", "addsub"),
                                 (torch.float64, "addsub", "generic")):
        x, packed, s, u, b = make_problem("ternary", 3, 256, 40, dtype=dtype, device="cuda")
        with bitmm.use_backend(backend):
            bitmm.ternary_linear(x, packed, s, u, b)
            assert bitmm.backend.last_kernel() == want, (dtype, backend)
            bitmm.ternary_linear(x[:0], packed, s, u, b)
            assert bitmm.backend.last_kernel() == "none"
            bitmm.linear_grad_x(x[:, :40].contiguous(), packed, s, u, "ternary", 256)
            assert bitmm.backend.last_kernel() == want, (dtype, backend, "grad_x")
    # per thread: another thread's call does not change this thread's record
    import threading
    seen = []

    def other_thread():
        bitmm.ternary_linear(x.double(), packed, s, u, b)
        seen.append(bitmm.backend.last_kernel())

    with bitmm.use_backend("addsub"):
        bitmm.ternary_linear(x.half(), packed, s, u, b)
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert seen == ["generic"] and bitmm.backend.last_kernel() == "addsub"
    # linear_a8 at M = 0 runs nothing
    _, packed, s, u, b = make_problem("ternary", 1, 256, 40, device="cuda")
    xq, xs = torch.zeros(0, 256, dtype=torch.int8, device="cuda"), torch.ones(0, 1, device="cuda")
    bitmm.ops.linear_a8("ternary", xq, xs, packed, s, u, b, out_dtype=torch.float16)
    assert bitmm.backend.last_kernel() == "none"


def test_backend_does_not_change_cpu_results():
    x, packed, s, u, b = make_problem("ternary", 5, 200, 9)
    y0 = bitmm.ternary_linear(x, packed, s, u, b)
    with bitmm.use_backend("tensorcore"):
        assert torch.equal(bitmm.ternary_linear(x, packed, s, u, b), y0)


# M at and around every configuration boundary of the tensor-core kernel.
TC_M = [1, 2, 7, 8, 9, 16, 17, 32, 33, 64, 65, 130]
# K: one partial load step (300 -> padded 384), exact steps (1024), several K tiles at M > 32 (5000); group-wise
# modes take the next multiple of the group (320, 5024, 5056).
TC_KN = [(300, 37), (1024, 64), (5000, 21)]
MODES = [("tensor", None), ("channel", None), ("group", 32), ("group", 64)]


@cuda_only
@pytest.mark.parametrize("backend", ["addsub", "tensorcore", "dense"])
@pytest.mark.parametrize("M", TC_M)
@pytest.mark.parametrize("K,N", TC_KN)
@pytest.mark.parametrize("mode,G", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_matches_reference(kind, dtype, mode, G, K, N, M, backend):
    if mode == "group" and K % G:
        K += G - K % G  # (300 -> 320: still a partial load step; 5000 -> 5024 / 5056: still several K tiles)
    check_forced_backend(kind, dtype, mode, G, K, N, M, backend)


def check_forced_backend(kind, dtype, mode, G, K, N, M, backend, what=""):
    """One random problem on a forced backend (outputs poisoned first): its kernel ran, and the result is within the
    dtype's bound of the float64 reference."""
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend(backend):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_kernel_ran(forced_kernel(backend, dtype, K, G), what)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


# The auto backend's switches (csrc/cuda/linear_cuda.cpp, use_dense / use_wgmma): M at and around
# 16 / 32 (on sm_90a the wgmma kernel from 17 group-wise, and per tensor / channel from 17 where
# its plan splits K, else from 33), 64 (weights
# of at most 2^24 elements go dense), 128 (group-wise) and 384 (per tensor / channel), 2048
# (group-wise: wgmma below, dense from it), on a small weight and on one just past 2^24 elements
# (1024 x 16400).
@cuda_only
@pytest.mark.parametrize("M", [16, 17, 32, 33, 63, 64, 65, 127, 128, 383, 384, 2047, 2048])
@pytest.mark.parametrize("K,N", [(256, 96), (1024, 16400)])
@pytest.mark.parametrize("mode,G", [("channel", None), ("group", 64)])
@pytest.mark.parametrize("kind", ["ternary", "int2"])
def test_auto_dispatch_boundaries_match_reference(kind, mode, G, K, N, M):
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=torch.float16, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("auto"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("sdtype", ["x", torch.float32])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_scale_dtypes_and_optional_terms(kind, dtype, sdtype):
    check_scale_dtypes_and_optional_terms(kind, dtype, sdtype, "tensorcore", 19, MODES)


@cuda_only
@pytest.mark.parametrize("x_exp", [0, -22])
@pytest.mark.parametrize("M", [1, 2, 8, 9, 16, 40])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_exact_on_integers(kind, dtype, M, x_exp):
    # Small integer activations and unit scales: every product and partial sum
    # is exact, so the unpacked values (2t, 2b, q - 1, or codes as fp16 subnormals)
    # and the K order must be exact.  x_exp = -22: the activations are fp16 subnormals
    # (multiples of 2^-22 below 2^-14), times the subnormal weight codes of the fp16
    # per-tensor / per-channel path (M <= 8: M = 1 and 8 here): products down to 2^-46,
    # still exact in fp32.
    check_exact_on_integers(kind, dtype, M, 75, "tensorcore", x_scale=2.0**x_exp)  # K = 1984: 31 groups of 64


# The dense path's dequantization kernel (dequant.cu) through every way it finds a weight's group
# (one per row; a shift: groups of 128; a division: 96, 192), 8-byte tails (K = 300: scalar stores),
# rows past grid.y's 65535 (a 65536-row slice at K = 256 in fp16 / bf16: a thread steps to a second
# row) and cuBLAS slices starting past row 0 (N = 70001; K = 8192, N = 2100: 2048 fp16 rows per
# 32 MB slice).  Integer x, power-of-two scales, offsets of -s, 0 or s: every dequantized weight and
# every partial sum is exact, so y must equal the float64 product rounded once to x's dtype.
@cuda_only
@pytest.mark.parametrize("G,K,N", [(None, 300, 301), (None, 8192, 2100), (128, 1024, 301), (96, 960, 301),
                                   (192, 960, 333), (128, 256, 70001)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_dense_dequantization_exact(kind, dtype, G, K, N):
    v = random_values(kind, N, K, "cuda")
    packed = PACKERS[kind](v)
    groups = K // G if G else 1
    s = 2.0 ** torch.randint(-1, 2, (N, groups), device="cuda")
    u = s * torch.randint(-1, 2, (N, groups), device="cuda")
    w = {"ternary": v.double(), "binary": v.double(), "int2": v.double() - 1}[kind]
    reps = G if G else K
    wd = w * s.double().repeat_interleave(reps, 1) + u.double().repeat_interleave(reps, 1)
    if not G:
        s, u = s[:, 0], u[:, 0]  # per channel
    sd = torch.float32 if G in (None, 96) else dtype  # scales in fp32 and in x's dtype
    x = torch.randint(-3, 4, (3, K), device="cuda").to(dtype)
    want = (x.double() @ wd.T).to(dtype)
    flags = (torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
             torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
    try:  # (cuBLAS must sum in fp32 for the product to stay exact)
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
        poison_cuda_allocator()
        with bitmm.use_backend("dense"):
            y = bitmm.linear(kind, x, packed, s.to(sd), u.to(sd))
    finally:
        (torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
         torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction) = flags
    bad = (y != want).nonzero()
    assert bad.numel() == 0, (len(bad), bad[:5].tolist())


# Auto, per tensor / channel with an offset (make_problem's default; without one wgmma at every M since session 43,
# test_wgmma.py), where the wgmma kernel is built and runs (sm_90a): wgmma up to
# M = 2047, the dense path (dequantization + cuBLAS) from kWgmmaMaxM = 2048 (linear_cuda.cpp,
# session 19), except under torch.use_deterministic_algorithms (no cuBLAS there: wgmma at both);
# elsewhere dense (this weight has at most 2^24 elements: from M = 64) or, deterministic, the
# tensor-core kernel.  Results against the reference either way.
@cuda_only
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("M", [2047, 2048])
@pytest.mark.parametrize("mode", ["tensor", "channel"])
def test_auto_per_tensor_dense_from_m2048(mode, M, deterministic):
    from test_wgmma import kernel_names, profiler_sees_kernels, wgmma_active
    x, packed, s, u, b = make_problem("ternary", M, 256, 96, mode, None, dtype=torch.float16, device="cuda")
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(deterministic)
        with bitmm.use_backend("auto"):
            poison_cuda_allocator()
            y = bitmm.linear("ternary", x, packed, s, u, b)
            names = kernel_names(lambda: bitmm.linear("ternary", x, packed, s, u, b))
    finally:
        torch.use_deterministic_algorithms(prev)
    assert_close_to_reference("ternary", y, x, packed, s, u, b)
    if wgmma_active() and profiler_sees_kernels():
        dense = M >= 2048 and not deterministic
        ran = (any("dequant_kernel" in n for n in names), any("wg_linear_kernel" in n for n in names))
        assert ran == (dense, not dense), (M, deterministic, names)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_3d_noncontiguous_and_misaligned_x(kind):
    check_3d_noncontiguous_misaligned(kind, "tensorcore", 6, 96, 13, rows=7)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_deterministic_and_graph_capturable(kind):
    x, packed, s, u, b = make_problem(kind, 12, 4096, 300, "channel", dtype=torch.bfloat16, device="cuda")
    check_deterministic_and_graph(kind, "tensorcore", x, packed, s, u, b)


def check_back_to_back_chain(mode, G, M):
    """A chain of 4 layers, each call's x the previous call's y, without synchronisation and replayed
    from a CUDA graph, gives the bits of the same calls with a synchronize after each.  Every output
    is poisoned (NaN) before it is recomputed, so a call that read its x before the previous call
    finished it would not match."""
    K = N = 4096
    torch.manual_seed(3)
    layers = []
    for _ in range(4):
        _, packed, s, u, b = make_problem("ternary", M, K, N, mode, G, dtype=torch.float16, device="cuda",
                                          offset=False)
        layers.append((packed, s / (K ** 0.5), b))  # keeps |y| near |x| through the chain
    x = torch.randn(M, K, device="cuda", dtype=torch.float16)

    def chain(sync):
        ys, y = [], x
        for packed, s, b in layers:
            y = bitmm.linear("ternary", y, packed, s, None, b)
            ys.append(y)
            if sync:
                torch.cuda.synchronize()
        return ys

    with bitmm.use_backend("tensorcore"):
        ref = chain(sync=True)
        assert all(torch.isfinite(y).all() for y in ref)
        for _ in range(3):
            poison_cuda_allocator()
            assert all(torch.equal(a, r) for a, r in zip(chain(sync=False), ref))
        if cuda_graphs_capturable():
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                yg = chain(sync=False)
            for _ in range(3):
                for t in yg:
                    t.fill_(float("nan"))
                g.replay()
                torch.cuda.synchronize()
                assert all(torch.equal(a, r) for a, r in zip(yg, ref))
    assert_close_to_reference("ternary", ref[0], x, layers[0][0], layers[0][1], None, layers[0][2])


# tc16 launches the tensor-core kernel with programmatic dependent launch (sm_90+, where its launch
# rule says so): it may start while the previous kernel on the stream runs (the previous call of
# itself lets it, early), and only its L2 prefetch of weights may come before it waits.  Under the
# rule here, and for every launch in a child process with BITMM_PDL=2 (read once per process).
@cuda_only
@pytest.mark.parametrize("M", [1, 2, 5])
@pytest.mark.parametrize("mode,G", [("tensor", None), ("group", 64)])
def test_tensorcore_back_to_back_dependent_launches(mode, G, M):
    check_back_to_back_chain(mode, G, M)


@cuda_only
def test_tensorcore_back_to_back_dependent_launches_forced():
    run_in_child("from test_tensorcore import check_back_to_back_chain\n"
                 "for mode, G in (('tensor', None), ('group', 64)):\n"
                 "    for M in (1, 2, 5):\n"
                 "        check_back_to_back_chain(mode, G, M)\n", BITMM_PDL="2")


def check_capped_k_tile_launches():
    """The tensor-core kernel over every kind, per tensor and g64, M = 1, 2, 5, 9, on K = 2600 (2624 for g64): run in
    a child whose BITMM_TC_KT_MAX / BITMM_TC_STAGES (benchmark knobs, read once per process) put x in several K
    tiles, against the float64 reference (outputs poisoned first).  (A capped tile keeps at least one load step per
    K-split warp, up to 4 x 256 inputs for ternary / int2 and 4 x 512 for binary, so K is past 2048.)"""
    torch.manual_seed(11)
    for kind in KINDS:
        for mode, G in (("tensor", None), ("group", 64)):
            K = 2624 if G else 2600
            for M in (1, 2, 5, 9):
                check_forced_backend(kind, torch.float16, mode, G, K, 77, M, "tensorcore", f"{kind} {mode} M = {M}")


# The launcher's benchmark knobs (bench/device_calls): a K tile capped at 256 inputs (x in 2-3 tiles here) with the
# deepest ring (its default there) and with 2 / 3 slots (BITMM_TC_STAGES applies to a capped tile since session 57).
@cuda_only
@pytest.mark.parametrize("stages", [None, "2", "3"])
def test_tensorcore_capped_k_tile_and_ring_depth_knobs(stages):
    run_in_child("from test_tensorcore import check_capped_k_tile_launches\ncheck_capped_k_tile_launches()\n",
                 BITMM_TC_KT_MAX="256", BITMM_TC_STAGES=stages)


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_dense_path_forward_and_grad_x(kind, dtype):
    # auto picks the dense path at large M (fp32 from M = 32): forward, several
    # dequantized slices (N * K * bytes > 32 MB), and grad_x.
    from bitmm import reference
    from helpers import rel_err
    for M, K, N, mode, G in ((40, 300, 37, "channel", None), (160, 1024, 70, "group", 64), (130, 4096, 4500, "tensor", None)):
        x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda")
        poison_cuda_allocator()
        assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)
        g = torch.randn(M, N, device="cuda", dtype=dtype)
        want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(), K)
        got = bitmm.linear_grad_x(g, packed, s, u, kind, K)
        assert got.dtype == dtype and got.shape == (M, K)
        assert rel_err(got, want) < {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]


@cuda_only
def test_auto_dispatch_agrees_with_both_backends():
    for M in (1, 2, 3, 16, 64, 300):
        x, packed, s, u, b = make_problem("ternary", M, 1024, 96, "channel", dtype=torch.float16, device="cuda")
        outs = {}
        # auto must be one of the forced backends bit for bit (wgmma: its choice from M = 33 on sm_90a)
        for be in BACKENDS + ["wgmma"]:
            with bitmm.use_backend(be):
                outs[be] = bitmm.ternary_linear(x, packed, s, u, b)
            assert_close_to_reference("ternary", outs[be], x, packed, s, u, b)
        assert any(torch.equal(outs["auto"], outs[be]) for be in ("addsub", "tensorcore", "wgmma", "dense")), M


@cuda_only
@pytest.mark.parametrize("M", [1, 2, 5])
@pytest.mark.parametrize("mode,G", [("tensor", None), ("group", 64)])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_many_row_tiles_per_cta(kind, mode, G, M):
    # N large enough that persistent CTAs walk several row tiles each, with the
    # shallow weight ring the launcher picks when every SM holds its most CTAs.
    x, packed, s, u, b = make_problem(kind, M, 192, 20011, mode, G, dtype=torch.float16, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("N", [20011, 60013])
@pytest.mark.parametrize("M", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mode,G", [("tensor", None), ("group", 32)])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_k_split_reduction_many_row_tiles(kind, mode, G, M, N):
    # K of several load steps, so the 4 warps of a CTA split K (WN = 1 at N = 20011, 2 at 60013 on a
    # 132-SM GPU), and ~1.6 / ~2.4 row tiles per persistent CTA: the K-split reduction (tc_linear.cuh;
    # group-wise M <= 4 is the block-diagonal kernel, from M = 3 with all 4 warps along N at N = 60013
    # for the two-plane kinds) runs once per row tile.  Offsets (the row sums X that the leading warp
    # reads), bias, and bitwise-repeatable results.
    x, packed, s, u, b = make_problem(kind, M, 1056, N, mode, G, dtype=torch.float16, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        y = bitmm.linear(kind, x, packed, s, u, b)
        for _ in range(3):
            assert torch.equal(bitmm.linear(kind, x, packed, s, u, b), y)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("mode,G,M,K", [("tensor", None, 1, 28672), ("group", 32, 2, 16384)])
def test_tensorcore_many_row_tiles_long_k_matches_plain_launch(mode, G, M, K):
    # Long K (x's tile leaves room for 2 CTAs per SM) and N = 33759 (2110 16-row tiles; one tile
    # fewer in 32-row tiles than the 8 CTAs per SM that would put 2 warps along N, so all 4 warps
    # split K): ~8 row tiles per persistent CTA on a 132-SM GPU, each with its K-split reduction;
    # per tensor with an offset (the row sums) and the block-diagonal kernel at M = 2.  The result
    # must be bitwise that of a plain launch (BITMM_PDL=0, read once per process, so in a child
    # process that rebuilds the same problem from the same seed; here a full persistent grid, which
    # the launch rule gives a programmatic dependent launch on sm_90+: this checks that launch's
    # arguments, not the ordering, which the back-to-back tests check), and match the float64
    # reference on every row, 4096 weight rows at a time (the whole float64 dense weight would be 7 GB).
    import tempfile
    N = 33759
    code = (
        "import torch, bitmm\n"
        "from helpers import make_problem\n"
        "torch.manual_seed(7)\n"
        f"x, packed, s, u, b = make_problem('int2', {M}, {K}, {N}, {mode!r}, {G}, dtype=torch.float16, device='cuda')\n"
        "with bitmm.use_backend('tensorcore'):\n"
        "    y = bitmm.linear('int2', x, packed, s, u, b)\n"
        "torch.save(y.cpu(), OUT)\n")
    with tempfile.TemporaryDirectory() as d:
        out_plain = os.path.join(d, "plain.pt")
        run_in_child(f"OUT = {out_plain!r}\n" + code, BITMM_PDL="0")
        torch.manual_seed(7)
        x, packed, s, u, b = make_problem("int2", M, K, N, mode, G, dtype=torch.float16, device="cuda")
        with bitmm.use_backend("tensorcore"):
            y = bitmm.linear("int2", x, packed, s, u, b)
        assert torch.equal(y.cpu(), torch.load(out_plain))
    assert_close_to_reference_by_rows("int2", y, x, packed, s, u, b)


def tensorcore_against_reference(kind, x, packed, s, u, b, rows_per_check=None):
    """y = bitmm.linear through the tensor-core backend, outputs poisoned, checked against the float64
    reference (rows_per_check weight rows at a time if given); returns y and the names of the kernels that ran."""
    from test_wgmma import kernel_names
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
        y = bitmm.linear(kind, x, packed, s, u, b)
    if rows_per_check:
        assert_close_to_reference_by_rows(kind, y, x, packed, s, u, b, rows_per_check)
    else:
        assert_close_to_reference(kind, y, x, packed, s, u, b)
    return y, names


# The block-diagonal decode path (group-wise scales, M <= 2, and int2 at M = 3, 4: 1 or 2 activation
# tiles of 2 rows of x;
# tc_linear.cuh, above tc_window_mma): group sizes whose flush runs are 1, 2 and 4 blocks for both
# window widths (64 weights for the two-plane kinds, 128 for binary: G = 32, 96, 160 flush every
# block, 64 every 2, 128 / 256 every window), x in one K tile and in several (K >= 50000 exceeds the
# 112 KB x tile), scales in x's dtype with offsets and in fp32 without (ternary; binary / int2 need
# an offset group-wise), N not a multiple of the 16-row tiles, M at the activation-tile boundary
# (2 / 3) and M = 5 next to the path (the folding path); auto's choice (the tensor-core kernel
# from M = 2, the add/subtract one at M = 1 at these narrow N) in the kernels that ran.
@cuda_only
@pytest.mark.parametrize("M", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("G", [32, 64, 96, 128, 160, 256])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_decode_block_diagonal(kind, dtype, G, M):
    from test_wgmma import kernel_names, profiler_sees_kernels
    for K, N, sdtype, offset in ((G * 13, 75, dtype, True), (G * 13, 75, torch.float32, kind != "ternary"),
                                 (G * (50048 // G + 1), 33, dtype, True)):
        x, packed, s, u, b = make_problem(kind, M, K, N, "group", G, dtype=dtype, device="cuda", offset=offset)
        s = s.to(sdtype)
        u = None if u is None else u.to(sdtype)
        y, names = tensorcore_against_reference(kind, x, packed, s, u, b)
        if profiler_sees_kernels():
            # block-diagonal to M = 2, and int2 at M = 3, 4 (tc_grouped_bd_two_tiles)
            assert any("tc_linear_bd_kernel" in n for n in names) == (M <= 2 or (M <= 4 and kind == "int2")), (M, names)
        with bitmm.use_backend("auto"):  # group-wise, auto takes the tensor-core kernel from M = 2
            names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
            if M >= 2:
                assert torch.equal(bitmm.linear(kind, x, packed, s, u, b), y)
        if profiler_sees_kernels():
            assert any("tc_linear" in n for n in names) == (M >= 2), (M, names)


# The block-diagonal path (M = 1, 2) on long K (tc_launch_rules.h, tc_bd_long_k, sessions 20-21 and 59):
# N = 64 x SMs + 7 (odd; ~2 32-row CTAs per SM), K = 64 x 257: binary two warps along N (32-row CTAs),
# ternary / int2 one warp along N with the K tile capped (since session 59 at 8192 inputs with a 3-slot
# ring; x restaged per K tile, a last tile of one load step); M = 1 fp16 x with fp16 scales, M = 2 bf16 x
# with fp32 scales (the block-diagonal kernel is built per scale dtype); int2 also at K = 64 x 449, M = 2;
# ternary / int2 at M = 1 also on N = 96 x SMs + 7 (~3 per SM: two warps along N; K whole before session
# 59, capped since); against the float64 reference, outputs poisoned.
@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_block_diagonal_long_k_two_warps_along_n(kind):
    from test_wgmma import profiler_sees_kernels
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    cases = [(1, 64 * 257, torch.float16, torch.float16), (2, 64 * 257, torch.bfloat16, torch.float32)]
    cases = [c + (64 * sms + 7,) for c in cases]
    if kind == "int2":
        cases.append((2, 64 * 449, torch.float16, torch.float16, 64 * sms + 7))
    if kind != "binary":
        cases.append((1, 64 * 257, torch.float16, torch.float16, 96 * sms + 7))
    for M, K, dtype, sdtype, N in cases:
        x, packed, s, u, b = make_problem(kind, M, K, N, "group", 64, dtype=dtype, device="cuda")
        s = s.to(sdtype)
        u = None if u is None else u.to(sdtype)
        _, names = tensorcore_against_reference(kind, x, packed, s, u, b)
        # (on 16-63 SMs these shapes are mid-sized layers, where ternary / binary fold with fp16 x: tc27)
        folds = dtype == torch.float16 and kind != "int2" and 2 ** 24 <= K * N <= 2 ** 26
        if profiler_sees_kernels() and not folds:
            assert any("tc_linear_bd_kernel" in n for n in names), (M, names)


def check_block_diagonal_m1_wide_n_long_k(kind, sdtype, capped):
    """The block-diagonal kernel at M = 1, K = 16384, N = 64 x 5 x SMs + 7 (odd), g64, fp16 x with `sdtype` scales,
    against the float64 reference in slices of 4096 rows (the whole dense weight would be ~5.6 GB), outputs
    poisoned; and its grid: one CTA per 64-row tile where the K tile is `capped` (x in several K tiles), fewer
    (persistent CTAs, each walking more than one row tile) where x is whole."""
    from test_wgmma import kernel_grids, profiler_sees_kernels
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    K, N = 16384, 64 * 5 * sms + 7
    x, packed, s, u, b = make_problem(kind, 1, K, N, "group", 64, dtype=torch.float16, device="cuda")
    s = s.to(sdtype)
    u = None if u is None else u.to(sdtype)
    tensorcore_against_reference(kind, x, packed, s, u, b, rows_per_check=4096)
    if profiler_sees_kernels():
        with bitmm.use_backend("tensorcore"):
            launched = kernel_grids(lambda: bitmm.linear(kind, x, packed, s, u, b))
        grids = [g for n, g in launched if "tc_linear_bd_kernel" in n]
        tiles = 5 * sms + 1  # 64-row tiles (all 4 warps along N)
        assert len(grids) == 1 and grids[0][0] == 1, grids
        assert grids[0][1] == tiles if capped else grids[0][1] < tiles, (capped, grids, tiles)


# The block-diagonal path at M = 1 on wide N (all 4 warps along N) and K = 16384, ternary and int2 (binary keeps its
# own warp split), fp16 and fp32 scales (the kernel is built per scale dtype), N wide enough that with x whole every
# persistent CTA walks more than one row tile.  Two launches, each with its grid checked: the launcher's own (since
# session 59, tc_bd_long_k: the K tile capped at 8192 with a 3-slot ring, x in two K tiles) and, in a child with
# BITMM_TC_KT_MAX=1000000 (no cap), x of K = 16384 in one K tile with persistent CTAs, where the ring-depth rule gives
# up slots for resident CTAs (session 58, H100: 2 slots at 4 CTAs per SM, ~126-128 registers).
@cuda_only
@pytest.mark.parametrize("uncapped", [False, True])
@pytest.mark.parametrize("sdtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("kind", ["ternary", "int2"])
def test_tensorcore_block_diagonal_m1_wide_n_long_k(kind, sdtype, uncapped):
    if not uncapped:
        return check_block_diagonal_m1_wide_n_long_k(kind, sdtype, capped=True)
    run_in_child("import torch\nfrom test_tensorcore import check_block_diagonal_m1_wide_n_long_k\n"
                 f"check_block_diagonal_m1_wide_n_long_k({kind!r}, torch.{str(sdtype).split('.')[-1]}, False)\n",
                 BITMM_TC_KT_MAX="1000000")


# Auto at M = 1 with group-wise scales (csrc/cuda/linear_cuda.cpp, use_tensor_core; tc_kernels.h,
# tc_bd_wide): the block-diagonal tensor-core path for the two-plane kinds once N gives at least 3
# CTAs of 64 rows per SM (all 4 warps along N; int2 with fp16 x only), or with fp16 x where K <= 8192
# and N gives 3 16-row tiles per SM (tc14); binary with fp16 x from 3 64-row tiles per SM (session 15,
# its own warp split); since session 20 every kind with fp16 x where K > 8192 and N gives every SM a
# 16-row tile; the add/subtract kernel for bf16 binary, bf16 int2 and below those widths.  Both sides
# of each boundary, both dtypes, with and without an offset.
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_auto_grouped_m1_wide_rows_take_block_diagonal_path(kind, dtype):
    from test_wgmma import kernel_names, profiler_sees_kernels
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    wide = 3 * 64 * sms
    # auto's M = 1 rule (linear_cuda.cpp use_tensor_core): two-plane kinds take the block-diagonal
    # path where N has >= 3 64-row tiles per SM (fp16, and ternary with bf16), or, fp16 only, where
    # K <= 8192 and N has >= 3 16-row tiles per SM; binary with fp16 x where N has >= 3 64-row
    # tiles per SM (session 15); each boundary from both sides.
    # (K = 160 is one load step, so the launcher's second pass puts all warps along N at every N: this
    # checks auto's routing and the fused LoRA terms, not the warp split; the tc12 probe measured that.)
    # Since session 20 every kind with fp16 x where K > 8192 and N gives every SM a 16-row tile.
    cases = [(160, wide - 64, True), (160, wide - 63, True), (160, wide + 63, kind != "ternary"),
             (160, 48 * sms - 16, True), (160, 48 * sms - 15, True), (8192, 48 * sms, True),
             (65536 + 32, 16 * sms - 16, False), (65536 + 32, 16 * sms - 15, True)]
    # (K = 65568 keeps K x N above tc27's mid-sized range at both sides of that N boundary on >= 66 SMs)
    if kind == "int2" and dtype == torch.float16:  # two warps along N (tc_bd_two_warps_n), fused LoRA too
        cases.append((16384, 64 * sms + 7, True))
    for K, N, offset in cases:
        x, packed, s, u, b = make_problem(kind, 1, K, N, "group", 32, dtype=dtype, device="cuda", offset=offset)
        poison_cuda_allocator()
        with bitmm.use_backend("auto"):
            names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
            y = bitmm.linear(kind, x, packed, s, u, b)
        assert_close_to_reference(kind, y, x, packed, s, u, b)
        fp16 = dtype == torch.float16
        wide_n = (N + 63) // 64 >= wide // 64
        mid = 2 ** 24 <= K * N <= 2 ** 26  # tc27: fp16 x on mid-sized layers takes the tensor-core kernel ...
        expect_tc = (kind != "binary" and (
            (kind == "ternary" or fp16) and wide_n or
            fp16 and K <= 8192 and (N + 15) // 16 >= 3 * sms)) or (kind == "binary" and fp16 and wide_n) or \
            (fp16 and K > 8192 and (N + 15) // 16 >= sms) or (fp16 and mid)
        expect_bd = expect_tc and not (fp16 and mid and kind != "int2")  # ... folding for ternary / binary
        with bitmm.use_backend("tensorcore" if expect_tc else "addsub"):
            assert torch.equal(bitmm.linear(kind, x, packed, s, u, b), y), (N, expect_tc)
        if profiler_sees_kernels():
            assert any("tc_linear_bd_kernel" in n for n in names) == expect_bd, (N, names)
            assert any("tc_linear_kernel" in n for n in names) == (expect_tc and not expect_bd), (N, names)
        # Fused LoRA on the same path (the launcher's LoRA terms; all 4 warps along N at K = 160, two at
        # the K = 16384 case).
        a = torch.randn(8, K, device="cuda", dtype=dtype) * 0.1
        lb = torch.randn(N, 8, device="cuda", dtype=dtype) * 0.1
        with bitmm.use_backend("auto"):
            names = kernel_names(lambda: bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5))
            got = bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5)
        base = reference.linear(kind, x.cpu().double(), packed.cpu(), s.cpu().double(),
                                None if u is None else u.cpu().double(), b.cpu().double())
        want = base + 0.5 * (x.cpu().double() @ a.cpu().double().T) @ lb.cpu().double().T
        assert rel_err(got, want) < {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype], (N, rel_err(got, want))
        if profiler_sees_kernels():
            assert any("tc_linear_bd_kernel" in n for n in names) == expect_bd, (N, names)


# Group-wise M <= 2 on mid-sized layers (tc27, tc_grouped_small_m_fold: 2^24 .. 2^26 weights): ternary and
# binary with fp16 x on the folding path (CM = 1), int2 and bf16 x on the block-diagonal one; each side of
# both boundaries (4096 x 4096 = 2^24, 8192 x 8193 > 2^26 with K = 8192 on one side), odd N, against the
# float64 reference, which kernel ran, and auto's M = 1 choice (the tensor-core kernel there for fp16 x).
@cuda_only
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_mid_layer_small_m_fold(kind, dtype, M):
    from test_wgmma import kernel_names, profiler_sees_kernels
    fp16 = dtype == torch.float16
    for K, N in ((4096, 4096), (4096, 4095), (8192, 8191), (8192, 8193)):
        x, packed, s, u, b = make_problem(kind, M, K, N, "group", 64, dtype=dtype, device="cuda")
        y, names = tensorcore_against_reference(kind, x, packed, s, u, b)
        mid = 2 ** 24 <= K * N <= 2 ** 26
        fold = fp16 and mid and kind != "int2"
        if profiler_sees_kernels():
            assert any("tc_linear_bd_kernel" in n for n in names) == (not fold), (K, N, names)
            assert any(tc_tile_config(n) == ("1", "1") for n in names) == fold, (K, N, names)
        if M == 1 and fp16 and mid:
            with bitmm.use_backend("auto"):
                names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
                assert torch.equal(bitmm.linear(kind, x, packed, s, u, b), y)
            if profiler_sees_kernels():
                assert any("tc_linear" in n for n in names), (K, N, names)


@cuda_only
@pytest.mark.parametrize("M", [2, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_decode_exact_and_nonfinite(kind, M):
    # Block-diagonal path (one and two activation tiles; ternary / binary at M = 4: the folding path, tc26),
    # exact where the math is: small integer x,
    # unit group scales and a zero offset give the float64 product bit for bit.  Then a NaN in row
    # M - 2 of x (the first row of the last tile) poisons that row only.
    K, N = 64 * 31, 75
    v = random_values(kind, N, K, "cuda")
    packed = PACKERS[kind](v)
    x = torch.randint(-3, 4, (M, K), device="cuda").half()
    w = {"ternary": v.float(), "binary": v.float(), "int2": v.float() - 1}[kind]
    s = torch.ones(N, K // 64, device="cuda", dtype=torch.float16)
    u = torch.zeros_like(s)
    with bitmm.use_backend("tensorcore"):
        y = bitmm.linear(kind, x, packed, s, u)
        assert torch.equal(y.double(), (x.double() @ w.double().T).half().double())
        x[M - 2, 5] = float("nan")
        y = bitmm.linear(kind, x, packed, s, u)
    nan_row = torch.arange(M, device="cuda") == M - 2
    assert torch.isnan(y[nan_row]).all() and torch.isfinite(y[~nan_row]).all()


@cuda_only
@pytest.mark.parametrize("M", [1, 2, 4, 5, 16, 40])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_strided_and_mixed_scales(kind, M):
    # The group-wise scale loads (load_scales: per-tile row pointers at one 16-row tile per warp,
    # M <= 8, the block-diagonal path at M <= 4; 32-bit row offsets at two 16-row tiles, M = 16 / 40) and their L2
    # prefetch on scales as the glue passes them, strides and all: a transposed (N, groups) view ((G, N) storage,
    # group stride N, which the prefetch skips: tc50's prefetch by group was reverted in session 47; N = 45, a
    # partial row tile), a per-channel s of shape (N, 1) or a 0-dim s beside a group-wise u (group stride 0).
    x, packed, s, u, b = make_problem(kind, M, 640, 45, "group", 64, dtype=torch.float16, device="cuda")
    cases = [(s.t().contiguous().t(), u.t().contiguous().t()), (s[:, :1].contiguous(), u),
             (torch.tensor(0.02, device="cuda", dtype=torch.float16), u)]
    with bitmm.use_backend("tensorcore"):
        for sc, uc in cases:
            poison_cuda_allocator()
            assert_close_to_reference(kind, bitmm.linear(kind, x, packed, sc, uc, b), x, packed, sc, uc, b)


def run_grouped_cases_in_child(prelude: str, cases: str, check: str, **env_vars) -> None:
    """Group-wise problems through the tensor-core backend in a child process with `env_vars` set (the
    launch overrides are read once per process): every kind, fp16 and bf16 x, `cases` a Python tuple
    of (M, K, N, G, scale dtype, offset) in terms of `kind` and `dtype`, outputs poisoned, each against
    the float64 reference; then `check` (a statement on `names`, the kernels that ran, and M) where the
    profiler sees kernels.  `prelude`: code run first (constants, helpers)."""
    code = (
        "import torch, bitmm\n"
        "from helpers import make_problem, assert_close_to_reference, poison_cuda_allocator\n"
        "from test_wgmma import kernel_names, profiler_sees_kernels\n"
        f"{prelude}\n"
        "torch.manual_seed(0)\n"
        "for kind in ('int2', 'binary', 'ternary'):\n"
        "    for dtype in (torch.float16, torch.bfloat16):\n"
        f"        for M, K, N, G, sd, off in {cases}:\n"
        "            x, p, s, u, b = make_problem(kind, M, K, N, 'group', G, dtype=dtype, device='cuda', offset=off)\n"
        "            s = s.to(sd)\n"
        "            u = None if u is None else u.to(sd)\n"
        "            poison_cuda_allocator()\n"
        "            with bitmm.use_backend('tensorcore'):\n"
        "                names = kernel_names(lambda: bitmm.linear(kind, x, p, s, u, b))\n"
        "                y = bitmm.linear(kind, x, p, s, u, b)\n"
        "            assert_close_to_reference(kind, y, x, p, s, u, b)\n"
        "            if profiler_sees_kernels():\n"
        f"                {check}\n")
    run_in_child(code, **env_vars)


@cuda_only
@pytest.mark.parametrize("bd", ["0", "2", "4"])
def test_tensorcore_grouped_block_diagonal_limit_override(bd):
    # BITMM_TC_BD=0 / 2 / 4: the block-diagonal path up to M = 0 (never), 2 or 4 rows of x for every kind,
    # the folding path above, so the folding kernel at M <= 2 and int2's at M = 3, 4 (which the default
    # does not run) and the block-diagonal kernel of ternary / binary at M = 3, 4 (likewise) stay checked.
    # Scales in x's dtype with offsets and fp32 without (ternary), odd K / N, x in one K tile and in
    # several, and which kernel ran.
    cases = ("((1, 64 * 11, 77, 64, dtype, True), (3, 32 * 23, 45, 32, dtype, True), "
             "(4, 128 * 7, 130, 128, torch.float32, kind != 'ternary'), (5, 64 * 900, 33, 64, dtype, True), "
             "(8, 96 * 5, 40, 96, dtype, True))")
    check = ("bd = any('tc_linear_bd_kernel' in n for n in names); "
             "assert bd == (M <= LIMIT) and (bd or any('tc_linear_kernel' in n for n in names)), (kind, M, names)")
    run_grouped_cases_in_child(f"LIMIT = {bd}", cases, check, BITMM_TC_BD=bd)


@cuda_only
@pytest.mark.parametrize("rn", ["1", "2"])
def test_tensorcore_grouped_row_tile_override(rn):
    # BITMM_TC_RN=1 / 2: group-wise M = 9..16 on one (RN = 1, CM = 2) or two 16-row weight tiles per
    # warp, whichever the rule does not pick for the kind (binary takes RN = 1, the others RN = 2), so
    # both kernels run.  Scales in x's dtype with offsets and fp32 without (ternary), odd K / N, the M
    # boundaries, x in one K tile and in several; M = 8 and 17 next to it (unaffected), and which
    # kernel ran.
    prelude = f"RN = '{rn}'\nfrom test_tensorcore import tc_tile_config as tile_config"
    cases = ("((9, 64 * 11, 77, 64, dtype, True), (16, 32 * 23, 45, 32, dtype, True), "
             "(13, 128 * 7, 130, 128, torch.float32, kind != 'ternary'), (16, 64 * 900, 33, 64, dtype, True), "
             "(8, 64 * 5, 40, 64, dtype, True), (17, 64 * 5, 40, 64, dtype, True))")
    check = "assert any(tile_config(n) == (RN, '2') for n in names) == (9 <= M <= 16), (kind, M, names)"
    run_grouped_cases_in_child(prelude, cases, check, BITMM_TC_RN=rn)


# Group-wise scale / offset loads of the RN = 2 kernels (M = 9..32; CM = 8 keeps 64 bits): 32-bit byte offsets from the row
# tile's first row (tc21), and the 64-bit path kept for offsets past 2^31 bytes, forced here by
# BITMM_TC_SCALE_OFF64=1; contiguous and column-major (stride (1, N)) scales and offsets, fp16 / fp32,
# odd N, N not a multiple of the 128-row tile (rows past N clamp to row N - 1).
@cuda_only
@pytest.mark.parametrize("off64", ["0", "1"])
def test_tensorcore_grouped_two_row_tile_scale_offsets(off64):
    prelude = ("from test_tensorcore import tc_tile_config as tile_config\n"
               "SMS = torch.cuda.get_device_properties(0).multi_processor_count\n"
               "_mk = make_problem\n"
               "def make_problem(*a, **k):\n"
               "    x, p, s, u, b = _mk(*a, **k)\n"
               "    if a[1] % 2:  # odd M: column-major s and u\n"
               "        s = s.t().contiguous().t()\n"
               "        u = None if u is None else u.t().contiguous().t()\n"
               "    return x, p, s, u, b\n")
    # (K a multiple of G: group-wise scales need it; N odd and not a multiple of the 128-row tile)
    # The last case: all 4 warps along N (128-row tiles; 3 per SM and 77 rows more), more tiles than
    # resident CTAs (each walks several row tiles: s_tile / srel per tile), fp32 column-major scales.
    cases = ("((13, 64 * 17, 301, 64, dtype, True), (16, 128 * 9, 203, 128, torch.float32, True), "
             "(11, 64 * 13, 130, 64, dtype, False), (24, 32 * 29, 77, 32, dtype, True), "
             "(13, 64 * 5, 3 * 128 * SMS + 77, 64, torch.float32, True))")
    check = ("assert kind == 'binary' and M <= 16 or any(tile_config(n) is not None and tile_config(n)[0] == '2' "
             "for n in names), (kind, M, names)")
    run_grouped_cases_in_child(prelude, cases, check, BITMM_TC_SCALE_OFF64=off64)


# (RN, CM) of a tc_linear_kernel from its demangled or mangled name, or None.
def tc_tile_config(name):
    import re
    m = re.search(r"tc_linear_kernel<[^>]*,\s*(?:\(int\))?(\d+),\s*(?:\(int\))?(\d+)>", name) or \
        re.search(r"tc_linear_kernelI\w*?ELi(\d+)ELi(\d+)EEE", name)
    return m.groups() if m else None


def test_tc_tile_config_reads_kernel_names():
    assert tc_tile_config("void bitmm::cuda::tc_linear_kernel<__half, 3, true, 1, 2>(bitmm::cuda::LinearParams, int)") == ("1", "2")
    assert tc_tile_config("void bitmm::cuda::tc_linear_kernel<__half, (int)3, (bool)1, (int)2, (int)2>(P)") == ("2", "2")
    assert tc_tile_config("_ZN5bitmm4cuda16tc_linear_kernelI6__halfLi3ELb1ELi1ELi2EEEvNS0_12LinearParamsEiii") == ("1", "2")
    assert tc_tile_config("void bitmm::cuda::tc_linear_bd_kernel<__half, 3, 1, 2>(P)") is None


def check_per_tensor_tile_config(kind, dtype, mode, M, K, N, want):
    """Per tensor / channel problem through the tensor-core backend, outputs poisoned, against the
    float64 reference; where the profiler sees kernels, a tc_linear_kernel of (RN, CM) = want ran
    (`want`: a tuple, or a function of the GPU's SM count giving one)."""
    from test_wgmma import profiler_sees_kernels
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, None, dtype=dtype, device="cuda")
    _, names = tensorcore_against_reference(kind, x, packed, s, u, b)
    if profiler_sees_kernels():
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count
        w = want(sms) if callable(want) else want
        assert any(tc_tile_config(n) == w for n in names), (kind, dtype, M, K, N, w, names)


def run_per_tensor_cases_in_child(cases, want, **env_vars):
    """check_per_tensor_tile_config over every kind, fp16 and bf16, and `cases` ((M, K, N, mode), ...),
    in a child process with `env_vars` set (the launch overrides are read once per process); `want`:
    a Python expression in M and K for the (RN, CM) expected."""
    code = ("import torch\n"
            "from test_tensorcore import check_per_tensor_tile_config\n"
            "torch.manual_seed(0)\n"
            "for kind in ('int2', 'binary', 'ternary'):\n"
            "    for dtype in (torch.float16, torch.bfloat16):\n"
            f"        for M, K, N, mode in {cases!r}:\n"
            f"            check_per_tensor_tile_config(kind, dtype, mode, M, K, N, {want})\n")
    run_in_child(code, **env_vars)


# Per tensor / channel M <= 8 where x spans several K tiles: two 16-row tiles per warp, one activation
# tile (RN = 2, CM = 1; fp16 ternary: CM = 2), so each CTA restages x for 128 weight rows (tc18); where
# x fits in one K tile (and N = 301 is too narrow for the rule's other cases), one 16-row tile
# (RN = CM = 1).  x spans several K tiles (112 KB less the deepest ring, 24 KB) at K = 6007 from M = 6
# (two-plane) or 7 (binary) on, at K = 12001 from M = 3 or 4 on: here M = 8, and M >= 4.  Odd K and N,
# offsets and bias.
@cuda_only
@pytest.mark.parametrize("K", [6007, 12001])
@pytest.mark.parametrize("M", [2, 4, 5, 8])
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_small_m_long_k_two_row_tiles(kind, dtype, mode, M, K):
    if M >= (8 if K == 6007 else 4):
        want = ("2", "2") if kind == "ternary" and dtype == torch.float16 else ("2", "1")
    else:
        want = ("1", "1")
    check_per_tensor_tile_config(kind, dtype, mode, M, K, 301, want)


# ... and on wide N (a 128-row tile per SM: N = 17001 has 133): CM = 1 for fp16 ternary too (session 19:
# since tc19 / tc20 it beats CM = 2 there).  x split (K = 12001, M = 5).
@cuda_only
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_x_split_wide_n_one_activation_tile(kind, dtype):
    def want(sms):
        narrow = (17001 + 127) // 128 < sms
        return ("2", "2") if narrow and kind == "ternary" and dtype == torch.float16 else ("2", "1")
    check_per_tensor_tile_config(kind, dtype, "tensor", 5, 12001, 17001, want)


# Per tensor / channel M <= 3 on short K, N giving every SM two 32-row CTAs: two warps along N (tc28,
# tc_per_tensor_two_warps_n; the rule's table is in test_tc_launch_rules.py), one 16-row tile per warp.  N is
# odd and set from the GPU's SM count.  (M, K): the rule's K bounds (M = 1: 8192; M = 2, 3: 6144 for ternary /
# int2, where binary keeps one warp along N; 4095: every kind), x in one K tile and not "big" in all of them.
# The kernel's name gives RN and CM; WN shows in its grid: 2 x SMs 32-row CTAs along y (one warp along N would
# launch 4 x SMs 16-row CTAs, the per tensor kernel holding 6 per SM), and binary at M = 2, 3 on K = 6144 keeps
# one warp along N.
@cuda_only
@pytest.mark.parametrize("M,K", [(1, 4095), (1, 8192), (2, 4095), (3, 4095), (2, 6144), (3, 6144)])
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_small_m_two_warps_along_n(kind, dtype, mode, M, K):
    from test_wgmma import kernel_grids, profiler_sees_kernels
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    N = 32 * 2 * sms - 7
    check_per_tensor_tile_config(kind, dtype, mode, M, K, N, ("1", "1"))
    if profiler_sees_kernels():
        x, packed, s, u, b = make_problem(kind, M, K, N, mode, None, dtype=dtype, device="cuda")
        with bitmm.use_backend("tensorcore"):
            grids = [g for n, g in kernel_grids(lambda: bitmm.linear(kind, x, packed, s, u, b)) if "tc_linear_kernel" in n]
        two_warps = not (kind == "binary" and K > 4096 and M > 1)
        assert grids and grids[0][1] == (2 if two_warps else 4) * sms, (kind, M, K, grids)


# Per tensor / channel M = 17..64 (CM = 4, 8; RN = 2) with 4096 <= K <= 8192 on N with >= 1.5 128-row tiles per SM:
# all four warps along N (tc38, tc_per_tensor_wide_four_warps_n; its table is in test_tc_launch_rules.py), i.e.
# ceil(N / 128) CTAs along y; one 128-row tile less per SM and the launcher's floor of 2 CTAs per SM picks two warps
# along N (ceil(N / 64) CTAs; binary at M >= 33 keeps four either way).  x never fits one K tile here (no persistent
# grid), so the grid's y is the row tiles.  N odd, from the GPU's SM count.
@cuda_only
@pytest.mark.parametrize("M", [17, 33, 56])
@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_m17_64_wide_n_four_warps_along_n(kind, dtype, wide, M):
    from test_wgmma import kernel_grids, profiler_sees_kernels
    if not profiler_sees_kernels():
        pytest.skip("needs the profiler's kernel grids")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    N = 128 * (-(-3 * sms // 2)) - 5 - (0 if wide else 128)
    x, packed, s, u, b = make_problem(kind, M, 4096, N, "tensor", None, dtype=dtype, device="cuda")
    with bitmm.use_backend("tensorcore"):
        grids = [g for n, g in kernel_grids(lambda: bitmm.linear(kind, x, packed, s, u, b)) if "tc_linear_kernel" in n]
    four = wide or (kind == "binary" and M >= 33)
    assert grids and grids[0][1] == -(-N // (128 if four else 64)), (kind, dtype, wide, M, N, grids)


# Per tensor / channel M = 3, 4 with x in one K tile: RN = 2, CM = 1 where N gives every SM a 128-row
# tile (every kind and dtype), else one 16-row tile; M = 2 keeps one tile.  Odd N.
@cuda_only
@pytest.mark.parametrize("N", [1001, 17001])
@pytest.mark.parametrize("M", [2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_m3_4_wide_n_two_row_tiles(kind, dtype, M, N):
    check_per_tensor_tile_config(kind, dtype, "channel", M, 333, N,
                                 lambda sms: ("2", "1") if M >= 3 and (N + 127) // 128 >= sms else ("1", "1"))


# Per tensor / channel M = 3 with x large (K = 9001: 67 KB, half the budget or more) but in one K tile:
# RN = 2 where N gives every SM a 32-row CTA (CM = 2 for fp16 ternary, N being narrow for 128-row
# tiles), else one tile.
@cuda_only
@pytest.mark.parametrize("N", [1001, 5001])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_per_tensor_large_x_two_row_tiles(kind, dtype, N):
    def want(sms):
        if (N + 31) // 32 < sms:
            return ("1", "1")
        return ("2", "2") if kind == "ternary" and dtype == torch.float16 and (N + 127) // 128 < sms else ("2", "1")
    check_per_tensor_tile_config(kind, dtype, "channel", 3, 9001, N, want)


# BITMM_TC_M8=0 / 1 / 2: x split on the one-tile configuration (RN = CM = 1), M = 9..16's (RN = CM = 2)
# or RN = 2, CM = 1 for every kind, so each runs for every kind and dtype; and K = 1000 (x small, N
# narrow: RN = CM = 1 whatever the knob).
@cuda_only
@pytest.mark.parametrize("m8", ["0", "1", "2"])
def test_tensorcore_per_tensor_m5_8_override(m8):
    want = {"0": ("1", "1"), "1": ("2", "2"), "2": ("2", "1")}[m8]
    run_per_tensor_cases_in_child(((5, 9001, 77, "tensor"), (8, 9001, 77, "channel"), (7, 1000, 77, "channel")),
                                  f"('1', '1') if K == 1000 else {want!r}", BITMM_TC_M8=m8)


# Group-wise M = 5..8 on the folding path with x in several K tiles and N wide enough for two warps
# along N (the launch rule of session 17: WN = 2 there): odd N, group sizes 64 and 96.
@cuda_only
@pytest.mark.parametrize("M", [5, 8])
@pytest.mark.parametrize("G", [64, 96])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_m5_8_long_k_wide_n(kind, dtype, G, M):
    x, packed, s, u, b = make_problem(kind, M, G * 144, 4229, "group", G, dtype=dtype, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


# Group-wise M = 5..8 (tc25, tc_grouped_mid_m_two_tiles): the two-activation-tile configuration of
# M = 9..16 (CM = 2; RN = 2, binary RN = 1) where N has >= 1/3 128-row tiles per SM (binary: 1.5), else
# one activation tile (RN = CM = 1); each side of the boundary, odd N and K, which kernel ran.
@cuda_only
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("M", [5, 8])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_tensorcore_grouped_m5_8_activation_tiles(kind, dtype, M, wide):
    from test_wgmma import kernel_names, profiler_sees_kernels
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    tiles = (3 * sms + 1) // 2 if kind == "binary" else (sms + 2) // 3  # the fewest that take CM = 2
    N = 128 * (tiles - 1) + (1 if wide else -27)
    x, packed, s, u, b = make_problem(kind, M, 64 * 7 + 64 * (kind != "binary"), N, "group", 64, dtype=dtype,
                                      device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("tensorcore"):
        names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)
    if profiler_sees_kernels():
        want = ("1" if kind == "binary" else "2", "2") if wide else ("1", "1")
        assert any(tc_tile_config(n) == want for n in names), (kind, M, N, want, names)


# BITMM_TC_FOLD_CM=1 / 2 (benchmark override): group-wise M = 5..8 on the configuration the rule does
# not pick for these shapes (narrow N: CM = 2; wide N: CM = 1); M = 4 and 9 next to it (unaffected: M = 4
# is the block-diagonal path for int2, CM = 1 for the others, tc26; M = 9 CM = 2).
@cuda_only
@pytest.mark.parametrize("cm", ["1", "2"])
def test_tensorcore_grouped_m5_8_activation_tiles_override(cm):
    prelude = (f"CM = '{cm}'\nfrom test_tensorcore import tc_tile_config as tile_config\n"
               "SMS = torch.cuda.get_device_properties(0).multi_processor_count\n"
               "NW = 128 * ((3 * SMS + 1) // 2) + 5")
    cases = "((5, 64 * 9, 77 if CM == '2' else NW, 64, dtype, True), (8, 96 * 5, 130 if CM == '2' else NW, 96, torch.float32, False), " \
            "(4, 64 * 5, 77, 64, dtype, True), (9, 64 * 5, 77, 64, dtype, True))"
    check = ("assert any(tile_config(n) is not None and tile_config(n)[1] == CM for n in names) "
             "== (5 <= M <= 8 or (M == 9 and CM == '2') or (M == 4 and kind != 'int2' and CM == '1')), (kind, M, names)")
    run_grouped_cases_in_child(prelude, cases, check, BITMM_TC_FOLD_CM=cm)


# BITMM_TC_RN2_FROM=1 (benchmark override): per tensor / channel M = 1..4 on the two-row-tile
# configurations too (RN = 2; CM = 1, or CM = 2 with BITMM_TC_M8=1), x in one K tile and in several,
# odd K / N, which kernel ran.
@cuda_only
@pytest.mark.parametrize("m8", ["2", "1"])
def test_tensorcore_per_tensor_small_m_two_row_tiles_override(m8):
    run_per_tensor_cases_in_child(((1, 1000, 77, "tensor"), (2, 3001, 301, "channel"), (3, 700, 45, "channel"),
                                   (4, 12001, 130, "tensor")),
                                  repr(("2", "1" if m8 == "2" else "2")), BITMM_TC_RN2_FROM="1", BITMM_TC_M8=m8)
