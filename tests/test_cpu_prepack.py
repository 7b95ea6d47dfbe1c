"""The CPU prepacked layouts (csrc/cpu_prepack_format.h): torch.ops.bitmm.cpu_prepack,
cpu_prepack_scales and cpu_prepacked_linear.  Outputs equal the float64 reference within the
dtype bound and the plain CPU op bit for bit; gradients, opcheck, errors naming the
argument, the documented byte layout, and PackedLinear's use of it on CPU."""
import struct

import pytest
import torch

import bitmm
import bitmm.nn as bnn
from bitmm import formats
from helpers import KINDS, UnmappedNeighbours, assert_close_to_reference, assert_error_table, make_problem, run_in_child

KIND_ID = formats.KINDS
# (M, K, N): odd K / N, M = 0, several K tiles; N = 70 / 100: the second 64-row tile holds one / two 32-row blob tiles
SHAPES = [(1, 99, 33), (3, 160, 70), (17, 4160, 65), (0, 96, 9), (2, 320, 100)]
MODES = ["tensor", "channel", "g32", "g64", "generic"]
GENERIC_G = {99: 33, 160: 40, 4160: 80, 96: 48, 320: 80}  # group sizes that are not a multiple of 32


def _mode_args(mode, K):
    """(helpers' scale mode, G), or None when the group size does not divide K."""
    if mode in ("tensor", "channel"):
        return mode, None
    G = {"g32": 32, "g64": 64, "generic": GENERIC_G[K]}[mode]
    return ("group", G) if K % G == 0 else None


def _run_both(kind, x, packed, s, u, b):
    """The blob path, checked bit for bit against itself with prepacked_scales; and the plain op."""
    pre = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], x.shape[-1])
    y = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, KIND_ID[kind])
    sp = torch.ops.bitmm.cpu_prepack_scales(s, u, packed.shape[0], x.shape[-1])
    assert torch.equal(torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, KIND_ID[kind], sp), y)
    return y, bitmm.linear(kind, x, packed, s, u, b)


@pytest.mark.parametrize("extras", ["offset+bias", "none"])
@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference_and_plain_op(kind, mode, M, K, N, extras):
    args = _mode_args(mode, K)
    if args is None:
        pytest.skip(f"{mode} does not divide K={K}")
    torch.manual_seed(M * 7 + K + N)
    with_extras = extras == "offset+bias"
    x, packed, s, u, b = make_problem(kind, M, K, N, args[0], args[1], offset=with_extras, bias=with_extras)
    y, y_plain = _run_both(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)
    assert torch.equal(y, y_plain)  # same additions in the same order as the transposing kernel


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_dtypes_and_3d_x(kind, dtype):
    x, packed, s, u, b = make_problem(kind, 5, 320, 37, "group", 64, dtype=dtype, lead=(2,))
    y, y_plain = _run_both(kind, x, packed, s, u, b)
    assert y.shape == (2, 5, 37) and y.dtype == dtype
    assert_close_to_reference(kind, y, x, packed, s, u, b)
    assert torch.equal(y, y_plain)


@pytest.mark.parametrize("kind", KINDS)
def test_strided_x(kind):
    x, packed, s, u, b = make_problem(kind, 6, 256, 40, "channel")
    xt = torch.randn(256, 6).t()  # non-contiguous
    y, y_plain = _run_both(kind, xt, packed, s, u, b)
    assert torch.equal(y, y_plain)


