"""W2A8: bitmm.linear_a8 (int8 activations times the packed weight), CPU and CUDA.

The integer part is exact, so with unit scales the result must equal the integer product bit for bit; with real
scales it is compared with the float64 reference (bitmm.reference.linear_a8) within one rounding of the output
dtype plus the float32 epilogue's few; the CUDA result must equal the CPU's bit for bit (the same integers, the same
float32 operations in the same order: csrc/cuda/a8_epilogue.cu).
"""
import os

import pytest
import torch

import bitmm
from bitmm import quant, reference
from conftest import DEVICES
from helpers import KINDS, PACKERS, random_values, rel_err

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# the fused kernel (csrc/cuda/a8_linear.cu) runs for M <= 64 by default, for M <= 256 with BITMM_A8_FUSED=1 and never
# with BITMM_A8_FUSED=0 in the environment (read once per process); bench/device_calls run this file under each
A8_FUSED_ENV = os.environ.get("BITMM_A8_FUSED")
A8_FUSED = A8_FUSED_ENV == "1"
# normwise bound: a few float32 roundings, then one of the output dtype
OUT_TOL = {torch.float32: 2e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float64: 1e-12}


def make_a8(kind, lead, K, N, mode, offset, bias, device, sdtype=torch.float32):
    v = random_values(kind, N, K, device)
    packed = PACKERS[kind](v)
    x = torch.randn(*lead, K, device=device) * 3
    xq, xs = quant.absmax_int8(x)
    s = {"tensor": torch.tensor(0.37), "channel": torch.rand(N) + 0.1, "channel1": torch.rand(N, 1) + 0.1}[mode]
    s = s.to(device, sdtype)
    u = (torch.randn(s.shape) * 0.1).to(device, sdtype) if offset else None
    b = torch.randn(N, device=device) if bias else None
    return v, packed, xq, xs, s, u, b


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("M", [0, 1, 3, 17, 33])
@pytest.mark.parametrize("K,N", [(37, 13), (520, 48), (1000, 130)])
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_integer_sums_exact(kind, K, N, M, device):
    # unit scale, no offset / bias, x_scale 1: y = xq @ v^T exactly (|y| < 2^24, exact in float32)
    v = random_values(kind, N, K, device)
    packed = PACKERS[kind](v)
    xq = torch.randint(-128, 128, (M, K), device=device, dtype=torch.int8)
    xs = torch.ones(M, 1, device=device)
    y = bitmm.linear_a8(kind, xq, xs, packed, torch.tensor(1.0, device=device))
    vals = v.double() - (1 if kind == "int2" else 0)  # random_values: ternary / binary values, int2 codes
    want = xq.double() @ vals.T
    assert y.dtype == torch.float32 and y.shape == (M, N)
    assert torch.equal(y.double(), want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("mode,offset,bias", [("tensor", False, False), ("tensor", True, True), ("channel", True, False),
                                              ("channel1", False, True)])
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_matches_reference(kind, mode, offset, bias, out_dtype, device):
    for lead, K, N in (((5,), 1000, 130), ((2, 9), 520, 48), ((33,), 64, 40)):
        v, packed, xq, xs, s, u, b = make_a8(kind, lead, K, N, mode, offset, bias, device)
        y = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=out_dtype)
        want = reference.linear_a8(kind, xq.cpu(), xs.cpu(), packed.cpu(), s.cpu(), None if u is None else u.cpu(),
                                   None if b is None else b.cpu())
        assert y.shape == (*lead, N) and y.dtype == out_dtype
        assert torch.isfinite(y).all()
        assert rel_err(y, want) <= OUT_TOL[out_dtype], (lead, K, N, rel_err(y, want))


