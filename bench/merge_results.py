"""Merge cuda_bench.py results files into one (for plot_results.py): records keyed by (op,
direction, K, N, M, group_size, dtype, backend); a later file's record replaces an earlier one's.
Each record keeps its own fp16_us (measured in its own run), so speedups stay within one run.

    python bench/merge_results.py OUT.json A.json B.json ...

A merged file may be an input: its sources list is carried over.  Order matters (a later file's record wins), so
put it first and the newer files after it.
"""
from __future__ import annotations

import json
import sys


def main() -> None:
    out, *paths = sys.argv[1:]
    merged, meta = {}, {"sources": []}
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        # An earlier merge (h100.json) brings its sources, not itself; a source already listed is not listed twice.
        for src in d["sources"] if "sources" in d else [{k: v for k, v in d.items() if k != "records"} | {"file": path}]:
            if src not in meta["sources"]:
                meta["sources"].append(src)
        for r in d["records"]:
            key = tuple(r.get(k) for k in ("op", "direction", "K", "N", "M", "group_size", "dtype", "backend"))
            merged[key] = r
    for k in ("device", "torch", "date"):  # (plot_results.py titles the plot with these)
        meta[k] = next((src[k] for src in reversed(meta["sources"]) if src.get(k)), None)
    meta["commit"] = "see sources"
    meta["records"] = list(merged.values())
    with open(out, "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(meta['records'])} records from {len(paths)} files -> {out}")


if __name__ == "__main__":
    main()
