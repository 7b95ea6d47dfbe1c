"""Loads a CMake-built libbitmm.so into Python and checks bitmm::ternary_linear.

    python3 examples/cpp/load_library_check.py build/cmake/libbitmm.so

Runs in its own interpreter and never imports the `bitmm` package: that would
register the same ops a second time (from bitmm._C) and fail.  Checks the CPU
kernel against the dense reference and, where a GPU is present and the library
was built with BITMM_CUDA=ON, the CUDA kernel too.  Exit status 0 = pass.
"""
import sys

import torch

TOL = 1e-4


def check(device: str) -> float:
    g = torch.Generator().manual_seed(0)
    n, k, m = 37, 100, 5
    codes = torch.randint(0, 3, (n, k), generator=g)  # ternary t + 1
    x = torch.randn(m, k, generator=g)
    scale = torch.rand(n, generator=g) + 0.5
    packed = torch.ops.bitmm.pack(codes.to(device), 2)
    y = torch.ops.bitmm.ternary_linear(x.to(device), packed, scale.to(device), None, None)
    ref = x @ (codes - 1).float().t() * scale
    err = (y.cpu() - ref).abs().max().item()
    print(f"{device}: torch.ops.bitmm.ternary_linear max abs error {err:.3g}")
    return err


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "build/cmake/libbitmm.so"
    torch.ops.load_library(path)
    assert "bitmm" not in sys.modules, "the bitmm package must not be imported here"
    print(f"loaded {path}: {torch.ops.bitmm.ternary_linear}")
    errors = {"cpu": check("cpu")}
    has_cuda_kernel = torch._C._dispatch_has_kernel_for_dispatch_key("bitmm::ternary_linear", "CUDA")
    if has_cuda_kernel and torch.cuda.is_available():
        errors["cuda"] = check("cuda")
    else:
        print(f"cuda: skipped (CUDA kernel registered: {has_cuda_kernel}, "
              f"GPU available: {torch.cuda.is_available()})")
    bad = {d: e for d, e in errors.items() if not e <= TOL}
    if bad:
        print(f"FAIL: error above {TOL:g}: {bad}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
