"""Bad input gets a clear error naming the argument, on every device."""
import pytest
import torch

import bitmm
from conftest import DEVICES
from helpers import assert_error_table, make_problem

K, N = 100, 9


def poisoned(t, index, value):
    t = t.clone()
    t[index] = value
    return t


def cases(device):
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel", device=device)
    nan, inf = float("nan"), float("inf")
    sg = torch.rand(N, 4, device=device).half() + 0.1  # group-wise, G = 25
    pb = bitmm.pack_binary(torch.randint(0, 2, (N, K), device=device))
    # another device: the CPU for a GPU run; "meta" for the CPU run (a CPU x with one argument on "meta" reaches the
    # ops' fake kernels, which must reject it as the CPU kernels do, not return an uninitialised tensor)
    other = "cpu" if device != "cpu" else "meta"
    g = torch.randn(3, N, device=device)
    la, lb = torch.randn(4, K, device=device), torch.randn(N, 4, device=device)
    xq, xs = bitmm.quant.absmax_int8(x)
    return [
        # (description, call, exception type, message fragment)
        ("integer x", lambda: bitmm.ternary_linear(x.long(), p, s), TypeError, "x must be float"),
        ("x with K=0", lambda: bitmm.ternary_linear(x[:, :0], p, s), ValueError, "x has K=0"),
        ("packed wrong dtype", lambda: bitmm.ternary_linear(x, p.long(), s), TypeError, "packed_w must be an int32"),
        ("packed not 2-D", lambda: bitmm.ternary_linear(x, p.flatten(), s), ValueError, "packed_w must be 2-D"),
        # packed_w holds whole 128-weight row chunks, so K is checked to that granularity
        ("mismatched K", lambda: bitmm.ternary_linear(torch.randn(3, 200, device=device), p, s), ValueError, "K=200"),
        ("binary packed as ternary", lambda: bitmm.ternary_linear(x, pb, s), ValueError,
         "packed_w has 4 int32 words per row but the ternary format"),
        ("packed with N=0 rows", lambda: bitmm.ternary_linear(x, p[:0], s), ValueError, "packed_w has N=0 rows"),
        ("scale wrong shape", lambda: bitmm.ternary_linear(x, p, s[:4]), ValueError, "scale of shape"),
        ("scale 3-D", lambda: bitmm.ternary_linear(x, p, s.reshape(N, 1, 1)), ValueError, "scale of shape"),
        ("scale integer", lambda: bitmm.ternary_linear(x, p, s.long()), TypeError, "scale must be float"),
        ("group not dividing K", lambda: bitmm.ternary_linear(x, p, torch.rand(N, 3, device=device)), ValueError,
         "scale has 3 groups along K, which does not divide K=100"),
        ("offset integer", lambda: bitmm.ternary_linear(x, p, s, u.long()), TypeError, "offset must be float"),
        ("offset bad shape", lambda: bitmm.ternary_linear(x, p, s, torch.rand(N + 1, device=device)), ValueError,
         "offset of shape"),
        ("scale/offset group mismatch", lambda: bitmm.ternary_linear(
            x, p, torch.rand(N, 4, device=device), torch.rand(N, 5, device=device)), ValueError, "same group size"),
        ("bias bad shape", lambda: bitmm.ternary_linear(x, p, s, u, b[:3]), ValueError, "bias must have shape"),
        ("bias integer", lambda: bitmm.ternary_linear(x, p, s, u, b.long()), TypeError, "bias must be float"),
        ("bias bool", lambda: bitmm.ternary_linear(x, p, s, u, b > 0), TypeError, "bias must be float"),
        ("unknown kind", lambda: bitmm.linear("ternery", x, p, s), ValueError, "kind must be one of"),
        ("unknown kind, linear_a8", lambda: bitmm.ops.linear_a8("int4", xq, xs, p, s), ValueError,
         r"linear_a8: kind must be one of"),
        ("unknown kind, lora_linear", lambda: bitmm.ops.lora_linear("int4", x, p, s, u, b, la, lb), ValueError,
         r"lora_linear: kind must be one of"),
        ("unknown kind, linear_grad_x", lambda: bitmm.linear_grad_x(g, p, s, u, "int4", K), ValueError,
         r"linear_grad_x: kind must be one of"),
        ("kind a list", lambda: bitmm.linear(["ternary"], x, p, s), ValueError, "kind must be one of"),
        ("kind True", lambda: bitmm.linear_grad_x(g, p, s, u, True, K), ValueError,
         r"linear_grad_x: kind must be one of"),
        ("backend a list", lambda: bitmm.set_backend(["auto"]), ValueError, "backend must be one of"),
        # (the wrapper's own prefix: the op's message says "lora_scale must be a finite" too)
        ("lora_scale past float32", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, 1e39), ValueError,
         r"^bitmm\.lora_linear: lora_scale must be a finite float within float32's range"),
        ("lora_scale past float32, the op itself", lambda: torch.ops.bitmm.lora_linear(
            x, p, s, u, b, la, lb, bitmm.formats.KINDS["ternary"], 1e300), ValueError,
         r"lora_linear\(ternary\): lora_scale is past float32's range"),
        ("lora_scale None", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, None), ValueError,
         "lora_scale must be a finite float"),
        ("NaN lora_scale", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, float("nan")), ValueError,
         r"lora_linear\(ternary\): lora_scale must be finite, got nan"),
        ("Inf lora_scale", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, float("-inf")),
         ValueError, "lora_scale must be finite"),
        ("unknown kind id", lambda: bitmm.ops.lora_linear(7, x, p, s, u, b, la, lb), ValueError,
         "kind must be 1 .binary., 2 .ternary. or 3 .int2., got 7"),
        ("grad_y wrong N", lambda: bitmm.linear_grad_x(torch.randn(3, N + 1, device=device), p, s, u, "ternary", K),
         ValueError, "packed_w has N=9"),
        ("integer grad_y", lambda: bitmm.linear_grad_x(g.long(), p, s, u, "ternary", K), TypeError,
         "grad_y must be float"),
        ("grad_x with K=0", lambda: bitmm.linear_grad_x(g, p, s, u, "ternary", 0), ValueError, "K must be >= 1, got 0"),
        ("grad_x with another K", lambda: bitmm.linear_grad_x(g, p, s, u, "ternary", 200), ValueError,
         "packed_w has 8 int32 words per row but the ternary format with K=200"),
        ("grad_x group not dividing K", lambda: bitmm.linear_grad_x(g, p, torch.rand(N, 3, device=device), u,
                                                                    "ternary", K), ValueError,
         "scale has 3 groups along K, which does not divide K=100"),
    ] + ([
        # Non-finite scale / offset: rejected on CPU only (on CUDA a check would need a
        # host sync; there they propagate to the outputs that use them, see
        # tests/test_reliability.py).  Bias values are not checked on any device.
        ("NaN scale", lambda: bitmm.ternary_linear(x, p, poisoned(s, 3, nan)), ValueError, r"scale\[3\] is NaN"),
        ("Inf per-tensor scale", lambda: bitmm.ternary_linear(x, p, torch.tensor(inf)), ValueError, r"scale is \+Inf"),
        ("-Inf fp16 group-wise scale", lambda: bitmm.ternary_linear(x, p, poisoned(sg, (5, 2), -inf)), ValueError,
         r"scale\[5, 2\] is -Inf"),
        ("NaN in a transposed bf16 scale", lambda: bitmm.ternary_linear(
            x, p, poisoned(torch.rand(4, N).bfloat16().T, (8, 1), nan)), ValueError, r"scale\[8, 1\] is NaN"),
        ("NaN offset", lambda: bitmm.ternary_linear(x, p, s, poisoned(u, 0, nan)), ValueError, r"offset\[0\] is NaN"),
        ("Inf float64 offset", lambda: bitmm.ternary_linear(x.double(), p, s, poisoned(u.double(), 8, inf)), ValueError,
         r"offset\[8\] is \+Inf"),
        ("NaN scale in the backward", lambda: bitmm.linear_grad_x(torch.randn(3, N), p, poisoned(s, 3, nan), u,
                                                                  "ternary", K), ValueError,
         r"linear_grad_x\(ternary\): scale\[3\] is NaN"),
    ] if device == "cpu" else []) + [
        ("scale on another device", lambda: bitmm.ternary_linear(x, p, s.to(other)), RuntimeError, "scale is on"),
        ("offset on another device", lambda: bitmm.ternary_linear(x, p, s, u.to(other)), RuntimeError,
         "offset is on"),
        ("packed on another device", lambda: bitmm.ternary_linear(x, p.to(other), s), RuntimeError, "packed_w is on"),
        ("bias on another device", lambda: bitmm.ternary_linear(x, p, s, u, b.to(other)), RuntimeError, "bias is on"),
        ("grad_x scale on another device", lambda: bitmm.linear_grad_x(g, p, s.to(other), u, "ternary", K),
         RuntimeError, "scale is on"),
        ("grad_x offset on another device", lambda: bitmm.linear_grad_x(g, p, s, u.to(other), "ternary", K),
         RuntimeError, "offset is on"),
        ("grad_x packed on another device", lambda: bitmm.linear_grad_x(g, p.to(other), s, u, "ternary", K),
         RuntimeError, "packed_w is on"),
        ("lora bias on another device", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b.to(other), la, lb),
         RuntimeError, "bias is on"),
        ("lora_b on another device", lambda: bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb.to(other)),
         RuntimeError, "lora_b is on"),
        ("linear_a8 bias on another device", lambda: bitmm.ops.linear_a8("ternary", xq, xs, p, s, u, b.to(other)),
         RuntimeError, "bias is on"),
        ("linear_a8 x_scale on another device", lambda: bitmm.ops.linear_a8("ternary", xq, xs.to(other), p, s),
         RuntimeError, "x_scale is on"),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_error_table(device):
    assert_error_table(cases(device))


