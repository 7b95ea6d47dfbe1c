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
