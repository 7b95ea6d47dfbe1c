"""A/B of two builds of bitmm on the CPU, in alternated processes (session 38's method).

On a shared 2-core machine the speed drifts by 10-30% within minutes, so two builds are timed in
processes that alternate: base, new, base, new, ...  Each process times, per case, the plain op
(``<kind>_linear``) and ``cpu_prepacked_linear`` (with group-wise scales, where the build has it, also with
``cpu_prepack_scales``' layout: "pre_scales"), cold (weights, scales and offsets rotated past 2x 64 MB: each
copy its own; before session 39 one scale tensor served every copy, so scales were read warm) and hot (one
weight), or with --grad-x ``linear_grad_x`` on rotated weights.  Medians of
``bitmm.benchmark_timing.cpu_time_us``; the summary gives new / base per value.

    git worktree add /tmp/base <commit> && (cd /tmp/base && BITMM_FORCE_CPU=1 python setup.py build_ext --inplace)
    python bench/cpu_build_ab.py /tmp/base . --M 1,4 [--rounds 2] [--grad-x] [--cases ternary4096,int24096g64]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

SHAPES = [("ternary", 4096, 4096, None), ("int2", 4096, 4096, 64), ("binary", 4096, 4096, 64),
          ("ternary", 4096, 11008, None)]  # (kind, K, N, group size)

_CHILD = r"""
import json, sys, torch
sys.path.insert(0, {repo!r})
import bitmm
from bitmm import formats
from bitmm.benchmark_timing import cpu_time_us
torch.manual_seed(0)
out = []
for kind, K, N, G in {shapes!r}:
    kid = formats.KINDS[kind]
    lo, hi = {{"binary": (0, 2), "ternary": (-1, 2), "int2": (0, 4)}}[kind]
    copies = max(2, min(64, -(-2 * 64 * 2**20 // (N * K // 4))))
    ws = [getattr(bitmm, "pack_" + kind)(torch.randint(lo, hi, (N, K))) for _ in range(copies)]
    ss = [torch.rand(N, K // G) + 0.5 if G else torch.tensor(0.7) for _ in ws]
    us = [torch.randn(N, K // G) * 0.1 if G else None for _ in ws]
    s, u = ss[0], us[0]
    layout = G and hasattr(torch.ops.bitmm, "cpu_prepack_scales")
    sps = [torch.ops.bitmm.cpu_prepack_scales(a, b, N, K) for a, b in zip(ss, us)] if layout else None
    for M in {ms!r}:
        r = dict(kind=kind, K=K, N=N, G=G, M=M)
        if {grad_x!r}:
            g = torch.randn(M, N)
            r["grad_x"] = cpu_time_us([lambda w=w, s=s, u=u: torch.ops.bitmm.linear_grad_x(g, w, s, u, kid, K)
                                       for w, s, u in zip(ws, ss, us)])
        else:
            op = getattr(torch.ops.bitmm, kind + "_linear")
            blobs = [torch.ops.bitmm.cpu_prepack(w, kid, K) for w in ws]
            x = torch.randn(M, K)
            pre = torch.ops.bitmm.cpu_prepacked_linear
            r["plain"] = cpu_time_us([lambda w=w, s=s, u=u: op(x, w, s, u, None) for w, s, u in zip(ws, ss, us)])
            r["plain_hot"] = cpu_time_us([lambda: op(x, ws[0], s, u, None)])
            r["pre"] = cpu_time_us([lambda w=w, b=b, s=s, u=u: pre(x, w, b, s, u, None, kid)
                                    for w, b, s, u in zip(ws, blobs, ss, us)])
            r["pre_hot"] = cpu_time_us([lambda: pre(x, ws[0], blobs[0], s, u, None, kid)])
            if layout:
                r["pre_scales"] = cpu_time_us([lambda w=w, b=b, s=s, u=u, sp=sp: pre(x, w, b, s, u, None, kid, sp)
                                               for w, b, s, u, sp in zip(ws, blobs, ss, us, sps)])
        out.append(r)
print(json.dumps(out))
"""


def run(repo: str, shapes, ms, grad_x: bool) -> list[dict]:
    code = _CHILD.format(repo=os.path.abspath(repo), shapes=shapes, ms=ms, grad_x=grad_x)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--M", default="1,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--grad-x", action="store_true")
    ap.add_argument("--cases", default="", help="e.g. ternary4096,int24096g64 (kind + N + optional g<G>)")
    args = ap.parse_args()
    shapes = [s for s in SHAPES if not args.cases or
              f"{s[0]}{s[2]}{'g' + str(s[3]) if s[3] else ''}" in args.cases.split(",")]
    ms = [int(v) for v in args.M.split(",")]
    runs = {"base": [], "new": []}
    for _ in range(args.rounds):
        for name, repo in (("base", args.base), ("new", args.new)):
            runs[name].append(run(repo, shapes, ms, args.grad_x))
    for i, r in enumerate(runs["new"][0]):
        keys = [k for k in r if k not in ("kind", "K", "N", "G", "M")]
        parts = []
        for k in keys:
            n = [run_[i][k] for run_ in runs["new"]]
            if k not in runs["base"][0][i]:  # (a path the base build does not have)
                parts.append(f"{k} (new only) {statistics.median(n):7.1f}")
                continue
            b = [run_[i][k] for run_ in runs["base"]]
            parts.append(f"{k} {statistics.median(b):7.1f} -> {statistics.median(n):7.1f} "
                         f"({statistics.median(n) / statistics.median(b):.2f})")
        print(f"{r['kind']:7s} {r['K']}x{r['N']} M={r['M']:2d} G={r['G']}: " + "  ".join(parts), flush=True)


if __name__ == "__main__":
    main()
