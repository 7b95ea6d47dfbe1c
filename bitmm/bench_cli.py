"""``python -m bitmm bench``: bitmm vs dense F.linear on your device, as a table
(and optionally JSON and a PNG plot of speedup vs M).

CPU: fp32 activations vs fp32 F.linear.  CUDA: fp16 activations vs fp16
F.linear, CUDA-graph replays.  Weights rotate among copies that exceed the
last-level cache (CPU) or L2 (CUDA), so the packed weights are read from memory
as they would be in a real model.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

import bitmm
from bitmm import formats
from bitmm.benchmark_timing import copies_for, cpu_time_us, cuda_time_us, write_results

PACK = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}
RANGE = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}


def parse_shapes(s: str) -> list[tuple[int, int]]:
    out = []
    for item in s.split(","):
        k, n = item.lower().split("x")
        out.append((int(k), int(n)))
    return out


def measure(device, kind, K, N, M, G, reps):
    dtype = torch.float16 if device == "cuda" else torch.float32
    timer = (lambda calls: cuda_time_us(calls, replays=reps)) if device == "cuda" else (
        lambda calls: cpu_time_us(calls, repeats=reps))
    lo, hi = RANGE[kind]
    x = torch.randn(M, K, device=device, dtype=dtype)
    wbytes = formats.packed_nbytes(kind, N, K)
    # One random weight, copied: every copy lives in its own memory (so rotating through them
    # reads memory, not cache), without paying for random generation and packing per copy.
    p0 = PACK[kind](torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8))
    s0 = torch.tensor(0.02, device=device) if G is None else torch.rand(N, K // G, device=device, dtype=dtype)
    u0 = None if G is None else torch.randn(N, K // G, device=device, dtype=dtype)
    ws = [(p0.clone(), s0.clone(), None if u0 is None else u0.clone())
          for _ in range(copies_for(wbytes, max_copies=16 if device == "cpu" else 64))]
    sbytes = 0 if G is None else 2 * N * (K // G) * x.element_size()
    if device == "cpu":
        # What PackedLinear runs on CPU: the op reading the weight's prepacked lookup layout
        # (made once per layer; bitwise the same output as bitmm.linear).
        from bitmm import ops
        pres = [ops.cpu_prepack(p, kind, K) for p, _, _ in ws]
        held_bytes = wbytes + pres[0].numel()  # PackedLinear on CPU keeps both
        us = timer([lambda p=p, pre=pre, s=s, u=u: ops.cpu_prepacked_linear(kind, x, p, pre, s, u)
                    for (p, s, u), pre in zip(ws, pres)])
        del pres
    else:
        held_bytes = wbytes
        us = timer([lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u) for p, s, u in ws])
    del ws
    w0 = torch.randn(N, K, device=device, dtype=dtype)
    dense = [w0.clone() for _ in range(copies_for(N * K * x.element_size(), max_copies=8))]
    del w0
    dense_us = timer([lambda w=w: F.linear(x, w) for w in dense])
    dense_bytes = N * K * x.element_size()
    del dense
    return {"op": kind, "K": K, "N": N, "M": M, "group_size": G, "device": device, "dtype": str(dtype)[6:],
            "us": round(us, 2), "dense_us": round(dense_us, 2), "speedup": round(dense_us / us, 2),
            "gbps": round((wbytes + sbytes + x.numel() * x.element_size()) / us / 1e3, 1),
            "tflops_equiv": round(2 * M * N * K / us / 1e6, 3),
            "memory_saved": round(1 - (held_bytes + sbytes) / dense_bytes, 3)}


def plot(records, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    keys = sorted({(r["op"], r["K"], r["N"]) for r in records})
    for op, K, N in keys:
        rs = sorted((r for r in records if (r["op"], r["K"], r["N"]) == (op, K, N)), key=lambda r: r["M"])
        ax.plot([r["M"] for r in rs], [r["speedup"] for r in rs], marker="o", label=f"{op} {K}x{N}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (rows of x)")
    ax.set_ylabel(f"speedup vs dense {records[0]['dtype']} F.linear")
    ax.set_title(f"bitmm on {records[0]['device']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print("wrote", path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bitmm bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--shapes", default=None, help="KxN list, e.g. 4096x4096,8192x28672")
    ap.add_argument("--M", default=None, help="rows of x, e.g. 1,4,16")
    ap.add_argument("--kinds", default="ternary,int2,binary")
    ap.add_argument("--group-size", type=int, default=64, help="for int2 and binary (ternary is per tensor)")
    ap.add_argument("--json", default=None, help="write the records here")
    ap.add_argument("--plot", default=None, help="write a PNG of speedup vs M here")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    shapes = parse_shapes(args.shapes or ("4096x4096" if device == "cpu" else "4096x4096,8192x8192,8192x28672"))
    Ms = [int(m) for m in (args.M or ("1,16" if device == "cpu" else "1,4,16")).split(",")]
    kinds = args.kinds.split(",")
    reps = args.reps or (5 if device == "cpu" else 20)
    cases = [(k, K, N, M, None if k == "ternary" else args.group_size) for (K, N) in shapes for M in Ms for k in kinds]
    try:
        from tqdm import tqdm
        it = tqdm(cases, desc="bench", unit="case")
    except ImportError:
        it = cases
    records = []
    for i, case in enumerate(it):
        if it is cases:
            print(f"[{i + 1}/{len(cases)}] {case[0]} K={case[1]} N={case[2]} M={case[3]}", file=sys.stderr)
        records.append(measure(device, *case, reps))
    dense = "fp16" if device == "cuda" else "fp32"
    print(f"\nbitmm {bitmm.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if device == 'cuda' else 'CPU, %d threads' % torch.get_num_threads()}")
    print(f"{'op':8s} {'K x N':>12s} {'M':>4s} {'G':>4s} {'bitmm us':>10s} {dense + ' us':>10s} {'speedup':>8s} "
          f"{'GB/s':>8s} {'TFLOP/s eq':>10s} {'mem saved':>9s}")
    for r in records:
        print(f"{r['op']:8s} {str(r['K']) + 'x' + str(r['N']):>12s} {r['M']:4d} {str(r['group_size'] or '-'):>4s} "
              f"{r['us']:10.1f} {r['dense_us']:10.1f} {r['speedup']:7.2f}x {r['gbps']:8.1f} {r['tflops_equiv']:10.3f} "
              f"{100 * r['memory_saved']:8.1f}%")
    if args.json:
        write_results(args.json, records[0]["device"], records)
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
