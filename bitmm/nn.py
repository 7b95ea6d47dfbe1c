"""``torch.nn`` layers over the bitmm ops.

* :class:`BitLinear` -- quantization-aware training (QAT) layer, BitNet style.
  Keeps a latent float ``weight``; every forward quantizes it (1.58-bit
  absmean ternary, 1-bit sign binary or 2-bit HQQ), packs it and runs the
  multiplication-free bitmm op.  The latent weight gets the straight-through
  estimator (STE) gradient of BitNet b1.58, ``w_q = w + (quant(w) - w).detach()``.
* :class:`PackedLinear` -- inference layer holding only buffers (packed int32
  weight, scale, optional offset, optional bias); its forward is one bitmm op.
* :class:`PackedLoRALinear` -- LoRA adapter (trainable A, B) over a frozen
  :class:`PackedLinear`; its forward is the one fused op ``bitmm::lora_linear``.
  :meth:`PackedLoRALinear.fold_offset` / :func:`fold_offset_into_lora` fold the
  zero-point term into the adapter (HQQ+).
* :func:`convert` -- swaps every ``nn.Linear`` of a model for one of the above.

Weight quantizers (all from :mod:`bitmm.quant`; see :func:`quantize_weight`):

============  ========  ============================================  ===========================
weight_bits   kind      quantizer                                     scale / offset shape
============  ========  ============================================  ===========================
1.58          ternary   ``absmean_ternary`` (BitNet b1.58)            scale ``()``, no offset
1             binary    ``sign_binary`` (BitNet b1)                   scale ``()``, offset ``()``
2             int2      ``hqq_quantize(nbits=2)`` + ``hqq_to_op_args``  ``(N, K // G)`` or ``(N,)``
============  ========  ============================================  ===========================

Group size (``group_size``) is only used by 2-bit weights (ternary and binary
are per tensor, as in BitNet; passing a group size for them raises).  For 2-bit,
``group_size=None`` means **64 if 64 divides in_features, else one group per
output row** (G = in_features, scale/offset of shape ``(N,)``).  An explicit
group size must divide in_features.  (:class:`PackedLinear`'s placeholder constructor also takes a group size for
binary and ternary weights, whose scales a loaded checkpoint may hold group-wise: e.g. 1-bit HQQ, ``from_hqq(nbits=1)``.)
"""
from __future__ import annotations

import contextlib
import fnmatch
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import formats, quant
from .ops import _LINEAR_OPS, KIND_ID, linear_a8, linear_grad_x_transposed, lora_linear, transpose_packed

_cpu_prepacked_linear = torch.ops.bitmm.cpu_prepacked_linear
_is_compiling = torch.compiler.is_compiling

# linear_a8's CPU kernel in this process ("avx512_vnni", "avx2" or "generic"; fixed once the library is loaded)
_CPU_A8_KERNEL = str(torch.ops.bitmm._cpu_a8_kernel())
_CPU_A8_MAX_K = 5_592_405  # past it (int32 sums could overflow) linear_a8 takes its generic path (cpu_kernels.h kA8MaxK)
_CPU_FORWARD_SIMD = str(torch.ops.bitmm._cpu_forward_kernel()) != "generic"  # (reads cpu_prepack_scales' layout)


__all__ = [
    "BitLinear",
    "PackedLinear",
    "PackedLoRALinear",
    "fold_offset_into_lora",
    "ConversionReport",
    "convert",
    "quantize_weight",
    "resolve_group_size",
    "enable_transposed_backward",
    "enable_int8_matmul",
    "DEFAULT_INT2_GROUP_SIZE",
]

#: Default 2-bit group size when it divides in_features (else one group per output row).
DEFAULT_INT2_GROUP_SIZE = 64

_BITS_TO_KIND = {1.58: "ternary", 1: "binary", 2: "int2"}
_KIND_TO_BITS = {v: k for k, v in _BITS_TO_KIND.items()}
# Stored code = packer code + shift (ternary packer takes t in {-1,0,1}, stores t + 1).
_PACK_SHIFT = {"ternary": 1, "binary": 0, "int2": 0}
# Value the math uses = stored code - shift.
_VALUE_SHIFT = {"ternary": 1, "binary": 0, "int2": 1}

BitsLike = Union[float, int, str]


# --------------------------------------------------------------------------------------
# Quantization helpers shared by BitLinear and PackedLinear
# --------------------------------------------------------------------------------------
def _canonical_bits(weight_bits: BitsLike) -> tuple[float, str]:
    """1.58 | 1 | 2 (or "ternary" | "binary" | "int2") -> (canonical bits, kind)."""
    if isinstance(weight_bits, str):
        if weight_bits in _KIND_TO_BITS:
            return _KIND_TO_BITS[weight_bits], weight_bits
        try:
            weight_bits = float(weight_bits)
        except ValueError:
            weight_bits = None
    if isinstance(weight_bits, (int, float)) and not isinstance(weight_bits, bool):
        if abs(weight_bits - 1.58) < 0.01 or abs(weight_bits - math.log2(3)) < 1e-6:
            return 1.58, "ternary"
        if weight_bits == 1:
            return 1, "binary"
        if weight_bits == 2:
            return 2, "int2"
    raise ValueError(f"weight_bits must be 1.58 (ternary), 1 (binary) or 2 (int2), got {weight_bits!r}")


def resolve_group_size(weight_bits: BitsLike, in_features: int, group_size: Optional[int]) -> Optional[int]:
    """The group size actually used along in_features.

    ternary / binary: per tensor, returns None (a non-None ``group_size`` raises).
    int2: ``group_size`` if given (must divide in_features), else 64 when it
    divides in_features, else in_features (one group per output row).
    """
    _, kind = _canonical_bits(weight_bits)
    if kind != "int2":
        if group_size is not None:
            raise ValueError(f"group_size is only supported for 2-bit weights; {kind} weights use one scale "
                             f"per tensor (BitNet), got group_size={group_size!r}")
        return None
    if group_size is None:
        return DEFAULT_INT2_GROUP_SIZE if in_features % DEFAULT_INT2_GROUP_SIZE == 0 else in_features
    return _explicit_group_size(in_features, group_size)


def _explicit_group_size(in_features: int, group_size) -> int:
    # a given group size, for any kind's layout: a positive int dividing in_features
    if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral) or group_size < 1:
        raise ValueError(f"group_size must be a positive int or None, got {group_size!r}")
    if in_features % group_size != 0:
        raise ValueError(f"group_size={group_size} must divide in_features={in_features}")
    return int(group_size)  # (a NumPy integer too)


def quantize_weight(w: Tensor, weight_bits: BitsLike = 1.58, group_size: Optional[int] = None,
                    hqq_iters: int = 20) -> tuple[str, Tensor, Tensor, Optional[Tensor]]:
    """Quantizes a float weight (N, K) into bitmm op arguments.

    Returns ``(kind, codes, scale, offset)`` with ``codes`` int8 in the packer's
    convention (ternary t in {-1,0,1}, binary b in {0,1}, int2 q in {0..3}),
    float32 ``scale``/``offset`` (``offset`` None for ternary), so that
    ``quant.dequantize(kind, codes, scale, offset)`` is the quantized weight.
    ``group_size`` is resolved by :func:`resolve_group_size`.
    """
    _, kind = _canonical_bits(weight_bits)
    if w.dim() != 2:
        raise ValueError(f"quantize_weight: weight must be 2-D (out_features, in_features), got {tuple(w.shape)}")
    w = w.detach()
    if kind == "ternary":
        resolve_group_size(weight_bits, w.shape[1], group_size)
        t, s = quant.absmean_ternary(w)
        return kind, t, s, None
    if kind == "binary":
        resolve_group_size(weight_bits, w.shape[1], group_size)
        b, s, u = quant.sign_binary(w)
        return kind, b, s, u
    G = resolve_group_size(weight_bits, w.shape[1], group_size)
    q, s, z = quant.hqq_quantize(w, nbits=2, group_size=None if G == w.shape[1] else G, iters=hqq_iters)
    codes, s, u = quant._hqq_op_args(q, s, z, 2)  # (hqq_quantize's codes are in range: no check, no host sync)
    return kind, codes, s, u


def _pack(codes: Tensor, kind: str) -> Tensor:
    """Packs in-range packer codes (as :func:`quantize_weight` makes them) without the
    host-side validation of ``bitmm.pack_*`` (no device sync, traceable)."""
    return torch.ops.bitmm.pack(codes + _PACK_SHIFT[kind], KIND_ID[kind])