@pytest.mark.parametrize("device", DEVICES)
def test_linear_a8_noncontiguous_xq_and_fp16_scales(device):
    v, packed, xq, xs, s, u, b = make_a8("ternary", (12,), 640, 24, "channel", True, True, device, torch.float16)
    xq_t = torch.stack([xq, xq], dim=2).flatten(1)[:, ::2]  # a non-contiguous view of the same values
    assert not xq_t.is_contiguous() and torch.equal(xq_t, xq)
    y = bitmm.linear_a8("ternary", xq_t, xs, packed, s, u, b)
    assert torch.equal(y, bitmm.linear_a8("ternary", xq.contiguous(), xs, packed, s, u, b))
    want = reference.linear_a8("ternary", xq.cpu(), xs.cpu(), packed.cpu(), s.cpu(), u.cpu(), b.cpu())
    assert rel_err(y, want) <= OUT_TOL[torch.float32]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_close_to_the_float_path(kind, device):
    # the float path on the dequantized activations (what PackedLinear(act_bits=8) computes by default)
    v, packed, xq, xs, s, u, b = make_a8(kind, (40,), 512, 96, "channel", True, True, device)
    y8 = bitmm.linear_a8(kind, xq, xs, packed, s, u, b)
    yf = bitmm.linear(kind, xq.float() * xs, packed, s, u, b)
    assert rel_err(y8, yf.double()) < 1e-5


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_cuda_equals_host_bitwise(kind):  # ("host", not "cpu": sanitizer units select "not cpu")
    # every CUDA route under BITMM_A8_FUSED=0 (by default M <= 64 takes the fused kernel, with =1 M <= 256): torch's
    # int8 GEMM with the
    # fused epilogue (K, N multiples of 8; M > 16 and M <= 16, padded),
    # the floating fallback with the ATen epilogue (K or N not a multiple of 8), fp16 / bf16 / fp32 outputs
    # and every epilogue variant (per tensor / (N,) / (N, 1) scales, with and without offset and bias)
    cases = [((40,), 512, 96), ((3,), 512, 96), ((1,), 520, 40), ((20,), 37, 16), ((20,), 64, 13)]
    for (lead, K, N), (mode, offset, bias) in zip(cases * 2, [("channel", True, True), ("tensor", False, False),
                                                            ("channel1", True, False), ("tensor", True, True),
                                                            ("channel", False, True)] * 2):
        for out_dtype in (torch.float32, torch.float16, torch.bfloat16):
            v, packed, xq, xs, s, u, b = make_a8(kind, lead, K, N, mode, offset, bias, "cuda")
            y = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=out_dtype)
            cpu = [None if t is None else t.cpu() for t in (xq, xs, packed, s, u, b)]
            y_cpu = bitmm.linear_a8(kind, *cpu, out_dtype=out_dtype)
            assert torch.equal(y.cpu(), y_cpu), (lead, K, N, mode, offset, bias, out_dtype)


