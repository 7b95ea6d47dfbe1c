"""Reliability: property-based fuzzing against the reference, determinism,
threads, NaN propagation."""
import os
import threading

import pytest
import torch

import bitmm
from conftest import DEVICES
from helpers import KINDS, assert_close_to_reference, make_problem

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("BITMM_FUZZ_EXAMPLES", "60"))


@st.composite
def problems(draw):
    kind = draw(st.sampled_from(KINDS))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
    M = draw(st.integers(0, 9))
    N = draw(st.integers(1, 70))
    G = draw(st.sampled_from([None, 1, 3, 32, 64]))
    mult = draw(st.integers(1, 9))
    K = G * mult if G else draw(st.integers(1, 700))
    mode = "group" if G else draw(st.sampled_from(["tensor", "channel"]))
    offset = draw(st.booleans())
    bias = draw(st.booleans())
    scale_in_x_dtype = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return kind, dtype, M, K, N, mode, G, offset, bias, scale_in_x_dtype, seed


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True)
@given(problems())
def test_fuzz_against_reference(prob):
    kind, dtype, M, K, N, mode, G, offset, bias, scale_in_x_dtype, seed = prob
    torch.manual_seed(seed)
    for device in DEVICES:
        x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device=device, offset=offset, bias=bias)
        if scale_in_x_dtype:
            s = s.to(dtype)
            u = None if u is None else u.to(dtype)
        y = bitmm.linear(kind, x, packed, s, u, b)
        assert_close_to_reference(kind, y, x, packed, s, u, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_deterministic(kind, device):
    x, packed, s, u, b = make_problem(kind, 5, 1000, 300, "channel", device=device)
    ys = [bitmm.linear(kind, x, packed, s, u, b) for _ in range(3)]
    assert all(torch.equal(ys[0], y) for y in ys[1:])


@pytest.mark.parametrize("kind", KINDS)
def test_cpu_backward_is_deterministic(kind):
    _, packed, s, u, _ = make_problem(kind, 5, 1000, 300, "channel")
    g = torch.randn(5, 300)
    gs = [bitmm.linear_grad_x(g, packed, s, u, kind, 1000) for _ in range(3)]
    assert all(torch.equal(gs[0], h) for h in gs[1:])


@pytest.mark.parametrize("device", DEVICES)
def test_concurrent_python_threads(device):
    probs = [make_problem(k, 3, 512, 64, "group", 64, device=device) for k in KINDS * 2]
    expected = [bitmm.linear(k, *p) for k, p in zip(KINDS * 2, probs)]
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                k = (KINDS * 2)[i]
                if not torch.equal(bitmm.linear(k, *probs[i]), expected[i]):
                    errors.append(i)
        except Exception as e:  # pragma: no cover
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(probs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offset", [False, True])
def test_nan_in_x_poisons_its_row_only(kind, offset, device):
    x, packed, s, u, _ = make_problem(kind, 4, 300, 20, "channel", device=device, offset=offset, bias=False)
    x[2, 123] = float("nan")
    y = bitmm.linear(kind, x, packed, s, u)
    assert torch.isnan(y[2]).all()
    assert torch.isfinite(y[[0, 1, 3]]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_streams_concurrently():
    probs = [make_problem(k, 3, 2048, 512, "channel", device="cuda") for k in KINDS]
    expected = [bitmm.linear(k, *p) for k, p in zip(KINDS, probs)]
    streams = [torch.cuda.Stream() for _ in KINDS]
    outs = [None] * len(KINDS)
    for i, (k, p, st_) in enumerate(zip(KINDS, probs, streams)):
        with torch.cuda.stream(st_):
            outs[i] = bitmm.linear(k, *p)
    torch.cuda.synchronize()
    assert all(torch.equal(o, e) for o, e in zip(outs, expected))


def test_cpu_index_math_past_2_31_elements():
    # N*K = 2**31 + something binary weights = 256 MB packed: the kernels must use 64-bit offsets.
    if os.environ.get("BITMM_SKIP_HUGE"):
        pytest.skip("BITMM_SKIP_HUGE set")
    N, K = 16, (2**31) // 16 + 128
    packed = torch.full((N, bitmm.formats.words_per_row("binary", K)), -1, dtype=torch.int32)  # all ones
    x = torch.zeros(1, K)
    x[0, -1] = 1.0
    x[0, 5] = 2.0
    y = bitmm.binary_linear(x, packed, torch.tensor(1.0))
    assert torch.equal(y, torch.full((1, N), 3.0))