def _row_of_byte(p):
    return 8 * ((p % 16) // 4) + 4 * (p // 16) + p % 4


@pytest.mark.parametrize("kind", KINDS)
def test_layout_is_as_documented(kind):
    """Rebuilds the blob from csrc/cpu_prepack_format.h's description and compares bytes."""
    N, K = 45, 200
    _, packed, _, _, _ = make_problem(kind, 1, K, N)
    blob = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], K)
    wpr = packed.shape[1]
    tiles = -(-N // 32)
    assert blob.dtype == torch.uint8 and blob.dim() == 1
    assert blob.numel() == formats.cpu_prepacked_nbytes(kind, N, K) == 64 + tiles * wpr * 128
    magic, version, kind_b, tile_rows, res0, K_h, N_h, wpr_h, payload = struct.unpack(
        "<4sBBBBqqqq", bytes(blob[:40].tolist()))
    assert (magic, version, kind_b, tile_rows, res0) == (b"BMCP", formats.CPU_PREPACK_VERSION, KIND_ID[kind], 32, 0)
    assert (K_h, N_h, wpr_h, payload) == (K, N, wpr, tiles * wpr * 128)
    assert not blob[40:64].any()
    w = packed.to(torch.int64) & 0xFFFFFFFF
    w = torch.cat([w, w.new_zeros(tiles * 32 - N, wpr)]).reshape(tiles, 32, wpr)
    w = w[:, [_row_of_byte(p) for p in range(32)], :]  # (tile, p, word)
    byts = torch.stack([(w >> (8 * q)) & 0xFF for q in range(4)], -1)  # (tile, p, word, q)
    want = byts.permute(0, 2, 3, 1).reshape(-1).to(torch.uint8)  # (tile, word, q, p)
    assert torch.equal(blob[64:], want)


def _scales_as_documented(s, u, N, K):
    """csrc/cpu_prepack_format.h's scale layout rebuilt from its description."""
    G = max(t.shape[1] if t is not None and t.dim() == 2 else 1 for t in (s, u))
    tiles = -(-N // 32)
    planes = []
    for t in (s, u) if u is not None else (s,):  # (no offset: no offset plane)
        v = t.float().reshape(-1 if t.dim() else 1, t.shape[1] if t.dim() == 2 else 1).expand(N, G)
        rows = [min(32 * ti + _row_of_byte(p), N - 1) for ti in range(tiles) for p in range(32)]
        planes.append(v[rows].reshape(tiles, 32, G).transpose(1, 2))  # (tile, group, p)
    return torch.stack(planes)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("smode,umode", [("group", "group"), ("tensor", "group"), ("channel", None),
                                         ("channel1", "group"), ("tensor", "tensor"), ("group", None)])
def test_scale_layout_is_as_documented(smode, umode, dtype):
    N, K, G = 45, 256, 4  # two tiles, the second with 13 rows
    torch.manual_seed(3)
    make = {"group": lambda: torch.randn(N, G), "tensor": lambda: torch.tensor(0.3), "channel": lambda: torch.randn(N),
            "channel1": lambda: torch.randn(N, 1), None: lambda: None}
    s, u = make[smode](), make[umode]()
    s = s.to(dtype)
    u = None if u is None else u.to(dtype)
    sp = torch.ops.bitmm.cpu_prepack_scales(s, u, N, K)
    want = _scales_as_documented(s, u, N, K)
    assert sp.dtype == torch.float32 and sp.is_contiguous() and sp.shape == want.shape
    assert torch.equal(sp, want)  # exact: float32 of each value (float64 rounded once)


@pytest.mark.parametrize("kind", KINDS)
def test_opcheck(kind):
    x, packed, s, u, b = make_problem(kind, 3, 100, 9, "channel")
    pre = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], 100)
    torch.library.opcheck(torch.ops.bitmm.cpu_prepack, (packed, KIND_ID[kind], 100))
    x.requires_grad_(True)
    torch.library.opcheck(torch.ops.bitmm.cpu_prepacked_linear, (x, packed, pre, s, u, b, KIND_ID[kind]))
    torch.library.opcheck(torch.ops.bitmm.cpu_prepacked_linear, (x.detach(), packed, pre, s, None, None, KIND_ID[kind]))
    _, _, sg, ug, _ = make_problem(kind, 3, 100, 9, "group", 50, offset=True)
    sp = torch.ops.bitmm.cpu_prepack_scales(sg, ug, 9, 100)
    torch.library.opcheck(torch.ops.bitmm.cpu_prepack_scales, (sg, ug, 9, 100))
    torch.library.opcheck(torch.ops.bitmm.cpu_prepack_scales, (s, None, 9, 100))
    torch.library.opcheck(torch.ops.bitmm.cpu_prepacked_linear, (x, packed, pre, sg, ug, b, KIND_ID[kind], sp))


@pytest.mark.parametrize("mode,G", [("channel", None), ("group", 32), ("group", 5)])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_float64(kind, mode, G):
    K = 160 if G != 5 else 35
    x, packed, s, u, b = make_problem(kind, 3, K, 6, mode, G, dtype=torch.float64)
    pre = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], K)
    x.requires_grad_(True)
    b.requires_grad_(True)
    f = lambda x_, b_: torch.ops.bitmm.cpu_prepacked_linear(x_, packed, pre, s, u, b_, KIND_ID[kind])  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))