@cuda_only
@pytest.mark.parametrize("M", [1, 2, 5, 8, 9, 16, 17, 25, 40, 256])
@pytest.mark.parametrize("K,N", [(1, 1), (37, 13), (80, 5), (528, 33), (1000, 70), (2304, 17), (4096, 96),
                                 (6272, 24)])
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_few_rows_cuda_equals_host_bitwise(kind, K, N, M):
    # the fused kernel's shapes: a partial last block / step / row tile, the second x tile (M > 8), x rows in chunks
    # of 16 (M = 17, 25, 40: a last partial chunk; 256: 16 chunks); K = 80 / 528: 16-byte x loads then a half block
    # by bytes; K = 6272: 13 binary / 25 two-plane steps (every buffer of the 3-step rotation, a second iteration);
    # every output dtype and epilogue variant, a 3-D xq, an xq view off 16-byte alignment (staged by bytes) and a
    # packed_w view off 16-byte alignment (copied); y's memory poisoned first (a NaN-filled block of the same size freed just before the call)
    # (scale / offset / bias dtypes: float32, float16 with a float16 bias, bfloat16, and mixed: a float16 scale, a
    # bfloat16 offset, a float64 bias; the fused kernel reads each in its own dtype)
    cases = [(torch.float32, "channel", True, True, torch.float32),
             (torch.float16, "tensor", False, True, torch.float16),
             (torch.bfloat16, "channel1", True, False, torch.bfloat16),
             (torch.float16, "channel", True, True, torch.float64)]
    for out_dtype, mode, offset, bias, sdtype in cases:
        v, packed, xq, xs, s, u, b = make_a8(kind, (M,), K, N, mode, offset, bias, "cuda", sdtype)
        b = None if b is None else b.to(sdtype)
        if sdtype == torch.float64:  # three dtypes at once: s float16, u bfloat16, b float64
            s, u = s.half(), u.bfloat16()
        if out_dtype == torch.float16 and sdtype == torch.float16:
            xq = xq.reshape(1, M, K)
            xs = xs.reshape(1, M, 1)
        if out_dtype == torch.bfloat16:
            base = torch.empty(M * K + 1, dtype=torch.int8, device="cuda")
            xq = base[1:].view(M, K).copy_(xq)
        if out_dtype == torch.float32:
            base = torch.empty(packed.numel() + 1, dtype=torch.int32, device="cuda")
            packed = base[1:].view(packed.shape).copy_(packed)
        torch.full((M, N), float("nan"), dtype=out_dtype, device="cuda")  # (freed at once: y may reuse it)
        y = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=out_dtype)
        cpu = [None if t is None else t.cpu() for t in (xq, xs, packed, s, u, b)]
        want = bitmm.linear_a8(kind, *cpu, out_dtype=out_dtype)
        assert y.shape == want.shape and torch.equal(y.cpu(), want), (K, N, M, out_dtype)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_fused_sanitizer_cases(kind):
    # a few shapes for compute-sanitizer (next_a8_fused.sh runs this with BITMM_A8_FUSED=1, where every one of them
    # takes the fused kernel and no cuBLAS GEMM runs): a partial block / step / tile, the second x tile, many steps,
    # chunks of x rows (a last one of 9 rows, 16 of them), 8-row chunks where 16 rows exceed the shared memory
    for K, N, M in ((37, 13, 1), (528, 33, 9), (1000, 70, 3), (6272, 24, 16), (300, 40, 35), (200, 24, 25),
                    (64, 17, 256), (20000, 40, 12)):
        v, packed, xq, xs, s, u, b = make_a8(kind, (M,), K, N, "channel", True, True, "cuda")
        y = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=torch.float16)
        cpu = [t.cpu() for t in (xq, xs, packed, s, u, b)]
        assert torch.equal(y.cpu(), bitmm.linear_a8(kind, *cpu, out_dtype=torch.float16)), (K, N, M)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_linear_a8_fused_short_chunks(kind):
    # x rows whose 16-row chunk would not fit the shared memory: the launcher takes fewer rows per CTA (K = 20000:
    # 8 rows of 20 KB; K = 30000: 4 rows) rather than the unfused path; bit for bit against the CPU
    for K, N, M in ((20000, 40, 12), (30000, 20, 16)):
        v, packed, xq, xs, s, u, b = make_a8(kind, (M,), K, N, "channel", True, True, "cuda")
        y = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=torch.float16)
        cpu = [t.cpu() for t in (xq, xs, packed, s, u, b)]
        assert torch.equal(y.cpu(), bitmm.linear_a8(kind, *cpu, out_dtype=torch.float16)), (K, N, M)


@cuda_only
def test_linear_a8_fused_kernel_is_taken_by_default():
    # without BITMM_A8_FUSED: the fused kernel for M <= 64 (kA8FusedAutoMaxM), the unfused path from M = 65
    if A8_FUSED_ENV is not None:
        pytest.skip("BITMM_A8_FUSED is set")
    from test_wgmma import kernel_names, profiler_sees_kernels
    if not profiler_sees_kernels():  # (under compute-sanitizer: the kernel names are this test's whole check)
        pytest.skip("the profiler names no kernels here")
    for M, fused in ((1, True), (64, True), (65, False)):
        v, packed, xq, xs, s, u, b = make_a8("int2", (M,), 1024, 64, "channel", True, True, "cuda")
        names = kernel_names(lambda: bitmm.linear_a8("int2", xq, xs, packed, s, u, b))
        assert any("a8_linear_kernel" in n for n in names) == fused, (M, names)