# On CPU the AVX2 forward tests scale / offset for NaN / Inf as it reads them (no second pass over
# them; checks.h defer_finite) and the op then raises the up-front scan's error.  These cases reach
# that in-kernel test: every element of a group-wise scale and offset (N = 37: a partial last row
# tile; group size 32 and 64: the kernel's two flush lengths), per tensor, per channel, through
# both op entry points, fp32 / fp16 / bf16 scales and 1, 3 and 65 activation rows (65: two row
# chunks).  A kernel that skipped a row, a group or a chunk's values would return garbage silently.
def _linear_entry(prepacked, kind, K):
    from bitmm import formats
    if not prepacked:
        return lambda x, p, s, u: bitmm.linear(kind, x, p, s, u)
    kid = formats.KINDS[kind]
    if prepacked == "scales":  # the scale / offset values read from cpu_prepack_scales' layout of them
        return lambda x, p, s, u: torch.ops.bitmm.cpu_prepacked_linear(
            x, p, torch.ops.bitmm.cpu_prepack(p, kid, K), s, u, None, kid,
            torch.ops.bitmm.cpu_prepack_scales(s, u, p.shape[0], K))
    return lambda x, p, s, u: torch.ops.bitmm.cpu_prepacked_linear(
        x, p, torch.ops.bitmm.cpu_prepack(p, kid, K), s, u, None, kid)


