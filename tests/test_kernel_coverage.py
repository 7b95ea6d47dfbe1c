"""Every CUDA kernel instance the default launch rules reach, and every launch-configuration boundary, on
small problems.

The rest of the suite checks the kernels thoroughly but on shapes (K = 4096, N up to 4500) that take
seconds each under compute-sanitizer, so a full sanitizer pass of it does not fit a session's device
time.  This file reaches every kernel template instance and every configuration switch of the
launchers with problems of a few thousand weights each, so memcheck, racecheck and initcheck can run
it whole in minutes (`BITMM_GPU_SANITIZE=cover bash bench/device_run.sh`).  On a CPU machine the same
loops run the CPU kernels (they check the test code itself, and the CPU paths).

What is covered, per backend (forced with bitmm.use_backend, and auto):
  * forward: kinds x x dtypes (fp32, fp16, bf16) x scalings (per tensor fp32 s, per channel in x's
    dtype with an offset, groups of 32 with offsets, groups of 64 with fp32 s and u) x M across the
    tensor-core kernel's tile switches (M = 0, 1, 2, 3: the group-wise block-diagonal path with 1
    activation tile at M <= 2 and, int2 only, 2 at M = 3, 4 (ternary / binary reach their 2-tile
    instances only under BITMM_TC_BD=4: test_tensorcore.py's override test);
    5, 8, 9, 16, 17, 32, 33, 65) and K across its x-tile switches (K = 300 fits one tile; K = 2500 needs
    several at M >= 17; K = 6000 at M = 5 and 8: x split at M = 8 (two-plane from 6 rows, binary 7), per tensor / channel on two 16-row tiles per
    warp, tc18; fp16 ternary takes RN = CM = 2 there, and its RN = 2, CM = 1 instance runs only under BITMM_TC_M8=2,
    in test_tensorcore.py's override test);
  * grad_x: the add/subtract kernel (default and deterministic), the tensor-core one (each scaling
    mode), the dense path, the generic kernel (fp64, groups of 5);
  * the Hopper wgmma kernel's instances (test_wgmma_every_kernel_instance; its fallback elsewhere);
  * fused LoRA, the CUDA pack / unpack kernels.
Each result is compared with the float64 reference within the dtype's bound.
"""
import itertools

import pytest
import torch

import bitmm
from bitmm import reference
from conftest import DEVICES
from helpers import KINDS, PACKERS, assert_close_to_reference, make_problem, random_values, rel_err

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (mode, group, scale dtype: None = float32, "x" = x's dtype, offset)
SCALINGS = [("tensor", None, None, False), ("channel", None, "x", True), ("group", 32, "x", True),
            ("group", 64, None, True)]
MS = [0, 1, 2, 3, 5, 8, 9, 16, 17, 32, 33, 65]
GRAD_TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-12}


def problem(kind, M, K, N, scaling, dtype, device):
    """(x, packed, s, u, b); K is rounded up to a multiple of the group size (K = x.shape[-1])."""
    mode, G, sdt, offset = scaling
    K = -(-K // G) * G if G else K
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=torch.float32 if dtype != torch.float64 else dtype,
                                      device=device, offset=offset)
    x, b = x.to(dtype), b.to(dtype)
    if sdt == "x":
        s = s.to(dtype)
        u = None if u is None else u.to(dtype)
    return x, packed, s, u, b


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["auto", "addsub", "tensorcore", "dense"])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_every_kernel_configuration(kind, backend, device):
    if device == "cpu" and backend != "auto":
        pytest.skip("the backend choice is a CUDA dispatch; the CPU kernels run once, under auto")
    for dtype in DTYPES:
        for scaling in SCALINGS:
            for M in MS:
                for K in ((300, 2500) if M >= 17 else (300, 6000) if M in (5, 8) else (300,)):
                    x, packed, s, u, b = problem(kind, M, K, 70, scaling, dtype, device)
                    with bitmm.use_backend(backend):
                        y = bitmm.linear(kind, x, packed, s, u, b)
                    assert_close_to_reference(kind, y, x, packed, s, u, b)