@pytest.mark.parametrize("with_offset", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_float32_gradients_equal_plain_op(kind, with_offset):
    x, packed, s, u, b = make_problem(kind, 4, 4096 + 64, 70, "group", 64, offset=with_offset, lead=(2,))
    pre = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], x.shape[-1])
    grads = []
    for use_pre in (True, False):
        xr, br = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
        if use_pre:
            y = torch.ops.bitmm.cpu_prepacked_linear(xr, packed, pre, s, u, br, KIND_ID[kind])
        else:
            y = bitmm.linear(kind, xr, packed, s, u, br)
        y.backward(torch.ones_like(y) * 0.5 + torch.arange(y.shape[-1]) * 0.01)
        grads.append((y.detach(), xr.grad, br.grad))
    for a, c in zip(*grads):
        assert torch.equal(a, c)


def test_errors():
    x, packed, s, u, b = make_problem("ternary", 2, 100, 40, "channel")
    pre = torch.ops.bitmm.cpu_prepack(packed, 2, 100)
    op = torch.ops.bitmm.cpu_prepacked_linear
    _, packed_i2, s2, u2, _ = make_problem("int2", 2, 100, 40, "channel")
    _, packed_n, _, _, _ = make_problem("ternary", 2, 100, 41, "channel")
    pre_n = torch.ops.bitmm.cpu_prepack(packed_n, 2, 100)

    def corrupt(offset, value):
        c = pre.clone()
        c[offset] = value
        return c

    bad_wpr = pre.clone()
    bad_wpr[24:32] = torch.tensor(list(struct.pack("<q", 7)), dtype=torch.uint8)
    assert_error_table([
        ("kind out of range", lambda: op(x, packed, pre, s, u, b, 4), ValueError, "kind must be 1"),
        ("blob of another kind", lambda: op(x, packed_i2, pre, s2, u2, b, 3), ValueError,
         r"prepacked was made for kind 2 but the call is for kind 3 \(int2\)"),
        ("x of another K (same padded width)", lambda: op(x[:, :90], packed, pre, s, u, b, 2), ValueError,
         "prepacked was made for K=100 but x has K=90"),
        ("blob of another N", lambda: op(x, packed, pre_n, s, u, b, 2), ValueError,
         "prepacked was made for N=41 but packed_w has N=40"),
        ("truncated blob", lambda: op(x, packed, pre[:-1], s, u, b, 2), ValueError, r"prepacked has .* \(truncated\)"),
        ("blob shorter than its header", lambda: op(x, packed, pre[:10], s, u, b, 2), ValueError,
         "prepacked has 10 bytes, fewer than its 64-byte header"),
        ("blob too long", lambda: op(x, packed, torch.cat([pre, pre[:1]]), s, u, b, 2), ValueError,
         "prepacked has .* bytes but its header"),
        ("corrupted magic", lambda: op(x, packed, corrupt(0, 0), s, u, b, 2), ValueError,
         "prepacked does not start with the cpu_prepack header"),
        ("another layout version", lambda: op(x, packed, corrupt(4, 9), s, u, b, 2), ValueError,
         "prepacked has layout version 9 but this build reads version 1"),
        ("corrupted tile_rows", lambda: op(x, packed, corrupt(6, 16), s, u, b, 2), ValueError,
         "prepacked has a corrupted header"),
        ("corrupted words_per_row", lambda: op(x, packed, bad_wpr, s, u, b, 2), ValueError,
         "prepacked has a corrupted header"),
        ("blob of wrong dtype", lambda: op(x, packed, pre.to(torch.int8), s, u, b, 2), TypeError,
         "prepacked must be a uint8 tensor"),
        ("2-D blob", lambda: op(x, packed, pre.reshape(1, -1), s, u, b, 2), ValueError,
         "prepacked must be a contiguous 1-D uint8 tensor"),
        ("non-contiguous blob", lambda: op(x, packed, torch.stack([pre, pre], 1)[:, 0], s, u, b, 2), ValueError,
         "prepacked must be a contiguous 1-D uint8 tensor"),
        ("packed_w of wrong dtype", lambda: op(x, packed.float(), pre, s, u, b, 2), TypeError,
         r"cpu_prepacked_linear\(ternary\): packed_w must be an int32 tensor"),
        ("x of wrong dtype", lambda: op(x.int(), packed, pre, s, u, b, 2), TypeError, "x must be float32"),
        ("scale of wrong shape", lambda: op(x, packed, pre, s[:5], u, b, 2), ValueError, "scale of shape"),
        ("prepack: kind out of range", lambda: torch.ops.bitmm.cpu_prepack(packed, 0, 100), ValueError,
         "kind must be 1"),
        ("prepack: wrong K", lambda: torch.ops.bitmm.cpu_prepack(packed, 2, 300), ValueError,
         r"cpu_prepack\(ternary\): packed_w has 8 int32 words per row but the ternary format with K=300 needs 24"),
        ("prepack: K < 1", lambda: torch.ops.bitmm.cpu_prepack(packed, 2, 0), ValueError, "K must be >= 1"),
        ("prepack: wrong dtype", lambda: torch.ops.bitmm.cpu_prepack(packed.to(torch.int64), 2, 100), TypeError,
         "packed_w must be an int32 tensor"),
        ("prepack: 1-D packed_w", lambda: torch.ops.bitmm.cpu_prepack(packed[0], 2, 100), ValueError,
         "packed_w must be 2-D"),
    ])


