"""grad_x through the forward op on the packed W^T (PackedLinear.transposed_backward,
ops.transpose_packed / linear_grad_x_transposed), on CPU and CUDA, against the float64
reference and against the default linear_grad_x path."""
import pickle

import pytest
import torch

import bitmm
from bitmm import reference
from bitmm.nn import PackedLinear, PackedLoRALinear, enable_transposed_backward
from conftest import DEVICES
from helpers import KINDS, PACKERS, make_problem, random_values, rel_err

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-12}


def _layer(kind, packed, s, u, b, K, mode):
    G = {"tensor": None, "channel": K, "group": 32}[mode]
    return PackedLinear._from_args(kind, K, G, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("K,N", [(100, 37), (256, 300)])
@pytest.mark.parametrize("kind", KINDS)
def test_transpose_packed_is_the_packing_of_the_transpose(kind, K, N, device):
    v = random_values(kind, N, K, device)
    packed = PACKERS[kind](v)
    wt = bitmm.ops.transpose_packed(packed, kind, K)
    assert torch.equal(wt, PACKERS[kind](v.t().contiguous()))  # exact: same bytes
    assert wt.shape == bitmm.formats.packed_shape(kind, K, N)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("M", [1, 5, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("kind", KINDS)
def test_transposed_backward_matches_reference(kind, mode, dtype, M, device):
    K, N = 160, 72
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, dtype=dtype, device=device, lead=(2,))
    layer = _layer(kind, packed, s, u, b, K, mode)
    layer.bias.requires_grad_(True)
    with torch.no_grad():
        y_plain = layer(x)
    layer.transposed_backward = True
    x.requires_grad_(True)
    y = layer(x)
    assert torch.equal(y.detach(), y_plain)  # the forward is the usual one
    assert "_transposed" in layer.__dict__
    g = torch.randn_like(y)
    y.backward(g)
    ref = reference.linear_grad_x(kind, g.cpu(), packed.cpu(), s.cpu(), u.cpu(), K)
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    assert rel_err(x.grad, ref) < TOL[dtype], rel_err(x.grad, ref)
    assert rel_err(layer.bias.grad, g.double().sum((0, 1)).cpu()) < TOL[dtype]
    # and close to the default path's gradient
    layer.transposed_backward = False
    x2 = x.detach().clone().requires_grad_(True)
    layer(x2).backward(g)
    assert rel_err(x.grad, x2.grad.double()) < 2 * TOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("offset", [True, False])
@pytest.mark.parametrize("grad_scale", [1.0, 1e-5])
@pytest.mark.parametrize("kind", KINDS)
def test_transposed_backward_fp16_small_scales_and_gradients(kind, grad_scale, offset, device):
    # float32 per-channel scales ~0.03 and gradients ~1e-5 in fp16: folding s itself into the
    # gradient would put g * s (~3e-7) among fp16 subnormals (~10% error, found in review);
    # the fold by s / max|s| keeps the transposed path as accurate as linear_grad_x.
    K, N = 512, 256
    x, packed, _, _, b = make_problem(kind, 4, K, N, "channel", dtype=torch.float16, device=device)
    s = torch.rand(N, device=device) * 0.03 + 0.01
    u = torch.randn(N, device=device) * 0.01 if offset else None
    layer = _layer(kind, packed, s, u, b, K, "channel")
    g = (torch.randn(4, N, device=device) * grad_scale).half()
    errs = []
    for transposed in (False, True):
        layer.transposed_backward = transposed
        xr = x.clone().requires_grad_(True)
        layer(xr).backward(g)
        ref = reference.linear_grad_x(kind, g.cpu(), packed.cpu(), s.cpu(), None if u is None else u.cpu(), K)
        errs.append(rel_err(xr.grad, ref))
    assert errs[1] <= 2 * errs[0] + 1e-4, errs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("kind", KINDS)
def test_transposed_backward_gradcheck_float64(kind, mode, device):
    x, packed, s, u, b = make_problem(kind, 3, 96, 10, mode, dtype=torch.float64, device=device,
                                      offset=kind != "ternary")
    layer = _layer(kind, packed, s, u, b, 96, mode)
    layer.transposed_backward = True
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradgradcheck(layer, (x,))


@pytest.mark.parametrize("device", DEVICES)
def test_transposed_backward_falls_back_and_stays_out_of_the_way(device):
    # group-wise scales: the default linear_grad_x path (no W^T made); no_grad / x without
    # grad: no W^T either; never in state_dict, dropped by .to() and load_state_dict, not pickled.
    x, packed, s, u, b = make_problem("int2", 4, 128, 24, "group", 32, device=device)
    grouped = _layer("int2", packed, s, u, b, 128, "group")
    grouped.transposed_backward = True
    xg = x.clone().requires_grad_(True)
    grouped(xg).sum().backward()
    assert "_transposed" not in grouped.__dict__
    ref = reference.linear_grad_x("int2", torch.ones(4, 24, dtype=torch.float64), packed.cpu(), s.cpu(), u.cpu(), 128)
    assert rel_err(xg.grad, ref) < 1e-5

    x, packed, s, u, b = make_problem("ternary", 4, 128, 24, "channel", device=device)
    layer = _layer("ternary", packed, s, u, b, 128, "channel")
    layer.transposed_backward = True
    with torch.no_grad():
        layer(x.clone().requires_grad_(True))
    layer(x)
    assert "_transposed" not in layer.__dict__
    keys = set(layer.state_dict())
    layer(x.clone().requires_grad_(True)).sum().backward()
    assert "_transposed" in layer.__dict__ and set(layer.state_dict()) == keys
    assert "_transposed" not in pickle.loads(pickle.dumps(layer)).__dict__
    layer.load_state_dict(layer.state_dict())
    assert "_transposed" not in layer.__dict__
    layer(x.clone().requires_grad_(True)).sum().backward()
    layer.to(device)
    assert "_transposed" not in layer.__dict__


@pytest.mark.parametrize("device", DEVICES)
def test_transposed_weight_follows_in_place_changes(device):
    K, N = 96, 40
    x, packed, s, u, b = make_problem("ternary", 3, K, N, "tensor", device=device)
    layer = _layer("ternary", packed, s, u, b, K, "tensor")
    layer.transposed_backward = True
    xr = x.clone().requires_grad_(True)
    layer(xr).sum().backward()
    other = PACKERS["ternary"](random_values("ternary", N, K, device))
    with torch.no_grad():
        layer.packed_weight.copy_(other)  # bumps the version counter: W^T is remade
    xr = x.clone().requires_grad_(True)
    layer(xr).sum().backward()
    ref = reference.linear_grad_x("ternary", torch.ones(3, N, dtype=torch.float64), other.cpu(), s.cpu(), u.cpu(), K)
    assert rel_err(xr.grad, ref) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_lora_over_transposed_backward_matches_fused(kind, device):
    torch.manual_seed(0)
    K, N, r = 128, 48, 8
    x, packed, s, u, b = make_problem(kind, 5, K, N, "channel", device=device)
    grads = []
    for transposed in (False, True):
        base = _layer(kind, packed, s, u, b, K, "channel")
        lora = PackedLoRALinear(base, r=r)
        torch.manual_seed(1)
        with torch.no_grad():
            lora.lora_A.normal_()
            lora.lora_B.normal_()
        assert enable_transposed_backward(lora, transposed) == 1
        xr = x.clone().requires_grad_(True)
        y = lora(xr)
        y.backward(torch.linspace(-1, 1, y.numel(), device=device).reshape(y.shape))
        grads.append((y.detach(), xr.grad, lora.lora_A.grad, lora.lora_B.grad))
        assert ("_transposed" in base.__dict__) == transposed
    for a, c in zip(*grads):
        assert rel_err(c, a.double()) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_transposed_backward_cpu_layout_is_bitwise_the_plain_op(kind, dtype):
    # On CPU the transposed weight also gets its lookup layout (cpu_prepack of W^T), read by
    # cpu_prepacked_linear: bitwise the plain op's result, as for the forward.
    x, packed, s, u, b = make_problem(kind, 6, 200, 50, "channel", dtype=dtype)
    grads = []
    for use in (True, False):
        layer = _layer(kind, packed, s, u, b, 200, "channel")
        layer.transposed_backward = True
        layer.use_cpu_prepack = use
        xr = x.clone().requires_grad_(True)
        layer(xr).backward(torch.ones(6, 50, dtype=dtype))
        assert ("_transposed_cpu_prepacked" in layer.__dict__) == use
        grads.append(xr.grad)
    assert torch.equal(grads[0], grads[1])


def test_transposed_backward_under_torch_func_grad():
    x, packed, s, u, b = make_problem("int2", 3, 64, 12, "channel")
    layer = _layer("int2", packed, s, u, b, 64, "channel")
    xr = x.clone().requires_grad_(True)
    layer(xr).sum().backward()  # the default path
    layer.transposed_backward = True
    got = torch.func.grad(lambda x_: layer(x_).sum())(x)
    assert "_transposed" in layer.__dict__  # the transposed path ran under torch.func.grad
    assert rel_err(got, xr.grad.double()) < 1e-5
