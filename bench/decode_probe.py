"""Where the tensor-core kernel's group-wise decode time goes (session 12, bench/NOTES.md tc11).

int2, K x N = 8192 x 28672, M = 1 and 2, fp16: the group size swept from 64 to 4096 (the per-group
work -- scale loads and flushes -- shrinks with it, the rest stays), per tensor for reference, the
tensor-core kernel (block-diagonal path at M <= 2) and the add/subtract kernel, each timed like
cuda_bench.py (CUDA-graph replays, weights rotated past L2, median).

    python bench/decode_probe.py --out bench/results/<file>.json
    python bench/decode_probe.py --kinds int2,ternary,binary --groups 64,128 --shapes 8192x28672,8192x8192 \
        --out ...   (session 13: the warps-along-N rule of the block-diagonal path, with BITMM_TC_WN=1/2/4)
    python bench/decode_probe.py --direction backward ...   (grad_x = grad_y @ W through bitmm.linear_grad_x,
        against fp16 grad_y @ W; session 23)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bitmm  # noqa: E402
from bitmm import formats, quant  # noqa: E402
from bitmm.benchmark_timing import copies_for, cuda_time_us, write_results  # noqa: E402
from cuda_bench import make_weights  # noqa: E402  (bench/ is this script's folder)


class Prepared(dict):
    """Tensors made once per weight set and reused by every M and round (dense fp16 copies, transposed weights):
    made per round, they were freshly written before each timing, which is what --rounds is there to average out."""

    def get_or_make(self, key, make):
        if key not in self:
            self[key] = make()
        return self[key]


def time_backend(be, kind, K, N, M, G, x, ws, bw, dt, dense_us, rnd, prepared):
    """One timing of backend `be` on the weight copies `ws`: (us, kernel family), or None where it does not apply.
    fp16 = F.linear (grad_y @ W backward) on dense weights of x's dtype, measured once per shape, M and round."""
    if be == "fp16":
        if (K, N, M, rnd) not in dense_us:
            dense = prepared.get_or_make("dense", lambda: [torch.randn(N, K, device="cuda", dtype=dt)
                                                          for _ in range(copies_for(2 * N * K))])
            dense_us[(K, N, M, rnd)] = cuda_time_us(
                [(lambda w=w: x @ w) if bw else (lambda w=w: torch.nn.functional.linear(x, w)) for w in dense],
                replays=20)
        return dense_us[(K, N, M, rnd)], "fp16"
    if be.startswith("a8") and bw:
        return None  # (linear_a8 is a forward op)
    if be == "a8":  # W2A8 as PackedLinear(act_bits=8, int8_matmul) runs it: quantize x, then the op
        def a8(p, s, u):
            xq, xs = quant.absmax_int8(x)
            return bitmm.linear_a8(kind, xq, xs, p, s, u, out_dtype=x.dtype)
        calls = [lambda p=p, s=s, u=u: a8(p, s, u) for p, s, u in ws]
    elif be == "a8op":
        xq1, xs1 = quant.absmax_int8(x)
        calls = [lambda p=p, s=s, u=u: bitmm.linear_a8(kind, xq1, xs1, p, s, u, out_dtype=x.dtype) for p, s, u in ws]
    elif bw and be.startswith("t_"):  # t_BACKEND: grad_x through the forward op on the cached W^T
        # (PackedLinear.transposed_backward; per tensor / per channel), under BACKEND (e.g. t_digits)
        if G is not None:
            return None
        wts = prepared.get_or_make("transposed", lambda: [(bitmm.ops.transpose_packed(p, kind, K), s, u) for p, s, u in ws])
        calls = [lambda p=p, s=s, u=u: bitmm.ops.linear_grad_x_transposed(kind, x, p, s, u) for p, s, u in wts]
    elif bw:
        calls = [lambda p=p, s=s, u=u: bitmm.linear_grad_x(x, p, s, u, kind, K) for p, s, u in ws]
    else:
        calls = [lambda p=p, s=s, u=u: bitmm.linear(kind, x, p, s, u) for p, s, u in ws]
    with bitmm.use_backend("auto" if be.startswith("a8") else be[2:] if be.startswith("t_") else be):
        us = cuda_time_us(calls, replays=20)
        calls[0]()  # (once more, eagerly: the kernel family it ran, for the record)
        return us, bitmm.backend.last_kernel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--kinds", default="int2", help="comma-separated: int2, ternary, binary")
    ap.add_argument("--groups", default="none,64,128,256,1024,4096", help="comma-separated; none = per tensor")
    ap.add_argument("--shapes", default="8192x28672", help="comma-separated KxN")
    ap.add_argument("--ms", default="1,2")
    ap.add_argument("--backends", default="tensorcore,addsub",
                    help="comma-separated bitmm backends; fp16 = F.linear on a dense weight of x's dtype (the baseline); "
                         "a8 = W2A8 (forward, per tensor / channel): quant.absmax_int8(x) then bitmm.linear_a8, per call; "
                         "a8op = bitmm.linear_a8 alone on x quantized once (the op's own time: a model would "
                         "quantize x in the previous op's epilogue). BITMM_A8_FUSED=1 in the environment: the fused "
                         "kernel for M <= 256")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    ap.add_argument("--direction", default="forward", choices=["forward", "backward"],
                    help="backward: grad_x = grad_y (M x N) through the packed weight, bitmm.linear_grad_x (backend "
                         "t_NAME: through the forward op on the cached W^T under backend NAME); fp16 = grad_y @ W")
    ap.add_argument("--scale-layout", default="ng", choices=["ng", "gn"],
                    help="group-wise s and u: ng = contiguous (N, G) tensors (the default layout); gn = (N, G) views of "
                         "contiguous (G, N) tensors (stride (1, N)): a CTA's rows of one group are then adjacent in "
                         "memory (session 44: the wgmma kernel's scale warps load row n0 + lane of a group per lane)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every backend this many times per case, alternating the order; keep the median")
    args = ap.parse_args()
    bw = args.direction == "backward"
    torch.manual_seed(0)
    records = []
    dt = getattr(torch, args.dtype)
    groups = [None if g == "none" else int(g) for g in args.groups.split(",")]
    dense_us = {}  # (K, N, M, round) -> F.linear's time, measured once per shape, M and round
    # Warm-up, timed and discarded: the first measurement of a process read high (session 16: fp16
    # F.linear on 8192 x 28672 at 127-136 us as the first case, 111-124 later; bench/NOTES.md).
    w0 = [torch.randn(8192, 8192, device="cuda", dtype=dt) for _ in range(copies_for(2 * 8192 * 8192))]
    x0 = torch.randn(4, 8192, device="cuda", dtype=dt)
    cuda_time_us([lambda w=w: torch.nn.functional.linear(x0, w) for w in w0], replays=20)
    del w0, x0
    for kind, shape, G in [(k, s, g) for k in args.kinds.split(",") for s in args.shapes.split(",") for g in groups]:
        K, N = (int(v) for v in shape.split("x"))
        sbytes = 0 if G is None else 2 * 2 * N * (K // G)
        ws = make_weights(kind, K, N, G, copies_for(formats.packed_nbytes(kind, N, K) + sbytes), dtype=dt)
        if G is not None and args.scale_layout == "gn":
            ws = [(p, s.t().contiguous().t(), u.t().contiguous().t()) for p, s, u in ws]
        prepared = Prepared()
        for M in (int(m) for m in args.ms.split(",")):
            x = torch.randn(M, N if bw else K, device="cuda", dtype=dt)  # backward: x is grad_y
            # Rounds (--rounds R): every backend R times, the order reversed on odd rounds, the median kept (and
            # each round's time in "us_rounds").  Session 34 (H100): the first backend timed after a weight set
            # was packed read 7-15% high at M = 1 (auto 38.4 us, then the same kernel forced: 33.5), so a single
            # pass in a fixed order biased whichever backend came first.
            times: dict = {}
            ran_by: dict = {}
            order = args.backends.split(",")
            for rnd in range(args.rounds):
                for be in (order if rnd % 2 == 0 else order[::-1]):
                    got = time_backend(be, kind, K, N, M, G, x, ws, bw, dt, dense_us, rnd, prepared)
                    if got is not None:
                        times.setdefault(be, []).append(got[0])
                        ran_by[be] = got[1]
            for be in order:
                if be not in times:
                    continue
                us = round(statistics.median(times[be]), 2)
                rec = {"op": kind, "direction": args.direction, "K": K, "N": N, "M": M, "group_size": G,
                       "dtype": args.dtype, "backend": be, "us": us}
                if G is not None:
                    rec["scale_layout"] = args.scale_layout
                if be != "fp16":
                    rec.update({"kernel": ran_by[be], "tc_wn_override": os.environ.get("BITMM_TC_WN"),
                                "gx_splits_override": os.environ.get("BITMM_GX_SPLITS"),
                                "a8_fused": os.environ.get("BITMM_A8_FUSED"),
                                "wg_scale_t": os.environ.get("BITMM_WG_SCALE_T")})
                if args.rounds > 1:
                    rec["us_rounds"] = [round(t, 2) for t in times[be]]
                records.append(rec)
                print(f"{kind} {K}x{N} G={str(G):5s} M={M} {be:10s} {us:8.2f} us  [{ran_by[be]}]", flush=True)
        del ws, prepared
        torch.cuda.empty_cache()
        # (written after every weight set, so a probe cut short by its call's time limit keeps what it measured)
        write_results(args.out, torch.cuda.get_device_name(), records)
    write_results(args.out, torch.cuda.get_device_name(), records)


if __name__ == "__main__":
    main()
