"""Bad input gets a clear error naming the argument, on every device."""
import pytest
import torch

import bitmm
from conftest import DEVICES
from helpers import assert_error_table, make_problem

K, N = 100, 9


def poisoned(t, index, value):
    t = t.clone()
    t[index] = value
    return t


def cases(device):
    x, p, s, u, b = make_problem("ternary", 3, K, N, "channel", device=device)
    nan, inf = float("nan"), float("inf")
    sg = torch.rand(N, 4, device=device).half() + 0.1  # group-wise, G = 25
    pb = bitmm.pack_binary(torch.randint(0, 2, (N, K), device=device))
    other = "cpu" if device != "cpu" else ("meta")
    return [
        # (description, call, exception type, message fragment)
        ("integer x", lambda: bitmm.ternary_linear(x.long(), p, s), TypeError, "x must be float"),
        ("x with K=0", lambda: bitmm.ternary_linear(x[:, :0], p, s), ValueError, "K=0"),
        ("packed wrong dtype", lambda: bitmm.ternary_linear(x, p.long(), s), TypeError, "packed_w must be an int32"),
        ("packed not 2-D", lambda: bitmm.ternary_linear(x, p.flatten(), s), ValueError, "packed_w must be 2-D"),
        # packed_w holds whole 128-weight row chunks, so K is checked to that granularity
        ("mismatched K", lambda: bitmm.ternary_linear(torch.randn(3, 200, device=device), p, s), ValueError, "K=200"),
        ("binary packed as ternary", lambda: bitmm.ternary_linear(x, pb, s), ValueError, "another K or another kind"),
        ("scale wrong shape", lambda: bitmm.ternary_linear(x, p, s[:4]), ValueError, "scale of shape"),
        ("scale 3-D", lambda: bitmm.ternary_linear(x, p, s.reshape(N, 1, 1)), ValueError, "scale of shape"),
        ("scale integer", lambda: bitmm.ternary_linear(x, p, s.long()), TypeError, "scale must be float"),
        ("group not dividing K", lambda: bitmm.ternary_linear(x, p, torch.rand(N, 3, device=device)), ValueError,
         "does not divide K=100"),
        ("offset bad shape", lambda: bitmm.ternary_linear(x, p, s, torch.rand(N + 1, device=device)), ValueError,
         "offset of shape"),
        ("scale/offset group mismatch", lambda: bitmm.ternary_linear(
            x, p, torch.rand(N, 4, device=device), torch.rand(N, 5, device=device)), ValueError, "same group size"),
        ("bias bad shape", lambda: bitmm.ternary_linear(x, p, s, u, b[:3]), ValueError, "bias must have shape"),
        ("grad_y wrong N", lambda: bitmm.linear_grad_x(torch.randn(3, N + 1, device=device), p, s, u, "ternary", K),
         ValueError, "packed_w has N=9"),
    ] + ([
        # Non-finite scale / offset: rejected on CPU only (on CUDA a check would need a
        # host sync; there they propagate to the outputs that use them, see
        # tests/test_reliability.py).  Bias values are not checked on any device.
        ("NaN scale", lambda: bitmm.ternary_linear(x, p, poisoned(s, 3, nan)), ValueError, r"scale\[3\] is NaN"),
        ("Inf per-tensor scale", lambda: bitmm.ternary_linear(x, p, torch.tensor(inf)), ValueError, r"scale is \+Inf"),
        ("-Inf fp16 group-wise scale", lambda: bitmm.ternary_linear(x, p, poisoned(sg, (5, 2), -inf)), ValueError,
         r"scale\[5, 2\] is -Inf"),
        ("NaN in a transposed bf16 scale", lambda: bitmm.ternary_linear(
            x, p, poisoned(torch.rand(4, N).bfloat16().T, (8, 1), nan)), ValueError, r"scale\[8, 1\] is NaN"),
        ("NaN offset", lambda: bitmm.ternary_linear(x, p, s, poisoned(u, 0, nan)), ValueError, r"offset\[0\] is NaN"),
        ("Inf float64 offset", lambda: bitmm.ternary_linear(x.double(), p, s, poisoned(u.double(), 8, inf)), ValueError,
         r"offset\[8\] is \+Inf"),
        ("NaN scale in the backward", lambda: bitmm.linear_grad_x(torch.randn(3, N), p, poisoned(s, 3, nan), u,
                                                                  "ternary", K), ValueError,
         r"linear_grad_x\(ternary\): scale\[3\] is NaN"),
    ] if device == "cpu" else []) + ([
        ("scale on another device", lambda: bitmm.ternary_linear(x, p, s.to(other)), RuntimeError, "scale is on"),
        ("packed on another device", lambda: bitmm.ternary_linear(x, p.to(other), s), RuntimeError, "packed_w is on"),
        ("bias on another device", lambda: bitmm.ternary_linear(x, p, s, u, b.to(other)), RuntimeError, "bias is on"),
    ] if device != "cpu" else [])


@pytest.mark.parametrize("device", DEVICES)
def test_error_table(device):
    assert_error_table(cases(device))
