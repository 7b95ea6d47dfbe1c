"""Which CPU forward kernel runs, and that the AVX-512 and AVX2 kernels give the same bits.

The AVX2 kernel (csrc/cpu/forward_avx2.cpp, vpshufb on byte-plane tables) and the AVX-512 one
(forward_avx512.cpp, vpermd on fp32 tables) add the same table entries in the same order and scale
with the same operations, so their outputs must be bitwise equal; BITMM_CPU_ISA=avx2 (read once per
process) keeps the AVX2 kernel on an AVX-512 machine, so a child process gives the AVX2 bits.  Each
kernel runs in a named profiler scope (bitmm::cpu_forward_{avx512,avx512_prepacked,avx2,avx2_prepacked,generic}).
Both SIMD kernels also read a cpu_prepack blob in place of the packed words (cpu_prepacked_linear): the same bits.
"""
import os

import pytest
import torch

import bitmm
from bitmm import formats
from helpers import AVX512, expected_cpu_kernel, kernels_run, make_problem, run_in_child

# (BITMM_CPU_ISA=avx2 / generic keep this process off the AVX-512 kernel)
needs_avx512 = pytest.mark.skipif(not AVX512 or os.environ.get("BITMM_CPU_ISA") in ("avx2", "generic"),
                                  reason="no AVX-512 on this CPU (or BITMM_CPU_ISA limits the kernels)")


def _entry(kind, K, prepacked):
    kid = formats.KINDS[kind]
    if not prepacked:
        return lambda x, p, s, u, b: bitmm.linear(kind, x, p, s, u, b)
    return lambda x, p, s, u, b: torch.ops.bitmm.cpu_prepacked_linear(
        x, p, torch.ops.bitmm.cpu_prepack(p, kid, K), s, u, b, kid)


def test_cpu_forward_kernel_name_is_the_kernel_that_runs():
    x, p, s, u, b = make_problem("ternary", 3, 192, 70, "group", 64)
    name = torch.ops.bitmm._cpu_forward_kernel()
    assert name == expected_cpu_kernel(3, False, 64, torch.float32, os.environ.get("BITMM_CPU_ISA")).split("_")[-1]
    assert kernels_run(lambda: bitmm.linear("ternary", x, p, s, u, b)) == {f"bitmm::cpu_forward_{name}"}


@pytest.mark.parametrize("prepacked", [False, True])
@pytest.mark.parametrize("M", [1, 2, 17])
@pytest.mark.parametrize("G,x_dtype", [(None, torch.float32), (64, torch.float16), (48, torch.float32),
                                       (None, torch.float64)])
def test_cpu_forward_kernel_choice(M, prepacked, G, x_dtype):
    K, N = 192, 70
    x, p, s, u, b = make_problem("ternary", M, K, N, "group" if G else "channel", G, dtype=x_dtype)
    want = expected_cpu_kernel(M, prepacked, G, x_dtype, os.environ.get("BITMM_CPU_ISA"))
    assert kernels_run(lambda: _entry("ternary", K, prepacked)(x, p, s, u, b)) == {want}


# Cases of the bitwise comparison: every kind and scale mode, odd N (partial 64- and 32-row tiles),
# K with a partial block and a multi-tile K (4096: two K tiles at M = 1, more at M = 65), M across
# the activation-row chunks (65 = 64 + 1).
# K = 100: a partial last block; G = 2048: a K tile longer than 64 blocks; M = 129: three row chunks.
# With a blob (32-row tiles, two per 64-row tile): N = 100 ends in a partial second tile, N = 37 / 129 in
# a first one alone, N = 64 in two whole ones.  K = 2688 at M = 1, G = 32: K tiles of 64 and 20 groups (the
# AVX-512 scale gather's 16 x 16 transposes and a remainder of 4 groups).
_CASES = [(kind, mode, G, M, K, N) for kind in ("binary", "ternary", "int2")
          for mode, G in (("tensor", None), ("channel", None), ("group", 32), ("group", 64), ("group", 256),
                          ("group", 2048))
          for M, K, N in ((1, 4096, 100), (3, 96, 37), (17, 256, 129), (65, 4096, 64), (2, 100, 1), (129, 4096, 3),
                          (1, 2688, 70))
          if G is None or K % G == 0]

