"""How often tests/test_reliability.py::test_reference_check_includes_the_slice_check's injected error is caught, over
random seeds: the session-49 perturbation (10% of max(|ref|, rms) at one output) against the earlier one (y *= 1.1,
which misses where that output's exact value is near 0).  CPU, bf16, M = 1, K = 64, N = 40000, as the test.

    PYTHONPATH=.:tests python bench/slice_check_power.py [--seeds 30]
"""
import argparse

import torch

import bitmm
from helpers import assert_close_to_reference, make_problem, reference_and_baseline_err

ap = argparse.ArgumentParser()
ap.add_argument("--seeds", type=int, default=30)
args = ap.parse_args()
missed = {"y *= 1.1": 0, "10% of max(|ref|, rms)": 0}
for seed in range(args.seeds):
    torch.manual_seed(seed)
    x, packed, s, u, b = make_problem("ternary", 1, 64, 40000, "channel", None, dtype=torch.bfloat16, bias=False)
    y = bitmm.linear("ternary", x, packed, s, u, b)
    ref = reference_and_baseline_err("ternary", x, packed, s, u, b)[0]
    rms = ref.norm().item() / ref.numel() ** 0.5
    old, new = y.clone(), y.clone()
    old[0, 12345] *= 1.1
    new[0, 12345] = (ref[0, 12345] + 0.1 * max(abs(ref[0, 12345].item()), rms)).to(y.dtype)
    for name, bad in (("y *= 1.1", old), ("10% of max(|ref|, rms)", new)):
        try:
            assert_close_to_reference("ternary", bad, x, packed, s, u, b)
            missed[name] += 1
        except AssertionError as e:
            assert "column 12345" in str(e), str(e)
for name, n in missed.items():
    print(f"{name}: missed {n} of {args.seeds} seeds")