@pytest.mark.skipif("cuda" not in DEVICES, reason="the wgmma backend is a CUDA dispatch")
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_every_kernel_instance(kind):
    # The Hopper kernel (wg_linear.cuh; elsewhere its fallback): x dtypes x scalings (per tensor /
    # channel: scales loaded once; groups: per stage) x the three tile widths (M <= 64, <= 128, more)
    # and their edges, K with a partial last stage (320 = 5 stages of 64, padded row 384).
    for dtype in (torch.float16, torch.bfloat16):
        for scaling in SCALINGS:
            for M in (1, 64, 65, 129, 257):
                x, packed, s, u, b = problem(kind, M, 320, 70, scaling, dtype, "cuda")
                with bitmm.use_backend("wgmma"):
                    y = bitmm.linear(kind, x, packed, s, u, b)
                assert_close_to_reference(kind, y, x, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["auto", "addsub", "tensorcore", "dense", "deterministic"])
@pytest.mark.parametrize("kind", KINDS)
def test_grad_x_every_kernel_configuration(kind, backend, device):
    if device == "cpu" and backend != "auto":
        pytest.skip("the backend choice is a CUDA dispatch; the CPU kernels run once, under auto")
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(backend == "deterministic")
        for dtype in DTYPES:
            for scaling in SCALINGS + [("channel", None, None, True), ("tensor", None, "x", True)]:
                for M in (0, 1, 3, 8, 9, 33, 65):
                    x, packed, s, u, _ = problem(kind, 1, 300, 600, scaling, dtype, device)
                    K = x.shape[-1]
                    g = torch.randn(M, 600, device=device).to(dtype)
                    with bitmm.use_backend("auto" if backend == "deterministic" else backend):
                        got = bitmm.linear_grad_x(g, packed, s, u, kind, K)
                    want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(),
                                                   None if u is None else u.cpu().double(), K)
                    assert got.shape == (M, K) and got.dtype == dtype
                    if M:
                        assert rel_err(got, want) < GRAD_TOL[dtype], (dtype, scaling, M)
    finally:
        torch.use_deterministic_algorithms(prev)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_generic_kernels_float64_and_odd_groups(kind, device):
    # float64 x, and groups that are not a multiple of 32: the generic forward / grad_x kernels.
    for dtype, mode, G in ((torch.float64, "channel", None), (torch.float32, "group", 5), (torch.float16, "group", 5)):
        for M in (1, 9):
            x, packed, s, u, b = make_problem(kind, M, 35, 13, mode, G, dtype=dtype, device=device)
            assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)
            g = torch.randn(M, 13, device=device, dtype=dtype)
            want = reference.linear_grad_x(kind, g.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(), 35)
            assert rel_err(bitmm.linear_grad_x(g, packed, s, u, kind, 35), want) < GRAD_TOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_fused_lora_every_tile_configuration(kind, device):
    # (group-wise: M = 2 is the tensor-core kernel's block-diagonal path, M = 1 not fused under auto)
    # (per channel M = 8 at K = 6000: x split, the two-16-row-tile configurations of tc18)
    for dtype, (mode, G), M in itertools.product((torch.float16, torch.bfloat16), (("channel", None), ("group", 64)),
                                                 (1, 2, 3, 8, 9, 17, 33)):
        K = 6000 if M == 8 and mode == "channel" else 320
        x, packed, s, u, b = make_problem(kind, M, K, 70, mode, G, dtype=dtype, device=device)
        a = torch.randn(8, K, device=device, dtype=dtype) * 0.1
        lb = torch.randn(70, 8, device=device, dtype=dtype) * 0.1
        got = bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5)
        base = reference.linear(kind, x.cpu().double(), packed.cpu(), s.cpu().double(), u.cpu().double(),
                                b.cpu().double())
        want = base + 0.5 * (x.cpu().double() @ a.cpu().double().T) @ lb.cpu().double().T
        assert rel_err(got, want) < GRAD_TOL[dtype], (dtype, mode, M)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_pack_unpack_kernels(kind, device):
    for N, K in ((1, 1), (7, 33), (40, 300)):
        v = random_values(kind, N, K, device)
        packed = PACKERS[kind](v)
        assert torch.equal(packed.cpu(), PACKERS[kind](v.cpu()))
        assert torch.equal(bitmm.formats.unpack_codes(packed, kind, K).cpu(), bitmm.formats.unpack_codes(packed.cpu(), kind, K))
