"""The bitmm ops and layers under torch.autocast.  Each op (csrc/autocast.cpp) computes in the dtypes it is given,
inside an autocast region as outside it, bit for bit; before session 41 the ops' own ATen calls ran under autocast
(lora_linear on CPU raised "mat1 and mat2 must have the same dtype", CUDA's dense path returned float16 for float32
x).  The layers (PackedLinear, PackedLoRALinear with and without the CPU prepacked layouts, BitLinear, the PEFT
layer) behave as nn.Linear does there since session 42: float32 / float16 / bfloat16 x is cast to the autocast dtype
(bitmm.nn._autocast_x), so inside a region they give what they give outside it on x cast by hand, in that dtype."""
import contextlib
import warnings

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
    session 42 H100 run saw 1e-6 differences in float32 gradients) and a float16 / bfloat16 gradient rounded from them
    can move by one step.  There they must agree to 1e-5 of their largest value in float32 (an autocast float16 /
    bfloat16 step would differ by ~1e-3 of it), to one step of their dtype otherwise (where the dtype check is the
    test: autocast would change it)."""
    if isinstance(a, tuple):
        for i, (p, q) in enumerate(zip(a, b)):
            assert_same(p, q, exact=() if p.is_cuda and i not in exact else (0,))
        return
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    if exact or not a.is_cuda:
        assert torch.equal(a, b), (a - b).abs().max()
    else:
        tol = (1e-5 if a.dtype == torch.float32 else torch.finfo(a.dtype).eps) * a.float().abs().max().item()
        assert (a.float() - b.float()).abs().max().item() <= tol, ((a - b).abs().max(), tol)


@contextlib.contextmanager
def deterministic_on(device):
    """torch.use_deterministic_algorithms on CUDA (warn_only: the tests' own cuBLAS matmuls only warn), where bitmm's
    grad_x then sums in a fixed order, so the layer tests compare CUDA gradients bit for bit too; CPU is
    deterministic as it is."""
    if device != "cuda":
        yield
        return
    was, was_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


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


def inside_vs_cast_by_hand(device, run):
    """run(cast) inside an autocast region with cast = identity, and outside one with cast = x -> x in the autocast
    dtype: the layers must see the same x either way.  Returns (by hand, inside)."""
    dt = AUTOCAST_DTYPE[device]
    with deterministic_on(device), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (warn_only's notes on cuBLAS)
        with autocast(device, enabled=False):
            by_hand = run(lambda t: t.to(dt))
        with autocast(device):
            inside = run(lambda t: t)
    return by_hand, inside


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_lora_linear_op_ignores_autocast(device, kind):
    xx, p, s, u, b = make_problem(kind, 4, K, N, "channel", None, dtype=torch.float32, device=device)
    a_, b_ = torch.randn(4, K, device=device), torch.randn(N, 4, device=device)
    assert_same(*both_ways(device, lambda: bitmm.lora_linear(kind, xx, p, s, u, b, a_, b_, 0.5)))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("prepack", [True, False])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_packed_layers_cast_x_like_nn_linear(device, kind, prepack, dropout):
    # PackedLinear and PackedLoRALinear (the fused op, or with dropout active the base plus a plain-PyTorch adapter; on
    # CPU with and without the prepacked layouts) inside autocast: the output in the autocast dtype, as nn.Linear's,
    # and forward and backward equal to running them on x cast by hand outside the region.
    torch.manual_seed(0)
    lin = torch.nn.Linear(K, N).to(device)
    bits = {"binary": 1, "ternary": 1.58, "int2": 2}[kind]
    base = PackedLinear.from_linear(lin, weight_bits=bits, group_size=32 if kind == "int2" else None)
    base.use_cpu_prepack = prepack
    layer = PackedLoRALinear(base, r=4, dropout=dropout).to(device)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(3, K, device=device)
    dt = AUTOCAST_DTYPE[device]
    with autocast(device):
        assert lin(x).dtype == base(x).dtype == layer(x).dtype == dt
        assert base(x.double()).dtype == torch.float64  # (autocast leaves float64 alone, and so do the layers)

    def run(cast):
        torch.manual_seed(1)  # (the same dropout mask both ways)
        xr = x.clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        y = layer(cast(xr))
        y.backward(torch.ones_like(y))
        return y.detach(), xr.grad, layer.lora_A.grad, layer.lora_B.grad, base(cast(x)).detach()

    by_hand, inside = inside_vs_cast_by_hand(device, run)
    assert inside[0].dtype == dt
    if dropout == 0:
        assert_same(by_hand, inside, exact=range(5))
    else:
        # the adapter outside the fused op is plain PyTorch: inside the region its F.linear runs in the autocast
        # dtype, by hand outside it in float32, so the two agree to the autocast dtype's precision only
        assert_same(by_hand[4:], inside[4:])
        for p_, q_ in zip(by_hand[:4], inside[:4]):
            assert p_.dtype == q_.dtype and (p_.float() - q_.float()).abs().max() <= 2e-2 * p_.float().abs().max()


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


@pytest.mark.parametrize("act_bits", [None, 8])
@pytest.mark.parametrize("weight_bits", [1, 1.58, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_bitlinear_casts_x_like_nn_linear(device, weight_bits, act_bits):
    # QAT's BitLinear inside autocast: x in the autocast dtype as for nn.Linear (output in that dtype), forward,
    # grad_x and the straight-through weight gradient (a plain matmul in its backward, in the forward's dtype, then
    # the latent weight's float32) equal to running it on x cast by hand outside the region.
    from bitmm.nn import BitLinear
    torch.manual_seed(0)
    m = BitLinear(K, N, weight_bits=weight_bits, act_bits=act_bits,
                  group_size=32 if weight_bits == 2 else None).to(device)
    x = torch.randn(4, K, device=device)

    def run(cast):
        m.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_()
        y = m(cast(xr))
        y.backward(torch.ones_like(y))
        return y.detach(), xr.grad, m.weight.grad, m.bias.grad

    by_hand, inside = inside_vs_cast_by_hand(device, run)
    assert inside[0].dtype == AUTOCAST_DTYPE[device] and inside[2].dtype == torch.float32
    assert_same(by_hand, inside, exact=range(4))


def test_packed_linear_compiled_inside_autocast():
    # The layer's autocast cast (bitmm.nn._autocast_x) traces into one graph (fullgraph) and gives the eager result.
    torch.manual_seed(0)
    base = PackedLinear.from_linear(torch.nn.Linear(K, N), weight_bits=2, group_size=32)
    x = torch.randn(5, K)
    compiled = torch.compile(base, fullgraph=True, backend="aot_eager")
    with autocast("cpu"):
        y_eager, y_comp = base(x), compiled(x)
    assert y_comp.dtype == AUTOCAST_DTYPE["cpu"]
    assert torch.equal(y_eager, y_comp)
    assert torch.equal(compiled(x), base(x)) and base(x).dtype == torch.float32  # (and outside a region again)


@pytest.mark.parametrize("device", DEVICES)
def test_other_layer_routes_cast_x_like_nn_linear(device):
    # The routes of PackedLinear besides the plain op, inside autocast as on x cast by hand outside it: the W2A8 int8
    # path (act_bits = 8, no gradient), the transposed-weight backward, and the PEFT layer over a packed base (fused
    # op with one adapter); and a meta x (shape inference) is left alone, as nn.Linear leaves it.
    torch.manual_seed(0)
    dt = AUTOCAST_DTYPE[device]
    lin = torch.nn.Linear(K, N).to(device)
    x = torch.randn(4, K, device=device)
    a8 = PackedLinear.from_linear(lin, weight_bits=1.58, act_bits=8)
    with torch.no_grad():
        by_hand, inside = inside_vs_cast_by_hand(device, lambda cast: (a8(cast(x)),))
    assert inside[0].dtype == dt
    assert_same(by_hand, inside)
    tb = PackedLinear.from_linear(lin, weight_bits=2, group_size=None)
    assert bitmm.nn.enable_transposed_backward(tb) == 1

    def run(cast):
        xr = x.clone().requires_grad_()
        y = tb(cast(xr))
        y.backward(torch.ones_like(y))
        return y.detach(), xr.grad

    by_hand, inside = inside_vs_cast_by_hand(device, run)
    assert inside[0].dtype == dt and inside[1].dtype == torch.float32
    assert_same(by_hand, inside, exact=range(2))
    meta_x, meta_layer = torch.empty(2, K, device="meta"), PackedLinear.from_linear(lin, weight_bits=2).to("meta")
    with autocast(device):
        assert meta_layer(meta_x).dtype == torch.float32 == torch.nn.Linear(K, N, device="meta")(meta_x).dtype
    peft = pytest.importorskip("peft")
    import bitmm.peft_compat as pc

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(K, N)
            self.unused = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # (PEFT wants a parameter somewhere)

        def forward(self, h):
            return self.proj(h)

    model = bitmm.nn.convert(Net(), mode="packed", weight_bits=2).to(device)
    model = peft.get_peft_model(model, pc.register_packed_lora(peft.LoraConfig(r=4, lora_alpha=8, target_modules=["proj"],
                                                                               init_lora_weights=False)))

    def run_peft(cast):
        model.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_()
        y = model(cast(xr))
        y.backward(torch.ones_like(y))
        grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
        return (y.detach(), xr.grad, *grads)

    by_hand, inside = inside_vs_cast_by_hand(device, run_peft)
    assert inside[0].dtype == dt and len(inside) == 4
    assert_same(by_hand, inside, exact=range(4))
