"""Helpers shared by the examples: command line, device, seeding, a training loop
with loss curves, a stopwatch, a plain-text table and an optional matplotlib plot."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import Tensor, nn


# --------------------------------------------------------------------------------------
# Command line, device, seeds
# --------------------------------------------------------------------------------------
def parse_args(prog: str, description: str, argv: Optional[Sequence[str]] = None,
               extra: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    """``--quick``, ``--device {cpu,cuda}`` (default: cuda when available), ``--out DIR``
    (default: the current directory), ``--seed``; ``extra`` may add options."""
    ap = argparse.ArgumentParser(prog=f"python -m bitmm.examples.{prog}", description=description)
    ap.add_argument("--quick", action="store_true", help="a much smaller run (seconds), for smoke tests")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None,
                    help="default: cuda when available, else cpu")
    ap.add_argument("--out", default=".", help="directory for the PNG of the loss curves (default: .)")
    ap.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch during the run (default: torch's default); 1 is much faster "
                         "on a machine whose cores are busy with other work")
    if extra is not None:
        extra(ap)
    args = ap.parse_args(None if argv is None else [str(a) for a in argv])
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device")
    return args


@contextlib.contextmanager
def num_threads(n: Optional[int]):
    """Runs the block with ``torch.set_num_threads(n)`` (nothing when ``n`` is None), then restores."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Stopwatch:
    """``with Stopwatch(device) as sw: ...``; then ``sw.seconds`` (CUDA is synchronized)."""

    def __init__(self, device="cpu") -> None:
        self.device = device
        self.seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        synchronize(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._t0


def mlp(sizes: Sequence[int], act: Callable[[], nn.Module] = nn.GELU) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]), act, ..., Linear(sizes[-2], sizes[-1])`` (no final activation)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------
@dataclass
class Curve:
    """One line of a plot: ``values[i]`` at training step ``steps[i]``."""

    label: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: int, value: float) -> None:
        self.steps.append(int(step))
        self.values.append(float(value))

    @property
    def last(self) -> float:
        return self.values[-1] if self.values else math.nan


@dataclass
class History:
    train: Curve  # mean training loss over each logging interval
    eval: Curve  # eval_fn() at step 0, every eval_every steps and at the end
    seconds: float = 0.0


def train(model: nn.Module, batch_fn: Callable[[int], tuple[Tensor, Tensor]],
          loss_fn: Callable[[Tensor, Tensor], Tensor], steps: int, lr: float, *,
          params: Optional[Iterable[nn.Parameter]] = None, eval_fn: Optional[Callable[[], float]] = None,
          eval_every: int = 50, label: str = "", step_offset: int = 0, weight_decay: float = 0.0,
          warmup: int = 0, min_lr_ratio: float = 0.1, device="cpu") -> History:
    """AdamW for ``steps`` steps on ``loss_fn(model(x), y)`` with ``x, y = batch_fn(step)``.

    Learning rate: linear warm-up for ``warmup`` steps, then cosine decay to
    ``min_lr_ratio * lr``.  ``params`` defaults to the model's trainable parameters.
    ``eval_fn`` (no gradients, model in eval mode) is logged at step 0, every
    ``eval_every`` steps and after the last step; curve steps are shifted by
    ``step_offset`` (to draw a fine-tuning run after its pre-training).
    """
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

    hist = History(Curve(label), Curve(label))

    def log_eval(step: int) -> None:
        if eval_fn is None:
            return
        was = model.training
        model.eval()
        with torch.no_grad():
            hist.eval.add(step_offset + step, eval_fn())
        model.train(was)

    with Stopwatch(device) as sw:
        model.train()
        log_eval(0)
        acc = None
        n = 0
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x, y = batch_fn(step)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            acc = loss.detach() if acc is None else acc + loss.detach()
            n += 1
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                hist.train.add(step_offset + step + 1, (acc / n).item())
                acc, n = None, 0
                log_eval(step + 1)
        model.eval()
    hist.seconds = sw.seconds
    return hist


# --------------------------------------------------------------------------------------
# Results: table and plot
# --------------------------------------------------------------------------------------
def _fmt(v, spec: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) and not spec:
        return f"{v:,d}"
    if isinstance(v, float):
        return format(v, spec) if spec else f"{v:.4g}"
    return str(v)


@dataclass
class Result:
    """An example's outcome: ``rows`` (dicts keyed by ``columns``) and where the plot went."""

    title: str
    columns: list[str]
    rows: list[dict]
    formats: dict = field(default_factory=dict)  # column -> format spec for floats
    png: Optional[str] = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # other tables, curves ...

    def row(self, **match) -> dict:
        """The one row whose columns equal ``match`` (e.g. ``row(model="float")``)."""
        found = [r for r in self.rows if all(r.get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise KeyError(f"{len(found)} rows match {match}")
        return found[0]

    def table(self) -> str:
        return format_table(self.columns, self.rows, self.formats)

    def __str__(self) -> str:
        parts = [self.title, self.table()]
        parts += self.notes
        return "\n".join(parts)


def format_table(columns: Sequence[str], rows: Sequence[dict], formats: Optional[dict] = None) -> str:
    """A markdown-style table (also readable as plain text)."""
    formats = formats or {}
    cells = [[_fmt(r.get(c, ""), formats.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(r.get(c) is None or isinstance(r.get(c), (int, float)) for r in rows) for c in columns]

    def line(vals):
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(vals, widths, numeric)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                         for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(list(columns)), sep] + [line(r) for r in cells])


@dataclass
class Panel:
    """One subplot: ``curves`` against training step."""

    title: str
    curves: list[Curve]
    ylabel: str = "loss"
    logy: bool = True
    styles: dict = field(default_factory=dict)  # label -> matplotlib kwargs


def plot_panels(panels: Sequence[Panel], path: str, suptitle: str = "") -> Optional[str]:
    """Draws ``panels`` side by side into ``path`` (PNG).  Returns the path, or None
    (with a message) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: skipping {os.path.basename(path)}; pip install matplotlib)")
        return None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for c in p.curves:
            if not c.steps:
                continue
            ax.plot(c.steps, c.values, label=c.label, **p.styles.get(c.label, {}))
        if p.logy and all(v > 0 for c in p.curves for v in c.values if math.isfinite(v)):
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(p.ylabel)
        ax.set_title(p.title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def finish(result: Result, device) -> Result:
    """Prints the result (table last, as the examples promise) and returns it."""
    print()
    print(result)
    if result.png:
        print(f"loss curves: {result.png}")
    dev = torch.device(device)
    where = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
             else f"CPU, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}")
    print(f"total time {result.seconds:.1f} s on {where}")
    return result
