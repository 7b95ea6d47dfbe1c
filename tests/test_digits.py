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
from helpers import (KINDS, PACKERS, assert_close_to_reference, check_deterministic_and_graph, make_problem,
                     poison_cuda_allocator, random_values, rel_err)

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DTYPES = [torch.float16, torch.bfloat16]


def rows_with_hard_cases(M, K, dtype, seed=0):
    """Random rows, plus an outlier row, a row of tiny values, a zero row and a row of two magnitudes 2^12 apart."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, K, generator=g)
    if M > 1:
        x[1, K // 3] = 3000.0
    if M > 2:
        x[2] *= 1e-4
    if M > 3:
        x[3] = 0.0
    if M > 4:
        x[4, ::2] *= 2.0 ** -12
    return x.to(dtype)


def reassemble(digits, e):
    X = (digits.long() * (256 ** torch.arange(reference.DIGITS)).view(1, -1, 1)).sum(1)
    return X, X.double() * torch.pow(2.0, e.double()).unsqueeze(1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_digits_represent_rows(dtype):
    x = rows_with_hard_cases(6, 999, dtype)
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
    x = rows_with_hard_cases(M, K, dtype, seed=K)
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
    x = rows_with_hard_cases(M, K, dtype, seed=M * K).cuda()
    _, packed, s, u, b = make_problem(kind, M, K, N, mode, dtype=dtype, offset=offset, device="cuda")
    if sdtype != "x":
        s, u, b = s.to(sdtype), None if u is None else u.to(sdtype), b.to(sdtype)
    poison_cuda_allocator()
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    want = reference.linear_digits(kind, x.cpu(), packed.cpu(), s.cpu(), None if u is None else u.cpu(), b.cpu())
    torch.testing.assert_close(y.cpu(), want, rtol=0, atol=0)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


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
        K = 60000  # 4 digit rows of 60 KB exceed the shared memory: the kernel declines after the digits ran
    elif case == "M_0":
        M = 0
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda")
    y_auto = bitmm.linear(kind, x, packed, s, u, b)
    with bitmm.use_backend("digits"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert torch.equal(y, y_auto)
    if M:
        assert_close_to_reference(kind, y, x, packed, s, u, b)
