"""The bitmm ops under torch.autocast (csrc/autocast.cpp): each op computes in the dtypes it is given, inside an
autocast region as outside it, bit for bit; before, the ops' own ATen calls ran under autocast (lora_linear on
CPU raised "mat1 and mat2 must have the same dtype", CUDA's dense path returned float16 for float32 x).  The
layers on the ops behave the same (PackedLinear, PackedLoRALinear with and without the CPU prepacked layouts)."""
import pytest
import torch

import bitmm
from bitmm.nn import PackedLinear, PackedLoRALinear
from helpers import KINDS, make_problem

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda,
                                             pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])]
# Each device's usual autocast dtype, and the x dtypes it would change (float32) or keep.
AUTOCAST_DTYPE = {"cpu": torch.bfloat16, "cuda": torch.float16}
MODES = [("tensor", None), ("channel", None), ("group", 32)]
K, N = 96, 37


def autocast(device, enabled=True):
    return torch.autocast(device, dtype=AUTOCAST_DTYPE[device], enabled=enabled)


def both_ways(device, fn):
    """fn() outside and inside autocast: (plain, autocast) results."""
    with autocast(device, enabled=False):
        plain = fn()
    with autocast(device):
        inside = fn()
    return plain, inside


def assert_same(a, b, exact=(0,)):
    """a, b: a tensor or a tuple of them (the forward output first, then gradients).  Equal dtypes and shapes, and
    equal values bit for bit, except gradients on CUDA (positions not in `exact`): the CUDA grad_x splits N over CTAs
    whose fp32 partial sums add with atomics, so its last bits vary between any two runs (README "Determinism"; the
    session 42 H100 run saw 1e-6 differences in float32 gradients), and there they must agree to 1e-5 of their
    largest value: an autocast float16 / bfloat16 step would differ by ~1e-3 of it."""
    if isinstance(a, tuple):
        for i, (p, q) in enumerate(zip(a, b)):
            assert_same(p, q, exact=() if p.is_cuda and i not in exact else (0,))
        return
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    if exact or not a.is_cuda:
        assert torch.equal(a, b), (a - b).abs().max()
    else:
        tol = 1e-5 * a.abs().max().item()
        assert (a - b).abs().max().item() <= tol, ((a - b).abs().max(), tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode,G", MODES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_linear_and_grad_x_ignore_autocast(device, kind, mode, G, dtype):
    # M = 5 (the kernels) and M = 700 (on CUDA the dense path at large M, whose at::mm autocast had turned to float16)
    for M in (5, 700):
        x, p, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device=device)

        def run():
            xr = x.clone().requires_grad_()
            y = bitmm.linear(kind, xr, p, s, u, b)
            y.backward(torch.ones_like(y))
            return y.detach(), xr.grad

        assert_same(*both_ways(device, run))


@pytest.mark.parametrize("prepack", [True, False])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_lora_linear_and_layers_ignore_autocast(device, kind, prepack):
    # The fused op, PackedLinear and PackedLoRALinear (on CPU with and without the prepacked layouts, whose
    # float32 route adds the adapter product itself), forward and backward.
    torch.manual_seed(0)
    lin = torch.nn.Linear(K, N).to(device)
    bits = {"binary": 1, "ternary": 1.58, "int2": 2}[kind]
    base = PackedLinear.from_linear(lin, weight_bits=bits, group_size=32 if kind == "int2" else None)
    base.use_cpu_prepack = prepack
    layer = PackedLoRALinear(base, r=4).to(device)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(3, K, device=device)

    def run():
        xr = x.clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        y = layer(xr)
        y.backward(torch.ones_like(y))
        return y.detach(), xr.grad, layer.lora_A.grad, layer.lora_B.grad, base(x).detach()

    assert_same(*both_ways(device, run), exact=(0, 4))
    xx, p, s, u, b = make_problem(kind, 4, K, N, "channel", None, dtype=torch.float32, device=device)
    a_, b_ = torch.randn(4, K, device=device), torch.randn(N, 4, device=device)
    assert_same(*both_ways(device, lambda: bitmm.lora_linear(kind, xx, p, s, u, b, a_, b_, 0.5)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_linear_a8_and_absmax_ignore_autocast(device, kind):
    # W2A8's integer sums stay exact (its float matmul fallback of integer codes would have run in bfloat16 /
    # float16 under autocast), and the absmax quantizer gives the same codes and scales.
    x, p, s, u, b = make_problem(kind, 6, K, N, "channel", None, dtype=torch.float32, device=device)
    assert_same(*both_ways(device, lambda: bitmm.quant.absmax_int8(x)), exact=(0, 1))
    assert_same(*both_ways(device, lambda: bitmm.quant.absmax_int8_fake(x)))
    xq, xs = bitmm.quant.absmax_int8(x)
    assert_same(*both_ways(device, lambda: bitmm.linear_a8(kind, xq, xs, p, s, u, b)))


@pytest.mark.parametrize("weight_bits", [1, 1.58, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_bitlinear_ignores_autocast(device, weight_bits):
    # QAT's BitLinear: forward, grad_x and the straight-through weight gradient (a plain matmul in its backward,
    # run with autocast off) as outside autocast.
    from bitmm.nn import BitLinear
    torch.manual_seed(0)
    m = BitLinear(K, N, weight_bits=weight_bits, group_size=32 if weight_bits == 2 else None).to(device)
    x = torch.randn(4, K, device=device)

    def run():
        m.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_()
        y = m(xr)
        y.backward(torch.ones_like(y))
        return y.detach(), xr.grad, m.weight.grad, m.bias.grad

    assert_same(*both_ways(device, run))
