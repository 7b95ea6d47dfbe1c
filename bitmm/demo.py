"""``python -m bitmm demo``: quantize a trained model with bitmm, report the
error against the float model and the speed against float F.linear.

The model is an MLP trained here on scikit-learn's bundled handwritten digits
(real data, no download) when scikit-learn is installed, else on a synthetic
task.  Every hidden layer is replaced by a packed bitmm layer (1.58-bit
ternary, 2-bit HQQ, 1-bit), which computes with additions only.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

import bitmm
import bitmm.nn as bnn


def load_data(device):
    try:
        from sklearn.datasets import load_digits
        d = load_digits()
        x = torch.tensor(d.data, dtype=torch.float32) / 16.0
        y = torch.tensor(d.target)
        name = "scikit-learn digits (1797 8x8 images)"
    except ImportError:  # synthetic stand-in: labels from a fixed random teacher
        g = torch.Generator().manual_seed(0)
        x = torch.rand(2000, 64, generator=g)
        y = (x @ torch.randn(64, 10, generator=g)).argmax(1)
        name = "synthetic (install scikit-learn for the digits data set)"
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    x, y = x[perm].to(device), y[perm].to(device)
    n = int(0.8 * len(x))
    return name, (x[:n], y[:n]), (x[n:], y[n:])


def train_float(train, device, steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
                          nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = train
    for i in range(steps):
        idx = torch.randint(0, len(x), (128,), device=device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@torch.no_grad()
def evaluate(model, test):
    x, y = test
    logits = model(x)
    return (logits.argmax(1) == y).float().mean().item(), logits


def time_us(fn, repeats):
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1e6)
    ts.sort()
    return ts[len(ts) // 2]


def speed(device, quick):
    K = N = 4096
    dtype = torch.float16 if device == "cuda" else torch.float32
    rows = []
    for M in (1, 16):
        x = torch.randn(M, K, device=device, dtype=dtype)
        w = torch.randn(N, K, device=device, dtype=dtype)
        t = torch.randint(-1, 2, (N, K), device=device)
        packed, s = bitmm.pack_ternary(t), torch.tensor(0.02, device=device)
        reps = 20 if quick else 100
        f = time_us(lambda: F.linear(x, w), reps)
        b = time_us(lambda: bitmm.ternary_linear(x, packed, s), reps)
        rows.append((M, f, b))
    return dtype, rows


def main(quick: bool = False) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    name, train, test = load_data(device)
    print(f"bitmm {bitmm.__version__} demo on {device}; data: {name}")
    model = train_float(train, device, 300 if quick else 1500)
    acc_f, logits_f = evaluate(model, test)
    print(f"\n{'model':28s} {'test acc':>8s} {'logit rel. err':>15s} {'weight bytes':>13s}")
    print(f"{'float32':28s} {acc_f:8.3f} {0.0:15.4f} {sum(p.numel() * 4 for p in model.parameters()):13,d}")
    for bits, label in ((1.58, "ternary 1.58-bit (absmean)"), (2, "int2 2-bit (HQQ, g64)"),
                        (1, "binary 1-bit (sign, beta)")):
        import copy
        q = bnn.convert(copy.deepcopy(model), mode="packed", weight_bits=bits, skip=("0", "6"))
        acc, logits = evaluate(q, test)
        err = ((logits - logits_f).norm() / logits_f.norm()).item()
        nbytes = sum(b.numel() * b.element_size() for b in q.buffers()) + sum(
            p.numel() * p.element_size() for p in q.parameters())
        print(f"{label:28s} {acc:8.3f} {err:15.4f} {nbytes:13,d}")
    print("(first and last layers stay float, as is usual; hidden 512x512 layers are packed)")

    dtype, rows = speed(device, quick)
    ref = "fp16" if dtype == torch.float16 else "fp32"
    print(f"\nspeed, one 4096x4096 layer ({'CUDA' if device == 'cuda' else 'CPU, %d threads' % torch.get_num_threads()},"
          f" eager, warm weights):")
    print(f"{'M':>3s} {ref + ' F.linear us':>16s} {'bitmm ternary us':>17s} {'speedup':>8s}")
    for M, f, b in rows:
        print(f"{M:3d} {f:16.1f} {b:17.1f} {f / b:8.2f}x")
    print("\nbench/cpu_bench.py and bench/cuda_bench.py measure with weights rotated past the caches.")


if __name__ == "__main__":
    main()
