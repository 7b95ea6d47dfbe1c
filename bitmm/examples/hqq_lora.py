"""HQQ+ style recovery: packed 1/2-bit weights plus trainable LoRA adapters.

``python -m bitmm.examples.hqq_lora [--quick] [--device cpu|cuda] [--out DIR]``

Data: scikit-learn's handwritten digits (8x8 images, 10 classes; see
:mod:`bitmm.examples.digits`).  Model: a float MLP ``64 -> 512 -> 512 -> 512 -> 10``
(GELU), trained first.  Every Linear layer (all four) is then quantized into a
packed ``PackedLinear`` (buffers only, frozen) with one of

* ``1-bit sign``:  ``PackedLinear.from_linear(weight_bits=1)``, BitNet b1 sign binarization, one
  scale per tensor (made for QAT, so the error of a float model is high);
* ``1-bit HQQ g64``: ``quant.hqq_quantize(nbits=1, group_size=64)`` + ``PackedLinear.from_hqq``
  (HQQ+'s 1-bit: scale and zero per group of 64 inputs);
* ``2-bit HQQ g64``: ``PackedLinear.from_linear(weight_bits=2, group_size=64)``.

Part 1, recovery (HQQ+, Badri & Shaji 2024): wrap every packed layer in a
``PackedLoRALinear`` (rank ``--rank``; only the adapters A, B train) and distill
towards the float model: minimize the mean squared error between the student's
and the float model's logits on the training images.  The table gives the test
accuracy and the relative logit error ``||z_q - z_float|| / ||z_float||`` on the
test images before and after.

Part 2, a shifted task (quantize-before vs quantize-after fine-tuning, as in
the Olive / QLoRA comparison): the same digits, each image translated one pixel
right and one pixel down (zeros shifted in).  The pre-trained float model does
badly on it.  Compared, on the shifted test images, with the same number of
steps, data order and learning rate on the shifted training images
(cross-entropy on the labels):

* fine-tune then quantize: full fine-tuning of the float model, then quantization;
* quantize then fine-tune: quantize the pre-trained model, then train only LoRA
  adapters over the frozen packed weights.

Writes ``hqq_lora.png`` (the distillation and the shifted-task loss curves).
"""
from __future__ import annotations

import copy
import os
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import bitmm.nn as bnn
from bitmm import quant

from . import _common as C
from .digits import load_digits

#: the quantizers of part 1, by name (see :func:`quantize_linear`)
QUANTIZERS = ("1-bit sign", "1-bit HQQ g64", "2-bit HQQ g64")
#: the two quantizers of part 2 (the plain ``from_linear`` 1-bit and 2-bit)
SHIFT_QUANTIZERS = ("1-bit sign", "2-bit HQQ g64")


def quantize_linear(linear: nn.Linear, how: str) -> bnn.PackedLinear:
    """One ``nn.Linear`` -> ``PackedLinear`` with the quantizer named ``how`` (see QUANTIZERS)."""
    if how == "1-bit sign":
        return bnn.PackedLinear.from_linear(linear, weight_bits=1)
    if how == "2-bit HQQ g64":
        return bnn.PackedLinear.from_linear(linear, weight_bits=2, group_size=64)
    if how == "1-bit HQQ g64":
        q, s, z = quant.hqq_quantize(linear.weight.detach(), nbits=1, group_size=64)
        return bnn.PackedLinear.from_hqq(q, s, z, nbits=1, group_size=64, bias=linear.bias)
    raise ValueError(f"unknown quantizer {how!r}; one of {QUANTIZERS}")


def quantize_model(model: nn.Module, how: str) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by a frozen ``PackedLinear``."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, quantize_linear(child, how))
    return model


def add_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    """Wraps every ``PackedLinear`` of ``model`` (in place) in a ``PackedLoRALinear`` and
    freezes everything but the adapters.  Returns ``model``."""
    for p in model.parameters():
        p.requires_grad_(False)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, bnn.PackedLinear):
                setattr(parent, name, bnn.PackedLoRALinear(child, r=rank, alpha=alpha))
    return model


def shift_images(x: torch.Tensor, dx: int = 1, dy: int = 1) -> torch.Tensor:
    """Translates flattened 8x8 images ``dx`` pixels right and ``dy`` down, shifting in zeros."""
    img = x.reshape(-1, 8, 8)
    out = torch.zeros_like(img)
    out[:, dy:, dx:] = img[:, :8 - dy, :8 - dx]
    return out.reshape(x.shape)


