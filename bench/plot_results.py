"""Speedup vs M plot (PNG) and markdown table from a cuda_bench.py results file.

    python bench/plot_results.py bench/results/h100.json bench/results/h100_speedup.png [--direction backward]

One panel per shape (K x N); per kind, a solid line for the best backend at
each M (what the auto rule aims to pick) and thin dashed lines per backend.
--direction backward: the grad_x records instead (speedup against fp16 grad_y @ W).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict


def best_by_case(records, direction="forward"):
    best = {}
    for r in records:
        if r["direction"] != direction or "group_size" not in r:
            continue
        key = (r["op"], r["group_size"], r["K"], r["N"], r["M"])
        if key not in best or r["us"] < best[key]["us"]:
            best[key] = r
    return best


def finish_panel(ax, K, N):
    """One shape's panel: the fp16 parity line, log2 axes, titles (shared with plot_w2a8.py)."""
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_title(f"K={K} N={N}")
    ax.set_xlabel("M (rows of x)")


def plot(data, path, direction="forward"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in data["records"] if r["direction"] == direction and "group_size" in r]
    shapes = sorted({(r["K"], r["N"]) for r in recs})
    # (at most 6 panels a row: many shapes in one row made an unreadable strip)
    if not shapes:
        raise SystemExit(f"no {direction} records with a group_size to plot")
    cols = min(6, len(shapes))
    rows = -(-len(shapes) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), sharey=True, squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(shapes):]:
        ax.set_visible(False)
    colors = {"ternary": "C0", "int2": "C1", "binary": "C2"}
    styles = {"addsub": ":", "tensorcore": "--", "dense": "-.", "wgmma": (0, (1, 3))}
    best = best_by_case(recs, direction)
    for ax, (K, N) in zip(axes, shapes):
        by = defaultdict(list)
        for r in recs:
            if (r["K"], r["N"]) == (K, N):
                by[(r["op"], r["group_size"], r["backend"])].append(r)
        for (op, G, be), rs in sorted(by.items(), key=lambda t: str(t[0])):
            rs.sort(key=lambda r: r["M"])
            ax.plot([r["M"] for r in rs], [r["speedup"] for r in rs], linestyle=styles.get(be, "-"), color=colors[op],
                    lw=0.8, alpha=0.6)
        for op, G in sorted({(r["op"], r["group_size"]) for r in recs}, key=str):
            pts = sorted((M, b["speedup"]) for (o, g, k, n, M), b in best.items() if (o, g, k, n) == (op, G, K, N))
            label = f"{op}" + (f" g{G}" if G else "")
            # (group-wise: squares on a thinner line, so the two scale modes of a kind stay apart in one colour)
            ax.plot([m for m, _ in pts], [s for _, s in pts], "-s" if G else "-o", color=colors[op], lw=1.2 if G else 2,
                    ms=3, label=label, alpha=0.75 if G else 1.0)
        finish_panel(ax, K, N)
        if direction != "forward":
            ax.set_xlabel("M (rows of grad_y)")
    axes[0].set_ylabel("speedup vs fp16 F.linear" if direction == "forward" else "grad_x: speedup vs fp16 grad_y @ W")
    axes[0].legend(fontsize=8, title="best backend (solid)\n: addsub  -- tensor core  -. dense  .. wgmma", title_fontsize=7)
    fig.suptitle(f"bitmm {'' if direction == 'forward' else 'grad_x '}on {data['device']}, torch {data['torch']}, "
                 f"commit {data['commit']}, {data['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


def table(data, direction="forward"):
    best = best_by_case(data["records"], direction)
    lines = ["| kind | K x N | M | best backend | us | fp16 us | speedup |", "|---|---|---|---|---|---|---|"]
    for (op, G, K, N, M), r in sorted(best.items(), key=lambda t: (t[0][0], str(t[0][1]), t[0][2], t[0][3], t[0][4])):
        lines.append(f"| {op}{' g' + str(G) if G else ''} | {K}x{N} | {M} | {r['backend']} | {r['us']} | "
                     f"{r['fp16_us']} | {r['speedup']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    direction = "forward"
    if "--direction" in args:
        i = args.index("--direction")
        direction = args[i + 1]
        del args[i:i + 2]
    d = json.load(open(args[0]))
    if len(args) > 1:
        plot(d, args[1], direction)
    print(table(d, direction))