def _dense_from_packed(kind: str, packed: Tensor, scale: Tensor, offset: Optional[Tensor], K: int) -> Tensor:
    """float32 (N, K) weight that packed op arguments stand for."""
    v = torch.ops.bitmm.unpack(packed, KIND_ID[kind], K).to(torch.float32) - _VALUE_SHIFT[kind]
    N = v.shape[0]
    w = v * quant.expand_groups(scale.to(torch.float32), N, K, "scale")
    if offset is not None:
        w = w + quant.expand_groups(offset.to(torch.float32), N, K, "offset")
    return w


def _check_features(cls: str, in_features, out_features) -> None:
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")


def _check_x_width(cls: str, x: Tensor, in_features: int) -> None:
    # The packed format pads each row to a whole block, so the ops take K from x and cannot tell a
    # 100-wide weight from a 128-wide x; the layer knows in_features.
    if not isinstance(x, Tensor):
        raise TypeError(f"{cls}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] != in_features:
        raise ValueError(f"{cls}: x must have in_features={in_features} as its last dimension, got shape "
                         f"{tuple(x.shape)}")


_AUTOCAST_CASTS = (torch.float32, torch.float16, torch.bfloat16)


def _autocast_x(x: Tensor) -> Tensor:
    """x as ``nn.Linear`` would see it inside a ``torch.autocast`` region: float32 / float16 / bfloat16 x in the
    region's dtype (float64 kept, as autocast keeps it), so the layers are drop-in there too: the fp16 / bf16
    kernels run and the output has the autocast dtype.  Outside a region: x itself.  The bitmm ops never cast
    (csrc/autocast.cpp); the layers do, as ``nn.Linear`` does for ``F.linear``.  The scales and bias keep their
    dtypes (the ops take float32 scales with fp16 / bf16 x, at full precision)."""
    # (the one-call test first: outside every region, the common case, this costs ~0.3 us of the layer's host time)
    if not torch._C._is_any_autocast_enabled() or not isinstance(x, Tensor):  # (a non-tensor: the layer's check names it)
        return x
    if x.dtype in _AUTOCAST_CASTS and _autocast_on(x.device.type):
        dt = torch.get_autocast_dtype(x.device.type)
        if x.dtype != dt:
            return x.to(dt)
    return x


def _autocast_on(dev: str) -> bool:
    """Whether an autocast region is active for device type ``dev`` (False for device types autocast does not
    know, meta included, where torch.is_autocast_enabled raises)."""
    return torch.amp.is_autocast_available(dev) and torch.is_autocast_enabled(dev)


def _check_finite(fn: str, **tensors: Optional[Tensor]) -> None:
    # (conversion only, once per layer: a NaN / Inf latent weight quantizes to NaN / Inf scales that the CUDA
    # kernels would carry into every output, and a per-group int2 scale spreads one Inf over its whole group; a
    # NaN / Inf bias is refused too, as ckpt.load / load_state_dict refuse it: no layer bitmm makes holds one)
    for what, t in tensors.items():
        if isinstance(t, Tensor) and t.is_floating_point() and not t.is_meta and not bool(torch.isfinite(t).all()):
            idx = tuple(int(i) for i in (~torch.isfinite(t)).nonzero()[0])
            raise ValueError(f"{fn}: the {what} holds NaN / Inf (first at {list(idx)}); a layer cannot be made of it")


def _check_linear_like(fn: str, m) -> None:
    w = getattr(m, "weight", None)
    if not isinstance(m, nn.Module) or not isinstance(w, Tensor) or w.dim() != 2:
        raise TypeError(f"{fn}: expected an nn.Linear-like module with a 2-D weight (out_features, in_features), "
                        f"got {type(m).__name__}")


def _check_act_bits(act_bits: Optional[int]) -> Optional[int]:
    if act_bits is None:
        return None
    if isinstance(act_bits, bool) or act_bits != 8:
        raise ValueError(f"act_bits must be None (float activations) or 8 (BitNet per-token absmax int8), "
                         f"got {act_bits!r}")
    return 8


def _act_quant_ste(x: Tensor) -> Tensor:
    """BitNet per-token absmax int8 fake quantization with the straight-through estimator."""
    return x + (quant.absmax_int8_fake(x) - x).detach()


# --------------------------------------------------------------------------------------
# BitLinear (QAT)
# --------------------------------------------------------------------------------------
class _STELinear(torch.autograd.Function):
    """y = bitmm_op(x, packed(quant(W)), scale, offset, bias) with the BitNet STE.

    backward: grad_x = grad_y @ W_q (the packed op ``linear_grad_x``, adds only),
    grad_W = grad_y^T @ x (STE: dy/dW_latent := dy/dW_q), grad_bias = sum(grad_y).
    ``weight`` is an input only so that autograd routes grad_W to it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, packed, scale, offset, kind):
        y = _LINEAR_OPS[kind](x, packed, scale, offset, bias)
        ctx.save_for_backward(x, packed, scale, offset)
        ctx.kind = kind
        ctx.weight_dtype = weight.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        x, packed, scale, offset = ctx.saved_tensors
        K = x.shape[-1]
        N = grad.shape[-1]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.bitmm.linear_grad_x(grad, packed, scale, offset, KIND_ID[ctx.kind], K)
        g2 = grad.reshape(-1, N)
        if ctx.needs_input_grad[1]:
            # in the forward's dtype, as the bitmm ops' backward (csrc/autocast.cpp): on CPU a backward called inside
            # an autocast region runs on this thread with autocast on (the context manager only then: every QAT
            # backward passes here)
            dev = g2.device.type
            with torch.autocast(dev, enabled=False) if _autocast_on(dev) else contextlib.nullcontext():
                grad_w = (g2.t() @ x.reshape(-1, K).to(g2.dtype)).to(ctx.weight_dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0).to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None, None, None, None


class BitLinear(nn.Module):
    """Quantization-aware ``nn.Linear`` replacement (BitNet b1.58 / b1 style, or 2-bit HQQ).

    Same constructor and initialization as ``nn.Linear`` plus:

    Args:
        weight_bits: 1.58 (ternary absmean, per tensor), 1 (sign binary, per
            tensor) or 2 (HQQ int2, group-wise; see ``group_size``).
        act_bits: None (float activations) or 8 (BitNet per-token absmax int8
            fake quantization with STE).  BitNet also normalizes activations
            (SubLN/RMSNorm) before quantizing; that is left to the model.
        group_size: 2-bit only; None = 64 if it divides in_features, else one
            group per output row.
        hqq_iters: HQQ zero-point refinement iterations for 2-bit (default 20,
            HQQ's; 0 = plain min-max, much cheaper per training step).

    The latent float ``weight`` (and ``bias``) are Parameters.  Each forward
    quantizes and packs the weight and runs the bitmm op; the weight gradient is
    the straight-through estimate ``grad_y^T @ x`` (exactly the gradient of
    ``F.linear(x, w + (quant(w) - w).detach(), b)``).  For inference convert to
    :class:`PackedLinear` (``PackedLinear.from_bitlinear`` or ``convert(model, "packed")``),
    which quantizes once.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, weight_bits: BitsLike = 1.58,
                 act_bits: Optional[int] = None, group_size: Optional[int] = None, device=None, dtype=None,
                 hqq_iters: int = 20) -> None:
        super().__init__()
        _check_features("BitLinear", in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        in_features, out_features = int(in_features), int(out_features)  # (a NumPy integer too: the checkpoint's JSON)
        self.in_features = in_features
        self.out_features = out_features
        self.weight_bits, self.kind = _canonical_bits(weight_bits)
        self.group_size = resolve_group_size(self.weight_bits, in_features, group_size)
        self.act_bits = _check_act_bits(act_bits)
        if isinstance(hqq_iters, bool) or not isinstance(hqq_iters, numbers.Integral) or hqq_iters < 0:
            raise ValueError(f"BitLinear: hqq_iters must be an int >= 0, got {hqq_iters!r}")
        self.hqq_iters = int(hqq_iters)
        self.weight = nn.Parameter(torch.empty((out_features, in_features), **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialization as ``nn.Linear.reset_parameters``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_bits: BitsLike = 1.58, act_bits: Optional[int] = None,
                    group_size: Optional[int] = None, hqq_iters: int = 20, share_parameters: bool = True
                    ) -> "BitLinear":
        """A BitLinear over ``linear``'s weights.  With ``share_parameters`` (default) the
        very same Parameter objects are reused (ties and optimizer references survive);
        otherwise they are copied."""
        _check_linear_like("BitLinear.from_linear", linear)
        w = linear.weight
        m = cls(w.shape[1], w.shape[0], bias=linear.bias is not None, weight_bits=weight_bits,
                act_bits=act_bits, group_size=group_size, device="meta", dtype=w.dtype, hqq_iters=hqq_iters)
        if share_parameters:
            m.weight = linear.weight
            m.bias = linear.bias
        else:
            m.weight = nn.Parameter(w.detach().clone(), requires_grad=w.requires_grad)
            m.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(),
                                                                    requires_grad=linear.bias.requires_grad)
        return m

    def quantize(self) -> tuple[str, Tensor, Tensor, Optional[Tensor]]:
        """``(kind, codes, scale, offset)`` of the current latent weight (see :func:`quantize_weight`)."""
        return quantize_weight(self.weight, self.weight_bits, self.group_size, self.hqq_iters)

    def quantized_weight(self) -> Tensor:
        """The dequantized float32 weight the forward uses (for inspection; not differentiable)."""
        kind, codes, scale, offset = self.quantize()
        return quant.dequantize(kind, codes, scale, offset)

    def forward(self, x: Tensor) -> Tensor:
        _check_x_width("BitLinear", x, self.in_features)
        x = _autocast_x(x)
        if self.act_bits is not None:
            x = _act_quant_ste(x)
        kind, codes, scale, offset = self.quantize()
        packed = _pack(codes, kind)
        return _STELinear.apply(x, self.weight, self.bias, packed, scale, offset, kind)

    def extra_repr(self) -> str:
        g = f", group_size={self.group_size}" if self.group_size is not None else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"weight_bits={self.weight_bits} ({self.kind}){g}, act_bits={self.act_bits}")


# --------------------------------------------------------------------------------------
# PackedLinear (inference)
# --------------------------------------------------------------------------------------
def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _TransposedGradLinear(torch.autograd.Function):
    """``fwd(x)`` (the layer's usual forward, bias included) whose gradient w.r.t. x runs
    :func:`bitmm.ops.linear_grad_x_transposed` on the cached ``W^T`` packing instead of the
    ``linear_grad_x`` op (``PackedLinear.transposed_backward``).  The backward is made of
    differentiable ops, so double backward works."""

    @staticmethod
    def forward(x, packed_wt, scale, offset, bias, kind, fwd, prepacked_wt):
        return fwd(x)

    @staticmethod
    def setup_context(ctx, inputs, output):  # (separate from forward: torch.func.grad works through it)
        _, packed_wt, scale, offset, bias, kind, _, prepacked_wt = inputs
        ctx.save_for_backward(packed_wt, scale, offset, prepacked_wt)
        ctx.kind = kind
        ctx.bias_dtype = None if bias is None else bias.dtype

    @staticmethod
    def backward(ctx, grad):
        packed_wt, scale, offset, prepacked_wt = ctx.saved_tensors
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = linear_grad_x_transposed(ctx.kind, grad, packed_wt, scale, offset, prepacked_wt)
        if ctx.needs_input_grad[4]:
            grad_bias = grad.reshape(-1, grad.shape[-1]).sum(0).to(ctx.bias_dtype)
        return grad_x, None, None, None, grad_bias, None, None, None


def _version_of(t: Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # (inference tensors have no version counter)
        return -1


class PackedLinear(nn.Module):
    """Inference linear layer over a packed low-bit weight; holds buffers only.

    Buffers: ``packed_weight`` (int32, (out_features, words_per_row)), ``scale``
    (float32 ``()``, ``(N,)`` or ``(N, K // G)``), ``offset`` (same shapes, or
    None), ``bias`` (or None).  Attributes: ``in_features``, ``out_features``,
    ``kind`` ("ternary" | "binary" | "int2"), ``weight_bits`` (1.58 | 1 | 2),
    ``group_size`` (None = per tensor; K = per output row), ``act_bits``
    (None, or 8 to fake-quantize activations per token like BitNet).

    ``forward(x)`` is one ``torch.ops.bitmm.<kind>_linear(x, packed_weight, scale,
    offset, bias)`` call (plus the activation quantizer only when ``act_bits=8``);
    x may be float32 / float16 / bfloat16, the output has x's dtype.  On CPU (eager)
    it is ``torch.ops.bitmm.cpu_prepacked_linear`` instead, bitwise the same output:
    the first forward makes the weight's CPU lookup layout (``cpu_prepack``, as many
    bytes as ``packed_weight``) and keeps it in the instance (not a buffer: never in
    ``state_dict``, not moved by ``.to()``); it is remade when ``packed_weight`` is
    replaced or modified in place (``load_state_dict`` included).  With group-wise
    scales (group size a multiple of 32, a SIMD CPU kernel) it also keeps
    ``cpu_prepack_scales`` of scale and offset (float32: 8 bytes per row and group with an
    offset, half the packed bytes of a 2-bit g64 weight), remade the same way when either
    changes.

    Build it with :meth:`from_linear`, :meth:`from_bitlinear` or :meth:`from_hqq`.
    The plain constructor makes a placeholder whose weight is all zeros (output =
    bias) in the default layout of ``weight_bits`` / ``group_size`` (a group size for any kind), ready for
    ``load_state_dict``; loading resizes buffers to the checkpoint's shapes (e.g.
    per-channel vs grouped scales) and checks the packed width against the kind.
    ``dtype`` applies to the bias; scales stay float32 (``.half()`` etc. convert
    them too, which the op accepts).
    """

    # On CPU, forward reads the weight's prepacked lookup layout (made on first use; as many
    # bytes as packed_weight, so a CPU layer holds its weight twice).  Set to False on a layer,
    # or on the class, to keep one copy and run the plain op (same output; at M = 1 ~1.7x slower with the AVX2
    # kernels, 1.2-1.3x with the AVX-512 ones: bench/cpu_paths_ab.py).
    use_cpu_prepack: bool = True
    # Opt-in (memory for speed, for training through a frozen packed layer, e.g. LoRA): when
    # True and x needs a gradient, the layer keeps the packed W^T (as many bytes as
    # packed_weight, made on first use, remade when the weight changes; never in state_dict)
    # and computes grad_x with the forward op on it (ops.linear_grad_x_transposed: on CUDA the
    # tensor-core kernel) instead of the linear_grad_x op.  Per-tensor / per-channel scales
    # only (group-wise layers keep linear_grad_x).  See enable_transposed_backward(), which
    # also frees W^T when disabling (setting the attribute to False keeps it until .to(),
    # load_state_dict or a weight change).
    transposed_backward: bool = False
    # Opt-in (act_bits=8 layers with a per tensor / per channel scale): when True, the forward runs the W2A8 op
    # (ops.linear_a8: x quantized per token to int8, the integer sums exact, on CUDA through torch's int8 GEMM)
    # instead of the float op on the fake-quantized x.  Same math; the int8 sums are exact where the float path
    # rounds, so the outputs differ in their last bits.  On CUDA, and on x86 CPUs with AVX2 or AVX-512 VNNI (other
    # CPUs keep the float path), where linear_a8's own kernels are faster than the float path at every M
    # (bench/NOTES.md, "CPU linear_a8").  See enable_int8_matmul().
    int8_matmul: bool = False

    def __init__(self, in_features: int, out_features: int, bias: bool = True, weight_bits: BitsLike = 1.58,
                 group_size: Optional[int] = None, act_bits: Optional[int] = None, device=None, dtype=None) -> None:
        super().__init__()
        _check_features("PackedLinear", in_features, out_features)
        bits, kind = _canonical_bits(weight_bits)
        # (a group size for binary / ternary too: a placeholder for a checkpoint of group-wise layers of those kinds,
        # e.g. from_hqq(nbits=1), whose layer table records it; resolve_group_size keeps BitLinear's per tensor rule)
        G = (_explicit_group_size(in_features, group_size) if group_size is not None
             else resolve_group_size(bits, in_features, None))
        N, K = out_features, in_features
        packed = torch.zeros(formats.packed_shape(kind, N, K), dtype=torch.int32, device=device)
        if kind != "binary":
            packed[:, 0::2] = -1  # lo plane all ones, hi plane zero: code 1 = value 0 everywhere
        sshape = () if G is None else ((N,) if G == K else (N, K // G))
        scale = torch.ones(sshape, dtype=torch.float32, device=device)
        offset = None if kind == "ternary" else torch.zeros(sshape, dtype=torch.float32, device=device)
        b = torch.zeros(N, dtype=dtype, device=device) if bias else None
        self._init(kind, bits, K, G, _check_act_bits(act_bits), packed, scale, offset, b)

    def _init(self, kind, bits, in_features, group_size, act_bits, packed, scale, offset, bias) -> None:
        self.in_features = int(in_features)
        self.out_features = int(packed.shape[0])
        self.kind = kind
        self.weight_bits = bits
        self.group_size = group_size
        self.act_bits = act_bits
        self.register_buffer("packed_weight", packed)
        self.register_buffer("scale", scale)
        self.register_buffer("offset", offset)
        self.register_buffer("bias", bias)

    @classmethod
    def _from_args(cls, kind: str, in_features: int, group_size: Optional[int], packed: Tensor, scale: Tensor,
                   offset: Optional[Tensor], bias: Optional[Tensor], act_bits: Optional[int] = None) -> "PackedLinear":
        m = cls.__new__(cls)
        nn.Module.__init__(m)
        m._init(kind, _KIND_TO_BITS[kind], in_features, group_size, _check_act_bits(act_bits),
                packed.contiguous(), scale.contiguous(), None if offset is None else offset.contiguous(),
                None if bias is None else bias.detach().clone())
        return m

    # ---- constructors -------------------------------------------------------------
    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Module, weight_bits: BitsLike = 1.58, group_size: Optional[int] = None,
                    act_bits: Optional[int] = None, hqq_iters: int = 20) -> "PackedLinear":
        """Quantizes ``linear.weight`` (ternary absmean / binary sign / 2-bit HQQ, see
        :func:`quantize_weight`) and packs it; copies the bias.  Same device as the weight."""
        _check_linear_like("PackedLinear.from_linear", linear)
        w = linear.weight
        _check_finite("PackedLinear.from_linear", weight=w, bias=getattr(linear, "bias", None))
        kind, codes, scale, offset = quantize_weight(w, weight_bits, group_size, hqq_iters)
        G = resolve_group_size(weight_bits, w.shape[1], group_size)
        return cls._from_args(kind, w.shape[1], G, _pack(codes, kind), scale, offset, linear.bias, act_bits)

    @classmethod
    @torch.no_grad()
    def from_bitlinear(cls, bitlinear: BitLinear) -> "PackedLinear":
        """Freezes a :class:`BitLinear`: the same quantized weight, bias and activation
        quantization, so the output equals ``bitlinear(x)``."""
        if not isinstance(bitlinear, BitLinear):
            raise TypeError(f"PackedLinear.from_bitlinear: expected a BitLinear, got {type(bitlinear).__name__}")
        _check_finite("PackedLinear.from_bitlinear", weight=bitlinear.weight, bias=bitlinear.bias)
        kind, codes, scale, offset = bitlinear.quantize()
        return cls._from_args(kind, bitlinear.in_features, bitlinear.group_size, _pack(codes, kind), scale, offset,
                              bitlinear.bias, bitlinear.act_bits)

    @classmethod
    @torch.no_grad()
    def from_hqq(cls, W_q: Tensor, scale: Tensor, zero: Tensor, nbits: int = 2, group_size: Optional[int] = 64,
                 bias: Optional[Tensor] = None, shape: Optional[Sequence[int]] = None, axis: int = 1
                 ) -> "PackedLinear":
        """From HQQ-quantized weights, ``W ~= (W_q - zero) * scale`` grouped along in_features.

        Args:
            W_q: integer codes (unpacked: HQQ's bit-packed uint8 storage must be
                unpacked first), either ``(out, in)`` or HQQ's grouped
                ``(out * in / G, G)`` (``axis=1``), which needs ``shape``.
            scale, zero: ``numel == out * in / G`` (HQQ's ``(out * in / G, 1)``,
                or ``(out, in / G)``, or ``(out,)`` when G = in).
            nbits: 2 (kind int2) or 1 (kind binary).
            group_size: G along in_features (None = in_features).
            shape: ``(out_features, in_features)`` (HQQ's ``meta["shape"]``);
                required for the grouped W_q layout.
            axis: HQQ's grouping axis; only 1 is representable (axis=0 groups run
                across output rows, which the bitmm scale layout cannot express).
        """
        if isinstance(nbits, bool) or nbits not in (1, 2):
            raise ValueError(f"from_hqq: nbits must be 1 or 2, got {nbits!r}")
        if axis != 1:
            raise NotImplementedError("from_hqq: only HQQ axis=1 (groups of consecutive in_features) is supported; "
                                      "axis=0 groups span output rows. Re-quantize with axis=1.")
        if not isinstance(W_q, Tensor) or W_q.dim() != 2:
            raise ValueError("from_hqq: W_q must be a 2-D tensor of (unpacked) integer codes")
        if shape is None:
            N, K = W_q.shape
        else:
            N, K = (int(s) for s in shape)
        if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral)):
            raise ValueError(f"from_hqq: group_size must be an int or None, got {group_size!r}")
        G = K if group_size is None else int(group_size)
        if G < 1 or K % G != 0:
            raise ValueError(f"from_hqq: group_size={group_size} must divide in_features={K}")
        if tuple(W_q.shape) == (N, K):
            q = W_q
        elif tuple(W_q.shape) == (N * K // G, G):
            q = W_q.reshape(N, K)  # row i = flat elements [i*G, (i+1)*G): consecutive along in_features
        else:
            raise ValueError(f"from_hqq: W_q of shape {tuple(W_q.shape)} is neither (out, in)=({N}, {K}) nor the "
                             f"axis=1 grouped ({N * K // G}, {G}); pass shape=(out, in) for the grouped layout")
        if q.is_floating_point():
            q = q.round()
        ng = K // G
        if scale.numel() != N * ng or zero.numel() != N * ng:
            raise ValueError(f"from_hqq: scale/zero must have out * in / G = {N * ng} elements, got "
                             f"{scale.numel()} and {zero.numel()}")
        _check_finite("PackedLinear.from_hqq", scale=scale, zero=zero)
        dev = W_q.device
        sshape = (N,) if ng == 1 else (N, ng)
        s = scale.reshape(sshape).to(dev)
        z = zero.reshape(sshape).to(dev)
        codes, s, u = quant.hqq_to_op_args(q.to(torch.int64), s, z, nbits)
        kind = "int2" if nbits == 2 else "binary"
        if bias is not None:
            if not isinstance(bias, Tensor) or not bias.is_floating_point() or tuple(bias.shape) != (N,):
                raise ValueError(f"from_hqq: bias must be a floating tensor of shape ({N},), got "
                                 f"{tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__}")
            _check_finite("PackedLinear.from_hqq", bias=bias)
            bias = bias.to(dev)
        return cls._from_args(kind, K, G, _pack(codes, kind), s, u, bias)

    # ---- forward ------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.shape[-1:] != (self.in_features,):  # (the cheap test on the per-call path)
            _check_x_width("PackedLinear", x, self.in_features)
        x = _autocast_x(x)
        # (x needs a gradient (LoRA / PEFT training over this frozen layer, any trainable layer below it): the
        # fake-quantized x with BitNet's straight-through estimator, as BitLinear does, so grad_x flows through the
        # layer; the int8 path has none, since absmax_int8 rounds)
        x_grad = x.requires_grad and torch.is_grad_enabled()
        if (self.act_bits is not None and self.int8_matmul and not x_grad and self._takes_int8_matmul(x)
                and not self._params_need_grad()):
            xq, xs = quant.absmax_int8(x)
            bufs = self._buffers
            return linear_a8(self.kind, xq, xs, bufs["packed_weight"], bufs["scale"], bufs["offset"], bufs["bias"],
                             out_dtype=x.dtype)
        if self.act_bits is not None:
            x = _act_quant_ste(x) if x_grad else quant.absmax_int8_fake(x)
        # The buffers straight from self._buffers (where nn.Module keeps them, and
        # where assignment, .to() and load_state_dict put them): `self.scale` etc.
        # each miss the instance dict, raise AttributeError inside Python and then
        # run nn.Module.__getattr__; the four cost ~30k instructions per call on CPU,
        # nearly as many as the op call itself (bench/NOTES.md, "Host overhead (eager)").
        buffers = self._buffers
        try:
            w, s, u, b = buffers["packed_weight"], buffers["scale"], buffers["offset"], buffers["bias"]
        except KeyError:  # a buffer made into something else (e.g. torch.nn.utils.parametrize)
            # (a weight recomputed per call would remake the CPU layout per call: plain op)
            return _LINEAR_OPS[self.kind](x, self.packed_weight, self.scale, self.offset, self.bias)
        if self._takes_transposed_backward(x, s, u):
            wt = self._transposed_weight(w)
            pre_t = (self._derived("_transposed_cpu_prepacked", wt, lambda: torch.ops.bitmm.cpu_prepack(
                wt, KIND_ID[self.kind], self.out_features)) if wt.is_cpu and self.use_cpu_prepack else None)
            return _TransposedGradLinear.apply(x, wt, s, u, b, self.kind,
                                               lambda x_: self._forward_buffers(x_, w, s, u, b), pre_t)
        return self._forward_buffers(x, w, s, u, b)

    def _takes_int8_matmul(self, x: Tensor) -> bool:
        # CUDA, and CPUs where linear_a8 has its own kernel (AVX2, AVX-512 VNNI): elsewhere on CPU the float kernels on
        # the fake-quantized x are faster than linear_a8's generic path (a float matmul of the unpacked codes).
        # (forward takes it only where x needs no gradient: it has no straight-through estimator)
        s, u = self._buffers["scale"], self._buffers["offset"]
        return ((x.is_cuda or (x.is_cpu and _CPU_A8_KERNEL != "generic" and self.in_features <= _CPU_A8_MAX_K))
                and (s.dim() <= 1 or s.shape[1] == 1) and (u is None or u.dim() <= 1 or u.shape[1] == 1))

    def _params_need_grad(self) -> bool:
        # scale / offset made trainable (fine-tuning the quantization parameters with the codes frozen): the int8 path
        # (linear_a8) treats them as constants (its bias has a gradient), so the float path runs instead
        s, u = self._buffers.get("scale"), self._buffers.get("offset")
        return torch.is_grad_enabled() and ((s is not None and s.requires_grad) or (u is not None and u.requires_grad))

    def _takes_transposed_backward(self, x: Tensor, s: Tensor, u: Optional[Tensor]) -> bool:
        # The one test of whether a forward on x records the transposed backward (the LoRA
        # layers ask it too, to leave their fused op).  Its backward gives x and bias their gradients, not scale or
        # offset: where those need one, the default path runs.
        return (self.transposed_backward and x.requires_grad and torch.is_grad_enabled() and s.dim() <= 1
                and (u is None or u.dim() <= 1) and not s.requires_grad
                and (u is None or not u.requires_grad) and not _is_compiling())

    def _forward_buffers(self, x: Tensor, w: Tensor, s: Tensor, u: Optional[Tensor], b: Optional[Tensor]) -> Tensor:
        if w.is_cpu and self.use_cpu_prepack and not _is_compiling():
            blob = self._derived("_cpu_prepacked", w, lambda: torch.ops.bitmm.cpu_prepack(w, KIND_ID[self.kind],
                                                                                         self.in_features))
            # group-wise: the scales' layout too, where a SIMD kernel reads it (float x, group size a multiple of 32):
            # with each layer's scales cold in memory their per-call gather took 23-40% of the time at M = 1, g64
            # (bench/NOTES.md "CPU forward" v11); per tensor / per channel scales gain nothing from it
            G = max(s.shape[1] if s.dim() == 2 else 1, u.shape[1] if u is not None and u.dim() == 2 else 1)
            sp = (self._derived_scales(s, u) if G > 1 and _CPU_FORWARD_SIMD and (self.in_features // G) % 32 == 0
                  and x.dtype != torch.float64 else None)
            return _cpu_prepacked_linear(x, w, blob, s, u, b, KIND_ID[self.kind], sp)
        return _LINEAR_OPS[self.kind](x, w, s, u, b)

    def _derived(self, key: str, w: Tensor, make: Callable[[], Tensor]) -> Tensor:
        # A layout derived from w (the CPU lookup layout, the transposed weight), made on first
        # use and kept in the instance dict while w is the same tensor, unmodified (version
        # counter; inference tensors have none: -1).
        d = self.__dict__.get(key)
        try:
            version = w._version
        except RuntimeError:
            version = -1
        if d is None or d[0] is not w or d[1] != version:
            with torch.no_grad():
                d = (w, version, make())
            self.__dict__[key] = d
        return d[2]

    def _derived_scales(self, s: Tensor, u: Optional[Tensor]) -> Tensor:
        # cpu_prepack_scales(s, u), kept while s and u are the same tensors, unmodified (as _derived)
        versions = (_version_of(s), _version_of(u) if u is not None else 0)
        d = self.__dict__.get("_cpu_prepacked_scales")
        if d is None or d[0] is not s or d[1] is not u or d[2] != versions:
            with torch.no_grad():
                d = (s, u, versions, torch.ops.bitmm.cpu_prepack_scales(s, u, self.out_features, self.in_features))
            self.__dict__["_cpu_prepacked_scales"] = d
        return d[3]

    def _transposed_weight(self, w: Tensor) -> Tensor:
        return self._derived("_transposed", w, lambda: transpose_packed(w, self.kind, self.in_features))

    # derived from packed_weight (the first three) or from scale and offset
    _DERIVED = ("_cpu_prepacked", "_transposed", "_transposed_cpu_prepacked", "_cpu_prepacked_scales")

    def clear_derived(self) -> None:
        """Drops the layouts derived from ``packed_weight`` (the CPU lookup layout, the transposed weight) and from
        ``scale`` / ``offset`` (their CPU layout); the next forward remakes them.  They are remade by themselves when
        a buffer is replaced, moved, loaded or changed in place through the tensor itself (its version counter); a
        change made around autograd's view of it (``scale.data.mul_(...)``, a NumPy view, inside
        ``torch.inference_mode``) is not seen: call this after one."""
        self._drop_cpu_prepacked()

    def _drop_cpu_prepacked(self) -> None:
        for key in self._DERIVED:
            self.__dict__.pop(key, None)

    def _apply(self, fn, *args, **kwargs):
        self._drop_cpu_prepacked()  # .to() / .cpu() / .cuda() / .half(): remade on the next CPU forward
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        for key in self._DERIVED:  # derived; not pickled
            state.pop(key, None)
        return state

    # ---- helpers ------------------------------------------------------------------
    @property
    def weight(self) -> Tensor:
        """Dequantized float32 weight (out_features, in_features).  Read-only and SLOW
        (unpacks and materializes the dense matrix on every access): for debugging,
        PEFT-style introspection and tests, never in a hot path."""
        return _dense_from_packed(self.kind, self.packed_weight, self.scale, self.offset, self.in_features)

    def packed_nbytes(self) -> tuple[int, int]:
        """(bytes of the packed weight, bytes of scale + offset)."""
        w = self.packed_weight.numel() * self.packed_weight.element_size()
        q = sum(t.numel() * t.element_size() for t in (self.scale, self.offset) if t is not None)
        return w, q

    def extra_repr(self) -> str:
        w, q = self.packed_nbytes()
        fp16 = self.in_features * self.out_features * 2
        g = "tensor" if self.group_size is None else ("channel" if self.group_size == self.in_features
                                                       else str(self.group_size))
        act = "" if self.act_bits is None else f", act_bits={self.act_bits}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"kind={self.kind}, weight_bits={self.weight_bits}, group_size={g}{act}, "
                f"packed={_fmt_bytes(w)} + {_fmt_bytes(q)} scales vs fp16 {_fmt_bytes(fp16)} "
                f"({fp16 / max(w + q, 1):.1f}x smaller)")

    def _state_dict_problems(self, state_dict, prefix) -> list[str]:
        """What is wrong with this layer's entries of `state_dict` (empty: nothing), checked before any buffer is
        touched, so a failed load leaves the layer as it was: the packed weight's dtype (int32: any other dtype
        would be cast, its bits changed), shape and ternary codes (a code 3, both planes set, reads as +2); scale /
        offset / bias dtypes and shapes (the ops' layouts for this layer's N and K) and finite scales / offsets /
        biases (as this layer's buffers hold them: a float32 value past float16's range is Inf in a float16 layer)."""
        N, K = self.out_features, self.in_features
        problems = []
        groups = {}
        for name in ("packed_weight", "scale", "offset", "bias"):
            key = prefix + name
            if key not in state_dict:
                continue
            t = state_dict[key]
            if not isinstance(t, Tensor):
                problems.append(f"{key}: expected a tensor, got {type(t).__name__}")
                continue
            if name == "packed_weight":
                want = formats.packed_shape(self.kind, N, K)
                if t.dtype != torch.int32:
                    problems.append(f"{key}: packed weight must be int32 (its bits are the codes), got {t.dtype}")
                elif tuple(t.shape) != want:
                    problems.append(f"{key}: packed weight of shape {tuple(t.shape)} does not fit a {self.kind} "
                                    f"({K} -> {N}) layer, which needs {want}")
                elif self.kind == "ternary" and not t.is_meta:
                    both = (t[:, 0::2] & t[:, 1::2]) != 0  # (lo, hi) words of each 32-weight block
                    if bool(both.any()):
                        n, blk = (int(i) for i in both.nonzero()[0])
                        problems.append(f"{key} holds an invalid ternary code 3 (both bit planes set) in row {n}, "
                                        f"block {blk} (weights {32 * blk}..{32 * blk + 31})")
                continue
            if not t.is_floating_point():
                problems.append(f"{key}: must be a floating-point tensor, got {t.dtype}")
                continue
            if name == "bias" and tuple(t.shape) != (N,):
                problems.append(f"{key}: bias of shape {tuple(t.shape)}, expected ({N},)")
                continue
            ok = name == "bias" or t.dim() == 0 or (t.dim() == 1 and t.shape[0] == N) or (
                t.dim() == 2 and t.shape[0] == N and t.shape[1] >= 1 and K % t.shape[1] == 0)
            if not ok:
                problems.append(f"{key}: shape {tuple(t.shape)} must be () per tensor, ({N},) per output channel or "
                                f"({N}, K/G) per group with K={K}")
                continue
            cur = self._buffers.get(name)
            as_held = t.to(cur.dtype) if cur is not None and cur.is_floating_point() else t
            if not as_held.is_meta and not bool(torch.isfinite(as_held).all()):
                problems.append(f"{key} is not finite (NaN or Inf) as {as_held.dtype}")
            if name != "bias":
                groups[name] = t.shape[1] if t.dim() == 2 else 1
        if groups.get("scale", 1) > 1 and groups.get("offset", 1) > 1 and groups["scale"] != groups["offset"]:
            problems.append(f"{prefix}scale has {groups['scale']} groups but {prefix}offset has {groups['offset']}")
        return problems

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        problems = self._state_dict_problems(state_dict, prefix)
        if problems:
            error_msgs.extend(problems)
            return
        self._drop_cpu_prepacked()  # remade from the loaded weight on the next CPU forward
        # Buffers may legitimately change shape (per-tensor/channel/group scales) or
        # appear (offset / bias registered as None here): adopt the checkpoint's layout.
        for name in ("packed_weight", "scale", "offset", "bias"):
            key = prefix + name
            if key not in state_dict:
                continue
            src = state_dict[key]
            cur = self._buffers.get(name)
            if cur is None or cur.shape != src.shape:
                dev = self.packed_weight.device if cur is None else cur.device
                dtype = src.dtype if cur is None or name == "packed_weight" else cur.dtype
                self._buffers[name] = torch.empty(src.shape, dtype=dtype, device=dev)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._group_size_from_scales()

    def _group_size_from_scales(self) -> None:
        # A checkpoint may hold another scale layout than the one this layer was built with (adopted above):
        # group_size (the repr, the checkpoint's layer table) follows what the buffers now hold.
        K = self.in_features
        ts = [t for t in (self._buffers.get("scale"), self._buffers.get("offset")) if t is not None]
        groups = max([t.shape[1] for t in ts if t.dim() == 2] + [1])
        implied = 1 if self.group_size is None else max(K // self.group_size, 1)
        if groups != implied:
            self.group_size = K // groups if groups > 1 else (K if any(t.dim() >= 1 for t in ts) else None)


# --------------------------------------------------------------------------------------
# LoRA over a packed base
# --------------------------------------------------------------------------------------
def _packed_lora(base: PackedLinear, x: Tensor, w: Tensor, s: Tensor, u: Optional[Tensor], bias: Optional[Tensor],
                 lora_a: Tensor, lora_b: Tensor, scaling: float) -> Tensor:
    """``base(x) + (x A^T) B^T * scaling`` where base and adapter see the same x (PackedLoRALinear's and the PEFT
    layer's fused case): the one op ``bitmm::lora_linear``, except for float32 x on CPU."""
    a_, b_ = _adapters_for(x, lora_a, lora_b)
    if w.is_cpu and x.dtype == torch.float32 and base.use_cpu_prepack and not _is_compiling():
        # float32 x on CPU: the base alone (its prepacked weight layout and, group-wise, scale layout:
        # cpu_prepacked_linear) plus the adapter product (the fused op's adapters, in float32) beat the
        # fused op, which reads neither layout:
        # 4096^2 r = 16, 2 threads, 0.72 / 0.86 / 0.97 of the fused time for int2 g64 at M = 1 / 4 / 16,
        # g128 0.75 / 0.92 / 1.04, ternary and binary 0.92 / 0.99 / 0.99-1.00; forward + backward 0.90-1.01
        # (bench/results/cpu_s40_lora_split_ab.txt, bench/cpu_lora_ab.py).  The same terms in float32,
        # summed in another order.  Other x dtypes and compiled graphs keep the fused op.  (Inside a CPU autocast
        # region the layers have cast x to the autocast dtype before this point, _autocast_x: never float32 here.)
        return base(x) + F.linear(F.linear(x, a_), b_) * scaling
    return lora_linear(base.kind, x, w, s, u, bias, a_, b_, scaling)


def _adapters_for(x: Tensor, lora_a: Tensor, lora_b: Tensor) -> tuple[Tensor, Tensor]:
    """The adapters in a dtype ``bitmm::lora_linear`` takes with ``x``: unchanged when both
    are x's dtype or both float32, else cast (differentiably) to x's dtype."""
    if lora_a.dtype == lora_b.dtype and lora_a.dtype in (x.dtype, torch.float32):
        return lora_a, lora_b
    return lora_a.to(x.dtype), lora_b.to(x.dtype)


@torch.no_grad()
def fold_offset_into_lora(offset: Tensor, lora_a: Tensor, lora_b: Tensor, lora_scale: float
                          ) -> tuple[Tensor, Tensor]:
    """HQQ+ merge: folds the zero-point term ``x @ 1^T * u`` of a packed linear into a LoRA
    adapter, so that

        lora_linear(x, packed_w, scale, offset, bias, A, B, s)
          == lora_linear(x, packed_w, scale, None, bias, A', B', s)

    ``offset`` (u) is ``()`` (per tensor), ``(N,)`` / ``(N, 1)`` (per output channel) or
    ``(N, n_groups)`` (group size ``G = K / n_groups``); ``lora_a`` is ``(r, K)``,
    ``lora_b`` ``(N, r)``, ``lora_scale`` (s) the adapter's scaling (nonzero).  Returns
    ``(A', B')`` of rank ``r + n_groups`` (``r + 1`` per tensor / per channel):
    ``A' = [A; c_g * 1_g^T]`` and ``B' = [B, u[:, g] / (c_g * s)]``, where ``1_g`` is the
    indicator of group g's inputs.  This is exact: the offset term of group g is
    ``(x @ 1_g) * u[:, g]``, a rank-1 product, and no lower rank represents a group-wise
    u in general.  ``c_g = sqrt(|u_g| / (|s| sqrt(G)))`` balances the factors
    (``|c_g 1_g| == |u_g / (c_g s)|``; ``c_g = 1`` for an all-zero ``u_g``), which keeps
    both in a comfortable range for float16 / bfloat16 and for further training.
    Computed in float64; returned in the adapters' dtype and device.
    """
    s = float(lora_scale)
    if s == 0 or not math.isfinite(s):
        raise ValueError(f"fold_offset_into_lora: lora_scale must be finite and nonzero, got {lora_scale!r}")
    if lora_a.dim() != 2 or lora_b.dim() != 2 or lora_b.shape[1] != lora_a.shape[0]:
        raise ValueError(f"fold_offset_into_lora: lora_a must be (r, K) and lora_b (N, r), got "
                         f"{tuple(lora_a.shape)} and {tuple(lora_b.shape)}")
    K, N = lora_a.shape[1], lora_b.shape[0]
    u = offset.detach().to(device=lora_a.device, dtype=torch.float64)
    if u.dim() == 0:
        u = u.expand(N).reshape(N, 1)
    elif u.dim() == 1 and u.shape[0] == N:
        u = u.reshape(N, 1)
    if u.dim() != 2 or u.shape[0] != N or K % u.shape[1] != 0:
        raise ValueError(f"fold_offset_into_lora: offset of shape {tuple(offset.shape)} must be (), (N,) or "
                         f"(N, K/G) with N={N}, K={K} (from lora_b and lora_a)")
    ng = u.shape[1]
    G = K // ng
    norms = u.norm(dim=0)  # (ng,)
    c = torch.where(norms > 0, (norms / (abs(s) * math.sqrt(G))).sqrt(), torch.ones_like(norms))
    rows = torch.repeat_interleave(torch.diag(c), G, dim=1)  # (ng, K): rows[g, g*G:(g+1)*G] = c[g], else 0
    cols = u / (c * s)  # (N, ng)
    a = torch.cat([lora_a.detach(), rows.to(lora_a.dtype)], 0)
    b = torch.cat([lora_b.detach(), cols.to(lora_b.dtype)], 1)
    return a, b


class PackedLoRALinear(nn.Module):
    """``y = base(x) + dropout(x) @ A^T @ B^T * (alpha / r)`` over a frozen :class:`PackedLinear`.

    ``lora_A`` (r, in) has ``nn.Linear``'s kaiming-uniform init, ``lora_B``
    (out, r) starts at zero (so the layer starts equal to ``base``).  Only A and
    B are Parameters; the base holds buffers only.  Gradients reach x through
    the packed op and through the adapter.  A and B are float32 unless ``dtype``
    is given.

    The forward is one fused op, ``bitmm.ops.lora_linear`` (``torch.ops.bitmm.lora_linear``),
    whenever the base and the adapter see the same x: no active dropout (``dropout=0`` or
    eval mode) and no activation quantization on the base (``act_bits=None``); except for
    float32 x on CPU, where ``base(x)`` (which reads the prepacked CPU layouts, as the fused
    op does not) plus the adapter product is faster.  Otherwise it is ``base(x)`` plus the
    adapter product on ``dropout(x)``.  Float32 adapters with
    float16 / bfloat16 x are used as they are (float32 accumulation); adapters of another
    dtype are cast to x's dtype for the product.

    :meth:`fold_offset` moves the base's zero-point term into the adapter (HQQ+).
    """

    def __init__(self, base: PackedLinear, r: int = 16, alpha: float = 16, dropout: float = 0.0,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        if not isinstance(base, PackedLinear):
            raise TypeError(f"PackedLoRALinear: base must be a PackedLinear, got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"PackedLoRALinear: r must be a positive int, got {r!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha):
            raise ValueError(f"PackedLoRALinear: alpha must be a finite number, got {alpha!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError(f"PackedLoRALinear: dropout must be a probability in [0, 1], got {dropout!r}")
        self.base = base
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        dev = base.packed_weight.device
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, device=dev, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, device=dev, dtype=dtype))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def _fusable(self) -> bool:
        return self._fusable_with(self.base, self.dropout)

    def _fusable_with(self, base: PackedLinear, dropout: nn.Module) -> bool:
        dropout_active = self.training and isinstance(dropout, nn.Dropout) and dropout.p > 0
        return base.act_bits is None and not dropout_active

    def forward(self, x: Tensor) -> Tensor:
        # Submodules, Parameters and the base's buffers straight from nn.Module's dicts,
        # as in PackedLinear.forward: ten look-ups through nn.Module.__getattr__ otherwise.
        try:
            base, dropout = self._modules["base"], self._modules["dropout"]
            lora_a, lora_b = self._parameters["lora_A"], self._parameters["lora_B"]
            bufs = base._buffers
            w, s, u, bias = bufs["packed_weight"], bufs["scale"], bufs["offset"], bufs["bias"]
        except KeyError:  # something made into another kind of attribute (e.g. torch.nn.utils.parametrize)
            base, dropout, lora_a, lora_b = self.base, self.dropout, self.lora_A, self.lora_B
            w, s, u, bias = base.packed_weight, base.scale, base.offset, base.bias
        x = _autocast_x(x)  # (before the adapters too: the whole layer in the autocast dtype, as nn.Linear's would be)
        if self._fusable_with(base, dropout) and not base._takes_transposed_backward(x, s, u):
            return _packed_lora(base, x, w, s, u, bias, lora_a, lora_b, self.scaling)
        y = base(x)
        h = dropout(x)
        # the fused op's dtype rule (_adapters_for): float32 adapters take x in float32 (float32 accumulation); others
        # are cast to x's dtype (casting x to float16 adapters would overflow a bfloat16 / float32 x past 65504)
        a_, b_ = _adapters_for(h, lora_a, lora_b)
        if h.dtype != a_.dtype:
            h = h.to(a_.dtype)
        d = F.linear(F.linear(h, a_), b_) * self.scaling
        return y + d.to(y.dtype)

    @torch.no_grad()
    def fold_offset(self) -> "PackedLoRALinear":
        """HQQ+ merge (in place; returns self): the base's zero-point term ``x @ 1^T * u``
        becomes extra adapter rank (see :func:`fold_offset_into_lora`) and the base gets
        ``offset=None``, with the same output.  The rank grows by 1 for a per-tensor or
        per-channel offset and by ``in_features / group_size`` for a group-wise one (the
        exact merge needs that many); ``r`` is updated, ``scaling`` is kept.  The folded
        rows / columns are part of ``lora_A`` / ``lora_B`` and train with them.

        ``lora_A`` and ``lora_B`` become new Parameters (create the optimizer after
        folding) and the base a new :class:`PackedLinear` sharing the packed weight and
        scale (a base shared with other modules is not modified).  A state dict saved after
        folding loads into a folded layer, not into an unfolded one (other shapes).  Raises when the base quantizes activations
        (``act_bits``) or dropout is set: the folded term would then see another x than
        the offset term does.  No-op when the base has no offset.
        """
        base = self.base
        if base.offset is None:
            return self
        if base.act_bits is not None:
            raise ValueError("PackedLoRALinear.fold_offset: the base quantizes activations (act_bits="
                             f"{base.act_bits}) but the adapter sees float x; the folded offset would change")
        if isinstance(self.dropout, nn.Dropout) and self.dropout.p > 0:
            raise ValueError("PackedLoRALinear.fold_offset: needs dropout=0 (the folded offset term would be "
                             "dropped out with the adapter input in training)")
        a, b = fold_offset_into_lora(base.offset, self.lora_A, self.lora_B, self.scaling)
        new_base = PackedLinear._from_args(base.kind, base.in_features, base.group_size, base.packed_weight,
                                           base.scale, None, base.bias, base.act_bits)
        new_base.train(base.training)
        # the base's per-instance options (set on the instance: enable_transposed_backward etc.) carry over; its
        # derived caches do not (the new base remakes them)
        for opt in ("use_cpu_prepack", "transposed_backward", "int8_matmul"):
            if opt in base.__dict__:
                setattr(new_base, opt, base.__dict__[opt])
        self.base = new_base
        self.lora_A = nn.Parameter(a, requires_grad=self.lora_A.requires_grad)
        self.lora_B = nn.Parameter(b, requires_grad=self.lora_B.requires_grad)
        self.r = a.shape[0]
        return self

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


# --------------------------------------------------------------------------------------
# Model conversion
# --------------------------------------------------------------------------------------
def enable_transposed_backward(model: nn.Module, enabled: bool = True) -> int:
    """Sets ``transposed_backward`` on every :class:`PackedLinear` in ``model`` (the bases of
    :class:`PackedLoRALinear` included) whose scales are per tensor or per channel; returns how
    many.  Each such layer then keeps a second packed copy of its weight (W^T) while training
    through it, and its grad_x runs on the forward kernels (see ``PackedLinear``).  Measured: on
    CPU 3-6x faster than ``linear_grad_x``; on an H200 (fp16, 8192x28672) faster only with one row
    of x (48 vs 60 us), slower at 4-8 rows (README, "Layers and checkpoints")."""
    n = 0
    for m in model.modules():
        if isinstance(m, PackedLinear) and m.scale.dim() <= 1 and (m.offset is None or m.offset.dim() <= 1):
            m.transposed_backward = bool(enabled)
            if not enabled:
                m.__dict__.pop("_transposed", None)
                m.__dict__.pop("_transposed_cpu_prepacked", None)
            n += 1
    return n


def enable_int8_matmul(model: nn.Module, enabled: bool = True) -> int:
    """Sets ``int8_matmul`` on every :class:`PackedLinear` in ``model`` with ``act_bits=8`` and a per tensor /
    per channel scale (BitNet b1.58's layers); returns how many.  Their forward on CUDA (and on x86 CPUs with AVX2
    or AVX-512 VNNI) then runs the W2A8 op,
    :func:`bitmm.ops.linear_a8` (see ``PackedLinear``)."""
    n = 0
    for m in model.modules():
        if (isinstance(m, PackedLinear) and m.act_bits == 8 and (m.scale.dim() <= 1 or m.scale.shape[1] == 1)
                and (m.offset is None or m.offset.dim() <= 1 or m.offset.shape[1] == 1)):
            m.int8_matmul = bool(enabled)
            n += 1
    return n


@dataclass
class ConversionReport:
    """What :func:`convert` did.  ``replaced`` / ``skipped`` are qualified module
    names; ``bytes_*`` are the model's parameter + buffer bytes (each storage
    counted once) before and after; ``tied`` describes shared weights."""

    replaced: list[str]
    skipped: list[str]
    bytes_before: int
    bytes_after: int
    tied: list[str] = field(default_factory=list)
    mode: str = "qat"

    def __str__(self) -> str:
        lines = [f"bitmm.convert(mode={self.mode!r}): replaced {len(self.replaced)} Linear layer(s), "
                 f"skipped {len(self.skipped)}; model bytes {_fmt_bytes(self.bytes_before)} -> "
                 f"{_fmt_bytes(self.bytes_after)}"]
        if self.skipped:
            lines.append("  skipped: " + ", ".join(self.skipped))
        for t in self.tied:
            lines.append("  tied: " + t)
        return "\n".join(lines)


def _model_bytes(model: nn.Module) -> int:
    seen = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = (t.device, t.data_ptr(), t.nbytes)
        if key in seen or t.device.type == "meta":
            continue
        seen.add(key)
        total += t.nbytes
    return total


def _is_skipped(name: str, skip) -> bool:
    if skip is None:
        return False
    if callable(skip):
        return bool(skip(name))
    if isinstance(skip, str):
        skip = (skip,)
    for pat in skip:
        if fnmatch.fnmatchcase(name, pat):
            return True
        if not any(c in pat for c in "*?[") and pat in name:
            return True
    return False


def convert(model: nn.Module, mode: str = "qat", weight_bits: BitsLike = 1.58, group_size: Optional[int] = None,
            skip: Union[Iterable[str], Callable[[str], bool], None] = ("lm_head",), act_bits: Optional[int] = None,
            hqq_iters: int = 20, verbose: bool = False) -> nn.Module:
    """Replaces every ``nn.Linear`` of ``model`` (recursively, in place) and returns the model.

    Args:
        mode: "qat" -> :class:`BitLinear` (which reuses the Linear's Parameter
            objects, so ties and optimizer state references survive); "packed"
            -> :class:`PackedLinear`.  In "packed" mode existing BitLinear layers
            are frozen too (with their own bits / group size / act_bits, via
            ``PackedLinear.from_bitlinear``), so ``convert(convert(m, "qat"), "packed")``
            is the QAT -> inference path.
        weight_bits, group_size, act_bits, hqq_iters: layer settings (see :class:`BitLinear`).
        skip: module names to leave alone: fnmatch patterns matched against the
            qualified name (``"decoder.*.proj"``), plain strings matched as
            substrings (``"lm_head"``), or a callable ``name -> bool``.  Linear
            layers inside ``nn.MultiheadAttention`` are always skipped (it uses
            their weights functionally).

    Returns the same ``model`` object (or the new layer when ``model`` itself is a
    Linear), with a :class:`ConversionReport` in ``model.bitmm_report`` (printed
    when ``verbose``).

    Tied weights: Linear layers sharing one weight Parameter are all converted.
    In "qat" mode they keep sharing the latent Parameter.  In "packed" mode
    layers sharing a weight (with the same settings) share one set of packed
    buffers; a tie with a module that is not converted (an embedding, a skipped
    layer) is broken -- that module keeps the float weight -- and the report says so.
    """
    if mode not in ("qat", "packed"):
        raise ValueError(f"convert: mode must be 'qat' or 'packed', got {mode!r}")
    _canonical_bits(weight_bits)
    _check_act_bits(act_bits)
    bytes_before = _model_bytes(model)

    def convertible(m: nn.Module) -> bool:
        if mode == "qat":
            return isinstance(m, nn.Linear)
        return isinstance(m, (nn.Linear, BitLinear))

    # Who uses each parameter (qualified parameter names, ties included).
    owners: dict[int, list[str]] = {}
    for pname, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(p), []).append(pname)

    replaced: list[str] = []
    skipped: list[str] = []
    new_of: dict[int, nn.Module] = {}  # id(old module) -> its replacement (a module registered twice)
    packed_of: dict[tuple, tuple] = {}  # (id(weight), settings) -> shared packed buffers
    converted_weight_names: dict[int, list[str]] = {}

    def make(name: str, old: nn.Module) -> nn.Module:
        if id(old) in new_of:
            return new_of[id(old)]
        w = old.weight
        if mode == "qat":
            new = BitLinear.from_linear(old, weight_bits, act_bits, group_size, hqq_iters, share_parameters=True)
        else:
            if isinstance(old, BitLinear):
                settings = (old.kind, old.group_size, old.act_bits, old.hqq_iters)
            else:
                settings = (_canonical_bits(weight_bits)[1], group_size, act_bits, hqq_iters)
            key = (id(w), settings)
            if key in packed_of:
                kind, K, G, packed, scale, offset, act = packed_of[key]
                new = PackedLinear._from_args(kind, K, G, packed, scale, offset, None, act)
                if old.bias is not None:  # bias is not necessarily shared
                    new.bias = old.bias.detach().clone()
            else:
                if isinstance(old, BitLinear):
                    new = PackedLinear.from_bitlinear(old)
                else:
                    new = PackedLinear.from_linear(old, weight_bits, group_size, act_bits, hqq_iters)
                packed_of[key] = (new.kind, new.in_features, new.group_size, new.packed_weight, new.scale,
                                  new.offset, new.act_bits)
        new.train(old.training)
        new_of[id(old)] = new
        converted_weight_names.setdefault(id(w), []).append(name + ".weight" if name else "weight")
        return new

    if convertible(model):
        if _is_skipped("", skip):
            skipped.append("")
            result = model
        else:
            result = make("", model)
            replaced.append("")
    else:
        result = model
        swaps = []  # (parent, child name, replacement): made first, swapped in only once every layer converted
        for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
            for child_name, child in list(parent._modules.items()):
                if child is None:
                    continue
                full = f"{parent_name}.{child_name}" if parent_name else child_name
                if not convertible(child):
                    continue
                if isinstance(parent, nn.MultiheadAttention) or _is_skipped(full, skip):
                    skipped.append(full)
                    continue
                swaps.append((parent, child_name, make(full, child)))
                replaced.append(full)
        for parent, child_name, new in swaps:  # (a failure above left the model untouched)
            setattr(parent, child_name, new)

    tied: list[str] = []
    for wid, names in owners.items():
        if len(names) < 2 or wid not in converted_weight_names:
            continue
        conv = set(converted_weight_names[wid])
        others = [n for n in names if n not in conv]
        if mode == "qat":
            tied.append(f"{', '.join(names)} share one weight; the BitLinear layers keep sharing the latent "
                        f"Parameter")
        elif not others:
            tied.append(f"{', '.join(names)} share one weight; converted layers share one packed weight")
        else:
            tied.append(f"{', '.join(names)} share one weight; tie BROKEN in packed mode: {', '.join(others)} "
                        f"keep the float weight, {', '.join(sorted(conv))} use a packed copy")

    report = ConversionReport(replaced=replaced, skipped=skipped, bytes_before=bytes_before,
                              bytes_after=_model_bytes(result), tied=tied, mode=mode)
    result.bitmm_report = report
    if verbose:
        print(report)
    return result
