"""Autograd, opcheck and torch.compile for every op."""
import pytest
import torch

import bitmm
from bitmm import reference
from conftest import DEVICES
from helpers import KINDS, make_problem, rel_err


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode,G", [("channel", None), ("group", 32), ("group", 5)])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_float64(kind, mode, G, device):
    x, packed, s, u, b = make_problem(kind, 3, 160 if G != 5 else 35, 6, mode, G, dtype=torch.float64, device=device)
    x.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x_, b_: bitmm.linear(kind, x_, packed, s, u, b_), (x, b))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_backward_matches_reference(kind, dtype, device):
    x, packed, s, u, b = make_problem(kind, 4, 4096 + 64, 70, "group", 64, dtype=dtype, device=device, lead=(2,))
    x.requires_grad_(True)
    b.requires_grad_(True)
    y = bitmm.linear(kind, x, packed, s, u, b)
    g = torch.randn_like(y)
    y.backward(g)
    ref_gx = reference.linear_grad_x(kind, g.cpu(), packed.cpu(), s.cpu(), u.cpu(), x.shape[-1])
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    assert rel_err(x.grad, ref_gx) < tol
    assert rel_err(b.grad, g.double().sum((0, 1)).cpu()) < tol


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_opcheck(kind, device):
    x, packed, s, u, b = make_problem(kind, 3, 100, 9, "channel", device=device)
    x.requires_grad_(True)
    op = getattr(torch.ops.bitmm, f"{kind}_linear")
    torch.library.opcheck(op, (x, packed, s, u, b))
    torch.library.opcheck(op, (x.detach(), packed, s))
    g = torch.randn(3, 9, device=device)
    torch.library.opcheck(torch.ops.bitmm.linear_grad_x, (g, packed, s, u, bitmm.formats.KINDS[kind], 100))
    codes = torch.randint(0, 2, (5, 70), device=device)
    torch.library.opcheck(torch.ops.bitmm.pack, (codes, bitmm.formats.KINDS[kind]))
    torch.library.opcheck(torch.ops.bitmm.unpack, (bitmm.formats.pack_codes(codes, kind), bitmm.formats.KINDS[kind], 70))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()
    x, packed, s, u, b = make_problem("ternary", 5, 96, 12, "group", 32, device=device)
    _, packed2, s2, u2, _ = make_problem("int2", 5, 12, 8, "channel", device=device)

    def f(x):
        h = torch.relu(torch.ops.bitmm.ternary_linear(x, packed, s, u, b))
        return bitmm.int2_linear(h, packed2, s2, u2)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    xr = x.clone().requires_grad_(True)
    y = compiled(xr)
    torch.testing.assert_close(y, f(x))
    y.sum().backward()
    xe = x.clone().requires_grad_(True)
    f(xe).sum().backward()
    torch.testing.assert_close(xr.grad, xe.grad)