_CHILD = """
import torch, bitmm
from bitmm import formats
from helpers import make_problem
from test_cpu_kernels import _CASES
outs = []
for i, (kind, mode, G, M, K, N) in enumerate(_CASES):
    torch.manual_seed(i)
    x, p, s, u, b = make_problem(kind, M, K, N, mode, G)
    outs.append(bitmm.linear(kind, x, p, s, u, b))
torch.save(outs, {path!r})
"""


def _avx2_child_outputs(tmp_path, child_code):
    """The outputs a BITMM_CPU_ISA=avx2 child saves (child_code has a {path!r} field)."""
    path = str(tmp_path / "avx2.pt")
    run_in_child(child_code.format(path=path), BITMM_CPU_ISA="avx2")
    return torch.load(path)


@needs_avx512
def test_avx512_kernel_equals_avx2_bitwise(tmp_path):
    theirs = _avx2_child_outputs(tmp_path, _CHILD)
    assert len(theirs) == len(_CASES) >= 50
    for i, (kind, mode, G, M, K, N) in enumerate(_CASES):
        torch.manual_seed(i)
        x, p, s, u, b = make_problem(kind, M, K, N, mode, G)
        y = None

        def call():
            nonlocal y
            y = bitmm.linear(kind, x, p, s, u, b)
        ran = kernels_run(call)
        assert ran == {"bitmm::cpu_forward_avx512"}, (kind, mode, G, M, K, N, ran)
        assert torch.equal(y.view(torch.int32), theirs[i].view(torch.int32)), (kind, mode, G, M, K, N)
        # the blob read in place: lanes in the blob's row order, the same additions per row
        kid = formats.KINDS[kind]
        blob = torch.ops.bitmm.cpu_prepack(p, kid, K)

        def call_blob():
            nonlocal y
            y = torch.ops.bitmm.cpu_prepacked_linear(x, p, blob, s, u, b, kid)
        ran = kernels_run(call_blob)
        assert ran == {"bitmm::cpu_forward_avx512_prepacked"}, (kind, mode, G, M, K, N, ran)
        assert torch.equal(y.view(torch.int32), theirs[i].view(torch.int32)), ("blob", kind, mode, G, M, K, N)


@needs_avx512
def test_avx2_kernel_choice_in_a_child():
    run_in_child("""
import torch
from test_cpu_kernels import test_cpu_forward_kernel_choice as t, test_cpu_forward_kernel_name_is_the_kernel_that_runs
for prepacked in (False, True):
    for M in (1, 2):
        t(M, prepacked, None, torch.float32)
test_cpu_forward_kernel_name_is_the_kernel_that_runs()
assert torch.ops.bitmm._cpu_forward_kernel() == "avx2"
""", BITMM_CPU_ISA="avx2")


def test_generic_kernel_name_in_a_child():
    run_in_child("""
import torch
from test_cpu_kernels import test_cpu_forward_kernel_name_is_the_kernel_that_runs
test_cpu_forward_kernel_name_is_the_kernel_that_runs()
assert torch.ops.bitmm._cpu_forward_kernel() == "generic"
""", BITMM_CPU_ISA="generic")


@pytest.mark.parametrize("prepacked", [False, True])
@pytest.mark.parametrize("sdtype,udtype", [(torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16),
                                           (torch.float16, torch.bfloat16), (torch.bfloat16, torch.float32)])
