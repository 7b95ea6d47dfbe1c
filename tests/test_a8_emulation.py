"""The fused W2A8 kernel's layout on the CPU: tests/a8_emulate.cpp runs csrc/cuda/a8_linear.cu's loop with its own
fragment functions (csrc/cuda/a8_fragments.h) for the 32 lanes of each warp, every CTA of the grid with its whole
shared memory laid out and bounds-checked (a8::smem_layout), an mma.sync m16n8k32 emulated
from the PTX ISA's fragment layout, the sets' shifts and the CTA's sum.  Its integer sums must equal
xq @ stored codes exactly, and its float32 outputs bitmm.linear_a8's CPU outputs bit for bit.

What this cannot catch: a wrong reading of the PTX fragment layout (the emulator and the kernel share it), the
kernel's register rotation of the weight loads, shared-memory races, and anything else the hardware does; the GPU
tests in tests/test_linear_a8.py (BITMM_A8_FUSED=1) cover those.
"""
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import bitmm
from helpers import PACKERS, digits_hard_rows, random_values

ROOT = Path(__file__).resolve().parents[1]
CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    exe = tmp_path_factory.mktemp("a8") / "a8_emulate"
    subprocess.run([CXX, "-O2", "-std=c++20", "-ffp-contract=off", "-Wno-unknown-pragmas", f"-I{ROOT / 'csrc'}",
                    str(ROOT / "tests" / "a8_emulate.cpp"), "-o", str(exe)], check=True)
    return exe


def emulate(exe, tmp_path, kind, xq, packed, xs, s, u, b, cfg=(4, 4), chunk_rows=16, e=None):
    # e: the digits backend (xq's rows 4 m .. 4 m + 3 the digits of x row m, e its exponents): y has M / 4 rows
    M, K = xq.shape
    N, wpr = packed.shape
    inp, out = tmp_path / "in.bin", tmp_path / "out.bin"
    planes = 1 if kind == "binary" else 2
    head = [planes, M, N, K, wpr, u is not None, b is not None, s.numel(), 0 if u is None else u.numel(), *cfg,
            min(chunk_rows, M), e is not None]
    with open(inp, "wb") as f:
        f.write(struct.pack("13q", *map(int, head)))
        for t, dt in ((xq, np.int8), (packed, np.int32), (xs, np.float32), (s, np.float32), (u, np.float32),
                      (b, np.float32), (e, np.int32)):
            if t is not None:
                f.write(np.ascontiguousarray(t.reshape(-1).numpy().astype(dt)).tobytes())
    subprocess.run([str(exe), str(inp), str(out)], check=True)
    raw = np.fromfile(out, dtype=np.uint8)
    sums = raw[: 4 * M * N].view(np.int32).reshape(M, N)
    X = raw[4 * M * N: 4 * (M * N + M)].view(np.int32)
    y = raw[4 * (M * N + M):].view(np.float32).reshape(M if e is None else M // 4, N)
    return torch.from_numpy(sums.astype(np.int64)), torch.from_numpy(X.astype(np.int64)), torch.from_numpy(y.copy())


@pytest.mark.parametrize("cfg", [(4, 4), (8, 2), (8, 1)], ids=["4warps_ks4", "8warps_ks2", "8warps_ks1"])
@pytest.mark.parametrize("M", [1, 3, 8, 9, 16, 17, 40])
@pytest.mark.parametrize("K,N", [(37, 13), (128, 16), (300, 33), (520, 40), (1000, 70), (2304, 17), (6272, 70)])
@pytest.mark.parametrize("kind", ["ternary", "binary", "int2"])
def test_a8_emulated_kernel_matches_exact_sums(emulator, tmp_path, kind, K, N, M, cfg):
    # K = 37 / 300 / 1000: a partial last block and step; 128 / 520 / 2304: whole blocks, steps of 256 / 512 k partly
    # filled; N = 13 / 33 / 17 / 70: a last row tile past N (and, with 4 or 8 row tiles per CTA, whole tiles past N);
    # M = 9 / 16: the second x tile (8 rows of B each); M = 17 / 40: x rows in chunks of 16 (CTAs per chunk and
    # weight-row group, a last partial chunk); the three CTA configurations (a8_config)
    torch.manual_seed(K * 131 + N * 7 + M)
    v = random_values(kind, N, K, "cpu")
    packed = PACKERS[kind](v)
    codes = v.long() + (1 if kind == "ternary" else 0)  # the stored codes (pack_int2 takes codes 0..3)
    xq = torch.randint(-128, 128, (M, K), dtype=torch.int8)
    xs = torch.rand(M, 1) + 0.5
    s = torch.rand(N) + 0.1
    u = torch.randn(N) * 0.1
    b = torch.randn(N)
    sums, X, y = emulate(emulator, tmp_path, kind, xq, packed, xs, s, u, b, cfg)
    assert torch.equal(sums, xq.long() @ codes.T), "integer sums differ"
    assert torch.equal(X, xq.long().sum(1))
    want = bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=torch.float32)
    assert torch.equal(y, want), "epilogue bits differ from linear_a8's CPU path"


