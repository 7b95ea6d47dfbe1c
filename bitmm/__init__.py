"""bitmm: multiplication-free low-bit (1, 1.58 and 2-bit) linear layers for PyTorch.

    import bitmm
    packed = bitmm.pack_ternary(t)                     # t: (N, K) in {-1, 0, 1}
    y = bitmm.ternary_linear(x, packed, scale)         # = x @ (t * scale)^T, adds and subtracts only
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import formats, reference
from .backend import get_backend, set_backend, use_backend
from .ops import binary_linear, int2_linear, linear, linear_a8, linear_grad_x, lora_linear, ternary_linear

__version__ = "0.1.0"

__all__ = [
    "pack_ternary", "pack_binary", "pack_int2", "unpack_ternary", "unpack_binary", "unpack_int2",
    "ternary_linear", "binary_linear", "int2_linear", "linear", "linear_a8", "linear_grad_x", "formats", "reference",
    "set_backend", "get_backend", "use_backend", "lora_linear",
]


def _pack(values: Tensor, kind: str, shift: int, allowed: str) -> Tensor:
    if not isinstance(values, Tensor):
        raise TypeError(f"pack_{kind}: expected a torch.Tensor, got {type(values).__name__}")
    if values.is_floating_point():
        # Accept float tensors holding exact integers (e.g. the output of round()).
        if not torch.equal(values, values.round()):
            raise ValueError(f"pack_{kind}: values must be integers in {allowed}, got non-integer floats")
    if values.is_complex() or values.dtype == torch.bool:
        raise TypeError(f"pack_{kind}: values must be an integer tensor, got {values.dtype}")
    if values.dim() != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise ValueError(f"pack_{kind}: values must be 2-D (N, K) with N, K >= 1, got shape {tuple(values.shape)}")
    # the range check on the values as given (min / max, no copy), then int8 codes: N x K bytes, where an int64
    # copy and its comparisons took ~10 bytes per weight (2^31 weights: 2 GB, not ~20 GB)
    if values.dtype in (torch.uint16, torch.uint32, torch.uint64):  # (no CPU aminmax / comparisons for these)
        values = values.to(torch.int64)
    lo, hi = (v.item() for v in torch.aminmax(values))  # (Python numbers: a uint8 tensor would wrap -shift)
    if lo < -shift or hi > formats.MAX_CODE[kind] - shift:  # (float +-Inf too)
        v = values if values.is_floating_point() else values.to(torch.int64)  # (the failure path only)
        bad = int(((v < -shift) | (v > formats.MAX_CODE[kind] - shift)).sum())
        raise ValueError(f"pack_{kind}: values must be in {allowed}; found {bad} out-of-range values")
    codes = values.to(torch.int8)
    if shift:
        codes = codes + shift if codes is values else codes.add_(shift)
    return torch.ops.bitmm.pack(codes, formats.KINDS[kind])


def pack_ternary(t: Tensor) -> Tensor:
    """(N, K) integers in {-1, 0, 1} -> packed int32 (2 bits per weight)."""
    return _pack(t, "ternary", 1, "{-1, 0, 1}")


def pack_binary(b: Tensor) -> Tensor:
    """(N, K) integers in {0, 1} -> packed int32 (1 bit per weight)."""
    return _pack(b, "binary", 0, "{0, 1}")


def pack_int2(q: Tensor) -> Tensor:
    """(N, K) integers in {0, 1, 2, 3} -> packed int32 (2 bits per weight); the op uses q - 1."""
    return _pack(q, "int2", 0, "{0, 1, 2, 3}")


def unpack_ternary(packed: Tensor, K: int) -> Tensor:
    """Packed ternary -> (N, K) int8 in {-1, 0, 1}."""
    return torch.ops.bitmm.unpack(packed, formats.KINDS["ternary"], K) - 1


def unpack_binary(packed: Tensor, K: int) -> Tensor:
    """Packed binary -> (N, K) int8 in {0, 1}."""
    return torch.ops.bitmm.unpack(packed, formats.KINDS["binary"], K)


def unpack_int2(packed: Tensor, K: int) -> Tensor:
    """Packed int2 -> (N, K) int8 in {0, 1, 2, 3}."""
    return torch.ops.bitmm.unpack(packed, formats.KINDS["int2"], K)


def __getattr__(name: str):
    # bitmm.nn, bitmm.quant and bitmm.checkpoint load on first use.
    if name in ("nn", "quant", "checkpoint", "demo"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'bitmm' has no attribute {name!r}")
