"""The runnable examples (bitmm.examples.*) in their --quick form: they run, print a
table, write their PNG (when matplotlib is installed) and the numbers are sane."""
import math
import os

import pytest
import torch

from bitmm.examples import _common, digits, hqq_lora, polyfit

try:
    import sklearn  # noqa: F401  digits and hqq_lora use scikit-learn's bundled data set
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False
needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="needs scikit-learn")

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False


def _run(module, tmp_path, capsys):
    threads = torch.get_num_threads()
    # --threads 1: these small models gain little from a 2nd thread, and OpenMP threads
    # slow down many times over when other processes keep the cores busy
    result = module.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    assert torch.get_num_threads() == threads  # restored
    out = capsys.readouterr().out
    assert isinstance(result, _common.Result)
    # the table is printed, at the end
    assert result.table() in out
    assert out.rfind(result.table().splitlines()[0]) > out.rfind("; device ")
    png = tmp_path / f"{module.__name__.rsplit('.', 1)[1]}.png"
    if HAVE_MPL:
        assert result.png == str(png) and png.stat().st_size > 1000
    else:
        assert result.png is None and "matplotlib" in out
    return result, out


def test_polyfit(tmp_path, capsys):
    res, _ = _run(polyfit, tmp_path, capsys)
    losses = {r["model"]: r["test MSE"] for r in res.rows}
    assert len(losses) == 4
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    f = losses["float"]
    q0 = losses["1.58-bit, quantized before fine-tuning"]
    ft = losses["1.58-bit, fine-tuned from float"]
    rnd = losses["1.58-bit, trained from random init"]
    assert f < q0  # quantizing a float model costs accuracy...
    assert ft <= q0  # ...and fine-tuning the quantized model recovers some of it
    assert ft < rnd  # the float start beats random init for the same number of steps
    assert all(math.isfinite(v) for c in res.extra["curves"].values() for v in c.eval.values)


def test_polyfit_data():
    x, y = polyfit.make_data(5, seed=3)
    assert x.shape == (5, 14) and y.shape == (5, 200)
    xs, ys = x[:, 0::2].double(), x[:, 1::2].double()
    assert torch.all(xs[:, 1:] >= xs[:, :-1])  # points sorted by x
    u, p = y[:, :100].double(), y[:, 100:].double()
    assert torch.allclose(u[:, 0], xs[:, 0]) and torch.allclose(u[:, -1], xs[:, -1], atol=1e-6)
    # p is the least-squares cubic through the 7 points: refit it from its own samples
    for i in range(5):
        c_pts = torch.linalg.lstsq(xs[i, :, None] ** torch.arange(4.0, dtype=torch.float64), ys[i, :, None]).solution
        c_curve = torch.linalg.lstsq(u[i, :, None] ** torch.arange(4.0, dtype=torch.float64), p[i, :, None]).solution
        assert torch.allclose(c_pts, c_curve, atol=1e-3, rtol=1e-3)


@needs_sklearn
def test_digits(tmp_path, capsys):
    res, _ = _run(digits, tmp_path, capsys)
    assert [r["model"] for r in res.rows] == [label for label, _ in digits.VARIANTS]
    for r in res.rows:
        assert math.isfinite(r["test loss"]) and 0.0 <= r["test acc"] <= 1.0
        assert r["test acc"] > 0.5, r  # 10 classes: far above chance even in the quick run
        # the packed inference model computes the same quantized weights as the QAT layer
        assert abs(r["packed acc"] - r["test acc"]) <= 2 / 360, r
    nbytes = {r["model"]: r["weight bytes"] for r in res.rows}
    assert nbytes["1-bit (binary)"] < nbytes["1.58-bit (ternary)"] < nbytes["float"] / 8
    assert nbytes["2-bit (HQQ g64)"] < nbytes["float"] / 8


@needs_sklearn
def test_hqq_lora(tmp_path, capsys):
    res, _ = _run(hqq_lora, tmp_path, capsys)
    for how in hqq_lora.QUANTIZERS:
        before = res.row(setting="digits", model="quantized", weights=how)
        after = res.row(setting="digits", model="quantized + LoRA (distilled)", weights=how)
        assert 0 < after["logit rel err"] < before["logit rel err"], how
        assert math.isfinite(after["test acc"]) and after["test acc"] > 0.5
        assert before["trainable"] == 0 and after["trainable"] > 0
    base = res.row(setting="shifted digits", model="float pre-trained, not fine-tuned")["test acc"]
    ft = res.row(setting="shifted digits", model="float, fine-tuned")["test acc"]
    assert ft > base  # the shift hurts and fine-tuning helps
    for how in hqq_lora.SHIFT_QUANTIZERS:
        lora = res.row(setting="shifted digits", model="quantize, then LoRA fine-tune", weights=how)
        assert lora["test acc"] > base, how
        assert lora["trainable"] < res.row(setting="digits", model="float")["trainable"]


def test_hqq_lora_helpers():
    torch.manual_seed(0)
    lin = torch.nn.Linear(128, 32)
    x = torch.randn(4, 128)
    with torch.no_grad():
        for how in hqq_lora.QUANTIZERS:
            q = hqq_lora.quantize_linear(lin, how)
            err = ((q(x) - lin(x)).norm() / lin(x).norm()).item()
            assert math.isfinite(err) and err < 1.0, (how, err)
    m = hqq_lora.add_lora(hqq_lora.quantize_model(torch.nn.Sequential(lin), "2-bit HQQ g64"), 4, 8)
    assert isinstance(m[0], hqq_lora.bnn.PackedLoRALinear)
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["0.lora_A", "0.lora_B"]
    img = torch.arange(64.0).reshape(1, 64)
    s = hqq_lora.shift_images(img).reshape(8, 8)
    assert s[0].abs().sum() == 0 and s[:, 0].abs().sum() == 0 and s[1, 1] == 0 and s[7, 7] == img[0, 54]


def test_format_table_and_optional_plot(tmp_path, monkeypatch, capsys):
    t = _common.format_table(["a", "b"], [{"a": "x", "b": 1.5}, {"a": "yy", "b": None}], {"b": ".2f"})
    lines = t.splitlines()
    assert lines[0].startswith("| a ") and "1.50" in lines[2] and len({len(line) for line in lines}) == 1
    # without matplotlib the plot is skipped with a message, not an error
    import builtins
    real_import = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    c = _common.Curve("c", [0, 1], [1.0, 0.5])
    assert _common.plot_panels([_common.Panel("p", [c])], str(tmp_path / "x.png")) is None
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "x.png")