@cuda_only
def test_linear_a8_fused_kernel_is_taken():
    if not A8_FUSED:
        pytest.skip("BITMM_A8_FUSED=1 is not set")
    from test_wgmma import kernel_names, profiler_sees_kernels
    if not profiler_sees_kernels():  # (under compute-sanitizer: the kernel names are this test's whole check)
        pytest.skip("the profiler names no kernels here")
    v, packed, xq, xs, s, u, b = make_a8("ternary", (4,), 1024, 64, "channel", True, True, "cuda")
    names = kernel_names(lambda: bitmm.linear_a8("ternary", xq, xs, packed, s, u, b))
    assert any("a8_linear_kernel" in n for n in names), names
    v, packed, xq, xs, s, u, b = make_a8("ternary", (40,), 1024, 64, "channel", True, True, "cuda")
    names = kernel_names(lambda: bitmm.linear_a8("ternary", xq, xs, packed, s, u, b))
    assert any("a8_linear_kernel" in n for n in names), names  # (M = 40: three chunks of x rows)
    v, packed, xq, xs, s, u, b = make_a8("ternary", (257,), 1024, 64, "channel", True, True, "cuda")
    names = kernel_names(lambda: bitmm.linear_a8("ternary", xq, xs, packed, s, u, b))
    assert not any("a8_linear_kernel" in n for n in names), names  # (past kA8MaxM = 256: torch's int8 GEMM)
    # 16 rows of K = 16384 exceed the shared memory: the CTAs take 8 rows each, still the fused kernel
    v, packed, xq, xs, s, u, b = make_a8("binary", (16,), 16384, 40, "tensor", False, False, "cuda")
    names = kernel_names(lambda: bitmm.linear_a8("binary", xq, xs, packed, s))
    assert any("a8_linear_kernel" in n for n in names), names
    # one row of K = 240000 (235 KB) exceeds every GPU's shared memory per block: the unfused path runs
    v, packed, xq, xs, s, u, b = make_a8("binary", (2,), 240000, 8, "tensor", False, False, "cuda")
    names = kernel_names(lambda: bitmm.linear_a8("binary", xq, xs, packed, s))
    assert not any("a8_linear_kernel" in n for n in names), names
    cpu = [t.cpu() for t in (xq, xs, packed, s)]
    assert torch.equal(bitmm.linear_a8("binary", xq, xs, packed, s).cpu(), bitmm.linear_a8("binary", *cpu))


@pytest.mark.parametrize("M", [3, 17])
@pytest.mark.parametrize("device", DEVICES)
def test_linear_a8_sums_past_2_24(device, M):
    # K = 44032 (> 43690 inputs, past which float32 sums of stored codes are no longer exact): int2 codes 3 and
    # xq = -128 (one -127 per row) make the stored-code sums odd and past 2^24 (not representable in float32),
    # while the values' sums (codes - 1) stay exact in float32.  The CPU adds float32 chunks of <= 43690 inputs in
    # float64, CUDA's int8 GEMM gives int32; both subtract the shift exactly before one rounding, so a float64
    # output equals the integer product, a float32 output its one rounding, and CUDA's the CPU's bit for bit.
    # (where BITMM_A8_FUSED=1 both M take the fused kernel on CUDA: M = 3 with x whole in 135 KB of shared memory,
    # M = 17 in chunks of 4 rows)
    K, N = 44032, 16
    codes = torch.full((N, K), 3, dtype=torch.int8)
    packed = bitmm.pack_int2(codes).to(device)
    xq = torch.full((M, K), -128, dtype=torch.int8)
    xq[:, 0] = -127
    xq = xq.to(device)
    xs = torch.ones(M, 1, device=device)
    one = torch.tensor(1.0, device=device)
    code_sums = xq.double() @ codes.double().T.to(device)
    assert code_sums.abs().min() > 2 ** 24 and (code_sums.float().double() != code_sums).all()
    want = xq.double() @ (codes.double() - 1).T.to(device)
    assert torch.equal(bitmm.linear_a8("int2", xq, xs, packed, one, out_dtype=torch.float64), want)
    y32 = bitmm.linear_a8("int2", xq, xs, packed, one, out_dtype=torch.float32)
    assert torch.equal(y32, want.float())  # one rounding of the exact sum
    if device == "cuda":
        assert torch.equal(y32.cpu(), bitmm.linear_a8("int2", xq.cpu(), xs.cpu(), packed.cpu(), one.cpu()))


@pytest.mark.parametrize("device", DEVICES)
def test_linear_a8_bias_gradient_and_constants(device):
    v, packed, xq, xs, s, u, b = make_a8("ternary", (2, 9), 256, 24, "channel", True, True, device)
    b.requires_grad_(True)
    y = bitmm.linear_a8("ternary", xq, xs, packed, s, u, b)
    g = torch.randn_like(y)
    y.backward(g)
    assert torch.allclose(b.grad, g.reshape(-1, 24).sum(0))
    torch.library.opcheck(torch.ops.bitmm.linear_a8, (xq, xs, packed, s, u, b, 2, torch.float32))
    # x_scale, scale and offset are constants (as scale / offset for the other ops): no gradient, on every device
    xs2, s2 = xs.clone().requires_grad_(True), s.clone().requires_grad_(True)
    y2 = bitmm.linear_a8("ternary", xq, xs2, packed, s2, u, None)
    assert y2.requires_grad
    y2.sum().backward()
    assert xs2.grad is None and s2.grad is None


