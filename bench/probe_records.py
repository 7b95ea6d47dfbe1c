"""Turn a decode_probe.py results file into cuda_bench.py-style records for merge_results.py: every
bitmm record paired with the fp16 F.linear record of the same (K, N, M, dtype) measured in the same
process (fp16 does not depend on the kind or group size), fp16_us and speedup added; fp16 rows and
records without a baseline dropped.

    python bench/probe_records.py OUT.json PROBE.json [--note TEXT]
"""
from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("probe")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    with open(args.probe) as f:
        d = json.load(f)
    base = {(r["K"], r["N"], r["M"], r["dtype"]): r["us"] for r in d["records"] if r["backend"] == "fp16"}
    records = []
    for r in d["records"]:
        fp16 = base.get((r["K"], r["N"], r["M"], r["dtype"]))
        if r["backend"] == "fp16" or fp16 is None:
            continue
        records.append(dict(r, fp16_us=fp16, speedup=round(fp16 / r["us"], 3)))
    meta = {k: v for k, v in d.items() if k != "records"}
    meta["note"] = (args.note + " " if args.note else "") + f"from {args.probe} (bench/probe_records.py)"
    meta["records"] = records
    with open(args.out, "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
