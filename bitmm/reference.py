"""Pure-PyTorch reference of every bitmm op: the definition tests, docs and the
fallback share.  Slow on purpose (it materializes the dense weight); use it to
check kernels, never in a hot path.

    y[m, n] = sum_k x[m, k] * (v[n, k] * s[n, g(k)] + u[n, g(k)]) + bias[n]

with v the value of the stored code (binary b, ternary t, int2 q - 1) and g(k)
the group of input k (group size G = K / scale.shape[1]).
"""
from __future__ import annotations

import torch

from . import formats
from .quant import expand_groups  # (), (N,) or (N, K/G) -> (N, K)

CODE_SHIFT = {"binary": 0, "ternary": 1, "int2": 1}  # value = stored code - shift


def values(kind: str, codes: torch.Tensor) -> torch.Tensor:
    """Stored codes -> the integer values the math uses."""
    return codes.to(torch.int64) - CODE_SHIFT[kind]


def dense_weight(kind: str, packed: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None,
                 K: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (N, K) weight v * s + u that the packed arguments stand for."""
    v = values(kind, formats.unpack_codes(packed, kind, K)).to(dtype)
    N = v.shape[0]
    w = v * expand_groups(scale.to(dtype), N, K, "scale")
    if offset is not None:
        w = w + expand_groups(offset.to(dtype), N, K, "offset")
    return w


def linear(kind: str, x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
           offset: torch.Tensor | None = None, bias: torch.Tensor | None = None,
           dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Reference forward in `dtype` (float64 by default)."""
    w = dense_weight(kind, packed, scale, offset, x.shape[-1], dtype)
    y = x.to(dtype) @ w.T
    if bias is not None:
        y = y + bias.to(dtype)
    return y


def linear_grad_x(kind: str, grad_y: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
                  offset: torch.Tensor | None, K: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Reference grad w.r.t. x: grad_y @ W."""
    return grad_y.to(dtype) @ dense_weight(kind, packed, scale, offset, K, dtype)


def linear_a8(kind: str, xq: torch.Tensor, x_scale: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
              offset: torch.Tensor | None = None, bias: torch.Tensor | None = None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Reference of the W2A8 op (int8 activations xq with per-row x_scale): linear on xq * x_scale."""
    return linear(kind, xq.to(dtype) * x_scale.to(dtype), packed, scale, offset, bias, dtype)


def absmax_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BitNet's per-token absmax int8 quantization as PyTorch operations (what ``torch.ops.bitmm.absmax_int8`` must
    equal bit for bit): ``s = 127 / |x|.amax(-1).clamp(min=1e-5)`` in float32, ``xq = round(x * s).clamp(-128, 127)``
    int8, ``x_scale = 1 / s``."""
    x32 = x.detach().to(torch.float32)
    s = 127.0 / x32.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    xq = (x32 * s).round().clamp(-128, 127)
    return xq.to(torch.int8), 1.0 / s


def absmax_int8_fake(x: torch.Tensor) -> torch.Tensor:
    """``xq * x_scale`` of :func:`absmax_int8` in x's dtype."""
    xq, scale = absmax_int8(x)
    return (xq.to(torch.float32) * scale).to(x.dtype)


# The "digits" backend (bitmm.set_backend("digits"); csrc/cuda/a8_fragments.h): each row of x as the 30-bit fixed
# point X = rint(x * 2^-e), e = ilogb(max |x|) - 29, in four int8 digits, the exact integer sums of X with the stored
# codes, and a float64 epilogue.  These two functions spell out the CUDA path's bits.
DIGITS = 4
DIGIT_FRAC_BITS = 29
DIGITS_NONFINITE = -(2 ** 31)  # e of a row with a NaN / Inf (its outputs are NaN)


def x_digits(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., K) -> (digits (rows, 4, K) int8 with x's rows flattened, digit j of weight 256^j; e (rows,) int32)."""
    x2 = x.detach().reshape(-1, x.shape[-1]).to(torch.float32)
    amax = x2.abs().amax(dim=-1)  # (NaN propagates)
    finite = torch.isfinite(amax)
    _, ex = torch.frexp(amax.to(torch.float64))  # amax = f * 2^ex, f in [0.5, 1): ilogb(amax) = ex - 1
    e = torch.where(amax == 0, torch.zeros_like(ex), ex - 1 - DIGIT_FRAC_BITS)
    e = torch.where(finite, e, torch.full_like(e, DIGITS_NONFINITE)).to(torch.int64)
    scale = torch.pow(2.0, (-e).to(torch.float64)).unsqueeze(1)  # (exact; rows with e = NONFINITE are masked below)
    X = torch.where(finite.unsqueeze(1), (x2.to(torch.float64) * scale).round(), 0.0).to(torch.int64)
    digits = []
    for _ in range(DIGITS - 1):
        d = (X + 128) % 256 - 128  # the low byte as int8
        digits.append(d)
        X = (X - d) // 256
    digits.append(X)
    return torch.stack(digits, dim=1).to(torch.int8), e.to(torch.int32)


def linear_digits(kind: str, x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor,
                  offset: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """The digits backend's output, bit for bit (per tensor / per channel scale and offset; float32 s, u, b values):
    T = sum_k X[k] v[n, k], XT = sum_k X[k] (exact), y = 2^e (s T + u XT) + b in float64, each operation rounded,
    then float32, then out_dtype (x's dtype by default)."""
    K = x.shape[-1]
    digits, e = x_digits(x)
    X = (digits.to(torch.int64) * (256 ** torch.arange(DIGITS)).view(1, DIGITS, 1)).sum(1)  # (rows, K)
    v = values(kind, formats.unpack_codes(packed, kind, K))
    T = X.to(torch.float64) @ v.to(torch.float64).T  # exact: integer partial sums below 2^53
    XT = X.sum(1, keepdim=True).to(torch.float64)

    def per_n(t):  # (), (1,), (N,) or (N, 1) -> float32 values as float64, broadcast along n
        return t.detach().to(torch.float32).to(torch.float64).reshape(-1)

    acc = T * per_n(scale)
    if offset is not None:
        acc = acc + XT * per_n(offset)
    acc = acc * torch.pow(2.0, e.to(torch.float64)).unsqueeze(1)
    if bias is not None:
        acc = acc + per_n(bias)
    acc = torch.where((e == DIGITS_NONFINITE).unsqueeze(1), float("nan"), acc)
    y = acc.to(torch.float32).to(out_dtype or x.dtype)
    return y.reshape(*x.shape[:-1], y.shape[-1])
