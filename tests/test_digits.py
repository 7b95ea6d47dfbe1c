"""The digits backend (bitmm.set_backend("digits")): fp16 / bf16 x on the int8 tensor cores, each row of x as the
30-bit fixed point X = rint(x 2^-e), e = ilogb(max |x|) - 29, in four int8 digits; the exact integer sums of X with
the stored codes; a float64 epilogue (csrc/cuda/a8_fragments.h, bitmm/reference.py linear_digits).

CPU: the representation and its accuracy (bitmm.reference, which spells the CUDA path's bits; the emulated kernel is
checked against it bit for bit in tests/test_a8_emulation.py).  CUDA: the backend against that reference bit for
bit, against the float64 reference, its fallbacks, determinism and graphs.
"""
import pytest
import torch

import bitmm
from bitmm import reference
from helpers import (KINDS, PACKERS, assert_close_to_reference, assert_kernel_ran, check_deterministic_and_graph, digits_hard_rows,
                     digits_tie_row, make_problem, poison_cuda_allocator, random_values, rel_err)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DTYPES = [torch.float16, torch.bfloat16]


def reassemble(digits, e):
    X = (digits.long() * (256 ** torch.arange(reference.DIGITS)).view(1, -1, 1)).sum(1)
    return X, X.double() * torch.pow(2.0, e.double()).unsqueeze(1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_digits_represent_rows(dtype):
    x = digits_hard_rows(6, 999, dtype)
    digits, e = reference.x_digits(x)
    assert digits.dtype == torch.int8 and digits.shape == (6, 4, 999) and e.dtype == torch.int32
    assert (digits[:, 3].abs() <= 64).all()  # the kernel's int32 bound takes |digit| <= 128
    X, xr = reassemble(digits, e)
    assert X.abs().max() <= 2 ** 30
    amax = x.double().abs().amax(1)
    assert (X.abs().amax(1)[amax > 0] >= 2 ** 29).all()  # the largest element uses the 30 bits
    # each element within half a unit of 2^e; exact where every element is a multiple of 2^e
    assert ((xr - x.double()).abs() <= torch.pow(2.0, e.double() - 1).unsqueeze(1)).all()
    if dtype == torch.float16:  # fp16 values are multiples of 2^-24: exact in rows whose max is below 2^6
        exact = amax < 64
        assert exact.sum() >= 4
        assert torch.equal(xr[exact], x.double()[exact])
    assert e[3] == 0 and not digits[3].any()


def test_digits_nonfinite_rows():
    x = torch.randn(3, 50, dtype=torch.float16)
    x[0, 1] = float("nan")
    x[2, 7] = float("inf")
    digits, e = reference.x_digits(x)
    assert e.tolist()[0] == e.tolist()[2] == reference.DIGITS_NONFINITE and not digits[[0, 2]].any()
    assert e[1] != reference.DIGITS_NONFINITE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,offset", [("tensor", False), ("channel", True)])
@pytest.mark.parametrize("kind", KINDS)
def test_digits_as_accurate_as_rounding_the_exact_result(kind, mode, offset, dtype):
    # The digits' only errors are the float64 epilogue's and the final rounding: normwise as close to the float64
    # reference as that reference rounded to x's dtype, with the hard rows (outliers, tiny values) included.
    M, K, N = 6, 4099, 257
    x = digits_hard_rows(M, K, dtype, seed=K)
    _, packed, s, u, b = make_problem(kind, M, K, N, mode, dtype=dtype, offset=offset)
    y = reference.linear_digits(kind, x, packed, s, u, b)
    ref = reference.linear(kind, x, packed, s, u, b)
    rounded = rel_err(ref.to(dtype), ref)
    assert y.dtype == dtype and rel_err(y, ref) <= 1.001 * rounded + 1e-12
    # and row by row (the tiny and zero rows included)
    for m in range(M):
        assert (y[m].double() - ref[m]).abs().max() <= 1.001 * (ref[m].to(dtype).double() - ref[m]).abs().max() + 1e-30


# ---- CUDA ---------------------------------------------------------------------------------------------------------
DIGITS_M = [1, 2, 3, 4, 5, 16, 17, 64]  # digit rows 4 .. 256: one / two B tiles, chunks of 16 rows, the largest M


@cuda_only
@pytest.mark.parametrize("M", DIGITS_M)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,offset,sdtype", [("tensor", False, "x"), ("channel", True, "x"),
                                                ("channel", True, torch.float32), ("tensor", True, torch.float64)])