def test_prepacked_scales_errors():
    x, packed, s, u, b = make_problem("int2", 2, 128, 40, "group", 32, offset=True)
    pre = torch.ops.bitmm.cpu_prepack(packed, 3, 128)
    sp = torch.ops.bitmm.cpu_prepack_scales(s, u, 40, 128)
    op = torch.ops.bitmm.cpu_prepacked_linear
    prep = torch.ops.bitmm.cpu_prepack_scales
    s64, u64 = torch.rand(40, 2) + 0.5, torch.randn(40, 2)  # group size 64
    assert_error_table([
        ("wrong dtype", lambda: op(x, packed, pre, s, u, b, 3, sp.double()), TypeError,
         r"cpu_prepacked_linear\(int2\): prepacked_scales must be a float32 tensor"),
        ("made for another group size", lambda: op(x, packed, pre, s64, u64, b, 3, sp), ValueError,
         r"prepacked_scales of shape \(2, 2, 4, 32\) does not fit N=40, K=128 and scale / offset with 2 group"),
        ("made for another N", lambda: op(x, packed, pre, s, u, b, 3, prep(s[:33], u[:33], 33, 128)[:, :1]), ValueError,
         r"expected \(2, 2, 4, 32\)"),
        ("per channel layout for group-wise scales", lambda: op(x, packed, pre, s, u, b, 3, prep(s[:, 0], u[:, 0], 40, 128)),
         ValueError, r"prepacked_scales of shape \(2, 2, 1, 32\)"),
        ("made without the offset", lambda: op(x, packed, pre, s, u, b, 3, prep(s, None, 40, 128)), ValueError,
         r"prepacked_scales has 1 plane\(s\), but a call with an offset needs 2"),
        ("made with an offset", lambda: op(x, packed, pre, s, None, b, 3, sp), ValueError,
         r"prepacked_scales has 2 plane\(s\), but a call without an offset needs 1"),
        ("non-contiguous", lambda: op(x, packed, pre, s, u, b, 3, torch.stack([sp, sp], -1)[..., 0]), ValueError,
         "prepacked_scales must be contiguous"),
        ("on another device", lambda: op(x, packed, pre, s, u, b, 3, sp.to("meta")), RuntimeError,
         "prepacked_scales is on meta but x is on cpu"),
        ("prepack: scale of wrong shape", lambda: prep(s[:5], u, 40, 128), ValueError, "scale of shape"),
        ("prepack: groups that do not divide K", lambda: prep(torch.rand(40, 3), None, 40, 128), ValueError,
         "scale has 3 groups along K, which does not divide K=128"),
        ("prepack: scale and offset group sizes differ", lambda: prep(s, s64, 40, 128), ValueError,
         "scale has 4 groups but offset has 2"),
        ("prepack: integer scale", lambda: prep(s.int(), u, 40, 128), TypeError, "scale must be float32"),
        ("prepack: offset on another device", lambda: prep(s, u.to("meta"), 40, 128), RuntimeError,
         "offset is on meta but scale is on cpu"),
        ("prepack: N < 1", lambda: prep(torch.tensor(1.0), None, 0, 128), ValueError, "N and K must be >= 1"),
    ])