@pytest.mark.parametrize("kind", ["int2", "binary"])
def test_a8_emulated_kernel_extreme_values(emulator, tmp_path, kind):
    # the largest codes against x = -128 over K = 8320 (every set's accumulator near its largest, the shifts exact):
    # int2 code 3 times 4^3 in set 3, binary 1 times 2^7 in set 7; per tensor scale, no offset / bias
    K, N, M = 8320, 24, 5
    codes = torch.full((N, K), 3 if kind == "int2" else 1, dtype=torch.int8)
    codes[::3, ::7] = 0
    packed = (bitmm.pack_int2 if kind == "int2" else bitmm.pack_binary)(codes)
    xq = torch.full((M, K), -128, dtype=torch.int8)
    xq[:, 1::5] = 127
    sums, X, y = emulate(emulator, tmp_path, kind, xq, packed, torch.ones(M, 1), torch.tensor([1.0]), None, None)
    assert torch.equal(sums, xq.long() @ codes.long().T)
    assert torch.equal(X, xq.long().sum(1))


@pytest.mark.parametrize("M,chunk_rows", [(12, 8), (16, 4), (7, 2), (5, 1), (25, 16), (256, 16)])
@pytest.mark.parametrize("kind", ["ternary", "binary", "int2"])
def test_a8_emulated_kernel_chunks(emulator, tmp_path, kind, M, chunk_rows):
    # x rows per CTA below 16 (the launcher's choice where 16 rows of x exceed the shared memory: one B tile from 8
    # rows down), a last partial chunk of 9 rows (M = 25: both B tiles, the second partly empty), 16 chunks
    K, N = 700, 50
    torch.manual_seed(M * 7 + chunk_rows)
    v = random_values(kind, N, K, "cpu")
    packed = PACKERS[kind](v)
    codes = v.long() + (1 if kind == "ternary" else 0)
    xq = torch.randint(-128, 128, (M, K), dtype=torch.int8)
    xs = torch.rand(M, 1) + 0.5
    s, u, b = torch.rand(N) + 0.1, torch.randn(N) * 0.1, torch.randn(N)
    for cfg in ((4, 4), (8, 2), (8, 1)):
        sums, X, y = emulate(emulator, tmp_path, kind, xq, packed, xs, s, u, b, cfg, chunk_rows)
        assert torch.equal(sums, xq.long() @ codes.T) and torch.equal(X, xq.long().sum(1))
        assert torch.equal(y, bitmm.linear_a8(kind, xq, xs, packed, s, u, b, out_dtype=torch.float32))


RULES = r"""
#include "csrc/cuda/a8_fragments.h"
#include <cstdio>
using namespace bitmm;
int main() {  // per line of stdin: M N planes sms K smem_limit unit
  long long M, N, planes, sms, K, limit, unit;
  while (std::scanf("%lld %lld %lld %lld %lld %lld %lld", &M, &N, &planes, &sms, &K, &limit, &unit) == 7) {
    const long long pk = (K + 127) / 128 * 128;
    const a8::Config c = planes == 2 ? a8::pick_config<2>(M, N, pk, (int)sms, limit, (int)unit)
                                     : a8::pick_config<1>(M, N, pk, (int)sms, limit, (int)unit);
    std::printf("%d %d %d %lld\n", c.warps, c.ks, c.chunk_rows, (long long)c.smem);
  }
}
"""
H200_OPTIN = 232448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on the H100 / H200 (227 KB)


@pytest.fixture(scope="module")
def rules_exe(tmp_path_factory):
    from helpers import compile_host_program
    return compile_host_program(tmp_path_factory.mktemp("a8_rules"), RULES)


