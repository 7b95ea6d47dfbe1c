"""bitmm::lora_linear (LoRA on a frozen packed base): forward against the float64 reference,
gradients, opcheck, torch.compile, errors; PackedLoRALinear on the fused op, the HQQ+
offset fold, PEFT."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bitmm
from bitmm import reference
from bitmm.nn import PackedLinear, PackedLoRALinear, fold_offset_into_lora
from bitmm.ops import lora_linear
from helpers import KINDS, assert_error_table, dtype_bound, baseline_device, make_problem, poison_cuda_allocator, rel_err

# CUDA variants are collected everywhere and skip without a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda,
                                             pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])]
K, N, R = 135, 37, 5  # odd K and N; K = 5 groups of 27
MODES = {"tensor": None, "channel": None, "group": 27}
# (x dtype, adapter dtype): adapters of x's dtype, or float32 adapters with half / bfloat16 x
DTYPE_PAIRS = [pytest.param(dt, ld, id=f"{str(dt)[6:]}-lora_{str(ld)[6:]}") for dt, ld in [
    (torch.float32, torch.float32), (torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16),
    (torch.float16, torch.float32), (torch.bfloat16, torch.float32)]]
SCALE = 0.75


def make_lora(M, mode, kind="ternary", dtype=torch.float32, lora_dtype=None, device="cpu", lead=None, r=R, k=K, n=N,
              offset=True, bias=True):
    x, packed, s, u, b = make_problem(kind, M, k, n, mode, MODES.get(mode), dtype=dtype, device=device,
                                      offset=offset, bias=bias, lead=lead)
    ld = dtype if lora_dtype is None else lora_dtype
    a = (torch.randn(r, k, device=device) / k ** 0.5).to(ld)
    bb = torch.randn(n, r, device=device).to(ld)
    return x, packed, s, u, b, a, bb


def ref_lora(kind, x, packed, s, u, b, a, bb, scale=SCALE):
    """float64 reference: the packed base (bitmm.reference) plus the low-rank term."""
    cpu = lambda t: None if t is None else t.detach().cpu()  # noqa: E731
    y = reference.linear(kind, cpu(x), cpu(packed), cpu(s), cpu(u), cpu(b))
    return y + scale * (cpu(x).double() @ cpu(a).double().T) @ cpu(bb).double().T


def baseline_lora(kind, x, packed, s, u, b, a, bb, scale=SCALE):
    """Plain PyTorch in x's dtype (dense weight and adapters in that dtype)."""
    dt = x.dtype
    w = reference.dense_weight(kind, packed.cpu(), s.cpu(), None if u is None else u.cpu(), x.shape[-1]).to(dt)
    dev = baseline_device(x)
    x = x.to(dev)
    y = F.linear(x, w.to(dev), None if b is None else b.to(dev, dt))
    return y + F.linear(F.linear(x, a.to(dev, dt)), bb.to(dev, dt)) * scale


def assert_close_lora(kind, y, x, packed, s, u, b, a, bb, scale=SCALE):
    ref = ref_lora(kind, x, packed, s, u, b, a, bb, scale)
    assert y.shape == ref.shape and y.dtype == x.dtype and y.device == x.device
    assert torch.isfinite(y).all(), "non-finite output"
    if y.numel() == 0:
        return
    err = rel_err(y, ref)
    bound = dtype_bound(ref, x.dtype, rel_err(baseline_lora(kind, x, packed, s, u, b, a, bb, scale), ref))
    assert err <= bound, f"relative error {err:.3e} > bound {bound:.3e}"


