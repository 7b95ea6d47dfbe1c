"""(python bench/host_overhead_cpu.py) Host overhead per call, CPU, tiny shape (kernel time negligible).
Cases are interleaved (round robin) so that load from other processes hits all alike.
Prints median (and min) over reps of the mean time per call in loops of --n calls."""
import argparse, statistics, time, json
import torch
import bitmm, bitmm.nn as bnn

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=2000)
p.add_argument("--reps", type=int, default=21)
p.add_argument("--K", type=int, default=64)
p.add_argument("--N", type=int, default=64)
p.add_argument("--dtypes", default="float32,float16")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--json", default=None)
p.add_argument("--quick", action="store_true")
p.add_argument("--clock", default="perf_counter", help="perf_counter | thread_time (CPU time of this thread: ignores preemption)")
a = p.parse_args()
torch.set_num_threads(a.threads)
clock = getattr(time, a.clock)

def run(cases, n=a.n, reps=a.reps):
    for fn in cases.values():
        for _ in range(200): fn()
    ts = {k: [] for k in cases}
    for _ in range(reps):
        for k, fn in cases.items():
            t0 = clock()
            for _ in range(n): fn()
            ts[k].append((clock() - t0) / n * 1e6)
    return {k: (statistics.median(v), min(v)) for k, v in ts.items()}

res = {}
for dn in a.dtypes.split(","):
    dt = getattr(torch, dn)
    torch.manual_seed(0)
    lin = torch.nn.Linear(a.K, a.N)
    pl = bnn.PackedLinear.from_linear(lin, 1.58)
    pl.bias = pl.bias.to(dt)
    lin = lin.to(dt)  # params require grad, as a normal nn.Linear
    x = torch.randn(1, a.K, dtype=dt)
    op = torch.ops.bitmm.ternary_linear
    W, s, b = pl.packed_weight, pl.scale, pl.bias
    def below():
        with torch._C._AutoDispatchBelowAutograd():
            return op(x, W, s, None, b)
    cases = {
        "nn.Linear": lambda: lin(x),
        "PackedLinear": lambda: pl(x),
        "torch.ops.bitmm.ternary_linear": lambda: op(x, W, s, None, b),
    }
    if not a.quick:
        cases.update({
            "F.linear": lambda: torch.nn.functional.linear(x, lin.weight, lin.bias),
            "bitmm.ternary_linear (wrapper)": lambda: bitmm.ternary_linear(x, W, s, None, b),
            "op below autograd (+guard)": below,
        })
    for mode in ("no_grad", "grad"):
        with (torch.no_grad() if mode == "no_grad" else torch.enable_grad()):
            r = run(cases)
        for name, (med, mn) in r.items():
            res[f"{dn} {mode} {name}"] = med
            print(f"{dn:8s} {mode:7s} {name:34s} median {med:7.2f} us  min {mn:7.2f} us", flush=True)
        print(f"{dn:8s} {mode:7s} PackedLinear - nn.Linear = {r['PackedLinear'][0] - r['nn.Linear'][0]:+.2f} us (median), "
              f"ratio {r['PackedLinear'][0] / r['nn.Linear'][0]:.2f}")
if a.json:
    json.dump(res, open(a.json, "w"), indent=1)