# K % 8 != 0: x_digits' element path; 1024 and 12288: its 16-byte path, the row in registers (K <= 8192) or past them
@pytest.mark.parametrize("K,N", [(300, 37), (4099, 70), (1024, 45), (12288, 33)])
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_matches_reference_bits(kind, K, N, mode, offset, sdtype, dtype, M):
    x = digits_hard_rows(M, K, dtype, seed=M * K).cuda()
    _, packed, s, u, b = make_problem(kind, M, K, N, mode, dtype=dtype, offset=offset, device="cuda")
    if sdtype != "x":
        s, u, b = s.to(sdtype), None if u is None else u.to(sdtype), b.to(sdtype)
    poison_cuda_allocator()
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_kernel_ran("digits")
    want = reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), None if u is None else u.cpu(), b.cpu())
    torch.testing.assert_close(y.cpu(), want, rtol=0, atol=0)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


def cancelling_rows(K, dtype, seed=0):
    """Rows where two large inputs cancel in every output whose weights at them agree (x[0] = c = 2^14,
    x[K - 1] = -c) and the answer is the sum of the small ones, multiples of 2^-15 up to 2^-9: the digits' grid for
    this row (e = 14 - 29), so exact for them, while a float32 sum holding c (ulp 2^-9) rounds each one away."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-64, 65, (2, K), generator=g).to(torch.float32) * 2.0 ** -15
    x[:, 0], x[:, K - 1] = 2.0 ** 14, -(2.0 ** 14)
    return x.to(dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_digits_keep_what_float32_accumulation_loses(kind):
    # the power of the CUDA test below: on these rows reference.linear_digits is within fp16 rounding of the exact
    # result, and a float32 sum (the other kernels' accumulator) started from the large inputs is not
    K, N = 1000, 64
    x = cancelling_rows(K, torch.float16)
    v = random_values(kind, N, K, "cpu")
    v[:, K - 1] = v[:, 0]  # each output's weights at the two large inputs agree: they cancel
    packed = PACKERS[kind](v)
    s = torch.tensor(1.0)
    ref = reference.linear(kind, x, packed, s)
    y = reference.linear_digits(kind, x, packed, s)
    assert (y.double() - ref).abs().max() <= (ref.to(torch.float16).double() - ref).abs().max() * 1.001 + 1e-30
    w = reference.dense_weight(kind, packed, s, None, K, torch.float32)
    acc = torch.zeros(2, N)
    for k in range(K):  # float32, in k order
        acc = acc + x[:, k].float().unsqueeze(1) * w[:, k]
    assert (acc.double() - ref).abs().max() > 100 * (ref.to(torch.float16).double() - ref).abs().max()


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_kernel_is_taken(kind):
    # the digits kernels run where the backend applies, nothing of them where it does not (kernel names from the
    # profiler): a test of the results alone cannot tell, fp32-accumulating kernels mostly give the same fp16 bits
    from test_wgmma import kernel_names, profiler_sees_kernels
    if not profiler_sees_kernels():
        pytest.skip("the profiler sees no kernels (under compute-sanitizer)")

    def names(M, K, mode="channel", G=None, dtype=torch.float16):
        x, packed, s, u, b = make_problem(kind, M, K, 64, mode, G, dtype=dtype, device="cuda")
        with bitmm.use_backend("digits"):
            return kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
    for M, K in ((1, 4096), (3, 1000), (64, 300), (2, 20000)):
        got = names(M, K)
        assert any("x_digits_kernel" in n for n in got) and any("a8_linear_kernel" in n for n in got), (M, K, got)
    for M, K, mode, G, dtype in ((65, 512, "channel", None, torch.float16), (2, 512, "group", 64, torch.float16),
                                 (2, 512, "channel", None, torch.float32), (2, 60000, "channel", None, torch.float16)):
        got = names(M, K, mode, G, dtype)
        assert not any("x_digits_kernel" in n or "a8_linear_kernel" in n for n in got), (M, K, mode, dtype, got)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_cancellation(kind):
    K, N = 1000, 64
    x = cancelling_rows(K, torch.float16).cuda()
    v = random_values(kind, N, K, "cuda")
    v[:, K - 1] = v[:, 0]
    packed = PACKERS[kind](v)
    s = torch.tensor(1.0, device="cuda")
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s)
    torch.testing.assert_close(y.cpu(), reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu()), rtol=0, atol=0)
    ref = reference.linear(kind, x.cpu(), packed.cpu(), s.cpu())
    assert (y.cpu().double() - ref).abs().max() <= (ref.to(torch.float16).double() - ref).abs().max() * 1.001 + 1e-30


def extreme_rows(dtype, K):
    """The element functions' hard cases as rows of x: ties (x 2^-e = k + 1/2 with round half to even), subnormals,
    bf16's largest and smallest exponents, a zero row, and the test above's cancelling row."""
    tie = digits_tie_row(dtype, K)
    rows = [tie, -tie, torch.zeros(K), torch.randn(K) * (2.0 ** -20 if dtype == torch.float16 else 2.0 ** -128)]
    if dtype == torch.bfloat16:
        rows.append(torch.randn(K) * 2.0 ** 120)
    rows.append(cancelling_rows(K, torch.float32)[0])
    return torch.stack(rows).to(dtype)


@cuda_only
@pytest.mark.parametrize("K", [301, 304])  # x_digits' element path / its 16-byte path
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_extreme_rows(kind, dtype, K):
    # the device's element functions (ilogbf, the float64 power of two, __double2int_rn) against the reference's, bit
    # for bit through the whole op; no offset or bias, per tensor fp32 scale
    x = extreme_rows(dtype, K).cuda()
    N = 40
    packed = PACKERS[kind](random_values(kind, N, K, "cuda"))
    s = torch.tensor(0.75, device="cuda")
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s)
    torch.testing.assert_close(y.cpu(), reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu()), rtol=0, atol=0,
                               equal_nan=True)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_short_chunks_mixed_scales(kind):
    # digit rows past the shared memory: K = 20000, M = 3 (12 digit rows: chunks of 8 and 4), K = 30000, M = 5
    # (chunks of 4); per tensor scale with a per channel offset, no bias; bit for bit with the reference
    for M, K, N in ((3, 20000, 40), (5, 30000, 20)):
        x = digits_hard_rows(M, K, torch.float16, seed=K).cuda()
        packed = PACKERS[kind](random_values(kind, N, K, "cuda"))
        s = torch.tensor(0.3, device="cuda", dtype=torch.float16)
        u = torch.randn(N, device="cuda", dtype=torch.float16) * 0.1
        with bitmm.use_backend("digits"):
            y = bitmm.linear(kind, x, packed, s, u)
        want = reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu())
        torch.testing.assert_close(y.cpu(), want, rtol=0, atol=0)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_sanitizer_cases(kind):
    # a few shapes for compute-sanitizer (next_a8_fused.sh): compared with the CPU reference only (no cuBLAS, which
    # racecheck kills): one and two B tiles, a partial last step, chunks of x rows, 16-byte paths and element paths
    for M, K, N in ((1, 300, 37), (3, 1024, 33), (5, 4099, 20), (17, 512, 24), (2, 20000, 16)):
        x = digits_hard_rows(M, K, torch.bfloat16 if M % 2 else torch.float16, seed=M).cuda()
        _, packed, s, u, b = make_problem(kind, M, K, N, "channel", dtype=x.dtype, device="cuda")
        with bitmm.use_backend("digits"):
            y = bitmm.linear(kind, x, packed, s, u, b)
        want = reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu(), b.cpu())
        torch.testing.assert_close(y.cpu(), want, rtol=0, atol=0)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_3d_noncontiguous_deterministic_graph(kind):
    x, packed, s, u, b = make_problem(kind, 3, 1000, 90, "channel", dtype=torch.float16, device="cuda", lead=(2,))
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s, u, b)
        xt = torch.randn(1000, 5, device="cuda", dtype=torch.float16).T  # transposed: copied to rows
        yt = bitmm.linear(kind, xt, packed, s, u, b)
        xo = torch.randn(3 * 1000 + 1, device="cuda", dtype=torch.float16)[1:].view(3, 1000)  # 2-byte aligned rows
        yo = bitmm.linear(kind, xo, packed, s, u, b)
    torch.testing.assert_close(yo.cpu(), reference.linear_digits(kind, xo.cpu(), packed.cpu(), s.cpu(), u.cpu(),
                                                                 b.cpu()), rtol=0, atol=0)
    torch.testing.assert_close(y.cpu(), reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu(), b.cpu()),
                               rtol=0, atol=0)
    torch.testing.assert_close(yt.cpu(), reference.linear_digits(kind, xt.cpu(), packed.cpu(), s.cpu(), u.cpu(),
                                                                 b.cpu()), rtol=0, atol=0)
    check_deterministic_and_graph(kind, "digits", x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("case", ["float32_x", "group_scales", "M_65", "K_60000", "M_0"])
@pytest.mark.parametrize("kind", ["ternary", "binary"])
def test_digits_cuda_falls_back_where_it_does_not_apply(kind, case):
    # where the digits kernel does not run, the digits backend gives auto's bits
    M, K, N, mode, G, dtype = 2, 512, 40, "channel", None, torch.float16
    if case == "float32_x":
        dtype = torch.float32
    elif case == "group_scales":
        mode, G = "group", 64
    elif case == "M_65":
        M = 65
    elif case == "K_60000":
        K = 60000  # 4 digit rows of 60 KB exceed the shared memory: nothing of digits is launched
    elif case == "M_0":
        M = 0
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda")
    y_auto = bitmm.linear(kind, x, packed, s, u, b)
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert torch.equal(y, y_auto)
    if M:
        assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_transposed_backward(kind, mode):
    # grad_x through the forward op on the cached W^T (ops.linear_grad_x_transposed, PackedLinear's
    # transposed_backward) runs on the digits kernels under the digits backend: the float64 reference within 2x the
    # plain fp16 error (the default linear_grad_x's bound, tests/test_transposed_backward.py)
    from test_wgmma import kernel_names, profiler_sees_kernels
    M, K, N = 3, 1000, 700
    _, packed, s, u, _ = make_problem(kind, M, K, N, mode, dtype=torch.float16, device="cuda")
    g = torch.randn(M, N, device="cuda", dtype=torch.float16)
    wt = bitmm.ops.transpose_packed(packed, kind, K)
    with bitmm.use_backend("digits"):
        gx = bitmm.ops.linear_grad_x_transposed(kind, g, wt, s, u)
        if profiler_sees_kernels():
            names = kernel_names(lambda: bitmm.ops.linear_grad_x_transposed(kind, g, wt, s, u))
            assert any("x_digits_kernel" in n for n in names), names
        if mode == "tensor":  # without the offset's rank-1 term: the forward op alone, bit for bit
            gx0 = bitmm.ops.linear_grad_x_transposed(kind, g, wt, s, None)
            torch.testing.assert_close(gx0.cpu(), reference.linear_digits(kind, g.cpu(), wt.cpu(), s.cpu()), rtol=0,
                                       atol=0)
    ref = reference.linear_grad_x(kind, g.cpu(), packed.cpu(), s.cpu(), u.cpu(), K)
    w16 = reference.dense_weight(kind, packed.cpu(), s.cpu(), u.cpu(), K).to(torch.float16)
    plain = rel_err((g.cpu().float() @ w16.float()).to(torch.float16), ref)
    assert gx.shape == (M, K) and rel_err(gx, ref) <= max(2 * plain, 1e-3)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_digits_cuda_lora_base_is_digits(kind):
    # lora_linear under digits: the base term from the digits kernels (the fused LoRA epilogue is the tensor-core
    # kernel's, declined where digits applies), the low-rank term added after it; the float64 reference within 2x
    # the plain fp16 error
    from test_wgmma import kernel_names, profiler_sees_kernels
    M, K, N, r = 3, 512, 96, 8
    x, packed, s, u, b = make_problem(kind, M, K, N, "channel", dtype=torch.float16, device="cuda")
    a = torch.randn(r, K, device="cuda", dtype=torch.float16) * 0.05
    lb = torch.randn(N, r, device="cuda", dtype=torch.float16) * 0.05
    with bitmm.use_backend("digits"):
        y = bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5)
        base = bitmm.linear(kind, x, packed, s, u, b)
        if profiler_sees_kernels():
            names = kernel_names(lambda: bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5))
            assert any("x_digits_kernel" in n for n in names) and not any("tc_linear" in n for n in names), names
    torch.testing.assert_close(base.cpu(), reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu(),
                                                                   b.cpu()), rtol=0, atol=0)
    low = 0.5 * (x.double() @ a.double().T) @ lb.double().T
    ref = reference.linear(kind, x.cpu(), packed.cpu(), s.cpu(), u.cpu(), b.cpu()) + low.cpu()
    w16 = reference.dense_weight(kind, packed.cpu(), s.cpu(), u.cpu(), K).to(torch.float16)
    plain = (x.cpu().float() @ w16.float().T + b.cpu().float() + low.cpu().float()).to(torch.float16)
    assert rel_err(y, ref) <= max(2 * rel_err(plain, ref), 1e-3)


@cuda_only
def test_digits_auto_max_m_switch():
    # BITMM_DIGITS_AUTO_MAX_M=2 (read once per process): auto takes the digits kernels at M <= 2 where they apply
    # (bit for bit the digits backend's output), not at M = 3, nor for group-wise scales, whatever the shape (this
    # one is far from the rule's: test_auto_takes_digits_by_rule)
    from helpers import run_in_child
    code = """