def test_a8_launch_rules_table(rules_exe):
    # (M, N, planes, SMs, K) -> (warps, K splits, x rows per CTA): the rule (a8_fragments.h pick_config) as README /
    # NOTES state it; the measured H200 times (session 28 call 3, bench/results/h200_s28_call3_*) where probed
    cases = [((1, 28672, 2, 132, 8192), (4, 4, 1)),    # M = 1: the finest (26.7 us; 8 tiles 29.5)
             ((2, 28672, 2, 132, 8192), (4, 4, 2)),    # two-plane M = 2: x still within half the weight bytes
             ((2, 28672, 1, 132, 8192), (8, 1, 2)),    # binary M = 2: by the cost, 8 tiles
             ((4, 28672, 2, 132, 8192), (8, 1, 4)),    # 29.7 us (4 warps on one tile: 43.0)
             ((16, 28672, 2, 132, 8192), (8, 1, 16)),  # 46.8 us (8 warps on 4 tiles, the rule before: 59.3)
             ((64, 28672, 2, 132, 8192), (8, 1, 16)),  # 4 chunks of x rows: 896 CTAs of 128 weight rows
             ((16, 8192, 2, 132, 8192), (8, 2, 16)),   # 15.3 us (one tile: 56.4, the rule before)
             ((4, 8192, 2, 132, 28672), (8, 2, 4)),    # 37.3 us (one tile: 87.5, the rule before)
             ((16, 8192, 2, 132, 28672), (8, 1, 4)),   # 16 rows of 28 KB do not fit; 115 us (one tile: 242)
             ((16, 4096, 1, 132, 4096), (8, 2, 8)),    # binary: 5.4 us (one tile, 16 rows: 10.5)
             ((1, 4096, 2, 132, 4096), (4, 4, 1)),
             ((256, 4096, 2, 132, 4096), (8, 1, 16)),  # 16 chunks
             ((12, 40, 2, 132, 20000), (4, 4, 8)),     # the GPU test's short chunks: 12 rows of 20 KB do not fit
             ((16, 20, 2, 132, 30000), (4, 4, 4)),
             ((2, 8, 1, 132, 240000), (4, 4, 0)),     # not one row of x fits: the launcher refuses (unfused path)
             # the digits backend (unit 4: rows of x as 4 digit rows each, never split over CTAs)
             ((4, 28672, 2, 132, 8192, 4), (8, 1, 4)),    # M = 1 (as linear_a8 at M = 4)
             ((12, 28672, 2, 132, 8192, 4), (8, 1, 12)),  # M = 3: one chunk of 12 rows
             ((16, 40, 2, 132, 50000, 4), (4, 4, 4)),     # 8 rows of 50 KB do not fit, 4 do
             ((16, 40, 2, 132, 60000, 4), (4, 4, 0)),     # not even 4: refused (2 rows of 60 KB would fit:)
             ((16, 40, 2, 132, 60000, 1), (4, 4, 2))]
    text = "".join(f"{c[0][0]} {c[0][1]} {c[0][2]} {c[0][3]} {c[0][4]} {H200_OPTIN} {(c[0] + (1,))[5]}\n"
                   for c in cases)
    out = subprocess.run([str(rules_exe)], input=text, check=True, capture_output=True, text=True).stdout.split("\n")
    got = [tuple(int(v) for v in line.split()[:3]) for line in out if line]
    assert got == [e for _, e in cases]
    for line, (_, want) in zip([x for x in out if x], cases):
        smem = int(line.split()[3])
        assert (0 < smem <= H200_OPTIN) if want[2] else smem == 0  # (refused: nothing fits)


# ---- the digits backend (bitmm.set_backend("digits")): fp16 / bf16 x as four int8 digit rows per row ----------------
@pytest.mark.parametrize("cfg", [(4, 4), (8, 2), (8, 1)], ids=["4warps_ks4", "8warps_ks2", "8warps_ks1"])
@pytest.mark.parametrize("Mx,chunk_rows", [(1, 16), (2, 16), (3, 16), (4, 16), (5, 16), (9, 16), (5, 8), (3, 4),
                                           (16, 16)])
@pytest.mark.parametrize("kind", ["ternary", "binary", "int2"])
def test_digits_emulated_kernel_matches_reference(emulator, tmp_path, kind, Mx, chunk_rows, cfg):
    # the kernel's digits epilogue (a8_linear.cu, p.xe): each output from the four digit rows' sums of its CTA, in
    # chunks of 16 / 12 / 8 / 4 digit rows (whole rows of x), against bitmm.reference.linear_digits bit for bit
    from bitmm import reference
    K, N = 777, 45
    torch.manual_seed(Mx * 31 + chunk_rows)
    v = random_values(kind, N, K, "cpu")
    packed = PACKERS[kind](v)
    codes = v.long() + (1 if kind == "ternary" else 0)
    x = digits_hard_rows(Mx, K, torch.float16 if Mx % 2 else torch.bfloat16, Mx + K)
    digits, e = reference.x_digits(x)
    xq = digits.reshape(4 * Mx, K)
    s, u, b = torch.rand(N) + 0.1, torch.randn(N) * 0.1, torch.randn(N)
    sums, X, y = emulate(emulator, tmp_path, kind, xq, packed, torch.ones(4 * Mx), s, u, b, cfg, chunk_rows, e=e)
    assert torch.equal(sums, xq.long() @ codes.T) and torch.equal(X, xq.long().sum(1))
    want = reference.linear_digits(kind, x, packed, s, u, b, out_dtype=torch.float32)
    torch.testing.assert_close(y, want, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["ternary", "int2"])