# --------------------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("M", [0, 1, 3, 17])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype,lora_dtype", DTYPE_PAIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_lora_matches_reference(kind, dtype, lora_dtype, mode, M, device):
    x, packed, s, u, b, a, bb = make_lora(M, mode, kind, dtype, lora_dtype, device)
    poison_cuda_allocator()
    y = lora_linear(kind, x, packed, s, u, b, a, bb, SCALE)
    assert_close_lora(kind, y, x, packed, s, u, b, a, bb)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_lora_optional_terms_lead_dims_noncontiguous(kind, device):
    x, packed, s, u, b, a, bb = make_lora(4, "group", kind, device=device, lead=(2,))
    op = torch.ops.bitmm.lora_linear
    kid = bitmm.formats.KINDS[kind]
    y = op(x, packed, s, u, b, a, bb, kid, SCALE)
    assert y.shape == (2, 4, N)
    assert_close_lora(kind, y, x, packed, s, u, b, a, bb)
    assert_close_lora(kind, op(x, packed, s, None, None, a, bb, kid), x, packed, s, None, None, a, bb, 1.0)
    xt = torch.randn(K, 7, device=device).T  # non-contiguous
    at = torch.randn(K, R, device=device).T  # non-contiguous adapter
    assert_close_lora(kind, op(xt, packed, s, u, b, at, bb, kid, -2.0), xt, packed, s, u, b, at, bb, -2.0)
    x1 = torch.randn(K, device=device)  # 1-D x
    assert_close_lora(kind, op(x1, packed, s, u, b, a, bb, kid, SCALE), x1, packed, s, u, b, a, bb)
    # rank 1, and lora_scale = 0 is the base op
    assert_close_lora(kind, op(x, packed, s, u, b, a[:1], bb[:, :1], kid, SCALE), x, packed, s, u, b, a[:1],
                      bb[:, :1])
    torch.testing.assert_close(op(x, packed, s, u, b, a, bb, kid, 0.0), bitmm.linear(kind, x, packed, s, u, b),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_lora_float64_exact(device):
    x, packed, s, u, b, a, bb = make_lora(3, "group", "int2", torch.float64, device=device)
    y = lora_linear(3, x, packed, s, u, b, a, bb, SCALE)  # kind as its id
    assert y.dtype == torch.float64
    assert rel_err(y, ref_lora("int2", x, packed, s, u, b, a, bb)) < 1e-12


# --------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", KINDS)
def test_lora_gradcheck_float64(kind, mode, device):
    x, packed, s, u, b, a, bb = make_lora(3, mode, kind, torch.float64, device=device, lead=(2,), r=3)
    inputs = tuple(t.requires_grad_(True) for t in (x, b, a, bb))
    assert torch.autograd.gradcheck(lambda x_, b_, a_, bb_: lora_linear(kind, x_, packed, s, u, b_, a_, bb_, SCALE),
                                    inputs)
    # float32 adapters with float64 x: gradients in the adapters' dtype
    a32 = a.detach().float().requires_grad_(True)
    y = lora_linear(kind, x, packed, s, u, b, a32, bb.detach().float(), SCALE)
    y.sum().backward()
    assert a32.grad.dtype == torch.float32 and a32.grad.shape == a32.shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("M", [0, 1, 17])
@pytest.mark.parametrize("dtype,lora_dtype", DTYPE_PAIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_lora_backward_matches_reference(kind, dtype, lora_dtype, M, device):
    x, packed, s, u, b, a, bb = make_lora(M, "group", kind, dtype, lora_dtype, device, lead=(2,))
    leaves = [t.requires_grad_(True) for t in (x, b, a, bb)]
    y = lora_linear(kind, x, packed, s, u, b, a, bb, SCALE)
    g = torch.randn_like(y)
    y.backward(g)
    # float64 reference gradients through a dense copy of the base
    refs = [t.detach().cpu().double().requires_grad_(True) for t in leaves]
    w = reference.dense_weight(kind, packed.cpu(), s.cpu(), u.cpu(), K)
    xr, br, ar, bbr = refs
    (F.linear(xr, w, br) + SCALE * (xr @ ar.T) @ bbr.T).backward(g.cpu().double())
    tol = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}[dtype]
    for name, t, r in zip(("x", "bias", "lora_a", "lora_b"), leaves, refs):
        assert t.grad.dtype == t.dtype and t.grad.shape == t.shape and t.grad.device == t.device, name
        if M == 0 and name != "x":
            assert (t.grad == 0).all(), name
            continue
        assert rel_err(t.grad, r.grad) < tol, (name, rel_err(t.grad, r.grad))


@pytest.mark.parametrize("device", DEVICES)
def test_lora_backward_only_adapters(device):
    """x and bias without requires_grad: the packed backward (linear_grad_x) is not run."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    x, packed, s, u, b, a, bb = make_lora(5, "channel", "int2", device=device)
    a.requires_grad_(True)
    bb.requires_grad_(True)
    y = lora_linear("int2", x, packed, s, u, b, a, bb, SCALE)
    with Log():
        y.sum().backward()
    assert a.grad is not None and bb.grad is not None and x.grad is None
    assert seen and not any("linear_grad_x" in f for f in seen)
    x.requires_grad_(True)
    seen.clear()
    y = lora_linear("int2", x, packed, s, u, b, a, bb, SCALE)
    with Log():
        y.sum().backward()
    assert any("linear_grad_x" in f for f in seen)


# --------------------------------------------------------------------------------------
# opcheck and torch.compile
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_lora_opcheck(kind, device):
    op = torch.ops.bitmm.lora_linear
    kid = bitmm.formats.KINDS[kind]
    x, packed, s, u, b, a, bb = make_lora(3, "group", kind, device=device)
    for t in (x, b, a, bb):
        t.requires_grad_(True)
    torch.library.opcheck(op, (x, packed, s, u, b, a, bb, kid, SCALE))
    torch.library.opcheck(op, (x.detach(), packed, s, None, None, a, bb.detach(), kid))
    xh, packed, s, u, b, a, bb = make_lora(2, "channel", kind, torch.float16, torch.float32, device, lead=(2,))
    torch.library.opcheck(op, (xh.requires_grad_(True), packed, s, u, b, a.requires_grad_(True), bb, kid, -1.5))
    x0, packed, s, u, b, a, bb = make_lora(0, "tensor", kind, device=device)
    torch.library.opcheck(op, (x0, packed, s, u, b, a, bb, kid, SCALE))


@pytest.mark.parametrize("device", DEVICES)
def test_lora_torch_compile_fullgraph(device):
    torch._dynamo.reset()
    base = PackedLinear.from_linear(nn.Linear(96, 24, device=device), weight_bits=2, group_size=32)
    lora = PackedLoRALinear(base, r=4, alpha=8)
    nn.init.normal_(lora.lora_B)
    model = nn.Sequential(lora, nn.ReLU(), nn.Linear(24, 5, device=device))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 7, 96, device=device)
    y = compiled(x)
    torch.testing.assert_close(y, model(x))
    y.square().sum().backward()
    got = [p.grad.clone() for p in (lora.lora_A, lora.lora_B)]
    model.zero_grad()
    model(x).square().sum().backward()
    for g, p in zip(got, (lora.lora_A, lora.lora_B)):
        torch.testing.assert_close(g, p.grad)
    # the traced graph holds the one fused op
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm

    torch._dynamo.reset()
    torch.compile(lora, fullgraph=True, backend=backend)(x)
    assert any("bitmm.lora_linear" in str(n.target) for gm in graphs for n in gm.graph.nodes)


# --------------------------------------------------------------------------------------
# errors (real kernels and the fake kernel say the same)
# --------------------------------------------------------------------------------------
def error_cases(device, problem=None):
    x, p, s, u, b, a, bb = problem or make_lora(3, "channel", "ternary", device=device)
    L = lambda *args, kind=2: torch.ops.bitmm.lora_linear(*args, kind, SCALE)  # noqa: E731
    cases = [
        ("lora_a wrong K", lambda: L(x, p, s, u, b, a[:, :-1], bb), ValueError,
         r"lora_a must have shape \(r, K\) with r >= 1 and K=135, got \(5, 134\)"),
        ("lora_a 1-D", lambda: L(x, p, s, u, b, a[0], bb), ValueError, r"lora_a must have shape \(r, K\)"),
        ("lora_a r=0", lambda: L(x, p, s, u, b, a[:0], bb[:, :0]), ValueError, "r >= 1"),
        ("lora_b wrong N", lambda: L(x, p, s, u, b, a, bb[:-1]), ValueError,
         r"lora_b must have shape \(N, r\)=\(37, 5\).*got \(36, 5\)"),
        ("lora_b wrong r", lambda: L(x, p, s, u, b, a, bb[:, :-1]), ValueError,
         r"lora_b must have shape \(N, r\)=\(37, 5\)"),
        ("lora_b transposed", lambda: L(x, p, s, u, b, a, bb.T), ValueError, r"lora_b must have shape"),
        ("lora_a integer", lambda: L(x, p, s, u, b, a.long(), bb), TypeError, "lora_a must have x's dtype"),
        ("lora_a float16 with float32 x", lambda: L(x, p, s, u, b, a.half(), bb.half()), TypeError,
         r"lora_a must have x's dtype \(Float\) or float32, got Half"),
        ("lora_b float64", lambda: L(x, p, s, u, b, a, bb.double()), TypeError, "lora_b must have x's dtype"),
        ("adapters of two dtypes", lambda: L(x.half(), p, s, u, b, a.half(), bb), TypeError,
         "both adapters must have one dtype"),
        ("bad kind", lambda: L(x, p, s, u, b, a, bb, kind=7), ValueError, "kind must be 1"),
        ("base check still runs", lambda: L(x, p, s[:3], u, b, a, bb), ValueError, "scale of shape"),
        ("lora_a on another device", lambda: L(x, p, s, u, b, a.to("meta" if device == "cpu" else "cpu"), bb),
         RuntimeError, "lora_a is on"),
    ]
    if device != "cpu":
        cases.append(("lora_b on another device", lambda: L(x, p, s, u, b, a, bb.cpu()), RuntimeError, "lora_b is on"))
    return cases


@pytest.mark.parametrize("device", DEVICES)
def test_lora_errors(device):
    assert_error_table(error_cases(device))


def test_lora_fake_kernel_errors():
    """Tracing (fake tensors) rejects the same inputs with the same words."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from torch._subclasses.fake_tensor import FakeTensor

    real = make_lora(3, "channel", "ternary")
    with FakeTensorMode() as mode:
        fake = tuple(mode.from_tensor(t) for t in real)
        y = torch.ops.bitmm.lora_linear(*fake, 2, SCALE)
        assert isinstance(y, FakeTensor) and y.shape == (3, N)
        for desc, call, exc, frag in error_cases("cpu", fake):
            if desc in ("bad kind", "lora_a on another device"):
                continue
            # the fake kernel words dtypes as torch.float32 where the C++ one says Float: match the stem
            stem = frag.split(" with ")[0].split(r"\(")[0]
            with pytest.raises(exc, match=stem):  # (the C++ check's error type too)
                call()
                pytest.fail(f"{desc}: no error")


# --------------------------------------------------------------------------------------
# PackedLoRALinear on the fused op
# --------------------------------------------------------------------------------------
def _adapter(lora: PackedLoRALinear, h):
    """The adapter's term written out, (h A^T) B^T * alpha / r (h: what the adapter sees, in its dtype).  (alpha / r
    from the constructor's arguments, not the layer's `scaling`: a wrong scaling would cancel; review, session 55.)"""
    return F.linear(F.linear(h, lora.lora_A.detach()), lora.lora_B.detach()) * (lora.alpha / lora.r)


def _unfused(lora: PackedLoRALinear, x):
    """The layer's formula written out: base(x) + the adapter's term on x, in the adapter dtype."""
    return lora.base(x) + _adapter(lora, x.to(lora.lora_A.dtype)).to(x.dtype)


def _base_formula(base: PackedLinear, x):
    """base(x) through the op, not the layer: x fake-quantized to 8 bits (absmax) where act_bits=8."""
    xq = bitmm.quant.absmax_int8_fake(x) if base.act_bits == 8 else x
    return bitmm.linear(base.kind, xq, base.packed_weight, base.scale, base.offset, base.bias)


def _adapter_grads_f64(lora: PackedLoRALinear, h, g):
    """lora_A's and lora_B's gradients of sum(g * (h A^T) B^T * alpha / r), in float64 (h: what the adapter sees)."""
    a = lora.lora_A.detach().double().requires_grad_()
    b = lora.lora_B.detach().double().requires_grad_()
    (F.linear(F.linear(h.double(), a), b) * (lora.alpha / lora.r) * g.double()).sum().backward()
    return a.grad, b.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bits", [1.58, 1, 2])
def test_packed_lora_layer_uses_fused_op(bits, device, monkeypatch):
    base = PackedLinear.from_linear(nn.Linear(96, 40, device=device), weight_bits=bits)
    lora = PackedLoRALinear(base, r=6, alpha=12)
    nn.init.normal_(lora.lora_B)
    calls = []
    import bitmm.nn as bnn
    orig = bnn.lora_linear
    monkeypatch.setattr(bnn, "lora_linear", lambda *a: calls.append(1) or orig(*a))
    x = torch.randn(3, 5, 96, device=device)
    y = lora(x)
    # float32 x on CPU: base(x) on the prepacked layouts + the adapter product (nn.py _packed_lora)
    assert len(calls) == (0 if device == "cpu" else 1)
    torch.testing.assert_close(y, _unfused(lora, x), rtol=1e-5, atol=1e-5)
    lora.base.use_cpu_prepack = False  # (no layout to read: the fused op on CPU too)
    torch.testing.assert_close(lora(x), y, rtol=1e-5, atol=1e-5)
    assert len(calls) == (1 if device == "cpu" else 2)
    # gradients for x, A and B: the CPU route (base(x) + adapter) against the fused op
    grads = []
    for prepack in (False, True):
        lora.base.use_cpu_prepack = prepack
        xg = x.clone().requires_grad_(True)
        lora.zero_grad()
        (lora(xg) * torch.linspace(-1, 1, 40, device=device)).sum().backward()
        grads.append((xg.grad, lora.lora_A.grad.clone(), lora.lora_B.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    lora.base.use_cpu_prepack = True
    # half / bfloat16 x with the float32 adapters: the fused op everywhere
    for dt in (torch.float16, torch.bfloat16):
        xh = x.to(dt)
        n = len(calls)
        assert lora(xh).dtype == dt
        assert len(calls) == n + 1
        assert rel_err(lora(xh), _unfused(lora, x)) < (5e-3 if dt == torch.float16 else 3e-2)
    # bfloat16 adapters with float32 x: cast to x's dtype, gradients reach the bf16 Parameters
    lora_bf = PackedLoRALinear(base, r=6, alpha=12, dtype=torch.bfloat16)
    nn.init.normal_(lora_bf.lora_B)
    yb = lora_bf(x)
    assert yb.dtype == torch.float32 and rel_err(yb, _unfused(lora_bf, x)) < 2e-2
    yb.sum().backward()
    assert lora_bf.lora_A.grad.dtype == torch.bfloat16 and lora_bf.lora_B.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("bits,group_size", [(2, 32), (2, None), (1.58, None)])
def test_packed_lora_cpu_route_matches_fused_op_with_gradients(bits, group_size, monkeypatch):
    # float32 x on CPU: PackedLoRALinear takes base(x) (cpu_prepacked_linear) + the adapter product instead of
    # the fused op (nn.py _packed_lora); forward and the gradients of x, A and B as the fused op's,
    # with the fused op called exactly when the layouts are off.  (Per tensor with x requiring grad takes
    # the transposed backward on both, group-wise the two routes.)
    import bitmm.nn as bnn
    calls = []
    orig = bnn.lora_linear
    monkeypatch.setattr(bnn, "lora_linear", lambda *a: calls.append(1) or orig(*a))
    torch.manual_seed(0)
    base = PackedLinear.from_linear(nn.Linear(96, 40), weight_bits=bits, group_size=group_size)
    lora = PackedLoRALinear(base, r=6, alpha=12)
    nn.init.normal_(lora.lora_B)
    x = torch.randn(3, 5, 96)
    w = torch.linspace(-1, 1, 40)
    out = []
    for prepack in (False, True):
        base.use_cpu_prepack = prepack
        n = len(calls)
        xg = x.clone().requires_grad_(True)
        lora.zero_grad()
        y = lora(xg)
        fused = len(calls) > n
        (y * w).sum().backward()
        out.append((fused, y.detach(), xg.grad, lora.lora_A.grad.clone(), lora.lora_B.grad.clone()))
    transposed = base._takes_transposed_backward(x.requires_grad_(True), base.scale, base.offset)
    assert out[0][0] == (not transposed) and not out[1][0]
    for a, b in zip(out[0][1:], out[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_packed_lora_layer_dropout_and_act_bits_paths(device, monkeypatch):
    # The routes that leave the fused op (dropout in training, act_bits=8), by value and by the adapters' gradients
    # against the formula written out (review, session 55: the dropout route's adapter input, the 8-bit fake
    # quantization of the base's x and lora_A's gradient on these routes could each be dropped unseen).
    import bitmm.nn as bnn
    calls = []
    orig = bnn.lora_linear
    monkeypatch.setattr(bnn, "lora_linear", lambda *a: calls.append(1) or orig(*a))
    base = PackedLinear.from_linear(nn.Linear(64, 16, device=device), weight_bits=2)
    base.use_cpu_prepack = False  # (else float32 x on CPU takes base(x) + adapter in eval too: the test above)
    lora = PackedLoRALinear(base, r=4, alpha=6, dropout=0.5)
    nn.init.normal_(lora.lora_B)
    x = torch.randn(8, 64, device=device)
    g = torch.randn(8, 16, device=device)
    lora.train()
    torch.manual_seed(7)
    y = lora(x)
    assert not calls  # dropout active: base(x) + adapter(dropout(x))
    torch.manual_seed(7)
    h = F.dropout(x, 0.5, training=True)  # (nn.Dropout's draw: the same generator state gives the same mask)
    assert (h == 0).any() and (h != 0).any()
    assert lora.alpha / lora.r == 1.5
    torch.testing.assert_close(y, _base_formula(base, x) + _adapter(lora, h), rtol=1e-5, atol=1e-5)
    y.backward(g)
    ga, gb = _adapter_grads_f64(lora, h, g)
    assert rel_err(lora.lora_A.grad, ga) < 1e-5 and rel_err(lora.lora_B.grad, gb) < 1e-5
    lora.eval()
    torch.testing.assert_close(lora(x), _unfused(lora, x), rtol=1e-5, atol=1e-5)
    assert calls
    calls.clear()
    base8 = PackedLinear.from_linear(nn.Linear(64, 16, device=device), weight_bits=1.58, act_bits=8)
    base8.use_cpu_prepack = False
    lora8 = PackedLoRALinear(base8, r=4)
    nn.init.normal_(lora8.lora_B)
    y8 = lora8(x)
    assert not calls
    # the adapter sees x itself (alpha / r = 16 / 4, the defaults)
    assert lora8.alpha / lora8.r == 4.0
    adapter = _adapter(lora8, x)
    # base quantizes x, the adapter does not (the layer's base may take linear_a8, the formula the float op on the
    # fake-quantized x: float32 roundings apart)
    torch.testing.assert_close(y8, _base_formula(base8, x) + adapter, rtol=1e-5, atol=1e-5)
    base8.act_bits = None  # (the 8-bit quantization changes the base's output: the check above can tell)
    y_float = lora8(x)
    assert rel_err(y_float - adapter, _base_formula(base8, x)) < 1e-5 and rel_err(y8 - adapter, y_float - adapter) > 1e-3
    base8.act_bits = 8
    y8.backward(g)
    ga, gb = _adapter_grads_f64(lora8, x, g)
    assert rel_err(lora8.lora_A.grad, ga) < 1e-5 and rel_err(lora8.lora_B.grad, gb) < 1e-5


# --------------------------------------------------------------------------------------
# HQQ+ offset fold
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", KINDS)
def test_fold_offset_into_lora_exact(kind, mode, device):
    x, packed, s, u, b, a, bb = make_lora(6, mode, kind, torch.float64, device=device)
    a2, bb2 = fold_offset_into_lora(u, a, bb, SCALE)
    ng = 1 if mode != "group" else K // MODES["group"]
    assert a2.shape == (R + ng, K) and bb2.shape == (N, R + ng)
    assert torch.equal(a2[:R], a) and torch.equal(bb2[:, :R], bb)
    y = lora_linear(kind, x, packed, s, u, b, a, bb, SCALE)
    y2 = lora_linear(kind, x, packed, s, None, b, a2, bb2, SCALE)
    assert rel_err(y2, y) < 1e-12
    # balanced factors: each folded row of A has the norm of its column of B
    torch.testing.assert_close(a2[R:].norm(dim=1), bb2[:, R:].norm(dim=0))


def test_fold_offset_into_lora_errors_and_zero_offset():
    a, bb = torch.randn(3, 10), torch.randn(4, 3)
    with pytest.raises(ValueError, match="nonzero"):
        fold_offset_into_lora(torch.randn(4), a, bb, 0.0)
    with pytest.raises(ValueError, match=r"offset of shape \(4, 3\)"):
        fold_offset_into_lora(torch.randn(4, 3), a, bb, 1.0)  # 3 groups do not divide K=10
    with pytest.raises(ValueError, match="lora_a must be"):
        fold_offset_into_lora(torch.randn(4), a, bb.T, 1.0)
    a2, bb2 = fold_offset_into_lora(torch.zeros(4, 2), a, bb, 2.0)
    assert torch.isfinite(a2).all() and (bb2[:, 3:] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bits,group_size", [(1, None), (2, None), (2, 32)])
def test_packed_lora_fold_offset(bits, group_size, device):
    base = PackedLinear.from_linear(nn.Linear(96, 24, device=device), weight_bits=bits, group_size=group_size)
    assert base.offset is not None
    lora = PackedLoRALinear(base, r=4, alpha=8)
    nn.init.normal_(lora.lora_B, std=0.1)
    x = torch.randn(5, 96, device=device)
    y = lora(x)
    scaling = lora.scaling
    assert lora.fold_offset() is lora
    ng = 96 // group_size if group_size else 1
    assert lora.base.offset is None and lora.r == 4 + ng and lora.lora_A.shape == (4 + ng, 96)
    assert lora.scaling == scaling and base.offset is not None  # the original base is untouched
    assert rel_err(lora(x), y) < 1e-6
    # it still trains (the folded rank included)
    lora(x).square().sum().backward()
    assert lora.lora_A.grad.shape == lora.lora_A.shape and lora.lora_B.grad[:, 4:].abs().sum() > 0
    # state dict round trip into another folded layer
    other = PackedLoRALinear(PackedLinear.from_linear(nn.Linear(96, 24, device=device), weight_bits=bits,
                                                      group_size=group_size), r=4, alpha=8).fold_offset()
    other.load_state_dict(lora.state_dict())
    torch.testing.assert_close(other(x), lora(x))


def test_packed_lora_fold_offset_refusals_and_noop():
    ternary = PackedLoRALinear(PackedLinear.from_linear(nn.Linear(64, 8), weight_bits=1.58), r=2)
    A = ternary.lora_A
    assert ternary.fold_offset().lora_A is A  # no offset: nothing to fold
    with pytest.raises(ValueError, match="act_bits"):
        PackedLoRALinear(PackedLinear.from_linear(nn.Linear(64, 8), weight_bits=2, act_bits=8)).fold_offset()
    with pytest.raises(ValueError, match="dropout=0"):
        PackedLoRALinear(PackedLinear.from_linear(nn.Linear(64, 8), weight_bits=2), dropout=0.1).fold_offset()


# --------------------------------------------------------------------------------------
# PEFT
# --------------------------------------------------------------------------------------
def test_peft_lora_uses_fused_op(monkeypatch):
    peft = pytest.importorskip("peft")
    import bitmm.peft_compat as pc

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(64, 32)
            self.out = nn.Linear(32, 8)
            self.head = nn.Linear(8, 3)  # stays float (PEFT wants the model to have a parameter)

        def forward(self, x):
            return self.head(self.out(torch.relu(self.proj(x))))

    model = bitmm.nn.convert(Net(), mode="packed", weight_bits=2, skip=("head",))
    config = pc.register_packed_lora(peft.LoraConfig(r=4, lora_alpha=8, target_modules=["proj", "out"],
                                                     init_lora_weights=False))
    model = peft.get_peft_model(model, config)
    calls = []
    import bitmm.nn as bnn  # (the PEFT layer's fused case goes through bitmm.nn._packed_lora)
    orig = bnn.lora_linear
    monkeypatch.setattr(bnn, "lora_linear", lambda *a: calls.append(1) or orig(*a))
    x = torch.randn(6, 64)
    layers = [m for m in model.modules() if isinstance(m, pc.PackedLoraLinear)]
    for layer in layers:  # (float32 x on CPU takes base + adapter on the prepacked layouts: checked below)
        layer.base_layer.use_cpu_prepack = False
    y = model(x)
    assert len(calls) == 2

    def manual(x):
        proj, out = layers
        h = proj.base_layer(x) + proj.lora_B["default"](proj.lora_A["default"](x)) * proj.scaling["default"]
        h = torch.relu(h)
        h = out.base_layer(h) + out.lora_B["default"](out.lora_A["default"](h)) * out.scaling["default"]
        return model.base_model.model.head(h)

    torch.testing.assert_close(y, manual(x), rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    # float32 x on CPU with the layouts on: the base on them + the adapter product, not the fused op; same values
    for layer in layers:
        layer.base_layer.use_cpu_prepack = True
    model.zero_grad()
    calls.clear()
    y2 = model(x)
    assert not calls
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-5)
    y2.square().sum().backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads[n], rtol=1e-5, atol=1e-5)
    with model.disable_adapter():
        calls.clear()
        model(x)
        assert not calls


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("M", [1, 3, 8, 16, 17])
@pytest.mark.parametrize("k,n,r", [(264, 301, 16), (520, 20011, 64), (135, 300, 3)])
@pytest.mark.parametrize("dtype,lora_dtype", DTYPE_PAIRS[1:])
@pytest.mark.parametrize("kind", KINDS)
def test_lora_cuda_fused_decode_shapes(kind, dtype, lora_dtype, k, n, r, M):
    # The decode path: x @ lora_a^T in bitmm's kernel (16-byte loads when K % 8 == 0),
    # the low-rank term in the tensor-core epilogue, several row tiles per CTA (n = 20011).
    x, packed, s, u, b, a, bb = make_lora(M, "channel", kind, dtype, lora_dtype, "cuda", r=r, k=k, n=n)
    poison_cuda_allocator()
    y = lora_linear(kind, x, packed, s, u, b, a, bb, SCALE)
    assert_close_lora(kind, y, x, packed, s, u, b, a, bb)


@pytest.mark.parametrize("mode", ["group", "channel"])
@pytest.mark.parametrize("M", [0, 1, 5])
def test_lora_cpu_nonfinite_scale_is_an_error(M, mode):
    """check_lora leaves the CPU NaN / Inf test of scale and offset to the base op (its AVX2 kernel
    tests them as it reads them); M = 0 never reaches the base op and scans them itself."""
    x, packed, s, u, b = make_problem("ternary", M, 128, 37, mode, 32 if mode == "group" else None)
    a, bb = torch.randn(R, 128) / 128 ** 0.5, torch.randn(37, R)
    assert lora_linear("ternary", x, packed, s, u, b, a, bb, SCALE).shape == (M, 37)
    s2 = s.clone()
    s2[(36, -1) if s.dim() == 2 else (36,)] = float("nan")
    where = r"36, \d+" if s.dim() == 2 else "36"
    with pytest.raises(ValueError, match=rf"ternary_linear: scale\[{where}\] is NaN"):
        lora_linear("ternary", x, packed, s2, u, b, a, bb, SCALE)
    u2 = u.clone()
    u2[(0, 0) if u.dim() == 2 else (0,)] = -float("inf")
    with pytest.raises(ValueError, match=r"ternary_linear: offset\[0(, 0)?\] is -Inf"):
        lora_linear("ternary", x, packed, s, u2, b, a, bb, SCALE)