import torch, bitmm
from bitmm import reference
from helpers import make_problem
from test_wgmma import kernel_names, profiler_sees_kernels
def run(M, mode="channel", G=None):
    x, p, s, u, b = make_problem("ternary", M, 512, 64, mode, G, dtype=torch.float16, device="cuda")
    y = bitmm.linear("ternary", x, p, s, u, b)
    names = kernel_names(lambda: bitmm.linear("ternary", x, p, s, u, b)) if profiler_sees_kernels() else None
    return y, (x, p, s, u, b), names
for M, want in ((1, True), (2, True), (3, False)):
    y, args, names = run(M)
    if names is not None:
        assert any("x_digits_kernel" in n for n in names) == want, (M, names)
    if want:
        assert torch.equal(y.cpu(), reference.linear_digits("ternary", *[a.cpu() for a in args]))
_, _, names = run(2, "group", 64)
assert names is None or not any("x_digits_kernel" in n for n in names), names
"""
    run_in_child(code, BITMM_DIGITS_AUTO_MAX_M="2")


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_takes_digits_by_rule(kind, dtype):
    # auto's digits rule (csrc/cuda/tc_launch_rules.h digits_auto_rule, H100 session 34): M <= 2, 2048 <= K <= 8192,
    # N >= 192 rows per SM, where digits applies (fp16 / bf16 x, per tensor / channel scales); there auto's output is
    # the digits backend's bit for bit (and within the float64 reference's bound); everywhere else not digits
    import os
    if "BITMM_DIGITS_AUTO_MAX_M" in os.environ:
        pytest.skip("BITMM_DIGITS_AUTO_MAX_M replaces the rule")
    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the rule applies on compute capability 9.x only (where it was measured)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    N = 192 * sms + 5  # (odd: the last CTA's rows partly past N)

    def run(M, K, n, mode="channel", G=None, xdtype=dtype, lora=False):
        with bitmm.use_backend("auto"):
            return run_auto(M, K, n, mode, G, xdtype, lora)

    def run_auto(M, K, n, mode, G, xdtype, lora):
        x, packed, s, u, b = make_problem(kind, M, K, n, mode, G, dtype=xdtype, device="cuda")
        if lora:
            a = torch.randn(4, K, device="cuda", dtype=xdtype) * 0.05
            lb = torch.randn(n, 4, device="cuda", dtype=xdtype) * 0.05
            y = bitmm.lora_linear(kind, x, packed, s, u, b, a, lb, 0.5)
        else:
            y = bitmm.linear(kind, x, packed, s, u, b)
        return y, bitmm.backend.last_kernel(), (x, packed, s, u, b)
    for M, K in ((1, 2048), (2, 8192), (1, 5000)):
        y, ran, args = run(M, K, N)
        assert ran == "digits", (M, K, ran)
        assert torch.equal(y.cpu(), reference.linear_digits(kind, *[a.cpu() for a in args])), (M, K)
        assert_close_to_reference(kind, y, *args)
        for mode in ("tensor", "channel"):  # per tensor too, no offset
            x, packed, s, u, b = make_problem(kind, M, K, N, mode, dtype=dtype, device="cuda")
            with bitmm.use_backend("auto"):
                bitmm.linear(kind, x, packed, s, None, None)
            assert bitmm.backend.last_kernel() == "digits", (M, K, mode)
    for M, K, n, mode, G, xdtype, lora in ((3, 2048, N, "channel", None, dtype, False),
                                           (1, 2047, N, "channel", None, dtype, False),
                                           (1, 8320, N, "channel", None, dtype, False),
                                           (1, 2048, 192 * sms - 1, "channel", None, dtype, False),
                                           (1, 2048, N, "group", 64, dtype, False),
                                           (1, 2048, N, "channel", None, torch.float32, False),
                                           (1, 2048, N, "channel", None, dtype, True)):  # LoRA: the fused epilogue
        # (the LoRA output's numerics: tests/test_lora.py)
        y, ran, args = run(M, K, n, mode, G, xdtype, lora)
        assert ran != "digits", (M, K, n, mode, xdtype, lora, ran)
        if not lora:
            assert_close_to_reference(kind, y, *args)
