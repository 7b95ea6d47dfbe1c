"""CPU A/B of PackedLoRALinear's two forwards on float32 x, alternated call by call in one process:
"fused" = the one op bitmm::lora_linear (reads neither prepacked CPU layout), "layer" = what the layer
runs now (since session 40): base(x) on cpu_prepacked_linear's layouts + the adapter product.
Each of 8 layers has its own weights and scales (cold between uses, as in a model); median of rounds.

    python bench/cpu_lora_ab.py [--K 4096 --N 4096 --r 16 --M 1,4,16 --rounds 15] [--train]

--train times forward + backward (x and the adapters requiring grad) instead of the forward alone.
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
from bitmm.nn import PackedLinear, PackedLoRALinear, _adapters_for  # noqa: E402
from bitmm.ops import lora_linear  # noqa: E402


def fused(m: PackedLoRALinear, x):
    b = m.base._buffers
    a_, b_ = _adapters_for(x, m.lora_A, m.lora_B)
    return lora_linear(m.base.kind, x, b["packed_weight"], b["scale"], b["offset"], b["bias"], a_, b_, m.scaling)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, default=4096)
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--M", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--train", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, K={a.K} N={a.N} r={a.r}, "
          f"{'forward + backward' if a.train else 'forward'}; us per layer call, median of {a.rounds} rounds")
    for bits, g in ((1.58, None), (2, 64), (2, 128), (1, None)):
        mods = []
        for _ in range(8):
            m = PackedLoRALinear(PackedLinear.from_linear(nn.Linear(a.K, a.N), weight_bits=bits, group_size=g), r=a.r)
            nn.init.normal_(m.lora_B, std=0.01)
            mods.append(m.train(a.train))
        for M in (int(v) for v in a.M.split(",")):
            x = torch.randn(M, a.K, requires_grad=a.train)
            for m in mods:
                torch.testing.assert_close(m(x), fused(m, x), rtol=1e-4, atol=1e-4)

            def run(fn):
                for m in mods:
                    if a.train:
                        fn(m, x).sum().backward()
                    else:
                        with torch.no_grad():
                            fn(m, x)
            ts = {"fused": [], "layer": []}
            fns = (("fused", fused), ("layer", lambda m, x: m(x)))
            for rd in range(a.rounds):
                for name, fn in (fns if rd % 2 else fns[::-1]):
                    t0 = time.perf_counter()
                    run(fn)
                    ts[name].append((time.perf_counter() - t0) / len(mods) * 1e6)
            f, l_ = statistics.median(ts["fused"]), statistics.median(ts["layer"])
            print(f"bits={bits} g={g} M={M}: fused {f:8.1f} us  layer {l_:8.1f} us  layer/fused {l_ / f:.2f}", flush=True)


if __name__ == "__main__":
    main()
