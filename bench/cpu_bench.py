"""CPU benchmark: bitmm ops vs torch fp32 F.linear (and torch's int8 dynamic
quantization, what a CPU user would pick today), measured in one run with
weights rotated so each side's working set exceeds the last-level cache.

Two bitmm records per case, timed back to back in the same run against the same
fp32 / int8 numbers: backend "cpu-avx2" (the ``<kind>_linear`` op, which transposes
the packed words per call) and "cpu-avx2-prepacked" (``cpu_prepacked_linear`` on the
``cpu_prepack`` layout, what ``bitmm.nn.PackedLinear`` runs on CPU).

    python bench/cpu_bench.py --out bench/results/cpu.json
    python bench/cpu_bench.py --backward --out bench/results/cpu_backward.json
    python bench/cpu_bench.py --groupwise --out bench/results/cpu_groupwise.json
    python bench/cpu_bench.py --a8 --out bench/results/cpu_a8.json

--a8 times W2A8 (``linear_a8`` on int8 activations, what ``PackedLinear.int8_matmul`` runs) against the float
op on the same fake-quantized x (what an ``act_bits=8`` layer runs otherwise), fp32 ``F.linear`` and torch's int8
dynamic quantization; the absmax quantization of x is timed with each (it is part of both layers' forward).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats  # noqa: E402
from bitmm.benchmark_timing import cpu_time_us, write_results  # noqa: E402

LLC_BYTES = 32 * 2**20  # the dev machine's L3; rotate past 2x this
CASES = [  # (kind, K, N, M, group_size)
    ("ternary", 4096, 4096, 1, None), ("ternary", 4096, 4096, 16, None),
    ("int2", 4096, 4096, 1, 64), ("binary", 4096, 4096, 1, 64),
    ("ternary", 4096, 4096, 4, None), ("ternary", 4096, 11008, 1, None),
]

# --groupwise: group-wise scales at several M (session 30's in-kernel scale check and per-K-tile gather)
GROUPWISE_CASES = [(kind, 4096, 4096, M, G) for kind, G in (("int2", 64), ("binary", 64), ("int2", 32))
                   for M in (1, 4, 16)] + [("ternary", 4096, 4096, M, None) for M in (1, 16)]


def copies(nbytes: int) -> int:
    return max(2, min(64, -(-2 * LLC_BYTES // nbytes)))


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def random_packed(kind, N, K):
    lo, hi = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}[kind]
    pack = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}[kind]
    return pack(torch.randint(lo, hi, (N, K), dtype=torch.int8))


def fp32_and_int8_dynamic_us(x, K, N):
    fw = [torch.randn(N, K) for _ in range(copies(4 * N * K))]
    fp32_us = cpu_time_us([lambda w=w: F.linear(x, w) for w in fw])
    int8_us = None
    try:  # torch's dynamic int8 (fbgemm) on the same shape, for orientation
        mods = []
        for w in fw:
            lin = torch.nn.Linear(K, N, bias=False)
            lin.weight.data = w
            mods.append(torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear},
                                                               dtype=torch.qint8))
        int8_us = cpu_time_us([lambda m=m: m(x) for m in mods])
    except Exception as e:  # noqa: BLE001  (not every build has fbgemm)
        print("int8 dynamic quantization unavailable:", e)
    return fp32_us, int8_us


def run_case(kind, K, N, M, G):
    nbytes = formats.packed_nbytes(kind, N, K)
    ws = []
    for _ in range(copies(nbytes)):
        p = random_packed(kind, N, K)
        s = torch.tensor(0.02) if G is None else torch.rand(N, K // G) * 0.02
        u = None if G is None else torch.randn(N, K // G) * 0.01
        ws.append((p, s, u))
    x = torch.randn(M, K)
    us = cpu_time_us([lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u) for p, s, u in ws])
    kid = formats.KINDS[kind]
    pre = [(p, torch.ops.bitmm.cpu_prepack(p, kid, K), s, u) for p, s, u in ws]
    del ws
    pre_us = cpu_time_us([lambda p=p, q=q, s=s, u=u: torch.ops.bitmm.cpu_prepacked_linear(x, p, q, s, u, None, kid)
                          for p, q, s, u in pre])
    # group-wise: with the scales' layout as well (what bitmm.nn.PackedLinear runs; session 39)
    pre_s_us = None if G is None else cpu_time_us([
        lambda p=p, q=q, s=s, u=u, sp=sp: torch.ops.bitmm.cpu_prepacked_linear(x, p, q, s, u, None, kid, sp)
        for p, q, s, u, sp in [(p, q, s, u, torch.ops.bitmm.cpu_prepack_scales(s, u, N, K)) for p, q, s, u in pre]])
    del pre
    fp32_us, int8_us = fp32_and_int8_dynamic_us(x, K, N)
    # the kernel that ran (earlier files: "cpu-avx2" on every SIMD machine, AVX-512 kernel included)
    backend = f"cpu-{torch.ops.bitmm._cpu_forward_kernel()}"

    def record(backend, t):
        return {"op": kind, "direction": "forward", "K": K, "N": N, "M": M, "group_size": G, "dtype": "float32",
                "backend": backend, "us": round(t, 1), "fp32_us": round(fp32_us, 1),
                "speedup_vs_fp32": round(fp32_us / t, 2),
                "int8_dynamic_us": None if int8_us is None else round(int8_us, 1),
                "speedup_vs_int8_dynamic": None if int8_us is None else round(int8_us / t, 2),
                "threads": torch.get_num_threads()}

    return [record(backend, us), record(backend + "-prepacked", pre_us)] + (
        [] if pre_s_us is None else [record(backend + "-prepacked-scales", pre_s_us)])


# --a8: W2A8 at several M (per-tensor scale: linear_a8 takes per tensor / per channel scales only)
A8_CASES = [(kind, 4096, 4096, M) for kind in ("ternary", "int2", "binary") for M in (1, 4, 16, 64)] + [
    ("ternary", 4096, 11008, M) for M in (1, 16)] + [("ternary", 11008, 4096, M) for M in (1, 16)]


def run_a8_case(kind, K, N, M):
    from bitmm import quant  # noqa: PLC0415
    ws = [(random_packed(kind, N, K), torch.tensor(0.02)) for _ in range(copies(formats.packed_nbytes(kind, N, K)))]
    x = torch.randn(M, K)
    kid = formats.KINDS[kind]

    def a8(p, s):
        xq, xs = quant.absmax_int8(x)
        return bitmm.linear_a8(kind, xq, xs, p, s)

    a8_us = cpu_time_us([lambda p=p, s=s: a8(p, s) for p, s in ws])
    pre = [(p, torch.ops.bitmm.cpu_prepack(p, kid, K), s) for p, s in ws]
    float_us = cpu_time_us([lambda p=p, q=q, s=s: torch.ops.bitmm.cpu_prepacked_linear(
        quant.absmax_int8_fake(x), p, q, s, None, None, kid) for p, q, s in pre])
    del pre, ws
    fp32_us, int8_us = fp32_and_int8_dynamic_us(x, K, N)
    common = {"op": kind, "direction": "forward", "K": K, "N": N, "M": M, "group_size": None, "dtype": "float32",
              "fp32_us": round(fp32_us, 1), "int8_dynamic_us": None if int8_us is None else round(int8_us, 1),
              "threads": torch.get_num_threads(), "a8_kernel": str(torch.ops.bitmm._cpu_a8_kernel())}
    out = []
    for backend, t in (("cpu-linear_a8", a8_us), ("cpu-float-prepacked-on-fake-quant-x", float_us)):
        out.append(dict(common, backend=backend, us=round(t, 1), speedup_vs_fp32=round(fp32_us / t, 2),
                        speedup_vs_int8_dynamic=None if int8_us is None else round(int8_us / t, 2)))
    return out


BACKWARD_CASES = [("ternary", 4096, 4096, M, None) for M in (1, 4, 16)] + [("ternary", 4096, 11008, 1, None)]


def run_backward_case(kind, K, N, M, G):
    """grad_x = grad @ W: the linear_grad_x op (what autograd runs by default) vs
    ops.linear_grad_x_transposed on the cached W^T and its CPU layout (what a PackedLinear
    with transposed_backward=True runs), vs fp32 grad @ W."""
    kid = formats.KINDS[kind]
    ws = []
    for _ in range(copies(formats.packed_nbytes(kind, N, K))):
        p = random_packed(kind, N, K)
        wt = bitmm.ops.transpose_packed(p, kind, K)
        ws.append((p, wt, torch.ops.bitmm.cpu_prepack(wt, kid, N), torch.tensor(0.02)))
    g = torch.randn(M, N)
    us = cpu_time_us([lambda p=p, s=s: bitmm.ops.linear_grad_x(g, p, s, None, kind, K) for p, _, _, s in ws])
    t_us = cpu_time_us([lambda wt=wt, q=q, s=s: bitmm.ops.linear_grad_x_transposed(kind, g, wt, s, None, q)
                        for _, wt, q, s in ws])
    del ws
    fw = [torch.randn(N, K) for _ in range(copies(4 * N * K))]
    fp32_us = cpu_time_us([lambda w=w: g @ w for w in fw])

    def record(backend, t):
        return {"op": kind, "direction": "backward", "K": K, "N": N, "M": M, "group_size": G, "dtype": "float32",
                "backend": backend, "us": round(t, 1), "fp32_us": round(fp32_us, 1),
                "speedup_vs_fp32": round(fp32_us / t, 2), "threads": torch.get_num_threads()}

    return [record("cpu-linear_grad_x", us), record("cpu-transposed-prepacked", t_us)]


def run_lora_step_case(M, layers=3, width=4096, r=16):
    """End to end: forward + backward of a stack of PackedLoRALinear layers (ternary, per tensor,
    x requiring a gradient), with and without PackedLinear.transposed_backward."""
    import bitmm.nn as bnn  # noqa: PLC0415
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[bnn.PackedLoRALinear(bnn.PackedLinear.from_linear(torch.nn.Linear(width, width)), r=r)
                                  for _ in range(layers)])
    x = torch.randn(M, width)

    def step():
        xr = x.clone().requires_grad_(True)
        model(xr).sum().backward()

    out = []
    for transposed in (False, True):
        bnn.enable_transposed_backward(model, transposed)
        t = cpu_time_us([step])
        out.append({"op": "ternary_lora_train_step", "direction": "forward+backward", "K": width, "N": width, "M": M,
                    "layers": layers, "rank": r, "group_size": None, "dtype": "float32",
                    "backend": "transposed_backward" if transposed else "default", "us": round(t, 1),
                    "threads": torch.get_num_threads()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/cpu.json")
    ap.add_argument("--groupwise", action="store_true",
                    help="group-wise cases (int2 g64 / g32, binary g64 at M = 1, 4, 16; per tensor for scale)")
    ap.add_argument("--backward", action="store_true",
                    help="grad_x cases instead: linear_grad_x vs the transposed weight (PackedLinear.transposed_backward)")
    ap.add_argument("--a8", action="store_true",
                    help="W2A8 cases instead: linear_a8 vs the float op on the fake-quantized x (act_bits=8 layers)")
    args = ap.parse_args()
    torch.manual_seed(0)
    out = f"cpu: {lscpu_model()}, {os.cpu_count()} cores"
    if args.a8:
        records = run_all(A8_CASES, run_a8_case, lambda r: (
            f"a8 {r['op']:7s} K={r['K']} N={r['N']} M={r['M']:2d} {r['backend']:36s} {r['us']:8.1f} us  fp32 "
            f"{r['fp32_us']:8.1f} (x{r['speedup_vs_fp32']:.2f})  int8-dyn {r['int8_dynamic_us']}"
            f" (x{r['speedup_vs_int8_dynamic']})"))
        write_results(args.out, out, records)
        return
    if args.backward:
        records = run_all(BACKWARD_CASES, run_backward_case, lambda r: (
            f"backward {r['op']:7s} K={r['K']} N={r['N']} M={r['M']:2d} {r['backend']:26s} {r['us']:9.1f} us"
            f"  fp32 grad@W {r['fp32_us']:9.1f} us (x{r['speedup_vs_fp32']:.2f})"))
        records += run_all([(1,), (16,)], run_lora_step_case, lambda r: (
            f"LoRA train step, 3 x {r['K']}^2 ternary, r={r['rank']}, M={r['M']:2d} {r['backend']:20s} "
            f"{r['us'] / 1e3:8.2f} ms"))
        write_results(args.out, out, records)
        return
    records = run_all(GROUPWISE_CASES if args.groupwise else CASES, run_case, lambda r: (
        f"{r['op']:7s} K={r['K']} N={r['N']} M={r['M']:2d} G={str(r['group_size']):4s} "
        f"{r['backend']:18s} {r['us']:8.1f} us  fp32 {r['fp32_us']:8.1f} us (x{r['speedup_vs_fp32']:.2f})"
        f"  int8-dyn {r['int8_dynamic_us']} us (x{r['speedup_vs_int8_dynamic']})"))
    write_results(args.out, out, records)


def run_all(cases, run, line):
    """The records of run(*case) for every case, each printed as line(record) when it is made."""
    records = []
    for case in cases:
        for r in run(*case):
            records.append(r)
            print(line(r), flush=True)
    return records

if __name__ == "__main__":
    main()
