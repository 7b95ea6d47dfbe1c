"""Quantization-aware training at 1, 1.58 and 2 bits vs float on handwritten digits.

``python -m bitmm.examples.digits [--quick] [--device cpu|cuda] [--out DIR]``

Data: scikit-learn's bundled handwritten digits (1797 8x8 grey images, 10
classes; no download), pixels scaled to [0, 1], a fixed random 80/20
train/test split.

Model: an MLP ``64 -> 256 -> 256 -> 10`` with GELU.  Four copies start from the
same random initialization and are trained with the same data order, optimizer
(AdamW, warm-up + cosine) and number of steps:

* float: ``nn.Linear``;
* 1-bit: ``BitLinear(weight_bits=1)``, BitNet b1 sign binarization, one scale per tensor;
* 1.58-bit: ``BitLinear(weight_bits=1.58)``, BitNet b1.58 absmean ternary, one scale per tensor;
* 2-bit: ``BitLinear(weight_bits=2)``, HQQ int2 with a scale and zero per group of 64 inputs.

All three Linear layers are quantized (activations stay float).  After training
each quantized model is frozen into packed ``PackedLinear`` layers
(``convert(mode="packed")``); the table gives the test accuracy of both (they
should agree: the packed layer computes the same quantized weights) and the bytes
of the weights.  Writes ``digits.png`` (test loss and accuracy curves).
"""
from __future__ import annotations

import copy
import os
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

import bitmm.nn as bnn

from . import _common as C

VARIANTS = (("float", None), ("1-bit (binary)", 1), ("1.58-bit (ternary)", 1.58), ("2-bit (HQQ g64)", 2))


def load_digits(seed: int = 0, device="cpu"):
    """``(x_train, y_train), (x_test, y_test)``: scikit-learn's digits, x in [0, 1], 80/20 split."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - scikit-learn is a documented requirement of the examples
        raise SystemExit("this example needs scikit-learn (pip install scikit-learn)") from e
    d = _load()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm].to(device), y[perm].to(device)
    n = int(0.8 * len(x))
    return (x[:n], y[:n]), (x[n:], y[n:])


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers (packed weights, scales, biases)."""
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def _add_args(ap) -> None:
    ap.add_argument("--steps", type=int, default=None, help="training steps per model (default 1500; quick 120)")
    ap.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of every model (default 2e-3)")


def main(argv: Optional[Sequence[str]] = None) -> C.Result:
    args = C.parse_args("digits", __doc__.split("\n\n")[0], argv, _add_args)
    with C.num_threads(args.threads):
        return run(args)


def run(args) -> C.Result:
    steps = args.steps or (120 if args.quick else 1500)
    dev = args.device
    (xtr, ytr), (xte, yte) = load_digits(args.seed, dev)
    sizes = [64, args.hidden, args.hidden, 10]
    print(f"digits: scikit-learn handwritten digits, {len(xtr)} train / {len(xte)} test; MLP "
          f"{' -> '.join(map(str, sizes))} (GELU); {steps} steps of batch {args.batch}; device {dev}")

    C.seed_all(args.seed)
    init = C.mlp(sizes).to(dev)  # the shared initialization

    def evaluate(model) -> tuple[float, float]:
        logits = model(xte)
        return F.cross_entropy(logits, yte).item(), (logits.argmax(1) == yte).float().mean().item()

    rows, curves_loss, curves_acc = [], [], []
    with C.Stopwatch(dev) as total:
        for label, bits in VARIANTS:
            model = copy.deepcopy(init)
            if bits is not None:
                model = bnn.convert(model, mode="qat", weight_bits=bits, skip=None)
            acc_curve = C.Curve(label)
            g = torch.Generator(device=dev).manual_seed(args.seed + 10)

            def batch_fn(step, g=g):
                idx = torch.randint(0, len(xtr), (args.batch,), device=dev, generator=g)
                return xtr[idx], ytr[idx]

            def eval_fn(model=model, acc_curve=acc_curve):
                loss, acc = evaluate(model)
                acc_curve.values.append(acc)
                return loss

            h = C.train(model, batch_fn, F.cross_entropy, steps, args.lr, eval_fn=eval_fn,
                        eval_every=max(1, steps // 40), label=label, warmup=min(100, steps // 10), device=dev)
            acc_curve.steps = list(h.eval.steps)
            curves_loss.append(h.eval)
            curves_acc.append(acc_curve)
            with torch.no_grad():
                loss, acc = evaluate(model)
                if bits is None:
                    packed, acc_packed, nbytes = model, acc, model_bytes(model)
                else:
                    packed = bnn.convert(copy.deepcopy(model), mode="packed")
                    acc_packed = evaluate(packed)[1]
                    nbytes = model_bytes(packed)
            rows.append({"model": label, "test acc": acc, "packed acc": acc_packed, "test loss": loss,
                         "final train loss": h.train.last, "weight bytes": nbytes, "train s": h.seconds})
            print(f"  {label:20s} test acc {acc:.4f}  ({h.seconds:.1f} s)")

    png = C.plot_panels(
        [C.Panel("test cross-entropy", curves_loss, "test loss"),
         C.Panel("test accuracy", curves_acc, "accuracy", logy=False)],
        os.path.join(args.out, "digits.png"),
        f"digits: MLP {' -> '.join(map(str, sizes))}, BitLinear QAT vs float, {steps} steps each")
    result = C.Result(
        title=f"\ndigits ({len(xte)} test images; all 3 layers quantized; 'packed acc' = after "
              f"convert(mode='packed'); bytes = weights + scales + biases)",
        columns=["model", "test acc", "packed acc", "test loss", "final train loss", "weight bytes", "train s"],
        rows=rows, formats={"test acc": ".4f", "packed acc": ".4f", "test loss": ".4f", "final train loss": ".4f",
                            "train s": ".1f"},
        png=png, seconds=total.seconds)
    return C.finish(result, dev)


if __name__ == "__main__":
    main()
