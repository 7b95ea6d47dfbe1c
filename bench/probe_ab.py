"""Per-case time ratio of two decode_probe.py results files holding the same cases (e.g. a base and a patched build
timed on one machine, as bench/device_calls/s41_call2.sh does): new / base per (kind, K x N, group, M) and bitmm
backend, with each file's fp16 F.linear ratio beside it, then the geomean and range per M.

    python bench/probe_ab.py BASE.json NEW.json

Or two backends of one file (e.g. the tensor-core / wgmma band of auto's rules): backend A's time over backend B's per
case, then per M, the same way:

    python bench/probe_ab.py --backends tensorcore wgmma PROBE.json
"""
from __future__ import annotations

import json
import math
import sys
from collections import defaultdict


def load(path: str) -> dict:
    cases: dict = defaultdict(dict)
    with open(path) as f:
        for r in json.load(f)["records"]:
            cases[(r["op"], r["K"], r["N"], r["group_size"], r["M"])][r["backend"]] = r["us"]
    return cases


def main() -> None:
    if sys.argv[1] == "--backends":
        backend_ratio(sys.argv[2], sys.argv[3], load(sys.argv[4]))
        return
    base, new = load(sys.argv[1]), load(sys.argv[2])
    by_m: dict = defaultdict(list)
    for key in sorted(base, key=lambda k: (k[4], k[0], k[1], k[2], str(k[3]))):
        if key not in new:
            continue
        op, K, N, G, M = key
        for be in sorted(set(base[key]) & set(new[key]) - {"fp16"}):
            a, b = base[key][be], new[key][be]
            by_m[M].append(b / a)
            fp16 = (f" | vs fp16 {base[key]['fp16'] / a:.2f}x -> {new[key]['fp16'] / b:.2f}x"
                    if "fp16" in base[key] and "fp16" in new[key] else "")
            print(f"{op:7s} {K:5d}x{N:<5d} g{G!s:4s} M={M:<4d} {be:10s} base {a:7.1f} new {b:7.1f} us  "
                  f"new/base {b / a:.3f}{fp16}")
    for M, v in sorted(by_m.items()):
        print(f"M={M}: new/base geomean {math.exp(sum(map(math.log, v)) / len(v)):.3f}, min {min(v):.3f}, "
              f"max {max(v):.3f} over {len(v)}")


def backend_ratio(a_be: str, b_be: str, cases: dict) -> None:
    by_m: dict = defaultdict(list)
    for key in sorted(cases, key=lambda k: (k[4], k[1], k[2], k[0], str(k[3]))):
        if a_be in cases[key] and b_be in cases[key]:
            op, K, N, G, M = key
            a, b = cases[key][a_be], cases[key][b_be]
            by_m[M].append(a / b)
            print(f"{op:7s} {K:5d}x{N:<5d} g{G!s:4s} M={M:<4d} {a_be} {a:7.1f} {b_be} {b:7.1f} us  {a_be}/{b_be} {a / b:.3f}")
    for M, v in sorted(by_m.items()):
        print(f"M={M}: {a_be}/{b_be} geomean {math.exp(sum(map(math.log, v)) / len(v)):.3f}, min {min(v):.3f}, "
              f"max {max(v):.3f} over {len(v)}")


if __name__ == "__main__":
    main()
