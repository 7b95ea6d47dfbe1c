"""Eager-mode (no CUDA graphs) cost of a layer call: host time and end-to-end time.

    python bench/eager_bench.py --out bench/results/eager.json

Most users run models eagerly, so the per-call host work (Python, dispatcher,
autograd wrappers, argument checks, launch) adds to every layer.  For each
shape this measures, for fp16 `nn.Linear` and `bitmm.nn.PackedLinear`
(ternary, per-tensor scale) at M = 1:

* host_us: CPU time to issue one call (loop of 200 calls over a GPU queue that
  starts empty and never fills, no synchronisation inside the loop);
* eager_us: wall time per call of a loop over enough layers that their weights
  exceed the 50 MB L2 (as in a model), synchronised at the end.

Both under torch.no_grad() (inference) and with grad mode on (x does not
require grad; what an eval loop that forgot no_grad pays).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm.benchmark_timing import write_results  # noqa: E402

SHAPES = [(1024, 1024), (4096, 4096), (8192, 8192), (8192, 28672)]


def _per_call_us(layers, x, rounds, repeats, until_gpu_done):
    """Median over `repeats` of the time per call of `rounds` passes over `layers`, from an idle
    GPU; the clock stops when the last call returns (host time) or when the GPU is done."""
    out = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(rounds):
            for layer in layers:
                layer(x)
        if until_gpu_done:
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) / (rounds * len(layers)) * 1e6)
        torch.cuda.synchronize()
    return statistics.median(out)


def host_us(layer, x, calls=200, repeats=7):
    return _per_call_us([layer], x, calls, repeats, until_gpu_done=False)


def eager_us(layers, x, rounds=20, repeats=7):
    return _per_call_us(layers, x, rounds, repeats, until_gpu_done=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/eager.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    records = []
    for K, N in SHAPES:
        copies = max(2, min(32, -(-(200 << 20) // (2 * K * N))))
        dense = [nn.Linear(K, N, bias=False, device="cuda", dtype=torch.float16) for _ in range(copies)]
        packed = [bitmm.nn.PackedLinear.from_linear(lin, weight_bits=1.58).to("cuda") for lin in dense]
        x = torch.randn(1, K, device="cuda", dtype=torch.float16)
        for grad_mode in (False, True):
            with torch.set_grad_enabled(grad_mode):
                for name, layers in (("nn.Linear fp16", dense), ("PackedLinear ternary", packed)):
                    for _ in range(3):
                        eager_us(layers, x, rounds=2, repeats=1)
                    rec = {"layer": name, "K": K, "N": N, "M": 1, "grad_mode": grad_mode,
                           "host_us": round(host_us(layers[0], x), 2), "eager_us": round(eager_us(layers, x), 2)}
                    records.append(rec)
                    print(f"{name:22s} K={K:5d} N={N:5d} grad={int(grad_mode)}  host {rec['host_us']:7.2f} us"
                          f"  eager {rec['eager_us']:8.2f} us", flush=True)
        del dense, packed
        torch.cuda.empty_cache()
    for K, N in SHAPES:
        for g in (False, True):
            d = next(r for r in records if r["K"] == K and r["N"] == N and r["grad_mode"] == g and "nn" in r["layer"])
            p = next(r for r in records if r["K"] == K and r["N"] == N and r["grad_mode"] == g and "Packed" in r["layer"])
            print(f"K={K:5d} N={N:5d} grad={int(g)}: host +{p['host_us'] - d['host_us']:.2f} us, "
                  f"eager speedup x{d['eager_us'] / p['eager_us']:.2f}")
    write_results(args.out, torch.cuda.get_device_name(), records)


if __name__ == "__main__":
    main()
