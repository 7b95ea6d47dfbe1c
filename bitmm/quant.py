"""Weight and activation quantizers that produce bitmm's op arguments.

Every bitmm op computes, for x (..., K) and a weight (N, K),

    y[m, n] = sum_k x[m, k] * v[n, k] * s[n, g(k)] + sum_k x[m, k] * u[n, g(k)]  (+ bias[n])

with ``v`` the value a stored code stands for (ternary ``t`` in {-1, 0, 1};
binary ``b`` in {0, 1}; int2 ``q`` in {0..3} standing for ``q - 1``), a scale
``s`` and an optional offset ``u`` of shape ``()`` (per tensor), ``(N,)`` (per
output channel) or ``(N, K // G)`` (groups of ``G`` consecutive inputs).

This module turns float weights into such ``(codes, scale, offset)`` triples:

* :func:`absmean_ternary` -- BitNet b1.58 (absmean, ternary, per tensor).
* :func:`sign_binary` -- BitNet b1 (sign of the centered weight times beta).
* :func:`hqq_quantize` + :func:`hqq_to_op_args` -- HQQ asymmetric 1/2-bit
  group-wise quantization with half-quadratic zero-point refinement.
* :func:`absmax_int8` / :func:`absmax_int8_fake` -- BitNet per-token 8-bit
  activation quantization (used by QAT and W2A8); these two run the compiled
  ops ``torch.ops.bitmm.absmax_int8`` / ``absmax_int8_fake`` (one CUDA kernel,
  the bits of the PyTorch composite in ``bitmm.reference``).

The rest needs only torch (no compiled extension), so it works before
``bitmm._C`` is built and on any device.  All arithmetic is done in float32 whatever the
input dtype, so results do not depend on fp16/bf16 rounding.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = [
    "absmean_ternary",
    "sign_binary",
    "hqq_quantize",
    "shrink_lp",
    "absmax_int8",
    "absmax_int8_fake",
    "hqq_to_op_args",
    "ternary_to_op_args",
    "expand_groups",
    "dequantize",
    "VALUE_SHIFT",
    "CODE_RANGE",
]

#: value = code - VALUE_SHIFT[kind]  (ternary codes here are t itself, as the packers take them).
VALUE_SHIFT = {"ternary": 0, "binary": 0, "int2": 1}
#: inclusive range of the codes each packer accepts.
CODE_RANGE = {"ternary": (-1, 1), "binary": (0, 1), "int2": (0, 3)}


def _check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_activations(x: Tensor, fn: str) -> Tensor:
    # activations (..., K): any number of rows, none included (an expert that got no tokens), but K >= 1
    _check_tensor(x, "x")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be a floating-point tensor, got {x.dtype}")
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"{fn}: x must have a last dimension K >= 1 (the quantized dim), got shape {tuple(x.shape)}")
    return x


def _check_float(x: Tensor, name: str) -> Tensor:
    _check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


# --------------------------------------------------------------------------------------
# BitNet b1.58: absmean ternary
# --------------------------------------------------------------------------------------
def absmean_ternary(w: Tensor) -> tuple[Tensor, Tensor]:
    """BitNet b1.58 absmean ternary quantization of a whole weight tensor.

    Exactly the reference ``weight_quant`` of the BitNet b1.58 paper/FAQ::

        s = 1 / w.abs().mean().clamp(min=1e-5)
        t = (w * s).round().clamp(-1, 1)

    computed in float32 (``w`` may be fp16/bf16).

    Returns:
        ``(t, scale)``: ``t`` int8 with ``w``'s shape and values in {-1, 0, 1} (the
        ternary code the packer takes), ``scale = 1 / s`` a 0-d float32 tensor
        (per-tensor scale), so ``t * scale ~= w``.  ``scale`` is computed as
        ``1 / s`` (not as the mean itself) so that ``t * scale`` is bit-identical
        to the reference dequantization ``t / s``.
    """
    _check_float(w, "w")
    w32 = w.detach().to(torch.float32)
    s = 1.0 / w32.abs().mean().clamp(min=1e-5)
    t = (w32 * s).round().clamp(-1, 1)
    return t.to(torch.int8), (1.0 / s).to(torch.float32)


# --------------------------------------------------------------------------------------
# BitNet b1: sign binary
# --------------------------------------------------------------------------------------
def sign_binary(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """BitNet b1 (1-bit) binarization ``W ~= sign(W - alpha) * beta``, in op form.

    * ``alpha = mean(W)`` centers the weight (BitNet's zero-mean binarization).
    * ``b = (W - alpha > 0)``: the sign of the centered weight stored as a bit;
      an element exactly equal to ``alpha`` (sign 0) maps to -1, i.e. ``b = 0``,
      so every weight gets a nonzero value (a binary code has no zero).
    * ``beta = mean(|W - alpha|)``.  The BitNet paper defines beta as the mean
      absolute value of W (``||W||_1 / nm``); we use the centered weight, which
      is the L2-optimal magnitude for ``sign(W - alpha)`` and equals the paper's
      beta when W is already zero-mean.
    * No ``alpha`` term is added back: BitNet b1 uses ``sign(W - alpha) * beta``.

    The op computes ``b * s + u``; with ``s = 2 beta`` and ``u = -beta`` that is
    ``+beta`` for ``b = 1`` and ``-beta`` for ``b = 0`` (exactly, in float32).

    Returns:
        ``(b, scale, offset)``: ``b`` int8 in {0, 1} with ``w``'s shape,
        ``scale = 2 beta`` and ``offset = -beta`` as 0-d float32 tensors.
    """
    _check_float(w, "w")
    w32 = w.detach().to(torch.float32)
    centered = w32 - w32.mean()
    b = (centered > 0).to(torch.int8)
    beta = centered.abs().mean()
    return b, (2.0 * beta).to(torch.float32), (-beta).to(torch.float32)


# --------------------------------------------------------------------------------------
# HQQ
# --------------------------------------------------------------------------------------
def shrink_lp(x: Tensor, beta: float, p: float) -> Tensor:
    """Generalized soft-thresholding, the proximal operator of ``|x|^p / beta`` (HQQ).

    ``sign(x) * relu(|x| - (1 / beta) * |x| ** (p - 1))``; for ``p == 1`` the
    plain soft threshold ``sign(x) * relu(|x| - 1 / beta)``.  For ``p < 1``,
    ``0 ** (p - 1)`` is +inf, which the relu turns into 0 (no NaN).
    """
    ax = x.abs()
    if p == 1:
        return torch.sign(x) * torch.relu(ax - 1.0 / beta)
    return torch.sign(x) * torch.relu(ax - (1.0 / beta) * ax.pow(p - 1))


def hqq_quantize(
    w: Tensor,
    nbits: int = 2,
    group_size: int | None = 64,
    axis: int = 1,
    iters: int = 20,
    lp_norm: float = 0.7,
    beta: float = 10.0,
    kappa: float = 1.01,
    *,
    _sync_free: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """HQQ (Half-Quadratic Quantization, Badri & Shaji) of a weight ``w`` (N, K).

    1. Asymmetric min-max quantization of each group of ``group_size``
       consecutive elements along K (the input dimension):
       ``scale = (max - min) / (2^nbits - 1)``, ``zero = -min / scale``.
    2. Half-quadratic refinement of the zero point with the scale fixed
       (HQQ's ``optimize_weights_proximal_legacy``), each iteration::

           q   = round(W / scale + zero).clamp(0, 2^nbits - 1)
           W_r = (q - zero) * scale                        # dequantized
           W_e = shrink_lp(W - W_r, beta, lp_norm)          # sparse error, prox of |.|^p
           zero = mean_group(q - (W - W_e) / scale)
           beta *= kappa

       As in HQQ, progress is measured with the mean absolute reconstruction
       error ``|W - W_r|``.  Deviation from the legacy HQQ code (reviewers take
       note): the best zero is kept **per group** (HQQ keeps the last global
       iterate), and the loop stops early once no group improves any more.
       The min-max zero is the starting candidate, so every group's L1 error
       is <= its plain min-max error.
    3. Codes are recomputed with the kept zero.

    HQQ writes ``W_q = round(W * scale_inv + zero)``, ``W ~= (W_q - zero) / scale_inv``;
    here ``scale = 1 / scale_inv`` so that ``W ~= (q - zero) * scale``.  The zero
    point is a float (not rounded), as in HQQ's default.

    Args:
        w: (N, K) floating weight (any float dtype; computed in float32).
        nbits: 1 or 2.
        group_size: G, must divide K; ``None`` means one group per output
            channel (G = K).
        axis: kept for HQQ signature compatibility; only 1 (groups along the
            last dim, K) is supported, which is what the bitmm ops consume.
        iters: maximum number of refinement iterations (0 = plain min-max).
        lp_norm, beta, kappa: HQQ optimizer parameters (defaults are HQQ's).

    Returns:
        ``(q, scale, zero)``: ``q`` int8 (N, K) with codes in ``[0, 2^nbits - 1]``;
        ``scale`` and ``zero`` float32 of shape (N, K // G), or (N,) when
        ``group_size`` is None.  ``W ~= (q - zero) * scale``; use
        :func:`hqq_to_op_args` to get the op's ``(codes, scale, offset)``.

    Constant groups (max == min) get a tiny positive range,
    ``max(1e-6 * max|W|, 1e-20)``, so the scale is never 0 and nothing is NaN/Inf;
    such a group dequantizes to (nearly exactly) its constant.
    """
    _check_float(w, "w")
    if w.dim() != 2:
        raise ValueError(f"hqq_quantize: w must be 2-D (N, K), got shape {tuple(w.shape)}")
    if isinstance(nbits, bool) or nbits not in (1, 2):
        raise ValueError(f"hqq_quantize: nbits must be 1 or 2, got {nbits!r}")
    if axis != 1:
        raise ValueError(f"hqq_quantize: only axis=1 (groups along K, the last dim) is supported, got axis={axis!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"hqq_quantize: iters must be an int >= 0, got {iters!r}")
    for name, v in (("lp_norm", lp_norm), ("beta", beta), ("kappa", kappa)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"hqq_quantize: {name} must be a finite number > 0, got {v!r}")
    N, K = w.shape
    if group_size is None:
        G = K
    else:
        if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral) or group_size < 1:
            raise ValueError(f"hqq_quantize: group_size must be a positive int or None, got {group_size!r}")
        if K % group_size != 0:
            raise ValueError(f"hqq_quantize: group_size={group_size} must divide K={K}")
        G = int(group_size)

    maxq = float(2**nbits - 1)
    W = w.detach().to(torch.float32).reshape(-1, G)  # (N * K/G, G): one group per row
    wmin = W.amin(dim=1, keepdim=True)
    wmax = W.amax(dim=1, keepdim=True)
    # The floor stays a tensor: no host synchronisation on CUDA (BitLinear runs this every step).
    floor = (1e-6 * W.abs().amax()).clamp(min=1e-20)
    scale = torch.maximum(wmax - wmin, floor) / maxq
    zero = -wmin / scale
    Ws = W / scale  # W in code units; fixed since the scale is fixed

    def evaluate(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q = torch.round(Ws + z).clamp(0.0, maxq)
        w_r = (q - z) * scale
        err = (W - w_r).abs().mean(dim=1, keepdim=True)
        return q, w_r, err

    q, w_r, err = evaluate(zero)
    best_zero, best_err = zero, err
    b = float(beta)
    # HQQ stops at the first iteration in which no group improves.  On CPU that is
    # a Python `break`; on CUDA (and with _sync_free) the stop is a device-side
    # flag that freezes the result instead, so the loop never waits for the GPU:
    # the same result, always `iters` iterations of work.
    # (and under torch.compile: a data-dependent `break` would split the graph; BitLinear(weight_bits=2) compiles this)
    sync_free = (w.is_cuda or torch.compiler.is_compiling()) if _sync_free is None else _sync_free
    running = torch.ones((), dtype=torch.bool, device=W.device)
    for _ in range(iters):
        w_e = shrink_lp(W - w_r, b, lp_norm)
        zero = (q - (W - w_e) / scale).mean(dim=1, keepdim=True)
        b *= kappa
        q, w_r, err = evaluate(zero)
        improved = err < best_err
        if sync_free:
            running = running & improved.any()
            improved = improved & running
        elif not bool(improved.any()):
            break
        best_zero = torch.where(improved, zero, best_zero)
        best_err = torch.where(improved, err, best_err)

    q = torch.round(Ws + best_zero).clamp(0.0, maxq)
    ng = K // G
    q = q.reshape(N, K).to(torch.int8)
    scale = scale.reshape(N, ng)
    best_zero = best_zero.reshape(N, ng)
    if group_size is None:
        scale, best_zero = scale.reshape(N), best_zero.reshape(N)
    return q, scale.contiguous(), best_zero.contiguous()


# --------------------------------------------------------------------------------------
# Activations: BitNet per-token absmax int8
# --------------------------------------------------------------------------------------
def absmax_int8(x: Tensor) -> tuple[Tensor, Tensor]:
    """BitNet per-token (last-dim) absmax 8-bit activation quantization.

    ``s = 127 / x.abs().max(dim=-1, keepdim=True).clamp(min=1e-5)``,
    ``xq = (x * s).round().clamp(-128, 127)``, computed in float32.

    Returns:
        ``(xq, scale)``: ``xq`` int8 with ``x``'s shape; ``scale = 1 / s`` float32
        of shape ``x.shape[:-1] + (1,)``, so ``xq * scale ~= x`` with error at
        most ``scale / 2`` per element.  An all-zero row gives ``xq = 0`` and a
        finite scale (the clamp), never NaN.
    """
    _check_activations(x, "absmax_int8")
    # torch.ops.bitmm.absmax_int8: one CUDA kernel (the composite in bitmm.reference.absmax_int8 is ~10), the
    # composite's bits on every device
    from . import ops  # noqa: F401  (loads the library)
    return torch.ops.bitmm.absmax_int8(x.detach())


def absmax_int8_fake(x: Tensor) -> Tensor:
    """Fake-quantized activations ``xq * scale`` of :func:`absmax_int8`, in ``x``'s dtype.

    This is the value QAT feeds forward.  It does not pass gradients (round has
    zero gradient); QAT callers apply the straight-through estimator themselves:
    ``x + (absmax_int8_fake(x) - x).detach()``.
    """
    _check_activations(x, "absmax_int8_fake")
    from . import ops  # noqa: F401  (loads the library)
    return torch.ops.bitmm.absmax_int8_fake(x.detach())


# --------------------------------------------------------------------------------------
# Converters to the op argument form (codes, scale, offset)
# --------------------------------------------------------------------------------------
def _check_codes(fn: str, name: str, q: Tensor, lo: int, hi: int) -> None:
    # integer codes (or integral floats) in [lo, hi]: a float 1.7 would truncate, an int 257 wrap in int8
    if q.is_complex():
        raise TypeError(f"{fn}: {name} must hold integer codes, got {q.dtype}")
    if q.numel() == 0:
        return
    if q.dtype == torch.bool:  # (binary codes as bools: 0 / 1)
        q = q.to(torch.int8)
    if q.is_floating_point() and not bool((q == q.round()).all()):
        raise ValueError(f"{fn}: {name} must hold integer codes in [{lo}, {hi}], got non-integral values")
    if float(q.min()) < lo or float(q.max()) > hi:
        raise ValueError(f"{fn}: {name} must hold codes in [{lo}, {hi}], got values in "
                         f"[{float(q.min()):g}, {float(q.max()):g}]")


def hqq_to_op_args(q: Tensor, scale: Tensor, zero: Tensor, nbits: int) -> tuple[Tensor, Tensor, Tensor]:
    """Converts HQQ ``W ~= (q - zero) * scale`` into the op's ``(codes, s, u)``.

    * ``nbits == 2`` (kind "int2"): the op's value is ``v = q - 1``, so
      ``W ~= (v + 1 - zero) * scale = v * scale + (1 - zero) * scale``:
      ``codes = q``, ``s = scale``, ``u = (1 - zero) * scale``.
    * ``nbits == 1`` (kind "binary"): ``v = q``, so ``u = -zero * scale``.

    ``scale``/``zero`` keep their shape ((N,) or (N, K // G)); outputs are float32
    and ``codes`` int8.
    """
    _check_tensor(q, "q")
    _check_tensor(scale, "scale")
    _check_tensor(zero, "zero")
    if isinstance(nbits, bool) or nbits not in (1, 2):
        raise ValueError(f"hqq_to_op_args: nbits must be 1 or 2, got {nbits!r}")
    if scale.shape != zero.shape:
        raise ValueError(f"hqq_to_op_args: scale {tuple(scale.shape)} and zero {tuple(zero.shape)} must have the same shape")
    _check_codes("hqq_to_op_args", "q", q, 0, 2**nbits - 1)
    return _hqq_op_args(q, scale, zero, nbits)


def _hqq_op_args(q: Tensor, scale: Tensor, zero: Tensor, nbits: int) -> tuple[Tensor, Tensor, Tensor]:
    # hqq_to_op_args without its checks, for codes hqq_quantize made (in range by construction): no host
    # synchronisation (BitLinear's QAT step on CUDA) and traceable (torch.compile(fullgraph=True))
    s = scale.to(torch.float32)
    z = zero.to(torch.float32)
    u = (1.0 - z) * s if nbits == 2 else -z * s
    return q.to(torch.int8), s, u


def ternary_to_op_args(t: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, None]:
    """``(t, scale)`` from :func:`absmean_ternary` -> ``(codes, s, None)`` (no offset).

    Ternary codes are ``t`` itself (the packer takes {-1, 0, 1}); ``s`` is float32.
    """
    _check_tensor(t, "t")
    _check_tensor(scale, "scale")
    _check_codes("ternary_to_op_args", "t", t, -1, 1)
    return t.to(torch.int8), scale.to(torch.float32), None


def expand_groups(t: Tensor | None, N: int, K: int, name: str = "scale") -> Tensor | None:
    """Broadcasts a scale/offset of shape ``()``, ``(N,)`` or ``(N, K // G)`` to (N, K).

    The grouped case repeats each group's value ``G`` times along K
    (``repeat_interleave``), matching ``g(k) = k // G``.  ``None`` passes
    through.  The result may be an expanded view (not contiguous) for the
    0-d and (N,) cases.  Raises ValueError naming ``name`` on a bad shape.
    """
    if t is None:
        return None
    _check_tensor(t, name)
    if t.dim() == 0:
        return t.expand(N, K)
    if t.dim() == 1:
        if t.shape[0] != N:
            raise ValueError(f"{name} of shape {tuple(t.shape)} must be (), (N,) or (N, K/G) with N={N}, K={K}")
        return t[:, None].expand(N, K)
    if t.dim() != 2 or t.shape[0] != N or t.shape[1] < 1 or K % t.shape[1] != 0:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} must be (), (N,) or (N, K/G) with N={N}, K={K} "
            "and the number of groups dividing K"
        )
    return t.repeat_interleave(K // t.shape[1], dim=1)


def dequantize(kind: str, codes: Tensor, scale: Tensor, offset: Tensor | None = None,
               K: int | None = None) -> Tensor:
    """The float32 (N, K) weight ``v * s + u`` that op arguments stand for.

    Args:
        kind: "ternary" (codes t in {-1, 0, 1}), "binary" (b in {0, 1}) or
            "int2" (q in {0..3}, value q - 1).
        codes: (N, K) integer (or integral float) codes, as the packers take them.
        scale: 0-d, (N,) or (N, K // G).
        offset: None (0) or a tensor of one of the same three shapes.
        K: optional expected K, checked against ``codes.shape[1]``.
    """
    if not isinstance(kind, str) or kind not in VALUE_SHIFT:
        raise ValueError(f"dequantize: kind must be one of {sorted(VALUE_SHIFT)}, got {kind!r}")
    _check_tensor(codes, "codes")
    _check_tensor(scale, "scale")
    if codes.dim() != 2:
        raise ValueError(f"dequantize: codes must be 2-D (N, K), got shape {tuple(codes.shape)}")
    N, Kc = codes.shape
    if K is not None and K != Kc:
        raise ValueError(f"dequantize: K={K} does not match codes.shape[1]={Kc}")
    lo, hi = CODE_RANGE[kind]
    _check_codes("dequantize", f"{kind} codes", codes, lo, hi)
    v = codes.to(torch.float32) - VALUE_SHIFT[kind]
    w = v * expand_groups(scale.to(torch.float32), N, Kc, "scale")
    if offset is not None:
        w = w + expand_groups(offset.to(torch.float32), N, Kc, "offset")
    return w
