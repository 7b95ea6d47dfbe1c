"""linear_a8's CPU kernels (csrc/cpu/a8_kernels.h, instantiated for AVX-512 VNNI in a8_avx512.cpp and for AVX2 in
a8_avx2.cpp): int8 activations times the codes read straight from the packed words, where the generic CPU path
unpacks the codes to an int8 tensor and runs a float matmul.

All three compute the same exact integer sums and hand them to the same epilogue, so:
  * a float64 output with unit scales must equal the integer product exactly (every kind, K / N / M across the
    kernels' vector, K chunk, row tile, 8-row and 256-row activation tiles, the row_major / row_lanes switch, and
    the int32 bound);
  * with real scales, offsets, biases and every out_dtype the kernels' outputs must equal the generic path's bit
    for bit.  BITMM_CPU_ISA (read once per process) limits the kernels: "avx2" keeps the AVX2 one on an AVX-512
    machine, "generic" the generic path, so child processes give their bits.
Each runs in a profiler scope: bitmm::cpu_a8_avx512, bitmm::cpu_a8_avx2, bitmm::cpu_a8_generic.
"""
import os

import pytest
import torch

import bitmm
from bitmm import formats, quant
from helpers import UnmappedNeighbours, run_in_child


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# what the kernels ask (__builtin_cpu_supports), not torch's capability
_FLAGS = _cpu_flags()
HAS_AVX2 = {"avx2", "fma"} <= _FLAGS
HAS_VNNI = HAS_AVX2 and {"avx512f", "avx512bw", "avx512_vnni"} <= _FLAGS
ISA_ENV = os.environ.get("BITMM_CPU_ISA")
if HAS_VNNI and ISA_ENV not in ("avx2", "generic"):
    KERNEL = "avx512_vnni"
elif HAS_AVX2 and ISA_ENV != "generic":
    KERNEL = "avx2"
else:
    KERNEL = "generic"
SCOPE = {"avx512_vnni": "bitmm::cpu_a8_avx512", "avx2": "bitmm::cpu_a8_avx2", "generic": "bitmm::cpu_a8_generic"}
needs_kernel = pytest.mark.skipif(KERNEL == "generic", reason="no AVX2 on this CPU (or BITMM_CPU_ISA=generic)")
MAX_CODE = {"binary": 1, "ternary": 2, "int2": 3}
SHIFT = {"binary": 0, "ternary": 1, "int2": 1}
K_MAX = 5_592_405  # cpu_kernels.h kA8MaxK: 3 * 128 * K < 2^31


def scopes_run(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if e.name.startswith("bitmm::cpu_a8")}


def random_codes(kind, N, K, gen):
    return torch.randint(0, MAX_CODE[kind] + 1, (N, K), generator=gen, dtype=torch.int8)


def pack_codes(kind, codes):
    return torch.ops.bitmm.pack(codes, formats.KINDS[kind])


def test_kernel_name_and_scope():
    assert torch.ops.bitmm._cpu_a8_kernel() == KERNEL
    assert bitmm.nn._CPU_A8_KERNEL == KERNEL
    gen = torch.Generator().manual_seed(0)
    p = pack_codes("ternary", random_codes("ternary", 5, 40, gen))
    xq = torch.randint(-128, 128, (3, 40), generator=gen, dtype=torch.int8)
    ran = scopes_run(lambda: bitmm.linear_a8("ternary", xq, torch.ones(3, 1), p, torch.tensor(1.0)))
    assert ran == {SCOPE[KERNEL]}, ran


# (K, N, M): M <= 6 takes the row_major layout, M >= 7 row_lanes (a8_avx512.cpp).  K across the block (32), the
# 16-word zmm (two-plane 256 inputs, binary 512), row_lanes' 64-word K chunk (two-plane 1024 inputs, binary 2048) and
# the padded row (128); N across row_major's 4-row groups and row_lanes' 64-row tile (N <= 24 with M >= 7: whole lane
# groups past the last row, which repeat it); M across the 8-row tile of x, the last row_major size (6) and
# row_lanes' 256-row pass (M = 260: two passes over the weights)
SHAPES = [(1, 1, 1), (31, 7, 3), (33, 64, 8), (127, 65, 9), (1000, 130, 17), (1024, 63, 1), (1025, 129, 16),
          (2048, 1, 5), (2049, 70, 2), (2100, 64, 260), (4127, 200, 7), (300, 5, 6), (129, 13, 7), (37, 1, 17),
          (64, 24, 8), (520, 25, 33)]