def test_prepacked_scales_nonfinite():
    """A NaN / Inf read from the layout is reported by the element of scale / offset it came from; one that scale and
    offset do not hold (a layout made from other values) is reported as stale, never returned as output."""
    x, packed, s, u, b = make_problem("ternary", 1, 256, 70, "group", 64, offset=True)
    pre = torch.ops.bitmm.cpu_prepack(packed, 2, 256)
    s_bad = s.clone()
    s_bad[69, 3] = float("nan")
    sp_bad = torch.ops.bitmm.cpu_prepack_scales(s_bad, u, 70, 256)
    with pytest.raises(ValueError, match=r"scale\[69, 3\] is NaN"):
        torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s_bad, u, b, 2, sp_bad)
    if torch.ops.bitmm._cpu_forward_kernel() == "generic":  # (no SIMD kernel: the layout is not read)
        y = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2, sp_bad)
        assert torch.equal(y, bitmm.linear("ternary", x, packed, s, u, b))
        return
    with pytest.raises(ValueError, match="prepacked_scales holds a NaN or Inf that scale and offset do not"):
        torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2, sp_bad)
    # float64 scales (checked up front, since the kernel sees float32 roundings): a stale NaN is still reported, and a
    # finite value past float32's range reads as Inf with or without the layout (no error: as the plain op)
    with pytest.raises(ValueError, match="prepacked_scales holds a NaN or Inf that scale and offset do not"):
        torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s.double(), u, b, 2, sp_bad)
    big = s.double().clone()
    big[3, 1] = 1e300
    y = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, big, u, b, 2,
                                             torch.ops.bitmm.cpu_prepack_scales(big, u, 70, 256))
    torch.testing.assert_close(y, bitmm.linear("ternary", x, packed, big, u, b), rtol=0, atol=0, equal_nan=True)
    assert y[:, 3].isinf().all()


def test_fake_kernel_errors():
    from torch._subclasses.fake_tensor import FakeTensorMode
    x, packed, s, u, b = make_problem("ternary", 2, 100, 40, "channel")
    pre = torch.ops.bitmm.cpu_prepack(packed, 2, 100)
    with FakeTensorMode(allow_non_fake_inputs=True):
        y = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2)
        assert y.shape == (2, 40)
        assert torch.ops.bitmm.cpu_prepack(packed, 2, 100).shape == pre.shape
        with pytest.raises(ValueError, match="prepacked of shape"):
            torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre[:-1], s, u, b, 2)
        with pytest.raises(TypeError, match="prepacked must be a uint8"):
            torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre.to(torch.int8), s, u, b, 2)
        sp = torch.ops.bitmm.cpu_prepack_scales(s, u, 40, 100)
        assert sp.shape == (2, 2, 1, 32) and sp.dtype == torch.float32
        assert torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2, sp).shape == (2, 40)
        with pytest.raises(ValueError, match=r"prepacked_scales of shape \(2, 1, 1, 32\) does not fit N=40"):
            torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2, sp[:, :1])
        with pytest.raises(TypeError, match="prepacked_scales must be a float32"):
            torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, 2, sp.half())
        with pytest.raises(ValueError, match="scale has 3 groups along K, which does not divide K=100"):
            torch.ops.bitmm.cpu_prepack_scales(torch.rand(40, 3), None, 40, 100)


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    x, packed, s, u, b = make_problem("int2", 5, 96, 12, "group", 32)
    pre = torch.ops.bitmm.cpu_prepack(packed, 3, 96)
    f = lambda x_: torch.relu(torch.ops.bitmm.cpu_prepacked_linear(x_, packed, pre, s, u, b, 3))  # noqa: E731
    xr = x.clone().requires_grad_(True)
    y = torch.compile(f, fullgraph=True, backend="aot_eager")(xr)
    torch.testing.assert_close(y, f(x))
    y.sum().backward()
    xe = x.clone().requires_grad_(True)
    f(xe).sum().backward()
    torch.testing.assert_close(xr.grad, xe.grad)


# --------------------------------------------------------------------------------------
# PackedLinear on CPU
# --------------------------------------------------------------------------------------
def _plain(layer, x):
    return bitmm.linear(layer.kind, x, layer.packed_weight, layer.scale, layer.offset, layer.bias)