BAD = [
    # (what, change, error type, message part)
    ("xq float", lambda a: a.update(xq=a["xq"].float()), TypeError, "xq must be int8"),
    ("x_scale shape", lambda a: a.update(x_scale=a["x_scale"].reshape(-1)), ValueError, "x_scale must have shape"),
    ("x_scale int", lambda a: a.update(x_scale=a["x_scale"].int()), TypeError, "x_scale must be"),
    ("group-wise scale", lambda a: a.update(scale=torch.ones(24, 4)), ValueError, "per tensor"),
    ("wrong K", lambda a: a.update(xq=a["xq"][:, :100]), ValueError, "words per row"),
    ("bias shape", lambda a: a.update(bias=torch.zeros(5)), ValueError, "bias must have shape"),
    ("out_dtype int", lambda a: a.update(out_dtype=torch.int32), TypeError, "out_dtype"),
    ("K = 0", lambda a: a.update(xq=a["xq"][:, :0], x_scale=a["x_scale"]), ValueError, "K=0"),
]


@pytest.mark.parametrize("what,change,err,text", BAD, ids=[b[0] for b in BAD])
def test_linear_a8_bad_input(what, change, err, text):
    v, packed, xq, xs, s, u, b = make_a8("ternary", (3,), 640, 24, "channel", True, True, "cpu")
    args = dict(xq=xq, x_scale=xs, packed_w=packed, scale=s, offset=u, bias=b, out_dtype=torch.float32)
    change(args)
    with pytest.raises(err, match=text):
        torch.ops.bitmm.linear_a8(args["xq"], args["x_scale"], args["packed_w"], args["scale"], args["offset"],
                                  args["bias"], 2, args["out_dtype"])


@pytest.mark.parametrize("device", DEVICES)
def test_linear_a8_opcheck_and_compile(device):
    v, packed, xq, xs, s, u, b = make_a8("int2", (17,), 256, 32, "channel", True, True, device)
    torch.library.opcheck(torch.ops.bitmm.linear_a8, (xq, xs, packed, s, u, b, 3, torch.float16))
    torch.library.opcheck(torch.ops.bitmm.linear_a8, (xq, xs, packed, s, None, None, 3, torch.float32))

    def f(x):
        q, sc = quant.absmax_int8(x)
        return bitmm.linear_a8("int2", q, sc, packed, s, u, b, out_dtype=x.dtype)

    x = torch.randn(17, 256, device=device)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), f(x))


@pytest.mark.parametrize("device", DEVICES)
def test_packed_linear_int8_matmul(device):
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 48).to(device)
    model = torch.nn.Sequential(bitmm.nn.PackedLinear.from_linear(lin, weight_bits=1.58, act_bits=8),
                                bitmm.nn.PackedLinear.from_linear(lin, weight_bits=2, group_size=64, act_bits=8),
                                bitmm.nn.PackedLinear.from_linear(lin, weight_bits=1.58))
    # only the act_bits=8 layer with a per tensor / per channel scale takes it
    assert bitmm.nn.enable_int8_matmul(model) == 1
    layer = model[0]
    x = torch.randn(20, 256, device=device)
    with torch.no_grad():
        y8 = layer(x)
        layer.int8_matmul = False
        yf = layer(x)
        layer.int8_matmul = True
    xq, xs = quant.absmax_int8(x)
    if device == "cuda" or bitmm.nn._CPU_A8_KERNEL != "generic":
        assert torch.equal(y8, bitmm.linear_a8(layer.kind, xq, xs, layer.packed_weight, layer.scale, layer.offset,
                                               layer.bias, out_dtype=x.dtype))
        assert rel_err(y8, yf.double()) < 1e-5
        assert not torch.equal(y8, yf)  # the int8 path ran (exact sums, the float path rounds)
    else:  # CPUs without linear_a8's own kernel keep the float path (faster than its generic path)
        assert torch.equal(y8, yf)
    # x needing a gradient (LoRA / PEFT training over the frozen layer): the float path with BitNet's straight-through
    # estimator, whatever int8_matmul says (the int8 path has no gradient for x)
    xr = x.clone().requires_grad_(True)
    layer.int8_matmul = False
    yf_g = layer(xr)
    assert yf_g.grad_fn is not None and torch.equal(yf_g.detach(), yf)
    layer.int8_matmul = True
    yg = layer(xr)
    assert yg.grad_fn is not None and torch.equal(yg.detach(), yf)


