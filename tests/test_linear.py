"""Every op against the float64 reference: kinds x dtypes x scale modes x odd shapes x devices."""
import pytest
import torch

import bitmm
from conftest import DEVICES
from helpers import KINDS, assert_close_to_reference, make_problem, poison_cuda_allocator, run_in_child

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (M, K, N): K and N not multiples of anything, M = 0, 1, 3, 17
SHAPES = [(1, 100, 37), (3, 257, 19), (17, 64, 5), (0, 96, 7), (1, 1, 1), (2, 4096, 24), (5, 640, 130)]
# (mode, group size G); G must divide K so group shapes are chosen per K below
MODES = ["tensor", "channel", "group32", "group_odd"]


def group_for(mode, K):
    if mode == "group32":
        return 32 if K % 32 == 0 else None
    if mode == "group_odd":  # a group size that is not a multiple of 32 (generic kernels)
        for g in (25, 20, 5, 3, 1):
            if K % g == 0 and g < K:
                return g
        return None
    return None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_linear_matches_reference(kind, dtype, mode, M, K, N, device):
    G = group_for(mode, K)
    if mode.startswith("group") and G is None:
        pytest.skip(f"no {mode} group size divides K={K}")
    x, packed, s, u, b = make_problem(kind, M, K, N, "group" if G else mode, G, dtype=dtype, device=device)
    poison_cuda_allocator()
    y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_three_argument_call_and_optional_terms(kind, device):
    x, packed, s, u, b = make_problem(kind, 3, 70, 11, "tensor", device=device)
    op = getattr(torch.ops.bitmm, f"{kind}_linear")
    assert_close_to_reference(kind, op(x, packed, s), x, packed, s, None, None)
    assert_close_to_reference(kind, op(x, packed, s, None, b), x, packed, s, None, b)
    assert_close_to_reference(kind, op(x, packed, s, u), x, packed, s, u, None)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_3d_and_noncontiguous_x(kind, device):
    x, packed, s, u, b = make_problem(kind, 5, 96, 13, "group", 32, device=device, lead=(2,))
    y = bitmm.linear(kind, x, packed, s, u, b)
    assert y.shape == (2, 5, 13)
    assert_close_to_reference(kind, y, x, packed, s, u, b)
    xt = torch.randn(96, 7, device=device).T  # (7, 96), non-contiguous
    assert not xt.is_contiguous()
    assert_close_to_reference(kind, bitmm.linear(kind, xt, packed, s, u, b), xt, packed, s, u, b)
    xs = torch.randn(4, 192, device=device)[:, ::2]  # strided
    assert_close_to_reference(kind, bitmm.linear(kind, xs, packed, s, u, b), xs, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_mixed_scale_modes_and_dtypes(kind, device):
    # group-wise scale with per-channel offset; fp16 scales with fp32 x and the reverse
    x, packed, _, _, b = make_problem(kind, 3, 128, 9, device=device)
    s = torch.rand(9, 4, device=device) + 0.1
    u = torch.randn(9, device=device)
    assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)
    assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s.half(), u.half(), b), x, packed, s.half(),
                              u.half(), b)
    xh = x.half()
    assert_close_to_reference(kind, bitmm.linear(kind, xh, packed, s, u, b), xh, packed, s, u, b)
    # a 2-D (N, 1) scale is per channel, also beside a group-wise offset (and the reverse)
    s1, ug = torch.rand(9, 1, device=device) + 0.1, torch.randn(9, 4, device=device)
    assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s1, ug, b), x, packed, s1, ug, b)
    assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, s1, b), x, packed, s, s1, b)
    g = torch.randn(3, 9, device=device)
    from bitmm import reference
    from helpers import rel_err
    assert rel_err(bitmm.linear_grad_x(g, packed, s1, ug, kind, 128),
                   reference.linear_grad_x(kind, g.cpu(), packed.cpu(), s1.cpu(), ug.cpu(), 128)) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_packed_view_with_storage_offset(kind, device):
    # a contiguous view that does not start on a 16-byte boundary
    x, packed, s, u, b = make_problem(kind, 2, 300, 7, device=device)
    buf = torch.zeros(packed.numel() + 1, dtype=torch.int32, device=device)
    view = buf[1:].view(packed.shape)
    view.copy_(packed)
    assert view.is_contiguous() and view.data_ptr() % 16 != 0
    assert_close_to_reference(kind, bitmm.linear(kind, x, view, s, u, b), x, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_large_k_and_m_tiles(kind, device):
    # K past one shared-memory / table tile, M past one row chunk
    x, packed, s, u, b = make_problem(kind, 70, 20032, 21, "group", 64, device=device)
    assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_float64_is_exact_path(kind, device):
    x, packed, s, u, b = make_problem(kind, 3, 77, 10, "channel", dtype=torch.float64, device=device)
    y = bitmm.linear(kind, x, packed, s, u, b)
    from bitmm import reference
    ref = reference.linear(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu(), b.cpu())
    torch.testing.assert_close(y.cpu(), ref, rtol=1e-12, atol=1e-12)


def test_ternary_is_add_skip_subtract_exactly():
    # integer activations: every partial sum is exact in fp32, so the result must be exact
    t = torch.randint(-1, 2, (33, 300))
    x = torch.randint(-50, 50, (4, 300)).float()
    y = bitmm.ternary_linear(x, bitmm.pack_ternary(t), torch.tensor(1.0))
    assert torch.equal(y, x @ t.float().T)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA dispatch")
def test_auto_no_dense_knob_keeps_bitmm_kernels():
    # BITMM_AUTO_NO_DENSE=1 (bench/sanitize.sh's racecheck / initcheck units): auto never takes the dense (cuBLAS) path,
    # forward or grad_x, so tests of the layers run bitmm's kernels under the sanitizers (cuBLAS's sm_90 GEMMs die under
    # racecheck).  Without the knob the same calls take it (the control; session 47's first version used a bf16 forward
    # at M = 512, which auto gives the wgmma kernel: its control failed, so the test can).  Each result against the
    # float64 reference.
    code = (
        "import os, torch, bitmm\n"
        "from bitmm import reference\n"
        "from helpers import make_problem, assert_close_to_reference, rel_err\n"
        "knob = os.environ.get('BITMM_AUTO_NO_DENSE') == '1'\n"
        "torch.manual_seed(0)\n"
        "x, p, s, u, b = make_problem('ternary', 64, 160, 72, 'tensor', dtype=torch.float32, device='cuda')\n"  # fp32: dense from M = 32
        "y = bitmm.linear('ternary', x, p, s, u, b)\n"
        "assert (bitmm.backend.last_kernel() == 'dense') != knob, bitmm.backend.last_kernel()\n"
        "assert_close_to_reference('ternary', y, x, p, s, u, b)\n"
        "g = torch.randn(100, 72, dtype=torch.bfloat16, device='cuda')\n"  # bf16, small weights with an offset: dense from M = 65
        "gx = bitmm.ops.linear_grad_x(g, p, s.bfloat16(), u.bfloat16(), 'ternary', 160)\n"
        "assert (bitmm.backend.last_kernel() == 'dense') != knob, bitmm.backend.last_kernel()\n"
        "ref = reference.linear_grad_x('ternary', g.cpu(), p.cpu(), s.bfloat16().cpu(), u.bfloat16().cpu(), 160)\n"
        "assert rel_err(gx, ref) < 1.6e-2, rel_err(gx, ref)\n"
    )
    run_in_child(code, BITMM_AUTO_NO_DENSE="1")
    run_in_child(code, BITMM_AUTO_NO_DENSE=None)
