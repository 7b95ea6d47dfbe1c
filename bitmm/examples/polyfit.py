"""1.58-bit fine-tuning of a float model vs 1.58-bit training from scratch.

``python -m bitmm.examples.polyfit [--quick] [--device cpu|cuda] [--out DIR]``

The task (a smooth regression with a known answer): draw 7 points, one in each
seventh of [-1, 1], ``x_i ~ U(-1 + 2 i / 7, -1 + 2 (i + 1) / 7)`` for i = 0..6 (so
they come sorted and spread out; fully uniform x's sometimes cluster, and the
cubic through them then swings to |y| ~ 50, which makes the MSE heavy-tailed),
and ``y_i ~ N(0, 1)``; fit the least-squares polynomial of degree 3 through them, ``p``.  The model sees the 14 numbers
``(x_1, y_1, ..., x_7, y_7)`` and must output 200 numbers: the 100 sample
positions ``u_j = x_min + (x_max - x_min) * j / 99`` (j = 0..99, evenly spaced
over the points' span) followed by the curve there, ``p(u_0), ..., p(u_99)``,
i.e. the (x, y) coordinates of 100 points drawn along the fitted curve.
Loss: mean squared error over the 200 outputs.

Model: an MLP ``14 -> 512 -> 512 -> 512 -> 512 -> 200`` with GELU (4 hidden
layers of width 512, 5 Linear layers).

Experiment (all 5 Linear layers become BitNet b1.58 ternary ``BitLinear``s,
absmean scale per tensor, float activations, straight-through estimator):

1. train the float model for ``--float-steps``;
2. quantize it as is (``bitmm.nn.convert(mode="qat")`` reuses its weights as the
   latent weights) and measure the test loss before any further training;
3. continue training the quantized model (QAT) for ``--qat-steps``;
4. train the same 1.58-bit model from random initialization for the same
   ``--qat-steps`` with the same optimizer settings.

Prints the test losses of float / quantized-before-fine-tuning /
fine-tuned-from-float / trained-from-random and writes ``polyfit.png``.
"""
from __future__ import annotations

import copy
import os
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

import bitmm.nn as bnn

from . import _common as C

N_POINTS = 7
DEGREE = 3
N_SAMPLES = 100
IN_FEATURES = 2 * N_POINTS  # 14
OUT_FEATURES = 2 * N_SAMPLES  # 200


