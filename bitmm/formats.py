"""Packed weight formats: the Python mirror of ``csrc/bitmm_format.h``.

Read that header for the full layout; in short, a weight matrix (N, K) is stored
as an int32 tensor (N, words_per_row).  Each row is padded to a multiple of
``ROW_ALIGN_K`` (128) weights and cut into 32-weight blocks; a block is one
32-bit word per bit-plane:

=========  ======  ===========  ==========================================
kind       planes  bits/weight  code per weight
=========  ======  ===========  ==========================================
binary     1       1            b in {0, 1}
ternary    2       2            c = t + 1   (-1, 0, 1 -> 0, 1, 2)
int2       2       2            q in {0, 1, 2, 3}  (value q - 1)
=========  ======  ===========  ==========================================

Two-plane rows are ``[lo0, hi0, lo1, hi1, ...]`` (lo = code & 1, hi = code >> 1).
Inside a word, weight ``k0 + 2i`` sits at bit ``i`` and weight ``k0 + 2i + 1``
at bit ``16 + i`` (even weights in the low half-word, odd ones in the high one)::

    bit:    31 ............ 16 | 15 ............. 0
    weight: 31 29 ...  5  3  1 | 30 28 ...  4  2  0      (offset from k0)

Padding weights hold the code of the value 0.  These functions are pure torch,
run on any device and give the same bytes as the C++ packer ``torch.ops.bitmm.pack``.
"""
from __future__ import annotations

import torch

BLOCK_K = 32
ROW_ALIGN_K = 128

KINDS = {"binary": 1, "ternary": 2, "int2": 3}
PLANES = {"binary": 1, "ternary": 2, "int2": 2}
MAX_CODE = {"binary": 1, "ternary": 2, "int2": 3}
ZERO_CODE = {"binary": 0, "ternary": 1, "int2": 1}
BITS_PER_WEIGHT = PLANES  # bits stored per weight (ternary uses 2 bits for log2(3) = 1.58)


def _offset_of_bit() -> list[int]:
    """offset_of_bit[p]: which weight of a 32-block lives at bit p."""
    return [2 * p if p < 16 else 2 * (p - 16) + 1 for p in range(BLOCK_K)]


OFFSET_OF_BIT = _offset_of_bit()
BIT_OF_OFFSET = [OFFSET_OF_BIT.index(j) for j in range(BLOCK_K)]


def padded_k(K: int) -> int:
    return (K + ROW_ALIGN_K - 1) // ROW_ALIGN_K * ROW_ALIGN_K


def words_per_row(kind: str, K: int) -> int:
    if not isinstance(kind, str) or kind not in PLANES:
        raise ValueError(f"bitmm.formats: kind must be one of {sorted(PLANES)}, got {kind!r}")
    return padded_k(K) // BLOCK_K * PLANES[kind]


def packed_shape(kind: str, N: int, K: int) -> tuple[int, int]:
    return (N, words_per_row(kind, K))


def packed_nbytes(kind: str, N: int, K: int) -> int:
    return N * words_per_row(kind, K) * 4


# CPU prepacked layout (csrc/cpu_prepack_format.h): a derived copy of a packed weight that
# ``torch.ops.bitmm.cpu_prepack`` makes once per layer; 64-byte header + 128 bytes per packed
# word and 32-row tile.
CPU_PREPACK_VERSION = 1
CPU_PREPACK_TILE_ROWS = 32
CPU_PREPACK_HEADER_BYTES = 64


def cpu_prepacked_nbytes(kind: str, N: int, K: int) -> int:
    """Bytes of the ``torch.ops.bitmm.cpu_prepack`` blob of an (N, K) weight of ``kind``."""
    tiles = (N + CPU_PREPACK_TILE_ROWS - 1) // CPU_PREPACK_TILE_ROWS
    return CPU_PREPACK_HEADER_BYTES + tiles * words_per_row(kind, K) * 4 * CPU_PREPACK_TILE_ROWS


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")


def pack_codes(codes: torch.Tensor, kind: str) -> torch.Tensor:
    """Packs stored codes (N, K) (binary b, ternary t+1, int2 q) into int32 words."""
    _check_kind(kind)
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a torch.Tensor, got {type(codes).__name__}")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"pack({kind}): codes must be an integer tensor, got {codes.dtype}")
    if codes.dim() != 2 or codes.shape[0] < 1 or codes.shape[1] < 1:
        raise ValueError(f"pack({kind}): codes must be 2-D (N, K) with N, K >= 1, got shape {tuple(codes.shape)}")
    N, K = codes.shape
    c = codes.to(torch.int64)
    lo_bad = int((c < 0).sum())
    hi_bad = int((c > MAX_CODE[kind]).sum())
    if lo_bad or hi_bad:
        raise ValueError(f"pack({kind}): codes must be in [0, {MAX_CODE[kind]}], found {lo_bad + hi_bad} out-of-range values")
    Kp = padded_k(K)
    if Kp != K:
        c = torch.nn.functional.pad(c, (0, Kp - K), value=ZERO_CODE[kind])
    c = c.reshape(N, Kp // BLOCK_K, BLOCK_K)[..., OFFSET_OF_BIT]  # bit order
    shifts = torch.arange(BLOCK_K, device=c.device, dtype=torch.int64)

    def plane(bits: torch.Tensor) -> torch.Tensor:
        words = (bits << shifts).sum(-1)  # exact in int64: < 2**32
        return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)

    lo = plane(c & 1)
    if PLANES[kind] == 1:
        return lo.contiguous()
    hi = plane(c >> 1)
    return torch.stack([lo, hi], dim=-1).reshape(N, -1).contiguous()


def unpack_codes(packed: torch.Tensor, kind: str, K: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: int32 words -> stored codes (N, K) int8."""
    _check_kind(kind)
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.int32:
        raise TypeError(f"unpack({kind}): packed must be an int32 tensor, got {getattr(packed, 'dtype', type(packed))}")
    if K < 1:
        raise ValueError(f"unpack({kind}): K must be >= 1, got {K}")
    if packed.dim() != 2 or packed.shape[1] != words_per_row(kind, K):
        raise ValueError(f"unpack({kind}): packed of shape {tuple(packed.shape)} does not hold K={K} weights "
                         f"per row (needs {words_per_row(kind, K)} int32 words per row)")
    N = packed.shape[0]
    planes = PLANES[kind]
    w = packed.to(torch.int64) & 0xFFFFFFFF
    w = w.reshape(N, -1, planes)
    shifts = torch.arange(BLOCK_K, device=w.device, dtype=torch.int64)
    bits = (w.unsqueeze(-1) >> shifts) & 1  # (N, nblocks, planes, 32) in bit order
    code = bits[:, :, 0] if planes == 1 else bits[:, :, 0] | (bits[:, :, 1] << 1)
    code = code[..., BIT_OF_OFFSET]  # back to weight order
    return code.reshape(N, -1)[:, :K].to(torch.int8)
