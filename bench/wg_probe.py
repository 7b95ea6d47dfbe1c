"""Probe of the Hopper wgmma kernel's configurations (wg_linear.cuh): CTA tile BITMM_WG_TILE =
BMx1 (rows of x x one 128-row weight tile; "auto": the launcher's rule), optionally ":ENV=VALUE" for another variable a probe build
reads (wg6 had BITMM_WG_SYNC=cta|wg); each in its own process (the launcher reads the variables
once), the same method as
cuda_bench.py (CUDA-graph replays, weights rotated past L2, median, fp16 F.linear in the same
process).  Prints one line per case and writes a JSON of the records.

    python bench/wg_probe.py --out $OUT/wg_probe.json [--tiles auto,64x1,256x1]
    python bench/wg_probe.py --out $OUT/wg_split.json --cases splitk \
        --tiles auto,auto:BITMM_WG_SPLIT=1,auto:BITMM_WG_SPLIT=2,auto:BITMM_WG_SPLIT=4
(--cases splitk: the shapes where the plan splits K, wg_plan.h; at e848b4d this measured ceil(SMs / tiles)
splits, which start a partial second wave, against the one-wave counts the plan now uses.
--cases dense: the dense backend at large M, for its slice size: --tiles
auto,auto:BITMM_DENSE_SLICE_MB=128,auto:BITMM_DENSE_SLICE_MB=512,auto:BITMM_DENSE_SLICE_MB=4096.
--cases boundary: auto's wgmma / tensor-core switch at M = 17..32 (wgmma from M = 17 where its plan
splits K): auto, wgmma and tensorcore at M = 17, 24, 32 on the four shapes.
BITMM_WG_WS=0|1 as the ":ENV=VALUE" part A/B-tests the kernel's two pipelines, wg_linear.cuh.)
Each child's records are printed and the JSON rewritten as they come, so a run cut short keeps them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CASES = [  # (kind, K, N, M, group size)
    ("ternary", 8192, 28672, 16, None), ("ternary", 8192, 28672, 64, None),
    ("ternary", 8192, 28672, 256, None), ("ternary", 8192, 28672, 1024, None), ("ternary", 8192, 28672, 4096, None),
    ("ternary", 8192, 8192, 4096, None), ("ternary", 28672, 8192, 1024, None), ("ternary", 4096, 4096, 1024, None),
    ("ternary", 8192, 8192, 256, None), ("ternary", 28672, 8192, 256, None), ("ternary", 4096, 4096, 256, None),
    ("int2", 8192, 28672, 64, 64), ("int2", 8192, 28672, 1024, 64), ("int2", 8192, 28672, 4096, 64),
    ("binary", 8192, 28672, 1024, 64),
]

CASES_SPLITK = [  # 64-row tiles: 64 (28672x8192, 8192^2) and 32 (4096^2) of them at M <= 64
    ("ternary", 28672, 8192, 64, None), ("ternary", 8192, 8192, 64, None), ("ternary", 4096, 4096, 64, None),
    ("ternary", 8192, 8192, 32, None), ("int2", 28672, 8192, 64, 64), ("int2", 8192, 8192, 32, 64),
    ("int2", 4096, 4096, 32, 64),
]

CASES_DENSE = [  # the dense backend (dequantized slices of W + cuBLAS) where auto picks it or could
    ("int2", 8192, 28672, 2048, 64), ("int2", 8192, 28672, 4096, 64), ("binary", 8192, 28672, 4096, 64),
    ("int2", 28672, 8192, 4096, 64), ("int2", 8192, 8192, 4096, 64), ("ternary", 8192, 28672, 4096, None),
]


CASES_BOUNDARY = [(k, K, N, M, G, be) for k, G in (("ternary", None), ("int2", 64))
                  for K, N in ((8192, 28672), (28672, 8192), (8192, 8192), (4096, 4096))
                  for M in (17, 24, 32) for be in ("auto", "wgmma", "tensorcore")]


def child(tile: str, cases: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    from cuda_bench import bench_case, measure_copy_tbps
    copy = measure_copy_tbps()
    if cases == "boundary":
        todo = CASES_BOUNDARY
    else:
        todo = [c + ("dense" if cases == "dense" else "wgmma",)
                for c in {"splitk": CASES_SPLITK, "dense": CASES_DENSE}.get(cases, CASES)]
    for kind, K, N, M, G, backend in todo:
        if tile.startswith("64x") and M > 64 or tile[0].isdigit() and not tile.startswith("64x") and M <= 64:
            continue
        r = bench_case(kind, K, N, M, G, "forward", copy, backend)
        r["tile"] = tile
        print(json.dumps(r), flush=True)
    torch.cuda.synchronize()


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:  # no git on the machine: the records still get written
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tiles", default="auto,64x1,128x1,256x1")
    ap.add_argument("--child", default=None)
    ap.add_argument("--cases", default="tiles", choices=["tiles", "splitk", "dense", "boundary"])
    args = ap.parse_args()
    if args.child:
        child(args.child, args.cases)
        return
    records = []
    for tile in args.tiles.split(","):
        t, _, extra = tile.partition(":")
        env = dict(os.environ)
        if extra:
            k, _, v = extra.partition("=")
            env[k] = v
        if t != "auto":
            env["BITMM_WG_TILE"] = t
        err = tempfile.TemporaryFile(mode="w+")  # (a file, not a pipe: a full pipe would block the child)
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--out", args.out, "--child", tile,
                                 "--cases", args.cases], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        for line in proc.stdout:
            if line.startswith("{"):
                r = json.loads(line)
                records.append(r)
                print(f"{tile:9s} {r['backend']:10s} {r['op']:7s} K={r['K']:5d} N={r['N']:5d} M={r['M']:4d} "
                      f"G={str(r['group_size']):4s} {r['us']:8.1f} us  fp16 {r['fp16_us']:8.1f}  x{r['speedup']:.2f}",
                      flush=True)
                write_json(args, records)
        if proc.wait() != 0:
            err.seek(0)
            print(err.read()[-3000:], flush=True)
    write_json(args, records)


def write_json(args, records) -> None:
    import torch
    meta = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch": torch.__version__,
            "commit": os.environ.get("BITMM_COMMIT") or _git_head(),
            "date": time.strftime("%Y-%m-%d"), "cases": args.cases, "tiles": args.tiles}
    with open(args.out, "w") as f:
        json.dump({**meta, "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