@pytest.mark.parametrize("prepacked", [False, True, "scales"])
@pytest.mark.parametrize("kind", ["binary", "ternary", "int2"])
@pytest.mark.parametrize("G", [32, 64])
def test_cpu_kernel_finds_every_nonfinite_group_scale(kind, G, prepacked):
    K, N = 128, 37
    x, p, s, u, _ = make_problem(kind, 3, K, N, "group", G=G, bias=False)
    call = _linear_entry(prepacked, kind, K)
    op = r"cpu_prepacked_linear\(" + kind + r"\)" if prepacked else kind + "_linear"
    torch.testing.assert_close(call(x, p, s, u), bitmm.linear(kind, x, p, s, u), rtol=0, atol=0)
    values = [float("nan"), float("inf"), -float("inf")]
    names = ["NaN", r"\+Inf", "-Inf"]
    for n in range(N):
        for g in range(K // G):
            i = (n + g) % 3
            with pytest.raises(ValueError, match=rf"{op}: scale\[{n}, {g}\] is {names[i]}"):
                call(x, p, poisoned(s, (n, g), values[i]), u)
            with pytest.raises(ValueError, match=rf"{op}: offset\[{n}, {g}\] is {names[2 - i]}"):
                call(x, p, s, poisoned(u, (n, g), values[2 - i]))


@pytest.mark.parametrize("prepacked", [False, True, "scales"])
@pytest.mark.parametrize("kind", ["binary", "int2"])
@pytest.mark.parametrize("M", [1, 65])
def test_cpu_kernel_finds_nonfinite_scales_across_k_tiles(kind, M, prepacked):
    # K = 4160 with G = 32: 130 groups over three K tiles at M = 1 (64 blocks each), more at M = 65; rows on both
    # sides of the 32-row blob tile boundary and the last one, groups at the first, K-tile-edge and last positions.
    K, N, G = 4160, 37, 32
    x, p, s, u, _ = make_problem(kind, M, K, N, "group", G=G, bias=False)
    call = _linear_entry(prepacked, kind, K)
    op = r"cpu_prepacked_linear\(" + kind + r"\)" if prepacked else kind + "_linear"
    torch.testing.assert_close(call(x, p, s, u), bitmm.linear(kind, x, p, s, u), rtol=0, atol=0)
    for n in (0, 31, 32, 36):
        for g in (0, 63, 64, 127, 128, 129):
            with pytest.raises(ValueError, match=rf"{op}: scale\[{n}, {g}\] is NaN"):
                call(x, p, poisoned(s, (n, g), float("nan")), u)
            with pytest.raises(ValueError, match=rf"{op}: offset\[{n}, {g}\] is -Inf"):
                call(x, p, s, poisoned(u, (n, g), -float("inf")))


@pytest.mark.parametrize("sdtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("M", [1, 3, 65])
def test_cpu_kernel_nonfinite_scale_modes(M, sdtype):
    K, N = 96, 45
    x, p, s, u, _ = make_problem("ternary", M, K, N, "channel", bias=False)
    s, u = s.to(sdtype), u.to(sdtype)
    nan, inf = float("nan"), float("inf")
    for prepacked in (False, True):
        call = _linear_entry(prepacked, "ternary", K)
        assert torch.isfinite(call(x, p, s, u)).all()
        with pytest.raises(ValueError, match=r"scale is NaN"):
            call(x, p, torch.tensor(nan, dtype=sdtype), u)
        with pytest.raises(ValueError, match=r"offset\[44\] is -Inf"):
            call(x, p, s, poisoned(u, 44, -inf))
        with pytest.raises(ValueError, match=r"scale\[40, 0\] is \+Inf"):  # (N, 1): per channel
            call(x, p, poisoned(s.reshape(N, 1), (40, 0), inf), u)


def test_cpu_nonfinite_scale_paths_outside_the_kernel():
    """Where the AVX2 kernel does not run (M = 0, float64 x, group sizes it does not take) or does not
    see the value as stored (float64 scales, rounded to float32: a finite 1e300 must not read as Inf),
    the scan runs before the kernel."""
    K, N = 96, 5
    x, p, s, u, _ = make_problem("ternary", 2, K, N, "channel", bias=False)
    nan = float("nan")
    with pytest.raises(ValueError, match=r"scale\[1\] is NaN"):
        bitmm.ternary_linear(x[:0], p, poisoned(s, 1, nan), u)
    with pytest.raises(ValueError, match=r"scale\[1\] is NaN"):
        bitmm.ternary_linear(x.double(), p, poisoned(s, 1, nan), u)
    with pytest.raises(ValueError, match=r"offset\[2, 5\] is NaN"):  # G = 16: the generic kernel
        bitmm.ternary_linear(x, p, torch.rand(N, 6), poisoned(torch.rand(N, 6), (2, 5), nan))
    with pytest.raises(ValueError, match=r"scale\[3\] is NaN"):
        bitmm.ternary_linear(x, p, poisoned(s.double(), 3, nan), u)
    y = bitmm.ternary_linear(x, p, poisoned(s.double(), 3, 1e300), u)  # finite as given: no error
    assert not torch.isfinite(y[:, 3]).all() and torch.isfinite(y[:, :3]).all()


def test_fake_kernels_reject_what_the_kernels_reject():
    # Under FakeTensorMode (torch.compile's tracing) the fake kernels answer: the checks added to them must fire there
    # too (the CPU rows of the table reach the C++ kernels instead), with the C++ checks' error types (a dtype:
    # TypeError; a shape or value: ValueError; a device: RuntimeError).
    from torch._subclasses.fake_tensor import FakeTensorMode
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel")
    la, lb = torch.randn(4, K), torch.randn(N, 4)
    g = torch.randn(3, N)
    with FakeTensorMode() as mode:
        x, p, s, u, b, la, lb, g = (mode.from_tensor(t) for t in (x, p, s, u, b, la, lb, g))
        assert bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, 0.5).shape == (3, N)
        with pytest.raises(ValueError, match="lora_scale must be finite"):
            bitmm.ops.lora_linear("ternary", x, p, s, u, b, la, lb, float("nan"))
        with pytest.raises(ValueError, match="is past float32's range"):
            torch.ops.bitmm.lora_linear(x, p, s, u, b, la, lb, bitmm.formats.KINDS["ternary"], 1e300)
        with pytest.raises(TypeError, match="bias must be float"):
            bitmm.ternary_linear(x, p, s, u, b.long())
        with pytest.raises(ValueError, match="grad_y has 10 features"):
            bitmm.linear_grad_x(mode.from_tensor(torch.randn(3, N + 1)), p, s, u, "ternary", K)
        with pytest.raises(TypeError, match="grad_y must be float"):
            bitmm.linear_grad_x(g.long(), p, s, u, "ternary", K)
        # group-wise scale and offset of different group counts (csrc/checks.cpp's finish; the fakes returned a shape)
        s2, u4 = mode.from_tensor(torch.rand(N, 2)), mode.from_tensor(torch.rand(N, 4))
        with pytest.raises(ValueError, match="scale has 2 groups but offset has 4"):
            bitmm.ternary_linear(x, p, s2, u4)
        with pytest.raises(ValueError, match="scale has 2 groups but offset has 4"):
            bitmm.ops.lora_linear("ternary", x, p, s2, u4, b, la, lb, 0.5)
        with pytest.raises(ValueError, match="scale has 2 groups but offset has 4"):
            bitmm.linear_grad_x(g, p, s2, u4, "ternary", K)
        # pack / unpack (csrc/checks.cpp check_pack_codes / check_unpack)
        tid = bitmm.formats.KINDS["ternary"]
        with pytest.raises(TypeError, match=r"bitmm.unpack\(ternary\): packed must be int32"):
            torch.ops.bitmm.unpack(p.float(), tid, K)
        with pytest.raises(ValueError, match=r"does not hold K=1000 ternary weights per row"):
            torch.ops.bitmm.unpack(p, tid, 1000)
        with pytest.raises(ValueError, match="K must be >= 1"):
            torch.ops.bitmm.unpack(p, tid, 0)
        with pytest.raises(ValueError, match="does not hold K=100"):
            torch.ops.bitmm.unpack(p.flatten(), tid, K)
        with pytest.raises(ValueError, match="kind must be 1"):
            torch.ops.bitmm.unpack(p, 9, K)
        codes = mode.from_tensor(torch.zeros(N, K, dtype=torch.int8))
        with pytest.raises(TypeError, match="codes must be an integer tensor"):
            torch.ops.bitmm.pack(codes.float(), tid)
        with pytest.raises(ValueError, match="codes must be a 2-D"):
            torch.ops.bitmm.pack(codes[:0], tid)
        with pytest.raises(ValueError, match="codes must be a 2-D"):
            torch.ops.bitmm.pack(codes[0], tid)
        assert torch.ops.bitmm.unpack(torch.ops.bitmm.pack(codes, tid), tid, K).shape == (N, K)


def test_fakes_check_in_the_kernels_order():
    # An input with two faults gets the same error from the fake kernels as from the C++ ones: the fakes check bias
    # after packed_w and before scale / offset, and linear_a8's per-tensor / channel rule after both layouts, as
    # csrc/checks.cpp does (they checked bias last, and each a8 scale's rule before the offset's layout)
    from torch._subclasses.fake_tensor import FakeTensorMode
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel")
    xq, xs = bitmm.quant.absmax_int8(x)
    tid = bitmm.formats.KINDS["ternary"]

    def linear(x_, xs_, p_, s_, u_, b_):
        return bitmm.ternary_linear(x_, p_, s_, u_, b_)

    def a8(x_, xs_, p_, s_, u_, b_):
        return torch.ops.bitmm.linear_a8(x_, xs_, p_, s_, u_, b_, tid, torch.float32)

    cases = [  # (op, its x, what replaces scale s / offset u / bias b)
        (linear, x, dict(s=s[:-1], b=b.long())),         # C++: bias dtype (TypeError) before scale rows (ValueError)
        (linear, x, dict(u=u.long(), b=b[:-1])),         # C++: bias shape (ValueError) before offset dtype (TypeError)
        (a8, xq, dict(s=torch.rand(N, 4), u=u.long())),  # C++: offset dtype (TypeError) before the per-channel rule
        (a8, xq, dict(s=torch.rand(N, 4), b=b[:-1])),    # C++: bias shape before the per-channel rule (both ValueError)
    ]
    faulty = lambda e: str(e).split(": ", 1)[1].split()[0]  # noqa: E731  (the argument the error names)
    for op, xx, kw in cases:
        args = [xx, xs, p] + [kw.get(k, v) for k, v in (("s", s), ("u", u), ("b", b))]
        with pytest.raises((TypeError, ValueError, RuntimeError)) as real:
            op(*args)
        with FakeTensorMode() as mode:
            with pytest.raises(type(real.value)) as fake:
                op(*(mode.from_tensor(t) for t in args))
        assert faulty(fake.value) == faulty(real.value), (list(kw), str(real.value), str(fake.value))


def test_grad_x_transposed_checks_its_arguments():
    # ops.linear_grad_x_transposed (PackedLinear's transposed backward) passes a rescaled s and grad_y to the forward
    # op, so it checks what linear_grad_x checks: a (1,) scale broadcast as per tensor, a NaN offset reached the
    # output, a wrong N surfaced as a broadcasting error
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel")
    wt = bitmm.ops.transpose_packed(p, "ternary", K)
    g = torch.randn(3, N)
    u_nan = u.clone()
    u_nan[0] = float("nan")
    f = bitmm.ops.linear_grad_x_transposed
    for call, exc, frag in [
        (lambda: f("ternary", g, wt, torch.tensor([2.0]), u), ValueError, r"scale of shape \(1,\) must have N=9 rows"),
        (lambda: f("ternary", g, wt, s, torch.tensor([0.5])), ValueError, r"offset of shape \(1,\) must have N=9"),
        (lambda: f("ternary", g, wt, s, u_nan), ValueError, "offset holds NaN or Inf"),
        (lambda: f("ternary", g, wt, torch.ones(N, dtype=torch.int32), u), TypeError, "scale must be a float tensor"),
        (lambda: f("foo", g, wt, s, u), ValueError, "kind must be 'ternary', 'binary' or 'int2'"),
        (lambda: f("ternary", torch.randn(3, 200), wt, s, u), ValueError, r"is not W\^T of an N=200 layer"),
        (lambda: f("ternary", torch.randn(3, 39), wt, s, u), ValueError, r"scale of shape \(9,\) must have N=39"),
        (lambda: f("ternary", g.long(), wt, s, u), TypeError, "grad_y must be float"),
        (lambda: f("ternary", g, wt, s.to("meta"), u), RuntimeError, "scale is on meta but grad_y is on cpu"),
    ]:
        with pytest.raises(exc, match=frag):
            call()
    ref = bitmm.linear_grad_x(g, p, s, u, "ternary", K)
    torch.testing.assert_close(f("ternary", g, wt, s, u), ref, rtol=1e-5, atol=1e-5)


def test_python_api_argument_table():
    # The Python-side settings, each refused with a message naming it (the helper audit of session 33: these were
    # a ZeroDivisionError deep in HQQ, or silently "no dropout", or accepted).
    from bitmm import quant
    from bitmm.nn import PackedLinear, PackedLoRALinear
    w = torch.randn(8, 64)
    base = PackedLinear(64, 8)
    assert_error_table([
        ("hqq beta 0", lambda: quant.hqq_quantize(w, beta=0), ValueError, "beta must be a finite number > 0"),
        ("hqq kappa NaN", lambda: quant.hqq_quantize(w, kappa=float("nan")), ValueError, "kappa must be"),
        ("hqq lp_norm negative", lambda: quant.hqq_quantize(w, lp_norm=-1.0), ValueError, "lp_norm must be"),
        ("LoRA dropout negative", lambda: PackedLoRALinear(base, dropout=-0.5), ValueError, "dropout must be"),
        ("LoRA dropout NaN", lambda: PackedLoRALinear(base, dropout=float("nan")), ValueError, "dropout must be"),
        ("LoRA alpha NaN", lambda: PackedLoRALinear(base, alpha=float("nan")), ValueError, "alpha must be"),
        ("words_per_row unknown kind", lambda: bitmm.formats.words_per_row("int4", 64), ValueError,
         "kind must be one of"),
        ("hqq codes 1.7", lambda: quant.hqq_to_op_args(torch.full((2, 4), 1.7), torch.ones(2), torch.ones(2), 2),
         ValueError, "non-integral"),
        ("ternary codes 257", lambda: quant.ternary_to_op_args(torch.full((2, 4), 257), torch.tensor(1.0)), ValueError,
         r"t must hold codes in \[-1, 1\]"),
        ("dequantize code 0.5", lambda: quant.dequantize("binary", torch.full((2, 4), 0.5), torch.tensor(1.0)),
         ValueError, "non-integral"),
        ("dequantize complex codes", lambda: quant.dequantize("binary", torch.ones(2, 4, dtype=torch.complex64),
                                                              torch.tensor(1.0)), TypeError, "integer codes"),
        ("BitLinear hqq_iters -1", lambda: bitmm.nn.BitLinear(64, 8, weight_bits=2, hqq_iters=-1), ValueError,
         "hqq_iters must be an int >= 0"),
        ("from_hqq bias (3,)", lambda: PackedLinear.from_hqq(torch.zeros(2, 64, dtype=torch.int8), torch.ones(2, 2),
                                                             torch.ones(2, 2), 2, 32, bias=torch.zeros(3)),
         ValueError, r"bias must be a floating tensor of shape \(2,\)"),
        ("from_hqq group_size 32.7", lambda: PackedLinear.from_hqq(torch.zeros(2, 64, dtype=torch.int8),
                                                                   torch.ones(2, 2), torch.ones(2, 2), 2, 32.7),
         ValueError, "group_size must be an int"),
    ])


def test_numpy_integer_group_size_is_an_int():
    import numpy as np
    m = bitmm.nn.PackedLinear(128, 8, weight_bits=2, group_size=np.int64(32))
    assert m.group_size == 32 and type(m.group_size) is int and m.scale.shape == (8, 4)
    q, s, z = bitmm.quant.hqq_quantize(torch.randn(8, 128), group_size=np.int32(64))
    assert s.shape == (8, 2)


@pytest.mark.parametrize("grad", [False, True])
def test_none_for_a_required_tensor_is_named(grad):
    # A required tensor argument given as None reaches the kernels as an undefined tensor: it used to read as dtype
    # UNKNOWN_SCALAR, or (x requiring grad) fail in the autograd function with "tensor does not have a device"
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel")
    x.requires_grad_(grad)
    g = torch.randn(3, N, requires_grad=grad)
    la, lb = torch.randn(4, K), torch.randn(N, 4)
    tid = bitmm.formats.KINDS["ternary"]
    xq, xs = bitmm.quant.absmax_int8(x.detach())
    blob = torch.ops.bitmm.cpu_prepack(p, tid, K)
    ops = torch.ops.bitmm
    for call, name in [
        (lambda: ops.ternary_linear(x, p, None), "scale"),
        (lambda: ops.ternary_linear(x, None, s), "packed_w"),
        (lambda: ops.ternary_linear(None, p, s), "x"),
        (lambda: ops.linear_grad_x(g, p, None, u, tid, K), "scale"),
        (lambda: ops.linear_grad_x(None, p, s, u, tid, K), "grad_y"),
        (lambda: ops.lora_linear(x, p, s, u, b, None, lb, tid, 1.0), "lora_a"),
        (lambda: ops.lora_linear(x, p, None, u, b, la, lb, tid, 1.0), "scale"),
        (lambda: ops.cpu_prepacked_linear(x, p, None, s, u, b, tid), "prepacked"),
        (lambda: ops.linear_a8(xq, None, p, s, u, b, tid, torch.float32), "x_scale"),
        (lambda: ops.linear_a8(xq, xs.requires_grad_(grad), p, None, u, b, tid, torch.float32), "scale"),
    ]:
        with pytest.raises(TypeError, match=f": {name} must be a tensor, got None"):
            call()