@pytest.mark.parametrize("bits,G", [(1.58, None), (1, None), (2, 64), (2, None)])
def test_packed_linear_uses_prepacked_path(bits, G):
    torch.manual_seed(0)
    layer = bnn.PackedLinear.from_linear(torch.nn.Linear(192, 50), weight_bits=bits, group_size=G, hqq_iters=2)
    x = torch.randn(3, 192, requires_grad=True)
    y = layer(x)
    assert "CpuPrepackedLinearBackward" in y.grad_fn.name()
    pre = layer.__dict__["_cpu_prepacked"]
    assert pre[0] is layer.packed_weight and pre[2].dtype == torch.uint8
    assert set(layer.state_dict()) == {k for k in ("packed_weight", "scale", "offset", "bias")
                                       if getattr(layer, k) is not None}
    assert not any(t is pre[2] for t in layer.buffers())
    assert torch.equal(y, _plain(layer, x))
    y.sum().backward()
    gx = x.grad.clone()
    x.grad = None
    _plain(layer, x).sum().backward()
    assert torch.equal(gx, x.grad)
    with torch.no_grad():
        assert torch.equal(layer(x), y)
    assert layer.__dict__["_cpu_prepacked"] is pre  # reused, not remade


def test_packed_linear_cpu_prepack_opt_out():
    torch.manual_seed(2)
    layer = bnn.PackedLinear.from_linear(torch.nn.Linear(96, 33))
    x = torch.randn(2, 96, requires_grad=True)
    y = layer(x)
    layer.use_cpu_prepack = False
    layer._drop_cpu_prepacked()
    y_plain = layer(x)
    assert "_cpu_prepacked" not in layer.__dict__  # no layout made: one copy of the weight
    assert "CpuPrepacked" not in y_plain.grad_fn.name()
    assert torch.equal(y, y_plain)


def test_packed_linear_prepacked_invalidation():
    torch.manual_seed(1)
    a = bnn.PackedLinear.from_linear(torch.nn.Linear(128, 40))
    other = bnn.PackedLinear.from_linear(torch.nn.Linear(128, 40))
    x = torch.randn(2, 128)
    a(x)
    # load_state_dict copies into the same tensors: the layout is remade
    a.load_state_dict(other.state_dict())
    assert "_cpu_prepacked" not in a.__dict__
    assert torch.equal(a(x), other(x))
    # in-place change of the packed weight (version counter)
    a(x)
    with torch.no_grad():
        a.packed_weight.copy_(bitmm.pack_ternary(torch.randint(-1, 2, (40, 128))))
    assert torch.equal(a(x), _plain(a, x))
    # a new packed weight tensor
    a.packed_weight = other.packed_weight.clone()
    assert torch.equal(a(x), other(x))
    # .to() drops it; a state_dict of a layer that ran stays without it
    a.to(torch.float32)
    assert "_cpu_prepacked" not in a.__dict__
    a(x)
    assert "_cpu_prepacked" not in bnn.PackedLinear(128, 40).state_dict()
    fresh = bnn.PackedLinear(128, 40)
    fresh.load_state_dict(a.state_dict())
    assert torch.equal(fresh(x), a(x))