@torch.no_grad()
def make_data(n: int, seed: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` examples of the task: inputs (n, 14), targets (n, 200) (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    strata = torch.arange(N_POINTS, dtype=torch.float64)
    x = -1 + 2 * (strata + torch.rand(n, N_POINTS, generator=g, dtype=torch.float64)) / N_POINTS
    y = torch.randn(n, N_POINTS, generator=g, dtype=torch.float64)
    powers = torch.arange(DEGREE + 1, dtype=torch.float64)
    V = x[..., None] ** powers  # (n, 7, 4) Vandermonde
    coef = torch.linalg.lstsq(V, y[..., None]).solution  # (n, 4, 1) least-squares cubic
    t = torch.linspace(0, 1, N_SAMPLES, dtype=torch.float64)
    lo, hi = x[:, :1], x[:, -1:]
    u = lo + (hi - lo) * t  # (n, 100)
    p = ((u[..., None] ** powers) @ coef).squeeze(-1)  # (n, 100)
    inputs = torch.stack((x, y), dim=-1).reshape(n, IN_FEATURES)
    targets = torch.cat((u, p), dim=1)
    return inputs.float().to(device), targets.float().to(device)


def make_model(hidden: int = 512, layers: int = 4) -> torch.nn.Sequential:
    return C.mlp([IN_FEATURES] + [hidden] * layers + [OUT_FEATURES])


def _add_args(ap) -> None:
    ap.add_argument("--float-steps", type=int, default=None, help="float training steps (default 2000; quick 150)")
    ap.add_argument("--qat-steps", type=int, default=None, help="1.58-bit training steps (default 800; quick 80)")
    ap.add_argument("--hidden", type=int, default=None, help="hidden width (default 512; quick 128)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--lr", type=float, default=1e-3, help="float training learning rate (default 1e-3)")
    ap.add_argument("--qat-lr", type=float, default=2e-3,
                    help="learning rate of both 1.58-bit runs (default 2e-3; 5e-4 favours the float start more)")


def main(argv: Optional[Sequence[str]] = None) -> C.Result:
    args = C.parse_args("polyfit", __doc__.split("\n\n")[0], argv, _add_args)
    with C.num_threads(args.threads):
        return run(args)


def run(args) -> C.Result:
    quick = args.quick
    float_steps = args.float_steps or (150 if quick else 2000)
    qat_steps = args.qat_steps or (80 if quick else 800)
    hidden = args.hidden or (128 if quick else 512)
    dev = args.device
    eval_every = max(1, (float_steps + qat_steps) // 40)

    train_x, train_y = make_data(4096 if quick else 65536, args.seed + 1, dev)
    test_x, test_y = make_data(512 if quick else 4096, args.seed + 2, dev)
    print(f"polyfit: 7 points -> 100 (x, y) samples of their least-squares cubic; MLP 14 -> {hidden} x4 -> 200 "
          f"(GELU); {len(train_x)} training / {len(test_x)} test examples; device {dev}")
    print(f"target variance (MSE of predicting the mean): {test_y.var(0).mean().item():.4f}")

    def batch_fn(seed):
        g = torch.Generator(device=dev).manual_seed(seed)

        def f(step):
            idx = torch.randint(0, len(train_x), (args.batch,), device=dev, generator=g)
            return train_x[idx], train_y[idx]
        return f

    def test_loss(model) -> float:
        return F.mse_loss(model(test_x), test_y).item()

    with C.Stopwatch(dev) as total:
        # 1. float
        C.seed_all(args.seed)
        model_f = make_model(hidden).to(dev)
        h_float = C.train(model_f, batch_fn(args.seed + 10), F.mse_loss, float_steps, args.lr,
                          eval_fn=lambda: test_loss(model_f), eval_every=eval_every, label="float",
                          warmup=min(100, float_steps // 10), device=dev)
        loss_float = test_loss(model_f)

        # 2. quantize the float weights (BitLinear reuses them as latent weights)
        model_q = bnn.convert(copy.deepcopy(model_f), mode="qat", weight_bits=1.58, skip=None)
        with torch.no_grad():
            loss_q0 = test_loss(model_q.eval())

        # 3. fine-tune the quantized model
        h_ft = C.train(model_q, batch_fn(args.seed + 20), F.mse_loss, qat_steps, args.qat_lr,
                       eval_fn=lambda: test_loss(model_q), eval_every=eval_every,
                       label="1.58-bit, fine-tuned from float", step_offset=float_steps,
                       warmup=min(50, qat_steps // 10), device=dev)
        loss_ft = test_loss(model_q)

        # 4. the same 1.58-bit model from random init, same steps and optimizer
        C.seed_all(args.seed + 1)
        model_r = bnn.convert(make_model(hidden), mode="qat", weight_bits=1.58, skip=None).to(dev)
        h_rand = C.train(model_r, batch_fn(args.seed + 20), F.mse_loss, qat_steps, args.qat_lr,
                         eval_fn=lambda: test_loss(model_r), eval_every=eval_every,
                         label="1.58-bit, trained from random init", warmup=min(50, qat_steps // 10), device=dev)
        loss_rand = test_loss(model_r)

    rows = [
        {"model": "float", "steps": float_steps, "test MSE": loss_float, "train s": h_float.seconds},
        {"model": "1.58-bit, quantized before fine-tuning", "steps": 0, "test MSE": loss_q0, "train s": 0.0},
        {"model": "1.58-bit, fine-tuned from float", "steps": qat_steps, "test MSE": loss_ft,
         "train s": h_ft.seconds},
        {"model": "1.58-bit, trained from random init", "steps": qat_steps, "test MSE": loss_rand,
         "train s": h_rand.seconds},
    ]
    for r in rows:
        r["vs float"] = r["test MSE"] / loss_float

    png = C.plot_panels(
        [C.Panel("test MSE", [h_float.eval, h_ft.eval, h_rand.eval], "test MSE"),
         C.Panel("training MSE (mean over each interval)", [h_float.train, h_ft.train, h_rand.train],
                 "train MSE")],
        os.path.join(args.out, "polyfit.png"),
        f"polyfit: 14 -> {hidden} x4 -> 200 MLP, 1.58-bit fine-tuning from float vs from random init")
    result = C.Result(
        title=f"\npolyfit (test MSE on {len(test_x)} held-out examples; 1.58-bit = ternary BitLinear, all 5 layers)",
        columns=["model", "steps", "test MSE", "vs float", "train s"], rows=rows,
        formats={"test MSE": ".5f", "vs float": ".2f", "train s": ".1f"}, png=png, seconds=total.seconds,
        extra={"curves": {"float": h_float, "finetuned": h_ft, "random": h_rand}})
    return C.finish(result, dev)


if __name__ == "__main__":
    main()
