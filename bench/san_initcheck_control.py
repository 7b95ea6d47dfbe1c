"""Attribution control for initcheck's reports in torch's copy kernels (bench/results/h200_sanitizers_*).

Under `compute-sanitizer --tool initcheck` the GPU tests report "Uninitialized __global__ memory read"
only in torch's direct_copy kernel, while it converts an fp16 / bf16 tensor to float64 (the tests'
`.double()` before comparing with the reference), and only in tests whose output comes from cuBLAS
(bitmm's dense backend: dequantized W + cuBLAS, which auto picks for fp16 / bf16 grad_x above M = 32-64).  The
hypothesis: initcheck does not record the writes of cuBLAS's sm_90 GEMMs (they store through the TMA
unit), so every later read of their output looks uninitialized.  Each mode below computes a 129 x 384
fp16 product once and reads it with `.double()`:

    cublas   F.linear (cuBLAS), no bitmm code: reports here are initcheck's, not bitmm's
    dense    bitmm grad_x forced to the dense backend (its dequantize kernel + cuBLAS)
    bitmm    bitmm grad_x forced to the tensor-core kernel (bitmm's own stores only): must be clean

    compute-sanitizer --tool initcheck python3 bench/san_initcheck_control.py cublas
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the in-place build
import torch
import torch.nn.functional as F

mode = sys.argv[1] if len(sys.argv) > 1 else "cublas"
torch.manual_seed(0)
M, K, N = 129, 256, 384
g = torch.randn(M, N, device="cuda", dtype=torch.float16)
if mode == "cublas":
    w = torch.randn(K, N, device="cuda", dtype=torch.float16)
    y = F.linear(g, w)
else:
    import bitmm
    packed = bitmm.formats.pack_codes(torch.randint(0, 3, (N, K)), "ternary").cuda()  # codes t + 1
    s = torch.rand(N, 1, device="cuda", dtype=torch.float16) + 0.5
    with bitmm.use_backend("dense" if mode == "dense" else "tensorcore"):
        y = bitmm.linear_grad_x(g, packed, s, None, "ternary", K)
torch.cuda.synchronize()
print(mode, tuple(y.shape), float(y.double().abs().sum()))
