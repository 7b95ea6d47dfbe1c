"""Where the digits backend wins: reads decode_probe.py results holding fp16, auto and digits records of the same
process (bench/device_calls/next_a8_fused.sh PART=digits writes digits_rule.json), prints per kind, shape and M the
three times and speedups over fp16, and the largest M up to which digits beats auto on every (kind, shape) measured
at that M and every smaller one: the value for kDigitsAutoMaxM (csrc/cuda/linear_cuda.cpp).

    python bench/digits_rule.py RESULTS.json [MORE.json ...] [--margin 0.02]

--margin: digits must be faster than auto by this fraction to count as a win (default 2%: run-to-run noise).
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--margin", type=float, default=0.02)
    args = ap.parse_args()
    t = defaultdict(dict)  # (kind, K, N, M, dtype, direction) -> backend -> us
    for path in args.files:
        with open(path) as f:
            for r in json.load(f)["records"]:
                if r.get("group_size") is None:
                    t[(r["op"], r["K"], r["N"], r["M"], r["dtype"], r.get("direction", "forward"))][r["backend"]] = r["us"]
    wins_at = defaultdict(list)  # M -> [digits beats auto]
    print(f"{'kind':8s} {'K x N':12s} {'M':>3s} {'dtype':8s} {'dir':8s} {'fp16':>8s} {'auto':>8s} {'digits':>8s}"
          "  auto x   digits x")
    for (kind, K, N, M, dt, d), b in sorted(t.items()):
        auto, dig = b.get("t_auto", b.get("auto")), b.get("t_digits", b.get("digits"))
        fp16 = b.get("fp16")
        if auto is None or dig is None:
            continue
        sp = (lambda us: f"{fp16 / us:6.2f}x" if fp16 else "    -  ")
        print(f"{kind:8s} {K}x{N:<7d} {M:3d} {dt:8s} {d:8s} {fp16 or 0:8.2f} {auto:8.2f} {dig:8.2f}  {sp(auto)}  {sp(dig)}")
        if d == "forward":
            wins_at[M].append(dig < auto * (1 - args.margin))
    best = 0
    for M in sorted(wins_at):
        if not all(wins_at[M]):
            break
        best = M
    print(f"digits beat auto by > {args.margin:.0%} on every forward case up to M = {best} "
          f"(kDigitsAutoMaxM; per M: {', '.join(f'{M}: {sum(w)}/{len(w)}' for M, w in sorted(wins_at.items()))})")


if __name__ == "__main__":
    main()
