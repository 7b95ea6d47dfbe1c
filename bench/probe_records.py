"""Turn a decode_probe.py results file into cuda_bench.py-style records for merge_results.py: every
bitmm record paired with the fp16 F.linear record of the same (K, N, M, dtype) measured in the same
process (fp16 does not depend on the kind or group size), fp16_us and speedup added; fp16 rows and
records without a baseline dropped.

    python bench/probe_records.py OUT.json PROBE.json [--note TEXT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (the repository's bitmm)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("probe")
    ap.add_argument("--note", default="")
    ap.add_argument("--copy-tbps", type=float, default=None,
                    help="the device's measured copy rate (TB/s): adds bytes moved (packed weights, group-wise scales and "
                         "offsets at 2 bytes each, activations in and out), GB/s and the fraction of the copy rate")
    args = ap.parse_args()
    with open(args.probe) as f:
        d = json.load(f)
    base = {(r["K"], r["N"], r["M"], r["dtype"]): r["us"] for r in d["records"] if r["backend"] == "fp16"}
    records = []
    for r in d["records"]:
        fp16 = base.get((r["K"], r["N"], r["M"], r["dtype"]))
        if r["backend"] == "fp16" or fp16 is None:
            continue
        rec = dict(r, fp16_us=fp16, speedup=round(fp16 / r["us"], 3))
        if args.copy_tbps:
            from bitmm import formats
            G = r.get("group_size")
            nbytes = formats.packed_nbytes(r["op"], r["N"], r["K"]) + (0 if G is None else 2 * 2 * r["N"] * (r["K"] // G))
            nbytes += 2 * r["M"] * (r["K"] + r["N"])
            gbps = nbytes / (r["us"] * 1e-6) / 1e9
            rec.update(bytes=nbytes, gbps=round(gbps, 1), fraction_of_copy_bw=round(gbps / (args.copy_tbps * 1e3), 3))
        records.append(rec)
    meta = {k: v for k, v in d.items() if k != "records"}
    if args.copy_tbps:
        meta["copy_tbps"] = args.copy_tbps
    meta["note"] = (args.note + " " if args.note else "") + f"from {args.probe} (bench/probe_records.py)"
    meta["records"] = records
    with open(args.out, "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
