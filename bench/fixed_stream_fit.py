"""Issue 4's "measure the fixed cost (a tiny shape) and the streaming rate (a huge one) separately, and say which one
limits each shape", from one decode_probe.py run (session 53; run on the device by bench/device_calls/next_s54_call1.sh).

    python bench/decode_probe.py --kinds ternary,int2,binary --groups none --ms 1 --rounds 3 --backends auto,fp16 \
        --shapes 256x256,1024x1024,4096x4096,8192x8192,8192x28672,16384x53248 --out probe.json
    python bench/fixed_stream_fit.py probe.json [--copy-tbps 2.4]

Per kind and backend: fixed = the time of the smallest shape (its bytes move in well under a microsecond at any
rate this GPU reaches, so its time is the per-call cost: launch, ramp-up, tail; its 64 weight copies, the most
bitmm.benchmark_timing.copies_for makes, stay in L2, so a DRAM round trip, ~1 us, is left out); stream = the
largest shape's bytes / (its time - fixed).  Then for every shape: fixed / time (the share the fixed cost takes)
and what it would take at the stream rate with no fixed cost.  A shape is "fixed-cost bound" where fixed is over
half its time.  Bytes = packed weights + group-wise s and u (fp16) + x (fp16) + y (fp16).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bitmm import formats  # noqa: E402


def case_bytes(rec, backend: str) -> int:
    """Bytes one call moves: fp16 weights for the fp16 baseline, else packed weights + fp16 s and u; + x and y."""
    K, N, M, G = rec["K"], rec["N"], rec["M"], rec["group_size"]
    if backend == "fp16":
        weights = 2 * N * K
    else:
        weights = formats.packed_nbytes(rec["op"], N, K) + (0 if G is None else 2 * 2 * N * (K // G))
    return weights + 2 * M * (K + N)


def fit(records, copy_tbps=None):
    """Lines of text: per (kind, group size, backend) the fixed cost, the stream rate and each shape's split."""
    out = []
    groups: dict = {}
    for r in records:
        if r.get("direction", "forward") != "forward":
            continue
        groups.setdefault((r["op"], r["group_size"], r["M"], r["backend"]), []).append(r)
    for (kind, G, M, be), rows in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        rows = sorted(rows, key=lambda r: r["K"] * r["N"])
        if len(rows) < 2:
            continue
        small, big = rows[0], rows[-1]
        fixed = small["us"]
        span = big["us"] - fixed
        if span <= 0:
            out.append(f"{kind} g{G} M={M} {be}: the largest shape is not slower than the smallest; no fit")
            continue
        rate = case_bytes(big, be) / span / 1e6  # TB/s (bytes / us / 1e6)
        head = (f"{kind} g{G} M={M} {be}: fixed {fixed:.2f} us ({small['K']}x{small['N']}), stream {rate:.2f} TB/s "
                f"({big['K']}x{big['N']})")
        if copy_tbps:
            head += f" = {rate / copy_tbps:.2f} of the copy rate ({copy_tbps} TB/s)"
        out.append(head)
        for r in rows:
            b = case_bytes(r, be)
            share = fixed / r["us"]
            verdict = "fixed-cost bound" if share > 0.5 else "stream bound"
            out.append(f"   {r['K']:>6}x{r['N']:<6} {b / 1e6:8.2f} MB {r['us']:8.2f} us  fixed share {share:5.0%}  "
                       f"at the stream rate alone {b / rate / 1e6:8.2f} us  {verdict}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe_json")
    ap.add_argument("--copy-tbps", type=float, default=None, help="the copy rate measured in the same session")
    args = ap.parse_args()
    with open(args.probe_json) as f:
        records = json.load(f)["records"]
    print("\n".join(fit(records, args.copy_tbps)))


if __name__ == "__main__":
    main()