def _absmax_input(shape, dtype):
    x = torch.randn(shape) * 3
    rows = x.reshape(-1, shape[-1])
    rows[0, :] = 0.0  # an all-zero row (amax clamped to 1e-5)
    if rows.shape[0] > 2:
        rows[1, :] = 1e-7 * torch.randn(shape[-1])  # amax below the clamp
        rows[2, :] = torch.arange(shape[-1]) % 7 - 3.5  # halves
        rows[2, 0] = 127.0  # max |x| = 127 makes s = 1.0 exactly: the halves are exact ties, rounded half to even
    if rows.shape[0] > 3:
        rows[3, :] *= 1e30 if dtype in (torch.float32, torch.float64) else 1e3
    if rows.shape[0] > 4 and dtype in (torch.float32, torch.float64):
        # amax in [2^126, 2^127] (finite): 1 / amax subnormal (a reciprocal without flush to zero)
        rows[4, :] = torch.randn(shape[-1]).clamp(-1, 1) * 2.0 ** 127
    return x.to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 37), (17, 4096), (2, 3, 1000), (5, 8195)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_absmax_int8_op_equals_composite(dtype, shape, device):
    # torch.ops.bitmm.absmax_int8 (one CUDA kernel; one pass per row on CPU) against the PyTorch composite it
    # replaces (bitmm.reference.absmax_int8) on the same device: bit for bit, xq, x_scale and the fake-quantized x
    x = _absmax_input(shape, dtype).to(device)
    xq, xs = quant.absmax_int8(x)
    rq, rs = reference.absmax_int8(x)
    assert xq.dtype == torch.int8 and xs.dtype == torch.float32 and xs.shape == (*shape[:-1], 1)
    assert torch.equal(xq, rq) and torch.equal(xs, rs)
    assert torch.equal(quant.absmax_int8_fake(x), reference.absmax_int8_fake(x))
    # a transposed view (copied to rows first) gives the same as its contiguous copy
    if len(shape) == 2 and shape[0] > 1:
        xt = x.t().contiguous().t()
        assert torch.equal(quant.absmax_int8(xt)[0], rq)


@pytest.mark.parametrize("value", [float("inf"), float("nan")], ids=["inf", "nan"])
@pytest.mark.parametrize("device", DEVICES)
def test_absmax_int8_nonfinite_element_poisons_its_row_only(device, value):
    # an inf or NaN in row 1: its amax inf / NaN, so s = 0 / NaN and x_scale inf / NaN, its fake-quantized values NaN
    # (0 * inf, or NaN); the other rows exactly the composite's
    x = torch.randn(3, 200, device=device)
    x[1, 5] = value
    xq, xs = quant.absmax_int8(x)
    rq, rs = reference.absmax_int8(x)
    other = [0, 2]
    assert torch.equal(xq[other], rq[other]) and torch.equal(xs[other], rs[other])
    assert (torch.isinf(xs[1]) if value == float("inf") else torch.isnan(xs[1])).all()
    assert torch.isnan(quant.absmax_int8_fake(x)[1]).all() and torch.isfinite(quant.absmax_int8_fake(x)[other]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_absmax_int8_op_checks_opcheck_and_compile(device):
    x = torch.randn(5, 64, device=device, dtype=torch.float16)
    for t in (x, x.t()):  # (a transposed x: outputs contiguous, as the fake kernel makes them)
        torch.library.opcheck(torch.ops.bitmm.absmax_int8, (t,))
        torch.library.opcheck(torch.ops.bitmm.absmax_int8_fake, (t,))
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        torch.ops.bitmm.absmax_int8(torch.ones(3, 4, dtype=torch.int32, device=device))
    with pytest.raises(ValueError, match="K >= 1"):
        torch.ops.bitmm.absmax_int8(torch.ones(3, 0, device=device))

    def f(x):
        q, s = quant.absmax_int8(x)
        return q.float() * s + quant.absmax_int8_fake(x)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), f(x))