def _add_args(ap) -> None:
    ap.add_argument("--pretrain-steps", type=int, default=None, help="float training (default 1500; quick 150)")
    ap.add_argument("--lora-steps", type=int, default=None,
                    help="steps of each LoRA / fine-tuning run (default 600; quick 60)")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    ap.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha (default 32; scaling alpha / rank)")
    ap.add_argument("--hidden", type=int, default=None, help="hidden width (default 512; quick 256)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--lr", type=float, default=2e-3, help="float pre-training learning rate (default 2e-3)")
    ap.add_argument("--lora-lr", type=float, default=2e-3, help="LoRA learning rate (default 2e-3)")
    ap.add_argument("--ft-lr", type=float, default=None,
                    help="full float fine-tuning learning rate (default: --lora-lr)")


def main(argv: Optional[Sequence[str]] = None) -> C.Result:
    args = C.parse_args("hqq_lora", __doc__.split("\n\n")[0], argv, _add_args)
    with C.num_threads(args.threads):
        return run(args)


def run(args) -> C.Result:
    quick = args.quick
    pre_steps = args.pretrain_steps or (150 if quick else 1500)
    lora_steps = args.lora_steps or (60 if quick else 600)
    hidden = args.hidden or (256 if quick else 512)
    dev = args.device
    (xtr, ytr), (xte, yte) = load_digits(args.seed, dev)
    xtr_s, xte_s = shift_images(xtr), shift_images(xte)
    sizes = [64, hidden, hidden, hidden, 10]
    print(f"hqq_lora: digits, {len(xtr)} train / {len(xte)} test; MLP {' -> '.join(map(str, sizes))} (GELU); "
          f"LoRA rank {args.rank}, alpha {args.alpha:g}; device {dev}")
    every = max(1, lora_steps // 30)
    ft_lr = args.lora_lr if args.ft_lr is None else args.ft_lr

    def sampler(x, y, seed):
        g = torch.Generator(device=dev).manual_seed(seed)

        def f(step):
            idx = torch.randint(0, len(x), (args.batch,), device=dev, generator=g)
            return x[idx], y[idx]
        return f

    @torch.no_grad()
    def acc_of(model, x, y) -> float:
        return (model(x).argmax(1) == y).float().mean().item()

    @torch.no_grad()
    def rel_err(model, ref_logits, x) -> float:
        return ((model(x) - ref_logits).norm() / ref_logits.norm()).item()

    rows: list[dict] = []

    def row(setting, model_label, quantizer, acc, err, trainable, seconds):
        rows.append({"setting": setting, "model": model_label, "weights": quantizer, "test acc": acc,
                     "logit rel err": err, "trainable": trainable, "train s": seconds})

    with C.Stopwatch(dev) as total:
        # ---- float pre-training ----------------------------------------------------------
        C.seed_all(args.seed)
        model_f = C.mlp(sizes).to(dev)
        h = C.train(model_f, sampler(xtr, ytr, args.seed + 10), F.cross_entropy, pre_steps, args.lr,
                    warmup=min(100, pre_steps // 10), label="float pre-training", device=dev)
        model_f.eval()
        for p in model_f.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            ref_te = model_f(xte)
        ntrain_f = sum(p.numel() for p in model_f.parameters())
        row("digits", "float", "float32", acc_of(model_f, xte, yte), 0.0, ntrain_f, h.seconds)
        print(f"  float pre-trained: test acc {rows[-1]['test acc']:.4f} ({h.seconds:.1f} s)")

        # ---- part 1: LoRA recovery by distillation -----------------------------------------
        distill_curves = []

        def teacher_batch(seed):
            g = torch.Generator(device=dev).manual_seed(seed)

            def f(step):
                idx = torch.randint(0, len(xtr), (args.batch,), device=dev, generator=g)
                x = xtr[idx]
                with torch.no_grad():
                    return x, model_f(x)
            return f

        for how in QUANTIZERS:
            model_q = quantize_model(model_f, how).to(dev)
            acc0, err0 = acc_of(model_q, xte, yte), rel_err(model_q, ref_te, xte)
            row("digits", "quantized", how, acc0, err0, 0, 0.0)
            C.seed_all(args.seed + 30)
            add_lora(model_q, args.rank, args.alpha)
            hq = C.train(model_q, teacher_batch(args.seed + 20), F.mse_loss, lora_steps, args.lora_lr,
                         eval_fn=lambda m=model_q: F.mse_loss(m(xte), ref_te).item(), eval_every=every,
                         label=how, warmup=min(50, lora_steps // 10), device=dev)
            distill_curves.append(hq.eval)
            acc1, err1 = acc_of(model_q, xte, yte), rel_err(model_q, ref_te, xte)
            row("digits", "quantized + LoRA (distilled)", how, acc1, err1, C.count_trainable(model_q), hq.seconds)
            print(f"  {how:14s}: logit rel err {err0:.4f} -> {err1:.4f} with LoRA, "
                  f"test acc {acc0:.4f} -> {acc1:.4f} ({hq.seconds:.1f} s)")

        # ---- part 2: shifted task, fine-tune-then-quantize vs quantize-then-LoRA ------------
        shift_curves = []

        def shifted_loss(m):
            return F.cross_entropy(m(xte_s), yte).item()

        row("shifted digits", "float pre-trained, not fine-tuned", "float32", acc_of(model_f, xte_s, yte), None,
            0, 0.0)
        model_ft = copy.deepcopy(model_f)
        for p in model_ft.parameters():
            p.requires_grad_(True)
        hf = C.train(model_ft, sampler(xtr_s, ytr, args.seed + 40), F.cross_entropy, lora_steps, ft_lr,
                     eval_fn=lambda: shifted_loss(model_ft), eval_every=every, label="float, full fine-tuning",
                     warmup=min(50, lora_steps // 10), device=dev)
        shift_curves.append(hf.eval)
        with torch.no_grad():
            ref_ft = model_ft(xte_s)
        row("shifted digits", "float, fine-tuned", "float32", acc_of(model_ft, xte_s, yte), None,
            C.count_trainable(model_ft), hf.seconds)
        print(f"  shifted task: float {rows[-2]['test acc']:.4f} -> {rows[-1]['test acc']:.4f} after full "
              f"fine-tuning ({hf.seconds:.1f} s)")
        for how in SHIFT_QUANTIZERS:
            after = quantize_model(model_ft, how).to(dev)
            row("shifted digits", "fine-tune, then quantize", how, acc_of(after, xte_s, yte),
                rel_err(after, ref_ft, xte_s), C.count_trainable(model_ft), hf.seconds)
            before = quantize_model(model_f, how).to(dev)
            C.seed_all(args.seed + 30)
            add_lora(before, args.rank, args.alpha)
            hb = C.train(before, sampler(xtr_s, ytr, args.seed + 40), F.cross_entropy, lora_steps, args.lora_lr,
                         eval_fn=lambda m=before: shifted_loss(m), eval_every=every,
                         label=f"{how}: quantize, then LoRA", warmup=min(50, lora_steps // 10), device=dev)
            shift_curves.append(hb.eval)
            row("shifted digits", "quantize, then LoRA fine-tune", how, acc_of(before, xte_s, yte), None,
                C.count_trainable(before), hb.seconds)
            print(f"  {how:14s}: fine-tune then quantize {rows[-2]['test acc']:.4f}, quantize then LoRA "
                  f"{rows[-1]['test acc']:.4f} ({hb.seconds:.1f} s)")

    png = C.plot_panels(
        [C.Panel("recovery: LoRA distillation, test MSE to the float logits", distill_curves, "logit MSE"),
         C.Panel("shifted digits: test cross-entropy", shift_curves, "test loss")],
        os.path.join(args.out, "hqq_lora.png"),
        f"hqq_lora: MLP {' -> '.join(map(str, sizes))}, packed weights + LoRA rank {args.rank}")
    result = C.Result(
        title=(f"\nhqq_lora (all 4 layers packed; LoRA rank {args.rank} on every layer; {lora_steps} steps per "
               f"LoRA / fine-tuning run; test acc on the {len(xte)} test images, shifted ones for 'shifted "
               f"digits'; logit rel err vs the float model; for 'fine-tune, then quantize' vs the fine-tuned float "
               f"model)"),
        columns=["setting", "model", "weights", "test acc", "logit rel err", "trainable", "train s"],
        rows=rows, formats={"test acc": ".4f", "logit rel err": ".4f", "train s": ".1f"}, png=png,
        seconds=total.seconds)
    return C.finish(result, dev)


if __name__ == "__main__":
    main()