def test_digits_emulated_kernel_nonfinite_rows_and_scalar_scale(emulator, tmp_path, kind):
    # a NaN row and an Inf row give NaN rows (and leave the others alone); per tensor scale, no offset / bias
    from bitmm import reference
    K, N, Mx = 300, 20, 4
    v = random_values(kind, N, K, "cpu")
    packed = PACKERS[kind](v)
    x = torch.randn(Mx, K, dtype=torch.float16)
    x[1, 5] = float("nan")
    x[2, 9] = float("-inf")
    digits, e = reference.x_digits(x)
    assert e[1] == e[2] == reference.DIGITS_NONFINITE and not digits[1:3].any()
    s = torch.tensor([0.7])
    _, _, y = emulate(emulator, tmp_path, kind, digits.reshape(4 * Mx, K), packed, torch.ones(4 * Mx), s, None, None,
                      e=e)
    assert torch.isnan(y[1:3]).all() and torch.isfinite(y[[0, 3]]).all()
    torch.testing.assert_close(y, reference.linear_digits(kind, x, packed, s, out_dtype=torch.float32), rtol=0, atol=0,
                               equal_nan=True)


DIGITS_PROG = r"""
#include "csrc/cuda/a8_fragments.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
using namespace bitmm;
int main() {  // stdin: rows K, then rows * K floats (hex); stdout per row: e, then 4 K digits (digit-major)
  long long rows, K;
  if (std::scanf("%lld %lld", &rows, &K) != 2) return 2;
  char buf[64];
  for (long long r = 0; r < rows; ++r) {
    std::vector<float> x(K);
    float amax = 0.f;
    for (long long k = 0; k < K; ++k) {
      if (std::scanf("%63s", buf) != 1) return 2;
      x[k] = std::strtof(buf, nullptr);
      const float a = std::fabs(x[k]);
      amax = (a != a || a > amax) ? a : amax;  // (the kernel's nan_max)
    }
    const int e = a8::digits_exponent(amax);
    std::printf("%d\n", e);
    for (int j = 0; j < a8::kDigits; ++j) {
      for (long long k = 0; k < K; ++k) {
        const uint32_t v = e == a8::kDigitsNonFinite ? 0u : a8::digits_of(x[k], e);
        std::printf("%d ", static_cast<int>(static_cast<int8_t>((v >> (8 * j)) & 0xffu)));
      }
      std::printf("\n");
    }
  }
}
"""


@pytest.fixture(scope="module")
def digits_exe(tmp_path_factory):
    from helpers import compile_host_program
    return compile_host_program(tmp_path_factory.mktemp("a8_digits"), DIGITS_PROG)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_digits_of_matches_reference(digits_exe, dtype):
    # the kernel's per-element functions (a8::digits_exponent, a8::digits_of, host build) against
    # bitmm.reference.x_digits, on the hard rows, NaN / Inf rows, ties (x 2^-e = k + 1/2) and bf16's extreme exponents
    from bitmm import reference
    K = 301
    x = digits_hard_rows(7, K, torch.float32, 5)
    x[5, 3] = float("nan")
    x[6, 0] = float("-inf")
    from helpers import digits_tie_row
    tie = digits_tie_row(dtype, K)  # (round-half-to-even ties)
    x = torch.cat([x, tie.unsqueeze(0), -tie.unsqueeze(0)]).to(dtype)
    assert (x[7, 1:].float() == tie[1:]).all()
    if dtype == torch.bfloat16:
        x = torch.cat([x, (torch.randn(2, K) * 2.0 ** -128).to(dtype), (torch.randn(1, K) * 2.0 ** 120).to(dtype)])
    rows = x.shape[0]
    xf = x.float()
    text = f"{rows} {K}\n" + "\n".join(" ".join(float(v).hex() for v in row.tolist()) for row in xf)
    out = subprocess.run([str(digits_exe)], input=text, check=True, capture_output=True, text=True).stdout.split("\n")
    digits, e = reference.x_digits(x)
    for r in range(rows):
        block = out[5 * r: 5 * r + 5]
        assert int(block[0]) == int(e[r]), (r, block[0], int(e[r]))
        got = torch.tensor([[int(v) for v in line.split()] for line in block[1:]], dtype=torch.int8)
        assert torch.equal(got, digits[r]), r