@pytest.mark.parametrize("K,N,M", SHAPES)
@pytest.mark.parametrize("kind", ["binary", "ternary", "int2"])
def test_integer_sums_exact(kind, K, N, M):
    gen = torch.Generator().manual_seed(K * 1000 + N * 10 + M)
    codes = random_codes(kind, N, K, gen)
    codes[0, :] = MAX_CODE[kind]  # the extreme products too
    xq = torch.randint(-128, 128, (M, K), generator=gen, dtype=torch.int8)
    xq[0, : K // 2] = -128
    y = bitmm.linear_a8(kind, xq, torch.ones(M, 1), pack_codes(kind, codes), torch.tensor(1.0),
                        out_dtype=torch.float64)
    want = xq.double() @ (codes.double() - SHIFT[kind]).T
    assert torch.equal(y, want), (y - want).abs().max()


def test_noncontiguous_packed_w():
    # a row-strided view and a column slice of a wider packed tensor (its first words hold the first inputs' codes;
    # the rest of the sliced row's last 128-input chunk is real codes, not padding: they meet zero inputs)
    gen = torch.Generator().manual_seed(2)
    for kind in ("binary", "ternary", "int2"):
        codes = random_codes(kind, 40, 600, gen)
        wide = pack_codes(kind, codes)
        cases = [(wide[::2], codes[::2], 600), (wide[:, : formats.packed_shape(kind, 40, 300)[1]], codes[:, :300], 300)]
        for p, c, K in cases:
            assert not p.is_contiguous()
            for M in (1, 9):
                xq = torch.randint(-128, 128, (M, K), generator=gen, dtype=torch.int8)
                y = bitmm.linear_a8(kind, xq, torch.ones(M, 1), p, torch.tensor(1.0), out_dtype=torch.float64)
                assert torch.equal(y, xq.double() @ (c[:, :K].double() - SHIFT[kind]).T), (kind, K, M)


def test_inputs_flush_against_unmapped_pages():
    # packed_w and xq placed flush against PROT_NONE pages (starting at one, then ending at one): a read before or
    # past either faults.  (ASan does not check AVX-512 masked loads; this caught row_lanes reading rows before
    # packed_w for N <= 24.)
    gen = torch.Generator().manual_seed(3)
    with UnmappedNeighbours() as un:
        for kind in ("binary", "ternary", "int2"):
            for K in (33, 1025):
                for N in (1, 17, 24, 65):
                    codes = random_codes(kind, N, K, gen)
                    p = pack_codes(kind, codes)
                    for M in (1, 6, 7, 9):
                        xq = torch.randint(-128, 128, (M, K), generator=gen, dtype=torch.int8)
                        want = xq.double() @ (codes.double() - SHIFT[kind]).T
                        for at_end in (False, True):
                            y = bitmm.linear_a8(kind, un.place(xq, at_end), torch.ones(M, 1), un.place(p, at_end),
                                                torch.tensor(1.0), out_dtype=torch.float64)
                            assert torch.equal(y, want), (kind, K, N, M, at_end)


def test_several_threads():
    # per-thread buffers: the row tiles of one call split between intra-op threads must not share them
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    try:
        gen = torch.Generator().manual_seed(4)
        for kind in ("ternary", "binary"):
            codes = random_codes(kind, 700, 1100, gen)
            for M in (1, 19):
                xq = torch.randint(-128, 128, (M, 1100), generator=gen, dtype=torch.int8)
                y = bitmm.linear_a8(kind, xq, torch.ones(M, 1), pack_codes(kind, codes), torch.tensor(1.0),
                                    out_dtype=torch.float64)
                assert torch.equal(y, xq.double() @ (codes.double() - SHIFT[kind]).T), (kind, M)
    finally:
        torch.set_num_threads(before)


def test_three_d_and_noncontiguous_xq():
    gen = torch.Generator().manual_seed(1)
    codes = random_codes("int2", 50, 300, gen)
    big = torch.randint(-128, 128, (2, 5, 600), generator=gen, dtype=torch.int8)
    xq = big[..., ::2]  # (2, 5, 300), stride 2 along K
    assert not xq.is_contiguous()
    y = bitmm.linear_a8("int2", xq, torch.ones(2, 5, 1), pack_codes("int2", codes), torch.tensor(1.0),
                        out_dtype=torch.float64)
    want = xq.double() @ (codes.double() - 1).T
    assert y.shape == (2, 5, 50) and torch.equal(y, want)


@pytest.mark.parametrize("kind", ["ternary", "int2"])
def test_int32_bound(kind):
    # K = kA8MaxK: xq = -128 against the largest code everywhere gives stored-code sums of -3 * 128 * K
    # (ternary -2 * 128 * K), just above -2^31: still exact; one more input and linear_a8 takes the generic path.
    N = 2
    for K in (K_MAX, K_MAX + 1):
        codes = torch.full((N, K), MAX_CODE[kind], dtype=torch.int8)
        codes[1, 1::2] = 0
        xq = torch.full((1, K), -128, dtype=torch.int8)
        p = pack_codes(kind, codes)
        y = None

        def call():
            nonlocal y
            y = bitmm.linear_a8(kind, xq, torch.ones(1, 1), p, torch.tensor(1.0), out_dtype=torch.float64)
        ran = scopes_run(call)
        want = torch.tensor([[-128.0 * (MAX_CODE[kind] - 1) * K,
                              -128.0 * ((MAX_CODE[kind] - 1) * ((K + 1) // 2) - (K // 2))]], dtype=torch.float64)
        assert torch.equal(y, want), (K, y, want)
        assert ran == {SCOPE[KERNEL if K <= K_MAX else "generic"]}, (K, ran)


# bitwise against the generic path: (kind, scale mode, offset, bias, out_dtype, lead, K, N)
_BITWISE = [(kind, mode, off, bias, dt, lead, K, N)
            for kind in ("binary", "ternary", "int2")
            for mode, off, bias in (("tensor", False, False), ("channel", True, True), ("channel1", True, False))
            for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
            for lead, K, N in (((1,), 4096, 96), ((4,), 1000, 130), ((2, 9), 2100, 65))]

_CHILD = """
import torch
from test_cpu_a8 import _BITWISE, KERNEL, bitwise_case
assert KERNEL == {kernel!r}, KERNEL
torch.save([bitwise_case(i, *c) for i, c in enumerate(_BITWISE)], {path!r})
"""


def bitwise_case(i, kind, mode, off, bias, dt, lead, K, N):
    gen = torch.Generator().manual_seed(100 + i)
    p = pack_codes(kind, random_codes(kind, N, K, gen))
    xq, xs = quant.absmax_int8(torch.randn(*lead, K, generator=gen) * 3)
    s = {"tensor": torch.rand((), generator=gen), "channel": torch.rand(N, generator=gen),
         "channel1": torch.rand(N, 1, generator=gen)}[mode] + 0.1
    u = torch.randn(s.shape, generator=gen) * 0.1 if off else None
    b = torch.randn(N, generator=gen) if bias else None
    # scale / offset / bias / x_scale in other dtypes too (each is converted to the epilogue's type first)
    other = {0: None, 1: torch.float16, 2: torch.float64}[i % 3]
    if other is not None:
        s, u, b, xs = (None if t is None else t.to(other) for t in (s, u, b, xs))
    return bitmm.linear_a8(kind, xq, xs, p, s, u, b, out_dtype=dt)


def _outputs_in_a_child(tmp_path, isa, kernel):
    path = str(tmp_path / f"{isa}.pt")
    run_in_child(_CHILD.format(path=path, kernel=kernel), BITMM_CPU_ISA=isa)
    return torch.load(path)


@needs_kernel
def test_kernels_equal_generic_path_bitwise(tmp_path):
    others = {"generic": _outputs_in_a_child(tmp_path, "generic", "generic")}
    if KERNEL == "avx512_vnni":
        others["avx2"] = _outputs_in_a_child(tmp_path, "avx2", "avx2")
    for name, theirs in others.items():
        assert len(theirs) == len(_BITWISE) == 108
        for i, case in enumerate(_BITWISE):
            y = bitwise_case(i, *case)
            assert y.dtype == theirs[i].dtype and y.shape == theirs[i].shape
            assert torch.equal(y, theirs[i]), (name, case[:7])


@needs_kernel
def test_generic_path_in_a_child():
    run_in_child("""
import torch
import test_cpu_a8 as t
assert torch.ops.bitmm._cpu_a8_kernel() == "generic" and t.KERNEL == "generic"
t.test_kernel_name_and_scope()
t.test_int32_bound("int2")
""", BITMM_CPU_ISA="generic")


@pytest.mark.skipif(KERNEL != "avx512_vnni", reason="the AVX2 kernel is this process's own (or absent)")
def test_avx2_kernel_exact_in_a_child():
    # where the AVX-512 kernel runs by default, the AVX2 one gets the exact-sum tests in a child
    run_in_child("""
import torch
import test_cpu_a8 as t
assert torch.ops.bitmm._cpu_a8_kernel() == "avx2" and t.KERNEL == "avx2"
t.test_kernel_name_and_scope()
for kind in ("binary", "ternary", "int2"):
    for K, N, M in t.SHAPES:
        t.test_integer_sums_exact(kind, K, N, M)
    if kind != "binary":
        t.test_int32_bound(kind)
t.test_three_d_and_noncontiguous_xq()
""", BITMM_CPU_ISA="avx2")
