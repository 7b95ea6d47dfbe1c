"""W2A8 (`linear_a8`, int8 x) speedup over fp16 `F.linear` vs M, from decode_probe.py results files.

    python bench/plot_w2a8.py OUT.png A.json B.json ...

decode_probe.py writes one record per (kind, shape, M, backend) with backend "fp16" for F.linear measured in the
same process; each file's a8op records are divided by that file's own fp16 time (never across runs).  Where several
files time one case (e.g. the fused kernel and the unfused path at M = 256, each forced by BITMM_A8_FUSED), the
faster one is plotted (solid, per kind) and each file's own series is drawn thin and dotted, unlabelled; the table
names the file each point came from.  Also prints that markdown table.
"""
from __future__ import annotations

import json
import os
import sys
from collections import defaultdict

from plot_results import finish_panel


def speedups(path):
    recs = json.load(open(path))["records"]
    fp16 = {(r["op"], r["K"], r["N"], r["M"]): r["us"] for r in recs if r["backend"] == "fp16"}
    out = {}
    for r in recs:
        key = (r["op"], r["K"], r["N"], r["M"])
        if r["backend"] == "a8op" and key in fp16:
            out[key] = (r["us"], fp16[key])
    return out


def main() -> None:
    png, *paths = sys.argv[1:]
    per_file = {os.path.basename(p): speedups(p) for p in paths}
    best = {}
    for name, pts in per_file.items():
        for key, (us, f16) in pts.items():
            if key not in best or us / f16 < best[key][0] / best[key][1]:
                best[key] = (us, f16, name)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes = sorted({(k[1], k[2]) for k in best})
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 4), sharey=True)
    colors = {"ternary": "C0", "int2": "C1", "binary": "C2"}
    for ax, (K, N) in zip(axes, shapes):
        for name, pts in per_file.items():
            by = defaultdict(list)
            for (op, k, n, M), (us, f16) in pts.items():
                if (k, n) == (K, N):
                    by[op].append((M, f16 / us))
            for op, xs in by.items():
                xs.sort()
                ax.plot([m for m, _ in xs], [s for _, s in xs], ":", color=colors[op], lw=0.8, alpha=0.6)
        for op in colors:
            xs = sorted((M, f16 / us) for (o, k, n, M), (us, f16, _) in best.items() if (o, k, n) == (op, K, N))
            if xs:
                ax.plot([m for m, _ in xs], [s for _, s in xs], "-o", color=colors[op], lw=2, ms=3, label=op)
        finish_panel(ax, K, N)
    axes[0].set_ylabel("W2A8 speedup vs fp16 F.linear (same run)")
    axes[0].legend(fontsize=8, title="faster of fused / unfused (solid)", title_fontsize=7)
    srcs = [json.load(open(p)) for p in paths]
    fig.suptitle(f"bitmm W2A8 (x quantized once) on {srcs[0]['device']}, torch {srcs[0]['torch']}, "
                 f"commit {', '.join(sorted({s['commit'] for s in srcs}))}, {srcs[0]['date']}")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print("wrote", png)
    print("| kind | K x N | M | us | fp16 us | speedup | file |\n|---|---|---|---|---|---|---|")
    for (op, K, N, M), (us, f16, name) in sorted(best.items()):
        print(f"| {op} | {K}x{N} | {M} | {us} | {f16} | {f16 / us:.2f}x | {name} |")


if __name__ == "__main__":
    main()
