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
from helpers import PACKERS, random_values

ROOT = Path(__file__).resolve().parents[1]
CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    exe = tmp_path_factory.mktemp("a8") / "a8_emulate"
    subprocess.run([CXX, "-O2", "-std=c++20", "-ffp-contract=off", "-Wno-unknown-pragmas", f"-I{ROOT / 'csrc'}",
                    str(ROOT / "tests" / "a8_emulate.cpp"), "-o", str(exe)], check=True)
    return exe


def emulate(exe, tmp_path, kind, xq, packed, xs, s, u, b, cfg=(4, 4), chunk_rows=16):
    M, K = xq.shape
    N, wpr = packed.shape
    inp, out = tmp_path / "in.bin", tmp_path / "out.bin"
    planes = 1 if kind == "binary" else 2
    head = [planes, M, N, K, wpr, u is not None, b is not None, s.numel(), 0 if u is None else u.numel(), *cfg,
            min(chunk_rows, M)]
    with open(inp, "wb") as f:
        f.write(struct.pack("12q", *map(int, head)))
        for t, dt in ((xq, np.int8), (packed, np.int32), (xs, np.float32), (s, np.float32), (u, np.float32),
                      (b, np.float32)):
            if t is not None:
                f.write(np.ascontiguousarray(t.reshape(-1).numpy().astype(dt)).tobytes())
    subprocess.run([str(exe), str(inp), str(out)], check=True)
    raw = np.fromfile(out, dtype=np.uint8)
    sums = raw[: 4 * M * N].view(np.int32).reshape(M, N)
    X = raw[4 * M * N: 4 * (M * N + M)].view(np.int32)
    y = raw[4 * (M * N + M):].view(np.float32).reshape(M, N)
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
int main() {  // per line of stdin: M N planes sms K smem_limit
  long long M, N, planes, sms, K, limit;
  while (std::scanf("%lld %lld %lld %lld %lld %lld", &M, &N, &planes, &sms, &K, &limit) == 6) {
    const a8::Config c = a8::pick_config(M, N, (int)planes, (int)sms);
    int64_t smem = 0;
    const long long pk = (K + 127) / 128 * 128;
    const int rows = planes == 2 ? a8::pick_chunk_rows<2>(M, pk, c.warps, limit, &smem)
                                 : a8::pick_chunk_rows<1>(M, pk, c.warps, limit, &smem);
    std::printf("%d %d %d %lld\n", c.warps, c.ks, rows, (long long)smem);
  }
}
"""
H200_OPTIN = 232448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on the H100 / H200 (227 KB)


@pytest.fixture(scope="module")
def rules_exe(tmp_path_factory):
    from helpers import compile_host_program
    return compile_host_program(tmp_path_factory.mktemp("a8_rules"), RULES)


def test_a8_launch_rules_table(rules_exe):
    # (M, N, planes, SMs, K) -> (warps, K splits, x rows per CTA): the configuration rule as README / NOTES state it
    cases = [((1, 28672, 2, 132, 8192), (4, 4, 1)),    # M = 1: the finest (x 1/4 of the weight bytes)
             ((2, 28672, 1, 132, 8192), (8, 2, 2)),    # binary: half the weight bytes per row, coarser sooner
             ((4, 28672, 2, 132, 8192), (8, 2, 4)),
             ((16, 28672, 2, 132, 8192), (8, 2, 16)),  # 8 tiles would give 224 CTAs < 2 per SM
             ((64, 28672, 2, 132, 8192), (8, 1, 16)),  # 4 chunks of x rows: 896 CTAs of 128 weight rows
             ((16, 8192, 2, 132, 28672), (4, 4, 8)),   # narrow N: 512 CTAs of one tile; 8 rows of 28 KB fit exactly
             ((1, 4096, 2, 132, 4096), (4, 4, 1)),     # 256 CTAs < 264: none gives two per SM, the finest
             ((256, 4096, 2, 132, 4096), (8, 1, 16)),  # 16 chunks
             ((12, 40, 2, 132, 20000), (4, 4, 8)),     # the GPU test's short chunks: 12 rows of 20 KB do not fit
             ((16, 20, 2, 132, 30000), (4, 4, 4)),
             ((2, 8, 1, 132, 240000), (4, 4, 0))]     # not one row of x fits: the launcher refuses (unfused path)
    text = "".join(f"{M} {N} {p} {s} {K} {H200_OPTIN}\n" for (M, N, p, s, K), _ in cases)
    out = subprocess.run([str(rules_exe)], input=text, check=True, capture_output=True, text=True).stdout.split("\n")
    got = [tuple(int(v) for v in line.split()[:3]) for line in out if line]
    assert got == [e for _, e in cases]
    for line, (_, want) in zip([x for x in out if x], cases):
        smem = int(line.split()[3])
        assert (0 < smem <= H200_OPTIN) if want[2] else smem > H200_OPTIN