def test_packed_linear_prepacked_scales():
    """Group-wise layers keep cpu_prepack_scales of scale / offset and remake it whenever either changes; per tensor /
    per channel layers make none.  Outputs bitwise the plain op's throughout."""
    torch.manual_seed(4)
    layer = bnn.PackedLinear.from_linear(torch.nn.Linear(256, 70), weight_bits=2, group_size=64, hqq_iters=1)
    x = torch.randn(2, 256)
    assert torch.equal(layer(x), _plain(layer, x))
    if torch.ops.bitmm._cpu_forward_kernel() == "generic":  # (no kernel reads the layout: none is made)
        assert "_cpu_prepacked_scales" not in layer.__dict__
        return
    d = layer.__dict__["_cpu_prepacked_scales"]
    assert d[0] is layer.scale and d[1] is layer.offset and d[3].shape == (2, 3, 4, 32)
    assert torch.equal(d[3], _scales_as_documented(layer.scale, layer.offset, 70, 256))
    layer(x)
    assert layer.__dict__["_cpu_prepacked_scales"] is d  # reused
    with torch.no_grad():  # in place (version counter): scale, then offset
        layer.scale.mul_(1.5)
    assert torch.equal(layer(x), _plain(layer, x))
    with torch.no_grad():
        layer.offset.add_(0.25)
    assert torch.equal(layer(x), _plain(layer, x))
    layer.scale = layer.scale * 0.5  # a new tensor
    assert torch.equal(layer(x), _plain(layer, x))
    other = bnn.PackedLinear.from_linear(torch.nn.Linear(256, 70), weight_bits=2, group_size=64, hqq_iters=1)
    layer.load_state_dict(other.state_dict())
    assert "_cpu_prepacked_scales" not in layer.__dict__
    assert torch.equal(layer(x), other(x))
    layer.to(torch.float32)  # .to() drops it; pickling leaves it out
    assert "_cpu_prepacked_scales" not in layer.__dict__
    layer(x)
    import pickle
    assert "_cpu_prepacked_scales" not in pickle.loads(pickle.dumps(layer)).__dict__
    layer.clear_derived()
    assert "_cpu_prepacked_scales" not in layer.__dict__
    # a scale trained through the layer (the buffer itself requiring grad): each step's in-place update is seen
    layer.scale.requires_grad_(True)
    opt = torch.optim.SGD([layer.scale], lr=0.1)
    for _ in range(2):
        layer(x).square().sum().backward()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            assert torch.equal(layer(x), _plain(layer, x))
        assert layer.__dict__["_cpu_prepacked_scales"][0] is layer.scale
    per_channel = bnn.PackedLinear.from_linear(torch.nn.Linear(256, 70), weight_bits=1.58)
    per_channel(x)
    assert "_cpu_prepacked_scales" not in per_channel.__dict__


def test_packed_linear_prepacked_scales_new_tensors_and_where_made():
    """New scale / offset tensors whose version counters equal the old ones' are still new (identity is part of the
    key); no layout where no kernel would read it (group size not a multiple of 32, float64 x)."""
    torch.manual_seed(5)
    layer = bnn.PackedLinear.from_linear(torch.nn.Linear(256, 40), weight_bits=2, group_size=64, hqq_iters=1)
    x = torch.randn(3, 256)
    layer(x)
    fresh_s, fresh_u = torch.rand_like(layer.scale) + 0.5, torch.randn_like(layer.offset) * 0.1
    assert fresh_s._version == layer.scale._version and fresh_u._version == layer.offset._version
    layer.scale, layer.offset = fresh_s, fresh_u
    assert torch.equal(layer(x), _plain(layer, x))
    g16 = bnn.PackedLinear.from_linear(torch.nn.Linear(256, 40), weight_bits=2, group_size=16, hqq_iters=1)
    assert torch.equal(g16(x), _plain(g16, x)) and "_cpu_prepacked_scales" not in g16.__dict__
    layer.clear_derived()
    layer.double()
    xd = x.double()
    assert torch.equal(layer(xd), _plain(layer, xd)) and "_cpu_prepacked_scales" not in layer.__dict__


@pytest.mark.parametrize("smode,umode", [("channel", "group"), ("group", "channel"), ("tensor", "group"), ("group", None)])
@pytest.mark.parametrize("kind", KINDS)
def test_prepacked_scales_mixed_modes(kind, smode, umode):
    """Per tensor / per channel scale with a group-wise offset and the reverse: the layout repeats the coarser one over
    the groups; bitwise the path without it, the plain op, and PackedLinear with such buffers."""
    N, K, G = 70, 320, 64
    torch.manual_seed(6)
    make = {"group": lambda: torch.randn(N, K // G), "channel": lambda: torch.rand(N) + 0.5,
            "tensor": lambda: torch.tensor(0.6), None: lambda: None}
    _, packed, _, _, _ = make_problem(kind, 1, K, N)
    s, u = make[smode](), make[umode]()
    for M in (1, 4, 17):
        x = torch.randn(M, K)
        y, y_plain = _run_both(kind, x, packed, s, u, None)
        assert torch.equal(y, y_plain), M
    sp = torch.ops.bitmm.cpu_prepack_scales(s, u, N, K)
    assert sp.shape == (1 if u is None else 2, 3, K // G, 32)
    torch.library.opcheck(torch.ops.bitmm.cpu_prepack_scales, (s, u, N, K))
    pre = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], K)
    xg = torch.randn(3, K, requires_grad=True)
    torch.library.opcheck(torch.ops.bitmm.cpu_prepacked_linear, (xg, packed, pre, s, u, None, KIND_ID[kind], sp))


