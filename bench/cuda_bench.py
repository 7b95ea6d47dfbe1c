"""GPU benchmark of the bitmm ops against torch fp16 F.linear (same run, same
method: CUDA-graph replays, weights rotated past L2, median).

    python bench/cuda_bench.py --out bench/results/h100.json [--quick]

Writes {"device", "torch", "commit", "date", "copy_tbps", "records": [...]}
with one record per (op, direction, K, N, M, group_size, dtype, backend):
the sweep over kinds x shapes x M in {1 .. 4096} x backend (add/subtract,
tensor core) against fp16 F.linear measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402
from bitmm.benchmark_timing import copies_for, cuda_time_us, write_results  # noqa: E402

# The sweep: (kind, group size or None) x shape (K, N) x M x backend.  The add/
# subtract kernels are timed up to M = 64 (their cost grows linearly with M),
# the tensor-core kernels at every M, the dense path (dequantized slices +
# cuBLAS) from M = 16.
KINDS = [("ternary", None), ("int2", 64), ("binary", 64)]
SHAPES = [(4096, 4096), (8192, 8192), (8192, 28672), (28672, 8192)]
MS = [1, 4, 16, 64, 256, 1024, 4096]
ADDSUB_MAX_M = 64
BACKWARD_CASES = [("ternary", 8192, 28672, 1, None), ("ternary", 8192, 8192, 1, None)]
QUICK = [("ternary", 8192, 28672, 1, None), ("ternary", 8192, 8192, 1, None), ("ternary", 4096, 4096, 1, None),
         ("ternary", 8192, 28672, 4, None), ("ternary", 8192, 28672, 16, None), ("int2", 8192, 28672, 1, 64),
         ("binary", 8192, 28672, 1, 64)]


def measure_copy_tbps() -> float:
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    us = cuda_time_us([lambda: b.copy_(a)], replays=10)
    return 2 * a.numel() / (us * 1e-6) / 1e12


def make_weights(kind, K, N, G, copies, dtype=torch.float16):
    """`copies` packed weights with per tensor (fp32) or group-wise (`dtype`) scales and offsets."""
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    out = []
    for _ in range(copies):
        v = torch.randint(lo, hi, (N, K), device="cuda", dtype=torch.int8)
        if G is None:
            s, u = torch.tensor(0.02, device="cuda"), None
        else:
            s = (torch.rand(N, K // G, device="cuda") * 0.02).to(dtype)
            u = (torch.randn(N, K // G, device="cuda") * 0.01).to(dtype)
        out.append((pack(v), s, u))
        del v
    return out


def fp16_weights(K, N, copies):
    return [torch.randn(N, K, device="cuda", dtype=torch.float16) for _ in range(copies)]


_FP16_CACHE: dict = {}


def fp16_time_us(K, N, M, direction):
    """fp16 F.linear (or grad @ W) on the same shape, measured once per run and shape."""
    key = (K, N, M, direction)
    if key not in _FP16_CACHE:
        fw = fp16_weights(K, N, copies_for(2 * N * K))
        if direction == "forward":
            x = torch.randn(M, K, device="cuda", dtype=torch.float16)
            fcalls = [lambda w=w: F.linear(x, w) for w in fw]
        else:
            g = torch.randn(M, N, device="cuda", dtype=torch.float16)
            fcalls = [lambda w=w: g @ w for w in fw]
        _FP16_CACHE[key] = cuda_time_us(fcalls, replays=10 if M >= 1024 else 20)
        del fw, fcalls
        torch.cuda.empty_cache()
    return _FP16_CACHE[key]


def bench_case(kind, K, N, M, G, direction, copy_tbps, backend="auto"):
    wbytes = formats.packed_nbytes(kind, N, K) + (0 if G is None else 2 * 2 * N * (K // G))
    ws = make_weights(kind, K, N, G, copies_for(wbytes))
    if direction == "forward":
        x = torch.randn(M, K, device="cuda", dtype=torch.float16)
        calls = [lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u) for p, s, u in ws]
    elif backend in ("transposed", "transposed_digits"):  # grad_x on the cached W^T (PackedLinear.transposed_backward)
        g = torch.randn(M, N, device="cuda", dtype=torch.float16)
        ws = [(bitmm.ops.transpose_packed(p, kind, K), s, u) for p, s, u in ws]
        calls = [lambda p=p, s=s, u=u: bitmm.ops.linear_grad_x_transposed(kind, g, p, s, u) for p, s, u in ws]
    else:
        g = torch.randn(M, N, device="cuda", dtype=torch.float16)
        calls = [lambda p=p, s=s, u=u: bitmm.linear_grad_x(g, p, s, u, kind, K) for p, s, u in ws]
    with bitmm.use_backend({"transposed": "auto", "transposed_digits": "digits"}.get(backend, backend)):
        us = cuda_time_us(calls, replays=10 if M >= 1024 else 20)
    del ws, calls
    torch.cuda.empty_cache()
    fp16_us = fp16_time_us(K, N, M, direction)
    act_bytes = 2 * M * (K + N)
    gbps = (wbytes + act_bytes) / (us * 1e-6) / 1e9
    return {
        "op": kind, "direction": direction, "K": K, "N": N, "M": M, "group_size": G, "dtype": "float16",
        "scale_dtype": "float32" if G is None else "float16", "backend": backend,
        "us": round(us, 2), "fp16_us": round(fp16_us, 2), "speedup": round(fp16_us / us, 2),
        "bytes": wbytes + act_bytes, "gbps": round(gbps, 1),
        "fraction_of_copy_bw": round(gbps / (copy_tbps * 1e3), 3),
    }


def bench_lora(K, N, M, r):
    """Fused LoRA op vs the base op alone (issue: adapter cost <= 15% at M = 1)."""
    ws = make_weights("ternary", K, N, None, copies_for(formats.packed_nbytes("ternary", N, K)))
    x = torch.randn(M, K, device="cuda", dtype=torch.float16)
    a = torch.randn(r, K, device="cuda", dtype=torch.float16) * 0.01
    b = torch.randn(N, r, device="cuda", dtype=torch.float16) * 0.01
    base = cuda_time_us([lambda p=p, s=s: bitmm.ternary_linear(x, p, s) for p, s, _ in ws])
    lora = cuda_time_us([lambda p=p, s=s: bitmm.lora_linear("ternary", x, p, s, None, None, a, b) for p, s, _ in ws])
    del ws
    torch.cuda.empty_cache()
    return {"op": "ternary_lora", "direction": "forward", "K": K, "N": N, "M": M, "rank": r, "dtype": "float16",
            "backend": "auto", "us": round(lora, 2), "base_us": round(base, 2),
            "overhead": round(lora / base - 1, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/h100.json")
    ap.add_argument("--quick", action="store_true", help="only the issue's M <= 16 target cases")
    ap.add_argument("--final", action="store_true",
                    help="quick cases, plus the dense path at large M, the backward sweep and LoRA")
    ap.add_argument("--lora", action="store_true", help="with --quick: also the fused LoRA overhead cases")
    ap.add_argument("--backends", default=None,
                    help="comma-separated subset of forward backends to time (addsub,tensorcore,dense,digits)")
    ap.add_argument("--backward-only", action="store_true", help="with --final: only the backward cases")
    ap.add_argument("--grouped-only", action="store_true", help="only the group-wise cases")
    ap.add_argument("--ms", default=None, help="comma-separated subset of M to keep (e.g. 1,4,16)")
    ap.add_argument("--forward-only", action="store_true", help="no backward cases")
    ap.add_argument("--wgmma", action="store_true",
                    help="only the Hopper wgmma kernel on the large-M grid (issue 5), with the tensor-core and "
                         "dense paths at the same points")
    ap.add_argument("--decode", action="store_true",
                    help="only group-wise weights at M <= 4 (the tensor-core kernel's block-diagonal path, M <= 2): "
                         "auto, add/subtract and tensor-core on every shape")
    args = ap.parse_args()
    torch.manual_seed(0)
    copy_tbps = measure_copy_tbps()
    records = []
    cases = []
    if args.quick or args.final:
        cases = [((k, K, N, M, G), "forward", be) for k, K, N, M, G in QUICK for be in ("addsub", "tensorcore")]
    if args.final:
        cases += [((k, K, N, M, G), "forward", "dense") for k, G in (("ternary", None), ("int2", 64))
                  for K, N in ((8192, 28672), (28672, 8192)) for M in (64, 256, 1024, 4096)]
    elif not args.quick:
        for kind, G in KINDS:
            for K, N in SHAPES:
                for M in MS:
                    for be in ("addsub", "tensorcore", "dense", "digits"):
                        if (be == "addsub" and M > ADDSUB_MAX_M) or (be == "dense" and M < 16) or \
                                (be == "digits" and (M > 64 or G is not None)):  # (where the digits backend applies)
                            continue
                        cases.append(((kind, K, N, M, G), "forward", be))
    if args.final:  # the wgmma kernel where auto now takes it (M >= 128) and at M = 16, 64
        cases += [((k, K, N, M, G), "forward", "wgmma") for k, G in (("ternary", None), ("int2", 64))
                  for K, N in ((8192, 28672), (28672, 8192)) for M in (16, 64, 256, 1024, 4096)]
    if args.wgmma:
        # every kind on every shape: auto (what users get), the wgmma kernel forced, and the dense
        # path from M = 1024 (auto's choice for group-wise weights from M = 2048); the tensor-core
        # kernel only where it competes (M <= 256 on the widest shape)
        cases = []
        for k, G in KINDS:
            for K, N in ((8192, 28672), (28672, 8192), (8192, 8192), (4096, 4096)):
                for M in (16, 32, 48, 64, 128, 256, 1024, 4096):
                    if M == 128 and (K, N) != (8192, 28672) or M == 16 and k != "ternary":
                        continue
                    cases.append(((k, K, N, M, G), "forward", "auto"))
                    if M >= 32:
                        cases.append(((k, K, N, M, G), "forward", "wgmma"))
                    if M <= 64 or M <= 256 and (K, N) == (8192, 28672):  # M 32-64: the wgmma / mma.sync crossover
                        cases.append(((k, K, N, M, G), "forward", "tensorcore"))
                    if M >= 1024:
                        cases.append(((k, K, N, M, G), "forward", "dense"))
    if args.decode:
        cases = [((k, K, N, M, G), "forward", be) for k, G in (("int2", 64), ("binary", 64), ("int2", 128), ("ternary", 64))
                 for K, N in ((8192, 28672), (8192, 8192), (4096, 4096), (28672, 8192)) for M in (1, 2, 3, 4)
                 for be in ("auto", "addsub", "tensorcore")
                 if (K, N) == (8192, 28672) or (k, G) in (("int2", 64), ("binary", 64)) and M <= 2]
    if args.backends:
        keep = set(args.backends.split(","))
        cases = [c for c in cases if c[2] in keep]
    bw = list(BACKWARD_CASES) + ([("ternary", 8192, 28672, M, None) for M in (4, 8, 16, 32, 64, 256, 4096)] +
                                 [(k, 8192, 28672, M, 64) for k in ("int2", "binary") for M in (1, 4)]
                                 if not args.quick else [])
    # (the transposed backward takes per-tensor / per-channel scales only)
    cases += [(c, "backward", be) for c in bw for be in ("auto", "transposed", "transposed_digits")
              if be == "auto" or c[4] is None and (be == "transposed" or c[3] <= 64)]
    # The add/subtract grad_x kernel (what auto ran before the tensor-core one) and the forced
    # tensor-core kernel past auto's M <= 32 (the dense crossover).
    cases += [(c, "backward", "addsub") for c in bw if c[3] == 1]
    cases += [(c, "backward", "tensorcore") for c in bw if c[3] == 1 and c[4] is not None]  # auto: addsub there
    cases += [(("ternary", 8192, 28672, 64, None), "backward", "tensorcore")] if not args.quick else []
    if args.backward_only:
        cases = [c for c in cases if c[1] == "backward"]
    if args.wgmma or args.decode:
        cases = [c for c in cases if c[1] == "forward"]
    if args.grouped_only:
        cases = [c for c in cases if c[0][4] is not None]
    if args.ms:
        keep_m = {int(m) for m in args.ms.split(",")}
        cases = [c for c in cases if c[0][3] in keep_m]
    if args.forward_only:
        cases = [c for c in cases if c[1] == "forward"]
    args_lora = (args.lora or not args.quick) and not args.backward_only and not args.wgmma and not args.decode
    for (kind, K, N, M, G), direction, be in cases:
        r = bench_case(kind, K, N, M, G, direction, copy_tbps, be)
        records.append(r)
        print(f"{direction:8s} {be:10s} {kind:7s} K={K:5d} N={N:5d} M={M:4d} G={str(G):4s} {r['us']:8.2f} us  "
              f"fp16 {r['fp16_us']:8.2f} us  x{r['speedup']:5.2f}  {r['gbps']:7.1f} GB/s "
              f"({100 * r['fraction_of_copy_bw']:.0f}% of copy)", flush=True)
        if args.wgmma or args.decode:  # long grid: keep what finished if the run is cut short
            write_results(args.out, torch.cuda.get_device_name(), records, copy_tbps=round(copy_tbps, 3))
    for r in ((16, 64) if args_lora else ()):
        rec = bench_lora(8192, 28672, 1, r)
        records.append(rec)
        print(f"lora     rank {r:3d} ternary K=8192 N=28672 M=1 {rec['us']:8.2f} us  base {rec['base_us']:8.2f} us  "
              f"overhead {100 * rec['overhead']:.1f}%", flush=True)
    write_results(args.out, torch.cuda.get_device_name(), records, copy_tbps=round(copy_tbps, 3))


if __name__ == "__main__":
    main()
