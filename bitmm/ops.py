"""Typed wrappers over the ``torch.ops.bitmm`` ops and their fake (meta) kernels
for ``torch.compile``.  Their autograd formulas are C++ (``csrc/autograd.cpp``;
summarized at the end of this file).

The ops (schemas in ``csrc/ops.cpp``)::

    torch.ops.bitmm.ternary_linear(x, packed_w, scale, offset=None, bias=None)
    torch.ops.bitmm.binary_linear(x, packed_w, scale, offset=None, bias=None)
    torch.ops.bitmm.int2_linear(x, packed_w, scale, offset=None, bias=None)
    torch.ops.bitmm.linear_grad_x(grad_y, packed_w, scale, offset, kind, K)
    torch.ops.bitmm.pack(codes, kind) / torch.ops.bitmm.unpack(packed, kind, K)
    torch.ops.bitmm.lora_linear(x, packed_w, scale, offset, bias, lora_a, lora_b, kind, lora_scale=1.0)
    torch.ops.bitmm.cpu_prepack(packed_w, kind, K)                      # CPU only
    torch.ops.bitmm.cpu_prepack_scales(scale, offset, N, K)             # CPU only
    torch.ops.bitmm.cpu_prepacked_linear(x, packed_w, prepacked, scale, offset, bias, kind,
                                         prepacked_scales=None)         # CPU only

compute ``y = x @ (v * scale + offset)^T + bias`` where ``v`` is the weight
value the packed codes stand for (see :mod:`bitmm.formats`).  x may be
float32, float16, bfloat16 (float64 for exact checks) with any leading dims
and strides; the output has x's dtype; accumulation is float32.  Gradients flow
to x (through the packed weights, add/subtract only) and to bias.

``lora_linear`` adds a LoRA term on the frozen packed base (see :func:`lora_linear`);
its gradients also flow to ``lora_a`` and ``lora_b``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from . import _C  # noqa: F401  (loads the library, registering the ops)
from . import formats

KIND_ID = formats.KINDS
_FLOAT = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _kind_id(kind, op: str) -> int:
    """The op's int kind from "binary" | "ternary" | "int2" (or the id itself); ValueError naming `kind` otherwise
    (the ops check an int id themselves)."""
    if isinstance(kind, int) and not isinstance(kind, bool):
        return kind
    if not isinstance(kind, str) or kind not in KIND_ID:
        raise ValueError(f"{op}: kind must be one of {sorted(KIND_ID)} (or its id 1 | 2 | 3), got {kind!r}")
    return KIND_ID[kind]


def ternary_linear(x: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor] = None,
                   bias: Optional[Tensor] = None) -> Tensor:
    """y = x @ (t * scale + offset)^T + bias with t in {-1, 0, 1} packed by :func:`bitmm.pack_ternary`."""
    return torch.ops.bitmm.ternary_linear(x, packed_w, scale, offset, bias)


def binary_linear(x: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor] = None,
                  bias: Optional[Tensor] = None) -> Tensor:
    """y = x @ (b * scale + offset)^T + bias with b in {0, 1} packed by :func:`bitmm.pack_binary`."""
    return torch.ops.bitmm.binary_linear(x, packed_w, scale, offset, bias)


def int2_linear(x: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor] = None,
                bias: Optional[Tensor] = None) -> Tensor:
    """y = x @ ((q - 1) * scale + offset)^T + bias with q in {0..3} packed by :func:`bitmm.pack_int2`."""
    return torch.ops.bitmm.int2_linear(x, packed_w, scale, offset, bias)


def linear(kind: str, x: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor] = None,
           bias: Optional[Tensor] = None) -> Tensor:
    """Dispatches to the op of `kind` ("binary", "ternary", "int2").

    K is x's last dimension.  Packed rows are padded to whole 128-weight blocks, so the ops can only check that K
    needs as many words as ``packed_w`` has: an x wider or narrower than the weight's true K within the same block
    count is not detectable here (with an offset it gives a wrong result).  The layers (``bitmm.nn``) know their
    in_features and check it."""
    if not isinstance(kind, str) or kind not in _LINEAR_OPS:
        raise ValueError(f"bitmm.linear: kind must be one of {sorted(_LINEAR_OPS)}, got {kind!r}")
    return _LINEAR_OPS[kind](x, packed_w, scale, offset, bias)


def linear_grad_x(grad_y: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor], kind: str,
                  K: int) -> Tensor:
    """grad_y @ (v * scale + offset): the gradient of a bitmm linear w.r.t. its input."""
    return torch.ops.bitmm.linear_grad_x(grad_y, packed_w, scale, offset, _kind_id(kind, "bitmm.linear_grad_x"), K)


def linear_a8(kind: str, xq: Tensor, x_scale: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor] = None,
              bias: Optional[Tensor] = None, out_dtype: torch.dtype = torch.float32) -> Tensor:
    """W2A8: the packed low-bit weight times int8 activations (``torch.ops.bitmm.linear_a8``)::

        y = x_scale * (xq @ (v * scale)^T + (xq @ 1^T) * offset) + bias

    ``xq`` int8 ``(..., K)`` and ``x_scale`` ``(..., 1)`` are what :func:`bitmm.quant.absmax_int8` makes of float
    activations (BitNet's per-token absmax), so ``xq * x_scale ~= x``; ``kind``: "binary" | "ternary" | "int2".
    The integer sums ``sum_k xq * v`` are exact (on CUDA through torch's int8 GEMM, ``torch._int_mm``, where K and
    N are multiples of 8; else a floating matmul of the same integers), then scaled in float32 (float64 for a
    float64 ``out_dtype``) and rounded once to ``out_dtype``.  ``scale`` / ``offset``: per tensor ``()`` or per
    output channel ``(N,)`` / ``(N, 1)`` only (a group-wise scale raises ValueError).  Output ``(..., N)`` of
    ``out_dtype``.  No gradient (int8 input); for training use the float path on ``xq * x_scale``.
    On CUDA it unpacks W to int8 codes on every call (N x K bytes): meant for large M (prefill, batched
    inference), where the int8 tensor cores' rate pays for that; at small M the packed kernels on
    ``xq * x_scale`` are faster.
    """
    kind_id = _kind_id(kind, "bitmm.linear_a8")
    return torch.ops.bitmm.linear_a8(xq, x_scale, packed_w, scale, offset, bias, kind_id, out_dtype)


def lora_linear(kind, x: Tensor, packed_w: Tensor, scale: Tensor, offset: Optional[Tensor], bias: Optional[Tensor],
                lora_a: Tensor, lora_b: Tensor, lora_scale: float = 1.0) -> Tensor:
    """LoRA on a frozen packed base, one op (``torch.ops.bitmm.lora_linear``)::

        y = linear(kind, x, packed_w, scale, offset, bias) + lora_scale * (x @ lora_a^T) @ lora_b^T

    ``kind``: "binary" | "ternary" | "int2" (or its id 1 | 2 | 3).  ``lora_a`` is
    ``(r, K)``, ``lora_b`` ``(N, r)``, r >= 1, both of x's dtype or both float32
    (float32 adapters with float16 / bfloat16 activations is the usual mixed
    setup).  The low-rank product accumulates in float32 (float64 for float64 x)
    and is added to the base output before the one rounding to x's dtype on CPU;
    on CUDA it is added in float32 to the base output (x's dtype).  Output: x's
    dtype, shape ``(..., N)``.  Gradients flow to x (the packed part through
    ``linear_grad_x``, add/subtract only), bias, lora_a and lora_b; packed_w,
    scale and offset are constants.
    """
    kind_id = _kind_id(kind, "bitmm.lora_linear")
    # (NaN / Inf: the op's own check names them; past float32's range the kernels could not take it)
    if isinstance(lora_scale, bool) or not isinstance(lora_scale, (int, float)) or (
            math.isfinite(lora_scale) and abs(lora_scale) > torch.finfo(torch.float32).max):
        raise ValueError(f"bitmm.lora_linear: lora_scale must be a finite float within float32's range, got "
                         f"{lora_scale!r}")
    return torch.ops.bitmm.lora_linear(x, packed_w, scale, offset, bias, lora_a, lora_b, kind_id, float(lora_scale))


def cpu_prepack(packed_w: Tensor, kind, K: int) -> Tensor:
    """The CPU-only derived layout of ``packed_w`` (``csrc/cpu_prepack_format.h``): a uint8
    blob holding the weight's lookup-index vectors already transposed, made once per layer.
    ``kind``: "binary" | "ternary" | "int2" (or 1 | 2 | 3); ``K`` the true input width."""
    kind_id = _kind_id(kind, "bitmm.cpu_prepack")
    return torch.ops.bitmm.cpu_prepack(packed_w, kind_id, K)


def cpu_prepack_scales(scale: Tensor, offset: Optional[Tensor], N: int, K: int) -> Tensor:
    """The CPU-only derived layout of ``scale`` / ``offset`` (``csrc/cpu_prepack_format.h``): float32
    ``(P, ceil(N / 32), G, 32)`` (P = 2 with an offset, 1 without), each 32-row tile's values per
    scale group in the order the kernels' lanes hold the rows, for :func:`cpu_prepacked_linear`'s
    ``prepacked_scales``.  Worth it for group-wise scales (float32 g64 at M = 1: 0.60-0.77 of the
    time of the per-call gather it replaces); remake it whenever scale or offset change
    (``bitmm.nn.PackedLinear`` does)."""
    return torch.ops.bitmm.cpu_prepack_scales(scale, offset, N, K)


def cpu_prepacked_linear(kind, x: Tensor, packed_w: Tensor, prepacked: Tensor, scale: Tensor,
                         offset: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                         prepacked_scales: Optional[Tensor] = None) -> Tensor:
    """``linear(kind, x, packed_w, scale, offset, bias)`` on CPU, reading ``prepacked =
    cpu_prepack(packed_w, kind, K)`` instead of transposing packed_w on every call (AVX-512
    or AVX2 kernel); bitwise the same output.  ``packed_w`` is still needed: shapes, the kernels
    the blob does not serve (float64, group sizes not a multiple of 32, no AVX2) and the
    gradient of x (``linear_grad_x``).  ``prepacked`` gets no gradient.
    ``prepacked_scales`` (optional): ``cpu_prepack_scales(scale, offset, N, K)``, read by those
    kernels instead of scale and offset (bitwise the same output when made from the same values;
    a stale one gives stale results).  scale and offset are still needed (gradients, the other
    kernels, naming a NaN / Inf)."""
    kind_id = _kind_id(kind, "bitmm.cpu_prepacked_linear")
    return torch.ops.bitmm.cpu_prepacked_linear(x, packed_w, prepacked, scale, offset, bias, kind_id,
                                                prepacked_scales)


def transpose_packed(packed_w: Tensor, kind, K: int) -> Tensor:
    """The packed weight of W^T: ``(K, words_per_row(kind, N))`` int32 in the same format,
    row k holding the N codes of input k (``unpack`` -> transpose -> ``pack``, on
    packed_w's device; two transient (N, K) int8 copies).  Rows are padded to a multiple of
    128 weights along N, so for N not a multiple of 128 it is slightly larger than packed_w.
    For :func:`linear_grad_x_transposed`."""
    kind_id = _kind_id(kind, "bitmm.transpose_packed")
    with torch.no_grad():
        codes = torch.ops.bitmm.unpack(packed_w, kind_id, K)
        return torch.ops.bitmm.pack(codes.t().contiguous(), kind_id)


def linear_grad_x_transposed(kind: str, grad_y: Tensor, packed_wt: Tensor, scale: Tensor,
                             offset: Optional[Tensor], prepacked_wt: Optional[Tensor] = None) -> Tensor:
    """``linear_grad_x`` for per-tensor / per-channel scales, through the forward op on
    ``packed_wt = transpose_packed(packed_w, kind, K)``: the reduction over N becomes the
    forward's reduction over its input, so the gradient runs on the forward's kernels (on
    CUDA the tensor-core kernel and its dispatch by M) instead of ``linear_grad_x``'s.

        grad_x = (grad_y * s) @ V + (grad_y @ u) 1^T      (V: the codes' values, (N, K))

    A per-tensor s multiplies the result instead.  A per-channel s is split into max|s| (a
    per-tensor scale of the op, applied in float32) and s / max|s|, which is folded into
    grad_y in float32 and rounded once to grad_y's dtype: the folded gradient keeps grad_y's
    magnitude (folding s itself would push small fp16 gradients into the subnormal range,
    or large ones past 65504).  An offset adds its rank-1 term in float32 to the op's
    output (a second rounding).  Group-wise scales (2-D) are not expressible this way:
    ValueError.
    ``prepacked_wt`` (CPU): ``cpu_prepack(packed_wt, kind, N)``, read by
    ``cpu_prepacked_linear`` instead of the plain op (same result)."""
    _check_grad_x_transposed(kind, grad_y, packed_wt, scale, offset)
    if scale.dim() > 1 or (offset is not None and offset.dim() > 1):
        raise ValueError(f"linear_grad_x_transposed({kind}): needs a per-tensor or per-channel scale and offset, "
                         f"got scale of shape {tuple(scale.shape)}"
                         + ("" if offset is None else f" and offset of shape {tuple(offset.shape)}"))
    if prepacked_wt is None:
        op = _LINEAR_OPS[kind]
    else:
        def op(x, w, s, u, b):
            return torch.ops.bitmm.cpu_prepacked_linear(x, w, prepacked_wt, s, u, b, KIND_ID[kind])
    acc = torch.float64 if grad_y.dtype == torch.float64 else torch.float32
    if scale.dim() == 0:
        gx = op(grad_y, packed_wt, scale, None, None)
    else:
        s_max = scale.to(acc).abs().amax().clamp_min(torch.finfo(acc).tiny)  # (all-zero scales: 0 / tiny = 0)
        g_s = (grad_y.to(acc) * (scale.to(acc) / s_max)).to(grad_y.dtype)
        gx = op(g_s, packed_wt, s_max.to(torch.float64 if acc == torch.float64 else torch.float32), None, None)
    if offset is not None:
        g = grad_y.to(acc)
        c = (g.sum(-1, keepdim=True) * offset.to(acc) if offset.dim() == 0
             else (g * offset.to(acc)).sum(-1, keepdim=True))
        gx = (gx.to(acc) + c).to(grad_y.dtype)
    return gx


def _check_grad_x_transposed(kind, grad_y, packed_wt, scale, offset) -> None:
    # linear_grad_x's checks (csrc/checks.cpp check_grad_x), worded for W^T: this composite passes a rescaled s and
    # grad_y to the forward op, so without them a (1,) scale would broadcast as per tensor, a NaN offset reach the
    # output, and a wrong N surface as a broadcasting error
    if kind not in _LINEAR_OPS:
        raise ValueError(f"linear_grad_x_transposed: kind must be 'ternary', 'binary' or 'int2', got {kind!r}")
    op = f"linear_grad_x_transposed({kind})"
    for name, t in (("grad_y", grad_y), ("packed_wt", packed_wt), ("scale", scale)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    if grad_y.dtype not in _FLOAT:
        raise TypeError(f"{op}: grad_y must be float32, float16, bfloat16 or float64, got {grad_y.dtype}")
    if grad_y.dim() < 1:
        raise ValueError(f"{op}: grad_y must have at least 1 dimension (..., N)")
    N = grad_y.shape[-1]
    if packed_wt.dim() != 2 or N < 1 or packed_wt.shape[1] != formats.words_per_row(kind, N):
        raise ValueError(f"{op}: packed_wt of shape {tuple(packed_wt.shape)} is not W^T of an N={N} layer (grad_y's "
                         f"last dimension): transpose_packed(packed_w, kind, K) has (K, {formats.words_per_row(kind, max(N, 1))}) "
                         "int32 words")
    for name, t in (("scale", scale), ("offset", offset)):
        if t is None:
            continue
        if not isinstance(t, Tensor) or t.dtype not in _FLOAT:
            raise TypeError(f"{op}: {name} must be a float tensor, got "
                            f"{t.dtype if isinstance(t, Tensor) else type(t).__name__}")
        if t.device != grad_y.device:  # (RuntimeError, as the ops' device checks)
            raise RuntimeError(f"{op}: {name} is on {t.device} but grad_y is on {grad_y.device}")
        if t.dim() == 1 and t.shape[0] != N:
            raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} must have N={N} rows")
        if t.device.type == "cpu" and not bool(torch.isfinite(t).all()):  # (as the ops check on CPU; no CUDA sync)
            raise ValueError(f"{op}: {name} holds NaN or Inf")


_LINEAR_OPS = {
    "ternary": torch.ops.bitmm.ternary_linear,
    "binary": torch.ops.bitmm.binary_linear,
    "int2": torch.ops.bitmm.int2_linear,
}


# --------------------------------------------------------------------------
# Fake kernels: shape / dtype / device checks for tracing.  The real kernels
# check the same things (csrc/checks.cpp) with the same wording and error
# types: a dtype torch._check_type (TypeError, BITMM_CHECK_TYPE), a shape or
# value torch._check_value (ValueError, BITMM_CHECK_VALUE), a device
# torch._check (RuntimeError, BITMM_CHECK).
# --------------------------------------------------------------------------
def _check_scale(op: str, name: str, s: Tensor, x: Tensor, N, K, xname: str = "x") -> None:
    torch._check_type(s.dtype in _FLOAT, lambda: f"{op}: {name} must be a float tensor, got {s.dtype}")
    torch._check(s.device == x.device, lambda: f"{op}: {name} is on {s.device} but {xname} is on {x.device}")
    torch._check_value(s.dim() <= 2, lambda: f"{op}: {name} must be (), (N,) or (N, K/G), got {tuple(s.shape)}")
    if s.dim() >= 1:
        torch._check_value(s.shape[0] == N, lambda: f"{op}: {name} of shape {tuple(s.shape)} must have N={N} rows")
    if s.dim() == 2:
        torch._check_value(s.shape[1] >= 1 and K % s.shape[1] == 0,
                           lambda: f"{op}: {name} has {s.shape[1]} groups along K, which does not divide K={K}")


def _check_packed(op: str, kind: str, packed_w: Tensor, x: Optional[Tensor], K, xname: str = "x") -> None:
    # packed_w: int32 (N >= 1, words_per_row(kind, K)), on x's device when x is given
    torch._check_type(packed_w.dtype == torch.int32,
                      lambda: f"{op}: packed_w must be an int32 tensor from bitmm.pack_{kind}, got {packed_w.dtype}")
    torch._check_value(packed_w.dim() == 2, lambda: f"{op}: packed_w must be 2-D (N, words_per_row)")
    if x is not None:
        torch._check(packed_w.device == x.device,
                     lambda: f"{op}: packed_w is on {packed_w.device} but {xname} is on {x.device}")
    torch._check_value(packed_w.shape[0] >= 1, lambda: f"{op}: packed_w has N=0 rows")
    want = formats.words_per_row(kind, K)
    torch._check_value(packed_w.shape[1] == want,
                       lambda: f"{op}: packed_w has {packed_w.shape[1]} int32 words per row but the {kind} format "
                               f"with K={K} needs {want}; was it packed for another K or another kind?")


def _check_bias(op: str, bias: Optional[Tensor], N, x: Tensor, xname: str = "x") -> None:
    # None, or a float (N,) tensor on x's device; checked after packed_w and before scale / offset, as
    # csrc/checks.cpp's check_bias (so an input with two faults gets the kernels' error too).  (x on the CPU with
    # one argument on "meta" reaches the fake kernels, not the CPU ones: without the device check they would return
    # an uninitialised CPU tensor.)
    if bias is None:
        return
    torch._check_type(bias.dtype in _FLOAT,
                      lambda: f"{op}: bias must be float32, float16, bfloat16 or float64, got {bias.dtype}")
    torch._check_value(bias.dim() == 1 and bias.shape[0] == N, lambda: f"{op}: bias must have shape (N,)=({N},)")
    torch._check(bias.device == x.device, lambda: f"{op}: bias is on {bias.device} but {xname} is on {x.device}; "
                                                  f"move all arguments to one device")


def _make_fake(kind: str, op: Optional[str] = None):
    op = op or f"bitmm.{kind}_linear"

    def fake(x, packed_w, scale, offset=None, bias=None):
        torch._check_type(x.dtype in _FLOAT,
                          lambda: f"{op}: x must be float32, float16, bfloat16 or float64, got {x.dtype}")
        torch._check_value(x.dim() >= 1, lambda: f"{op}: x must have at least 1 dimension (..., K)")
        K = x.shape[-1]
        torch._check_value(K >= 1, lambda: f"{op}: x has K=0 input features; K must be >= 1")
        _check_packed(op, kind, packed_w, x, K)
        N = packed_w.shape[0]
        _check_bias(op, bias, N, x)
        _check_scale(op, "scale", scale, x, N, K)
        if offset is not None:
            _check_scale(op, "offset", offset, x, N, K)
        _scale_groups(op, scale, offset)
        return x.new_empty((*x.shape[:-1], N))

    return fake


for _kind in _LINEAR_OPS:
    torch.library.register_fake(f"bitmm::{_kind}_linear")(_make_fake(_kind))


_KIND_NAME = {v: k for k, v in KIND_ID.items()}
_LINEAR_FAKES = {kind: _make_fake(kind) for kind in _LINEAR_OPS}


def _check_kind_id(kind) -> str:
    torch._check_value(kind in _KIND_NAME,
                       lambda: f"bitmm: kind must be 1 (binary), 2 (ternary) or 3 (int2), got {kind}")
    return _KIND_NAME[kind]


@torch.library.register_fake("bitmm::lora_linear")
def _lora_fake(x, packed_w, scale, offset, bias, lora_a, lora_b, kind, lora_scale=1.0):
    name = _check_kind_id(kind)
    y = _LINEAR_FAKES[name](x, packed_w, scale, offset, bias)
    op = f"bitmm.lora_linear({name})"
    torch._check_value(math.isfinite(lora_scale), lambda: f"{op}: lora_scale must be finite, got {lora_scale}")
    torch._check_value(abs(lora_scale) <= torch.finfo(torch.float32).max,
                       lambda: f"{op}: lora_scale is past float32's range ({lora_scale}); lora_scale must be a finite "
                               f"float within float32's range")
    K, N = x.shape[-1], packed_w.shape[0]
    for arg, t in (("lora_a", lora_a), ("lora_b", lora_b)):
        torch._check_type(t.dtype in (x.dtype, torch.float32),
                          lambda: f"{op}: {arg} must have x's dtype ({x.dtype}) or float32, got {t.dtype}")
        torch._check(t.device == x.device, lambda: f"{op}: {arg} is on {t.device} but x is on {x.device}; "
                                                   f"move all arguments to one device")
    torch._check_type(lora_a.dtype == lora_b.dtype, lambda: f"{op}: lora_a is {lora_a.dtype} but lora_b is "
                                                            f"{lora_b.dtype}; both adapters must have one dtype")
    torch._check_value(lora_a.dim() == 2 and lora_a.shape[0] >= 1 and lora_a.shape[1] == K,
                       lambda: f"{op}: lora_a must have shape (r, K) with r >= 1 and K={K}, got {tuple(lora_a.shape)}")
    r = lora_a.shape[0]
    torch._check_value(lora_b.dim() == 2 and lora_b.shape[0] == N and lora_b.shape[1] == r,
                       lambda: f"{op}: lora_b must have shape (N, r)=({N}, {r}) (N from packed_w, r from lora_a), "
                               f"got {tuple(lora_b.shape)}")
    return y


@torch.library.register_fake("bitmm::cpu_prepack")
def _cpu_prepack_fake(packed_w, kind, K):
    name = _check_kind_id(kind)
    op = f"bitmm.cpu_prepack({name})"
    torch._check_value(K >= 1, lambda: f"{op}: K must be >= 1, got {K}")
    _check_packed(op, name, packed_w, None, K)
    return packed_w.new_empty((formats.cpu_prepacked_nbytes(name, packed_w.shape[0], K),), dtype=torch.uint8)


_PREPACKED_FAKES = {kind: _make_fake(kind, f"bitmm.cpu_prepacked_linear({kind})") for kind in _LINEAR_OPS}


def _scale_groups(op: str, scale: Tensor, offset: Optional[Tensor]) -> int:
    # the problem's scale groups along K (1 per tensor / per channel), as csrc/checks.cpp's finish
    gs, gu = (t.shape[1] if t is not None and t.dim() == 2 else 1 for t in (scale, offset))
    torch._check_value(gs == 1 or gu == 1 or gs == gu,
                       lambda: f"{op}: scale has {gs} groups but offset has {gu}; group-wise scale and offset must "
                               f"use the same group size")
    return max(gs, gu)


@torch.library.register_fake("bitmm::cpu_prepack_scales")
def _cpu_prepack_scales_fake(scale, offset, N, K):
    op = "bitmm.cpu_prepack_scales"
    torch._check_value(N >= 1 and K >= 1, lambda: f"{op}: N and K must be >= 1, got N={N}, K={K}")
    _check_scale(op, "scale", scale, scale, N, K, "scale")
    if offset is not None:
        _check_scale(op, "offset", offset, scale, N, K, "scale")
    tiles = (N + formats.CPU_PREPACK_TILE_ROWS - 1) // formats.CPU_PREPACK_TILE_ROWS
    return scale.new_empty((1 if offset is None else 2, tiles, _scale_groups(op, scale, offset),
                            formats.CPU_PREPACK_TILE_ROWS), dtype=torch.float32)


def _check_derived_layout(op: str, arg: str, t: Tensor, dtype: torch.dtype, maker: str, x: Tensor) -> None:
    # a cpu_prepack / cpu_prepack_scales layout's dtype and device (csrc/checks.cpp words them alike)
    torch._check_type(t.dtype == dtype,
                      lambda: f"{op}: {arg} must be a {str(dtype).removeprefix('torch.')} tensor from "
                              f"torch.ops.bitmm.{maker}, got dtype {t.dtype}")
    torch._check(t.device == x.device,
                 lambda: f"{op}: {arg} is on {t.device} but x is on {x.device}; move all arguments to one device")


@torch.library.register_fake("bitmm::cpu_prepacked_linear")
def _cpu_prepacked_linear_fake(x, packed_w, prepacked, scale, offset, bias, kind, prepacked_scales=None):
    name = _check_kind_id(kind)
    y = _PREPACKED_FAKES[name](x, packed_w, scale, offset, bias)
    op = f"bitmm.cpu_prepacked_linear({name})"
    _check_derived_layout(op, "prepacked", prepacked, torch.uint8, "cpu_prepack", x)
    want = formats.cpu_prepacked_nbytes(name, packed_w.shape[0], x.shape[-1])
    torch._check_value(prepacked.dim() == 1 and prepacked.shape[0] == want,
                       lambda: f"{op}: prepacked of shape {tuple(prepacked.shape)} does not fit "
                               f"(N={packed_w.shape[0]}, K={x.shape[-1]}): a {name} blob of that weight has "
                               f"{want} bytes")
    if prepacked_scales is not None:
        N = packed_w.shape[0]
        _check_derived_layout(op, "prepacked_scales", prepacked_scales, torch.float32, "cpu_prepack_scales", x)
        shape = (1 if offset is None else 2, (N + formats.CPU_PREPACK_TILE_ROWS - 1) // formats.CPU_PREPACK_TILE_ROWS,
                 _scale_groups(op, scale, offset), formats.CPU_PREPACK_TILE_ROWS)
        torch._check_value(tuple(prepacked_scales.shape) == shape,
                           lambda: f"{op}: prepacked_scales of shape {tuple(prepacked_scales.shape)} does not fit "
                                   f"N={N}, K={x.shape[-1]}: expected {shape}")
    return y


@torch.library.register_fake("bitmm::linear_grad_x")
def _grad_x_fake(grad_y, packed_w, scale, offset, kind, K):
    # (csrc/checks.cpp check_grad_x's checks: a CPU grad_y with another argument on "meta" runs this kernel)
    name = _check_kind_id(kind)
    op = f"bitmm.linear_grad_x({name})"
    torch._check_type(grad_y.dtype in _FLOAT,
                      lambda: f"{op}: grad_y must be float32, float16, bfloat16 or float64, got {grad_y.dtype}")
    torch._check_value(grad_y.dim() >= 1, lambda: f"{op}: grad_y must have at least 1 dimension (..., N)")
    torch._check_value(K >= 1, lambda: f"{op}: K must be >= 1, got {K}")
    _check_packed(op, name, packed_w, grad_y, K, "grad_y")
    N = packed_w.shape[0]
    torch._check_value(grad_y.shape[-1] == N,
                       lambda: f"{op}: grad_y has {grad_y.shape[-1]} features in its last dimension "
                               f"but packed_w has N={N} rows")
    _check_scale(op, "scale", scale, grad_y, N, K, "grad_y")
    if offset is not None:
        _check_scale(op, "offset", offset, grad_y, N, K, "grad_y")
    _scale_groups(op, scale, offset)
    return grad_y.new_empty((*grad_y.shape[:-1], K))


@torch.library.register_fake("bitmm::linear_a8")
def _linear_a8_fake(xq, x_scale, packed_w, scale, offset, bias, kind, out_dtype):
    name = _check_kind_id(kind)
    op = f"bitmm.linear_a8({name})"
    torch._check_type(xq.dtype == torch.int8,
                      lambda: f"{op}: xq must be int8 (bitmm.quant.absmax_int8 makes it from float "
                              f"activations), got {xq.dtype}")
    torch._check_value(xq.dim() >= 1, lambda: f"{op}: xq must have at least 1 dimension (..., K)")
    K = xq.shape[-1]
    torch._check_value(K >= 1, lambda: f"{op}: xq has K=0 input features; K must be >= 1")
    torch._check_type(x_scale.dtype in _FLOAT, lambda: f"{op}: x_scale must be a float tensor, got {x_scale.dtype}")
    torch._check(x_scale.device == xq.device, lambda: f"{op}: x_scale is on {x_scale.device} but xq is on {xq.device}")
    want = (*xq.shape[:-1], 1)
    torch._check_value(tuple(x_scale.shape) == want,
                       lambda: f"{op}: x_scale must have shape xq.shape[:-1] + (1,) = {want}, "
                               f"got {tuple(x_scale.shape)}")
    torch._check_type(out_dtype in _FLOAT,
                      lambda: f"{op}: out_dtype must be float32, float16, bfloat16 or float64, got "
                              f"{out_dtype}")
    _check_packed(op, name, packed_w, xq, K, "xq")
    N = packed_w.shape[0]
    _check_bias(op, bias, N, xq, "xq")
    _check_scale(op, "scale", scale, xq, N, K, "xq")
    if offset is not None:
        _check_scale(op, "offset", offset, xq, N, K, "xq")
    groups = _scale_groups(op, scale, offset)
    torch._check_value(groups == 1, lambda: f"{op}: scale / offset must be per tensor () or per output channel (N,) / "
                                            f"(N, 1), got {groups} groups along K (group-wise: use the float path)")
    return xq.new_empty((*xq.shape[:-1], N), dtype=out_dtype)


def _check_absmax_x(op: str, x: Tensor) -> None:
    torch._check_type(x.dtype in _FLOAT,
                      lambda: f"{op}: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    torch._check_value(x.dim() >= 1 and x.shape[-1] >= 1,
                       lambda: f"{op}: x must have a last dimension K >= 1 (..., K), got shape {tuple(x.shape)}")


@torch.library.register_fake("bitmm::absmax_int8")
def _absmax_int8_fake(x):
    _check_absmax_x("bitmm.quant.absmax_int8", x)
    return x.new_empty(x.shape, dtype=torch.int8), x.new_empty((*x.shape[:-1], 1), dtype=torch.float32)


@torch.library.register_fake("bitmm::absmax_int8_fake")
def _absmax_int8_fake_fake(x):
    _check_absmax_x("bitmm.quant.absmax_int8_fake", x)
    return x.new_empty(x.shape)


@torch.library.register_fake("bitmm::pack")
def _pack_fake(codes, kind):
    # (csrc/checks.cpp check_pack_codes: the codes' values are checked by the real kernel only)
    name = _check_kind_id(kind)
    op = f"bitmm.pack({name})"
    torch._check_type(not codes.is_floating_point() and not codes.is_complex() and codes.dtype != torch.bool,
                      lambda: f"{op}: codes must be an integer tensor, got {codes.dtype}")
    torch._check_value(codes.dim() == 2 and codes.shape[0] >= 1 and codes.shape[1] >= 1,
                       lambda: f"{op}: codes must be a 2-D (N, K) tensor with N, K >= 1, got shape "
                               f"{tuple(codes.shape)}")
    return codes.new_empty(formats.packed_shape(name, codes.shape[0], codes.shape[1]), dtype=torch.int32)


@torch.library.register_fake("bitmm::unpack")
def _unpack_fake(packed, kind, K):
    # (csrc/checks.cpp check_unpack)
    name = _check_kind_id(kind)
    op = f"bitmm.unpack({name})"
    torch._check_value(K >= 1, lambda: f"{op}: K must be >= 1, got {K}")
    torch._check_type(packed.dtype == torch.int32, lambda: f"{op}: packed must be int32, got {packed.dtype}")
    want = formats.words_per_row(name, K)
    torch._check_value(packed.dim() == 2 and packed.shape[1] == want,
                       lambda: f"{op}: packed of shape {tuple(packed.shape)} does not hold K={K} {name} weights per "
                               f"row (needs {want} int32 words per row)")
    return packed.new_empty((packed.shape[0], K), dtype=torch.int8)


# --------------------------------------------------------------------------
# Autograd lives in C++ (csrc/autograd.cpp, registered at the Autograd dispatch
# key): a Python autograd kernel (torch.library.register_autograd) ran on every
# call, under torch.no_grad() too, and was 32-39% of an eager op call's host
# instructions (bench/NOTES.md, "Host overhead (eager)").  The formulas there:
#   <kind>_linear: grad_x = linear_grad_x(grad, packed_w, scale, offset, kind, K)
#                  (add/subtract only), grad_bias = grad summed over the leading
#                  dims in bias's dtype.
#   lora_linear:   with g = grad_y (M, N), x (M, K), s = lora_scale and
#                  gB = g @ lora_b (M, r), accumulated in float32 (float64 for
#                  float64 x):
#                    grad_x      = linear_grad_x(g) + s * gB @ lora_a
#                    grad_lora_a = s * gB^T @ x
#                    grad_lora_b = s * g^T @ (x @ lora_a^T)   (x @ lora_a^T recomputed)
#                    grad_bias   = sum_m g
#   cpu_prepacked_linear: as <kind>_linear (prepacked and prepacked_scales, derived copies, get no gradient).
#   linear_grad_x: grad_grad_y = <kind>_linear(grad, packed_w, scale, offset)
#                  (it is linear in grad_y), so double backward works too.
#   scale / offset, where they require grad (fine-tuning the quantization parameters with the codes frozen):
#                  with P = grad^T x (N, K) and v the code values, grad_scale = the sum of P * v over each
#                  element's range of K and grad_offset = that of P (one dense (N, K) product; none where they are
#                  frozen).  linear_grad_x's: the same with grad = grad_y and x = its upstream gradient (a
#                  gradient penalty on grad_x).  linear_a8 treats them as constants; packed_w is integer, no gradient.
# --------------------------------------------------------------------------