def test_prepacked_scales_avx2():
    """The AVX2 kernels on the layout (the child process keeps them on AVX-512 machines): bitwise the path without
    it over M = 1, 4 (the expanded-index path), 17, group sizes 32 / 64 / 128, mixed modes, N tails."""
    run_in_child("""
import torch, bitmm
from helpers import make_problem
assert torch.ops.bitmm._cpu_forward_kernel() in ("avx2", "generic")
KID = {"binary": 1, "ternary": 2, "int2": 3}
for i, (kind, M, N, G, mixed) in enumerate([(k, M, N, G, mx) for k in KID for M in (1, 4, 17) for N in (33, 100)
                                            for G in (32, 64, 128) for mx in (False, True)]):
    torch.manual_seed(i)
    K = 512
    x, packed, s, u, b = make_problem(kind, M, K, N, "group", G, offset=True)
    if mixed:
        s = s[:, 0].contiguous()
    pre = torch.ops.bitmm.cpu_prepack(packed, KID[kind], K)
    sp = torch.ops.bitmm.cpu_prepack_scales(s, u, N, K)
    y0 = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, KID[kind])
    y1 = torch.ops.bitmm.cpu_prepacked_linear(x, packed, pre, s, u, b, KID[kind], sp)
    assert torch.equal(y0, y1), (kind, M, N, G, mixed)
    assert torch.equal(y0, bitmm.linear(kind, x, packed, s, u, b)), (kind, M, N, G, mixed)
""", BITMM_CPU_ISA="avx2")


def test_packed_linear_pickle_and_compile():
    import pickle
    torch.manual_seed(2)
    layer = bnn.PackedLinear.from_linear(torch.nn.Linear(96, 24), weight_bits=2, group_size=32, hqq_iters=1)
    x = torch.randn(4, 96)
    y = layer(x)
    clone = pickle.loads(pickle.dumps(layer))
    assert "_cpu_prepacked" not in clone.__dict__
    assert torch.equal(clone(x), y)
    torch._dynamo.reset()
    yc = torch.compile(layer, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(yc, y)


def test_forward_inputs_flush_against_unmapped_pages():
    """packed_w, the blob and the scale layout placed flush against PROT_NONE pages: a read before or past one faults.  Rows >= N
    never reach the output, so an over-read there changes no value a test compares; a review's mutants (the second
    blob tile read where there is none; the tail row tile addressed as a full one) passed every other test and fault
    here.  Both entry points, every SIMD kernel this CPU has (the child runs the AVX2 ones)."""
    cases = [(kind, M, K, N) for kind in KINDS for M in (1, 3) for K in (100, 4160) for N in (1, 33, 37, 65, 100, 129)]
    with UnmappedNeighbours() as un:
        for i, (kind, M, K, N) in enumerate(cases):
            torch.manual_seed(i)
            x, packed, s, u, b = make_problem(kind, M, K, N, "group" if K % 32 == 0 else "channel", 32)
            blob = torch.ops.bitmm.cpu_prepack(packed, KIND_ID[kind], K)
            sp = torch.ops.bitmm.cpu_prepack_scales(s, u, N, K)
            want = torch.ops.bitmm.cpu_prepacked_linear(x, packed, blob, s, u, b, KIND_ID[kind])
            for at_end in (False, True):
                p_g, blob_g, sp_g = un.place(packed, at_end), un.place(blob, at_end), un.place(sp, at_end)
                y = torch.ops.bitmm.cpu_prepacked_linear(x, p_g, blob_g, s, u, b, KIND_ID[kind])
                assert torch.equal(y, want), (kind, M, K, N, at_end)
                y = torch.ops.bitmm.cpu_prepacked_linear(x, p_g, blob_g, s, u, b, KIND_ID[kind], sp_g)
                assert torch.equal(y, want), (kind, M, K, N, at_end, "prepacked_scales")
                assert torch.equal(bitmm.linear(kind, x, p_g, s, u, b), want), (kind, M, K, N, at_end)


def test_forward_inputs_flush_against_unmapped_pages_avx2():
    run_in_child("""
from test_cpu_prepack import test_forward_inputs_flush_against_unmapped_pages as t
t()
""", BITMM_CPU_ISA="avx2")
