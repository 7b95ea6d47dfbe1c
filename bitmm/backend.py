"""Which CUDA kernel family the bitmm linear ops use.

    bitmm.set_backend("addsub")        # multiplication-free add/subtract kernels at every M
    bitmm.set_backend("tensorcore")    # tensor-core kernels wherever they apply (fp16 / bf16 x)
    bitmm.set_backend("dense")         # dequantize weight slices to x's dtype, then cuBLAS
    bitmm.set_backend("wgmma")         # Hopper warpgroup tensor-core kernel (sm_90a build on an
                                       # H100 / H200), else as "tensorcore"
    bitmm.set_backend("digits")        # forward, fp16 / bf16 x, per tensor / per channel scales, M <= 64:
                                       # each row of x as a 30-bit fixed point in four int8 digits on the
                                       # int8 tensor cores (not yet run on a GPU: README); else as "auto"
    bitmm.set_backend("auto")          # default: the fastest for M, shape and dtype (README)
    with bitmm.use_backend("addsub"):  # scoped; restores the previous setting
        y = layer(x)

The setting is process-wide (all threads) and read on every call, so it also
applies inside torch.compile'd graphs and CUDA-graph captures made while it is
set.  CPU ops always use the CPU kernels.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from . import _C  # noqa: F401  (registers torch.ops.bitmm)

BACKENDS = {"auto": 0, "addsub": 1, "tensorcore": 2, "dense": 3, "wgmma": 4, "digits": 5}
_NAMES = {v: k for k, v in BACKENDS.items()}


def set_backend(name: str) -> str:
    """Selects the CUDA kernel family; returns the previous setting's name."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"bitmm.set_backend: backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return _NAMES[int(torch.ops.bitmm._set_backend(BACKENDS[name]))]


def get_backend() -> str:
    return _NAMES[int(torch.ops.bitmm._get_backend())]


def last_kernel() -> str:
    """The CUDA kernel family that this thread's last CUDA linear / grad_x / linear_a8 call ran.

    One of "none" (M = 0, or no CUDA call yet), "addsub", "tensorcore", "dense", "wgmma", "digits",
    "generic" (fp64 x, or groups not a multiple of 32), "a8_fused", "a8_unfused".  A forced backend
    falls back to another family where its kernel declines a shape (set_backend), so this is how to
    check which one ran.  Per thread: autograd's backward runs on another thread than the forward.
    CPU calls leave it as it was.
    """
    return str(torch.ops.bitmm._last_kernel())


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager form of :func:`set_backend`."""
    previous = set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)