@pytest.mark.parametrize("mode,G", [("tensor", None), ("channel", None), ("group", 32), ("group", 64)])
@pytest.mark.parametrize("kind", ["binary", "ternary", "int2"])
def test_half_and_bfloat16_scales_equal_float32(kind, mode, G, sdtype, udtype, prepacked):
    """float16 / bfloat16 scales and offsets (widened to float32 for the SIMD kernels): bitwise the output of the
    same values given as float32, a transposed (non-contiguous) one too; a non-finite one is named."""
    torch.manual_seed(3)
    K, N = 320, 100  # two 64-row tiles, the second partial
    x, p, s, u, b = make_problem(kind, 3, K, N, mode, G, offset=True, bias=True)
    s_lo = s.to(sdtype)
    u_lo = u.to(udtype)
    if s_lo.dim() == 2:  # a transposed copy: same values, other strides
        s_lo = s_lo.T.contiguous().T
    entry = _entry(kind, K, prepacked)
    y = entry(x, p, s_lo, u_lo, b)
    want = entry(x, p, s_lo.float(), u_lo.float(), b)
    assert torch.equal(y.view(torch.int32), want.view(torch.int32))
    ran = kernels_run(lambda: entry(x, p, s_lo, u_lo, b))
    assert ran <= {"bitmm::cpu_forward_avx512", "bitmm::cpu_forward_avx512_prepacked", "bitmm::cpu_forward_avx2",
                   "bitmm::cpu_forward_avx2_prepacked", "bitmm::cpu_forward_generic"} and len(ran) == 1
    # a non-finite value in the stored dtype is found and named
    u_bad = u_lo.clone()
    u_bad.view(-1)[-1] = float("inf")
    with pytest.raises(ValueError, match=r"offset(\[[0-9, ]+\])? is \+Inf"):
        entry(x, p, s_lo, u_bad, b)


# grad_x (linear_grad_x): the AVX-512 kernel (k-masks from the words, lanes in registers across n) against the AVX2
# one (mask-table loads) in a child, bit for bit; K with a partial chunk of 8 blocks and a partial block, odd N,
# M = 1 .. 65, every scale mode incl. a group spanning two chunks (G = 512).
_GX_CASES = [(kind, mode, G, M, K, N) for kind in ("binary", "ternary", "int2")
             for mode, G in (("tensor", None), ("channel", None), ("group", 32), ("group", 64), ("group", 512))
             for M, K, N in ((1, 4096, 37), (3, 1024, 129), (65, 320, 5), (2, 100, 64))
             if G is None or K % G == 0]

_GX_CHILD = """
import torch
from helpers import make_problem
from test_cpu_kernels import _GX_CASES, _gx_case
torch.save([_gx_case(i) for i in range(len(_GX_CASES))], {path!r})
"""


def _gx_case(i):
    kind, mode, G, M, K, N = _GX_CASES[i]
    torch.manual_seed(100 + i)
    _, p, s, u, _ = make_problem(kind, 1, K, N, mode, G)
    g = torch.randn(M, N)
    return torch.ops.bitmm.linear_grad_x(g, p, s, u, formats.KINDS[kind], K)


@needs_avx512
def test_avx512_grad_x_equals_avx2_bitwise(tmp_path):
    theirs = _avx2_child_outputs(tmp_path, _GX_CHILD)
    assert len(theirs) == len(_GX_CASES) >= 45
    for i, case in enumerate(_GX_CASES):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            mine = _gx_case(i)
        ran = {e.name for e in prof.events() if e.name.startswith("bitmm::cpu_grad_x")}
        assert ran == {"bitmm::cpu_grad_x_avx512"}, (case, ran)
        assert torch.equal(mine.view(torch.int32), theirs[i].view(torch.int32)), case


@pytest.mark.parametrize("kind", ["ternary", "int2", "binary"])
def test_grad_x_group_corrections_same_bits_either_loop(kind):
    # linear_grad_x on CPU adds per (row, group) corrections sum_n g * (u - s [two planes]); with group-wise
    # s and u it streams them row by row (n outer), else a group at a time (session 40).  Each group's sum
    # keeps its order and operations, so an offset given per channel (N, 1) (the group-at-a-time loop) and
    # the same values expanded to (N, groups) (the row loop) give the same bits; and both match float64.
    from bitmm.ops import linear_grad_x
    torch.manual_seed(7)
    for M, K, N, G in ((1, 512, 300, 64), (3, 1024, 77, 32), (17, 256, 129, 128)):
        _, p, s, _, _ = make_problem(kind, M, K, N, "group", G, dtype=torch.float32, device="cpu")
        u = torch.randn(N, 1)
        gy = torch.randn(M, N)
        a = linear_grad_x(gy, p, s, u, kind, K)
        b = linear_grad_x(gy, p, s, u.expand(N, K // G).contiguous(), kind, K)
        assert torch.equal(a, b), (M, K, N, G)
        ref = linear_grad_x(gy.double(), p, s.double(), u.double(), kind, K)
        assert (a.double() - ref).abs().max() <= 1e-4 * ref.abs().max()
