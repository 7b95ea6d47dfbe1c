"""The Hopper warpgroup (wgmma) tensor-core kernel, csrc/cuda/wg_linear.cuh.

It runs where the build has sm_90a machine code (TORCH_CUDA_ARCH_LIST holds 9.0a) and the device
has compute capability 9.0; everywhere else the "wgmma" backend falls back to the tensor-core
(mma.sync) kernel, and these tests check that fallback instead.  `test_wgmma_kernel_runs` fails on
an H100 / H200 when the wgmma kernel silently does not launch.  Shapes: every tile width (rows of
x per CTA 64 / 128 / 256 and their edges), K with a partial 64-input stage (200, 832) and with
stages past the packed row's 128-alignment, N not a multiple of 8 (scalar stores) or of 128.
"""
import functools

import pytest
import torch

import bitmm
from conftest import DEVICES
from helpers import (
    KINDS, assert_close_to_reference, assert_kernel_ran, check_3d_noncontiguous_misaligned,
    check_deterministic_and_graph, check_exact_on_integers, check_scale_dtypes_and_optional_terms, forced_kernel,
    make_problem, poison_cuda_allocator, run_in_child, wgmma_active)

cuda_only = pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA device")

WG_M = [1, 17, 64, 65, 129, 300]
WG_KN = [(128, 8), (200, 45), (832, 37), (4096, 264)]
MODES = [("tensor", None), ("channel", None), ("group", 32), ("group", 64), ("group", 128)]


def _profiled(fn):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return prof


def kernel_names(fn) -> list[str]:
    return [e.name for e in _profiled(fn).events() if e.device_type == torch.autograd.DeviceType.CUDA]


def kernel_grids(fn) -> list[tuple[str, list[int]]]:
    """(name, grid) of each CUDA kernel `fn` launched, from the profiler's trace (kineto's kernel events
    carry their launch grid in args["grid"])."""
    import json
    import os
    import tempfile
    prof = _profiled(fn)
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.unlink(path)
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert all("grid" in e.get("args", {}) for e in kernels), "the profiler's kernel events carry no grid"
    return [(e["name"], list(e["args"]["grid"])) for e in kernels]


@functools.lru_cache(maxsize=None)
def profiler_sees_kernels() -> bool:
    """Whether to check which kernels ran: not under compute-sanitizer (bench/sanitize.sh sets
    BITMM_UNDER_SANITIZER=1; the profiler then reports no kernels, and these tests check only the
    results); anywhere else the profiler must see kernels, or the test fails."""
    import os
    if os.environ.get("BITMM_UNDER_SANITIZER") == "1":
        return False
    assert kernel_names(lambda: torch.ones(8, device="cuda").add_(1)), "the CUDA profiler reports no kernels"
    return True


@cuda_only
@pytest.mark.parametrize("M", WG_M)
@pytest.mark.parametrize("K,N", WG_KN)
@pytest.mark.parametrize("mode,G", MODES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_matches_reference(kind, dtype, mode, G, K, N, M):
    if mode == "group" and K % G:
        pytest.skip("group size must divide K")
    x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("wgmma"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_kernel_runs(kind):
    if not wgmma_active():
        pytest.skip("no sm_90a build or not a compute-capability 9.0 device")
    x, packed, s, u, b = make_problem(kind, 200, 1024, 300, "group", 64, dtype=torch.float16, device="cuda")
    with bitmm.use_backend("wgmma"):
        names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
    if profiler_sees_kernels():
        assert any("wg_linear_kernel" in n for n in names), names
    # K % 8 != 0: the kernel declines, the tensor-core kernel runs, the result is still right.
    x2, packed2, s2, u2, b2 = make_problem(kind, 200, 300, 30, "channel", dtype=torch.float16, device="cuda")
    with bitmm.use_backend("wgmma"):
        names = kernel_names(lambda: bitmm.linear(kind, x2, packed2, s2, u2, b2))
        if profiler_sees_kernels():
            assert not any("wg_linear_kernel" in n for n in names), names
        assert_close_to_reference(kind, bitmm.linear(kind, x2, packed2, s2, u2, b2), x2, packed2, s2, u2, b2)
    # auto (linear_cuda.cpp, use_wgmma): the wgmma kernel from M = 33 (kWgmmaMinM), or from M = 17
    # (kWgmmaMinMSplit) where its plan splits K (wg_plan.h: N = 300 is 3 weight tiles; K = 1024 has
    # 16 stages, room for 2 splits of >= 8; K = 512 has 8, no split); with group-wise scales from
    # M = 17 (kWgmmaMinMGrouped) and below M = 2048 (kWgmmaGroupedMaxM), then dense; per tensor /
    # channel with an offset (make_problem's default) below M = 2048 (kWgmmaMaxM, session 19), then dense
    # (without one: wgmma at every M, test_auto_per_tensor_without_offset_takes_wgmma_from_m33_wide_m17_split).
    for M, mode, G, K, want in ((16, "channel", None, 1024, False), (17, "channel", None, 1024, True),
                                (32, "channel", None, 1024, True), (32, "channel", None, 512, False),
                                (33, "channel", None, 512, True), (2047, "tensor", None, 1024, True),
                                (2048, "tensor", None, 1024, False),
                                (16, "group", 64, 1024, False), (17, "group", 64, 1024, True),
                                (2047, "group", 64, 1024, True), (2048, "group", 64, 1024, False)):
        x3, packed3, s3, u3, b3 = make_problem(kind, M, K, 300, mode, G, dtype=torch.bfloat16, device="cuda")
        names = kernel_names(lambda: bitmm.linear(kind, x3, packed3, s3, u3, b3))
        # (>= 6 SMs: fewer would leave room for no second split of these 3 weight tiles)
        if profiler_sees_kernels() and torch.cuda.get_device_properties(0).multi_processor_count >= 6:
            assert any("wg_linear_kernel" in n for n in names) == want, (M, mode, names)
        assert_close_to_reference(kind, bitmm.linear(kind, x3, packed3, s3, u3, b3), x3, packed3, s3, u3, b3)


def check_auto_wgmma_or_tensor_core(kind, K, mode, G, cases, offset=True):
    """Under auto, each case (M, N, x dtype, wgmma wanted) runs the wgmma kernel or else the tensor-core one (kernel
    names from the profiler), and within the float64 reference's bound.  Only where the wgmma kernel runs (sm_90a
    build, compute capability 9.0).  offset: whether the problems have an offset u (make_problem's default)."""
    if not (wgmma_active() and profiler_sees_kernels()):
        pytest.skip("needs the wgmma kernel (sm_90a build, compute capability 9.0) and the profiler")
    for M, N, dtype, want_wg in cases:
        x, packed, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device="cuda", offset=offset)
        assert (u is not None) == offset
        with bitmm.use_backend("auto"):
            names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
            assert any("wg_linear_kernel" in n for n in names) == want_wg, (M, N, K, dtype, names)
            assert any("tc_linear_kernel" in n for n in names) != want_wg, (M, N, K, dtype, names)
            assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_auto_grouped_m17_32_wide_n_takes_tensor_core(kind):
    # auto (linear_cuda.cpp, tc_grouped_wide, sessions 21-22; bf16 x since session 36; bounds per kind since session 41):
    # group-wise with fp16 / bf16 x where N has >= 1.5 128-row tiles per SM (and K <= 8192) runs the tensor-core kernel,
    # not wgmma, at M = 17..32 for binary, 17..21 for ternary and int2 (session 42); each side of the M and N
    # boundaries, both x dtypes.  (The K > 8192 side is left out: its float64 reference at this N would take GBs.)
    wide = 192 * torch.cuda.get_device_properties(0).multi_processor_count
    cases = []
    for dtype in (torch.float16, torch.bfloat16):
        max_m = 32 if kind == "binary" else 21
        cases += [(17, wide, dtype, False), (max_m, wide, dtype, False), (max_m + 1, wide, dtype, True),
                  (33, wide, dtype, True), (17, wide - 128, dtype, True)]
    check_auto_wgmma_or_tensor_core(kind, 1024, "group", 64, cases)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_auto_per_tensor_m33_64_wide_n_takes_tensor_core(kind):
    # auto (linear_cuda.cpp, tc_per_tensor_wide, H100 sessions 34 / 35 / 40; bf16 x since 36): per tensor / channel
    # with fp16 / bf16 x where N has >= 1.5 128-row tiles per SM and 4096 <= K <= 8192 runs the tensor-core kernel, not
    # wgmma, from M = 33 (every kind, with tc_launch_rules.h's four warps along N) to M = 64 with bf16 x and, since
    # the warp-specialized wgmma default (session 40), to M = 48 with fp16 x (binary: 36); each side of the M, N and
    # K boundaries, both x dtypes.
    # (M = 32 follows the rules before: wgmma only where its plan splits K.  K = 2048 at M = 64: wgmma, not the
    # tensor-core kernel, nor dense, whose small-weight rule needs <= 2^24 weights.)
    wide = 192 * torch.cuda.get_device_properties(0).multi_processor_count
    f16_max = 36 if kind == "binary" else 48
    cases = [(33, wide, torch.float16, False), (f16_max, wide, torch.float16, False),
             (f16_max + 1, wide, torch.float16, True), (64, wide, torch.float16, True), (48, wide, torch.bfloat16, False),
             (65, wide, torch.float16, True), (33, wide - 128, torch.float16, True), (64, wide - 128, torch.float16, True),
             (33, wide, torch.bfloat16, False), (64, wide, torch.bfloat16, False), (65, wide, torch.bfloat16, True),
             (33, wide - 128, torch.bfloat16, True),
             # M = 17..32: the tensor-core kernel as before, with four warps along N at CM = 4
             # (tc_per_tensor_wide_four_warps_n), both x dtypes: at M = 17 tc_split_small_m takes
             # it (N >= 6144, K >= 4096); otherwise wgmma's plan has no K split at this N
             (17, wide, torch.float16, False), (32, wide, torch.bfloat16, False)]
    check_auto_wgmma_or_tensor_core(kind, 4096, "channel", None, cases)
    check_auto_wgmma_or_tensor_core(kind, 2048, "channel", None, [(64, wide, torch.bfloat16, True)])


@cuda_only
@pytest.mark.parametrize("mode", ["tensor", "channel"])
@pytest.mark.parametrize("kind", KINDS)
def test_auto_per_tensor_without_offset_takes_wgmma_from_m33_wide_m17_split(kind, mode):
    # auto (linear_cuda.cpp, wg_rules_fold_only, session 43): without an offset u the wgmma kernel scales its sums in
    # the epilogue (wg16), and the two tensor-core rules above (tc_per_tensor_wide, tc_split_small_m; their tests run
    # with an offset) no longer apply: wgmma from M = 33 on wide N, from M = 17 where its plan splits K, both x
    # dtypes, and past M = 2048 (no dense path); the tensor-core kernel below.  Each result against the float64
    # reference (the split cases: the epilogue's row scale on each split's partial tile).
    wide = 192 * torch.cuda.get_device_properties(0).multi_processor_count
    f16, bf16 = torch.float16, torch.bfloat16
    check_auto_wgmma_or_tensor_core(kind, 4096, mode, None, [
        (32, wide, f16, False), (33, wide, f16, True), (48, wide, f16, True), (33, wide, bf16, True),
        (64, wide, bf16, True), (17, wide, bf16, False)], offset=False)
    if torch.cuda.get_device_properties(0).multi_processor_count >= 128:  # (N = 8192 splits K on >= 128 SMs)
        check_auto_wgmma_or_tensor_core(kind, 8192, mode, None, [
            (16, 8192, f16, False), (17, 8192, f16, True), (16, 8192, bf16, False), (17, 8192, bf16, True),
            (20, 8192, bf16, True), (24, 8192, bf16, True)], offset=False)
    # and no dense path from M = 2048 (kWgmmaMaxM, which still holds with an offset: test_wgmma_kernel_runs)
    x, packed, s, u, b = make_problem(kind, 2048, 1024, 300, mode, dtype=bf16, device="cuda", offset=False)
    with bitmm.use_backend("auto"):
        names = kernel_names(lambda: bitmm.linear(kind, x, packed, s, u, b))
        assert any("wg_linear_kernel" in n for n in names), names
        assert_close_to_reference(kind, bitmm.linear(kind, x, packed, s, u, b), x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_auto_per_tensor_m17_32_split_shapes_take_tensor_core(kind):
    # auto (linear_cuda.cpp, tc_split_small_m; H100 sessions 35-37, redrawn in session 41 against the warp-specialized
    # wgmma default): per tensor where wgmma's plan splits K, N >= 6144 and K >= 4096, the tensor-core kernel at M = 17
    # with fp16 x, at M = 17..20 with bf16 x (binary bf16: 17..24 where K <= 16384, 17 beyond); each side of every
    # bound keeps wgmma (its plan splits K on all of these: N <= 8192 is at most 64 weight tiles, split where the GPU
    # has >= 128 SMs).  Both x dtypes; the binary cases at K = 16384 / 16448 build a ~1.1 GB float64 reference each.
    if torch.cuda.get_device_properties(0).multi_processor_count < 128:
        pytest.skip("wgmma's plan splits K at N = 8192 only on >= 128 SMs")
    binary = kind == "binary"
    f16, bf16 = torch.float16, torch.bfloat16
    check_auto_wgmma_or_tensor_core(kind, 8192, "tensor", None, [
        (17, 8192, f16, False), (18, 8192, f16, True), (20, 8192, f16, True), (24, 8192, f16, True),
        (32, 8192, f16, True), (33, 8192, f16, True),
        (17, 8192, bf16, False), (20, 8192, bf16, False), (21, 8192, bf16, not binary), (24, 8192, bf16, not binary),
        (25, 8192, bf16, True), (32, 8192, bf16, True), (17, 4096, bf16, True),
        (17, 6144, f16, False), (17, 6080, f16, True), (17, 4096, f16, True),
        (17, 6144, bf16, False), (17, 6080, bf16, True)])
    check_auto_wgmma_or_tensor_core(kind, 4096, "tensor", None, [
        (17, 8192, f16, False), (18, 6144, f16, True), (20, 8192, bf16, False), (21, 6144, bf16, not binary)])
    check_auto_wgmma_or_tensor_core(kind, 4032, "tensor", None, [
        (17, 8192, f16, True), (17, 8192, bf16, True), (20, 8192, bf16, True)])
    if binary:
        check_auto_wgmma_or_tensor_core(kind, 16384, "tensor", None, [
            (18, 8192, f16, True), (24, 8192, bf16, False)])
        check_auto_wgmma_or_tensor_core(kind, 16448, "tensor", None, [
            (17, 8192, bf16, False), (18, 8192, bf16, True)])


@cuda_only
@pytest.mark.parametrize("G", [32, 64, 192])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_grouped_column_major_scales(kind, G):
    # Group-wise s and u as (N, G) views of (G, N) tensors (stride (1, N)): the scale warps' loads (row n0 + lane of a
    # group per lane) and the CTA-barrier pipeline's a stage ahead take the glue's strides as given; two groups a stage
    # (G = 32), one (64), a group over three stages (192); x-dtype and fp32 scales, fp16 and bf16 x; odd N past one
    # 128-row tile, M past a 128-row x tile.  Each against the float64 reference, outputs poisoned.
    for dtype, f32 in ((torch.float16, False), (torch.bfloat16, True)):
        x, packed, s, u, b = make_problem(kind, 130, 3072, 301, "group", G, dtype=dtype, device="cuda")
        if f32:
            s, u = s.float(), u.float()
        s, u = s.t().contiguous().t(), u.t().contiguous().t()
        assert s.stride() == (1, 301)
        poison_cuda_allocator()
        with bitmm.use_backend("wgmma"):
            y = bitmm.linear(kind, x, packed, s, u, b)
        assert_close_to_reference(kind, y, x, packed, s, u, b)


_SCALE_T_CHILD = (
    "import torch, bitmm\n"
    "from helpers import make_problem, assert_close_to_reference, poison_cuda_allocator\n"
    "torch.manual_seed(0)\n"
    "ys = []\n"
    "for kind in ('binary', 'ternary', 'int2'):\n"
    "    for M, K, N, G, dtype, f32, mixed in ((17, 4096, 301, 64, torch.float16, False, False),\n"
    "                                          (300, 3072, 301, 32, torch.bfloat16, True, False),\n"
    "                                          (130, 3072, 136, 192, torch.float16, False, True),\n"
    "                                          (64, 2048, 4000, 64, torch.bfloat16, False, False)):\n"
    "        x, p, s, u, b = make_problem(kind, M, K, N, 'group', G, dtype=dtype, device='cuda')\n"
    "        if f32:\n"
    "            s, u = s.float(), u.float()\n"
    "        if mixed:  # a per-channel s beside a group-wise u\n"
    "            s = s[:, :1].contiguous()\n"
    "        poison_cuda_allocator()\n"
    "        with bitmm.use_backend('wgmma'):\n"
    "            y = bitmm.linear(kind, x, p, s, u, b)\n"
    "        assert_close_to_reference(kind, y, x, p, s, u, b)\n"
    "        ys.append(y.cpu())\n"
    "torch.save(ys, OUT)\n")


@cuda_only
def test_wgmma_scale_transpose_knob_is_bitwise_neutral(tmp_path):
    # BITMM_WG_SCALE_T=1 (linear_cuda.cpp grouped_transposed, a probe knob, session 44): group-wise s / u copied to
    # (G, N) storage for the wgmma kernel (its scale warps then read 2 sectors per warp load instead of 32) must give the
    # bits of the default (N, G) path, the same values summed in the same order; each run also against the float64
    # reference.  Two groups a stage (G = 32, fp32 scales), one (64), a group over three stages (192) with a per-channel
    # s beside a group-wise u (only u is copied), a K split (M = 17 on N = 301), N past 128-row tiles.
    if not wgmma_active():
        pytest.skip("the wgmma kernel does not run here")
    outs = {}
    for knob in ("1", None):
        outs[knob] = tmp_path / f"y_{knob}.pt"
        run_in_child(f"OUT = {str(outs[knob])!r}\n" + _SCALE_T_CHILD, BITMM_WG_SCALE_T=knob)
    on, off = torch.load(outs["1"]), torch.load(outs[None])
    assert len(on) == len(off) == 12
    assert all(torch.equal(a, b) for a, b in zip(on, off))


@cuda_only
@pytest.mark.parametrize("sdtype", ["x", torch.float32])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_scale_dtypes_and_optional_terms(kind, dtype, sdtype):
    check_scale_dtypes_and_optional_terms(kind, dtype, sdtype, "wgmma", 150, MODES)


@cuda_only
@pytest.mark.parametrize("G", [96, 160, 192])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_group_sizes_across_stages(kind, G):
    # Groups that straddle the kernel's 64-input stages (96, 160: two lookups per stage, the group
    # changing inside a stage) or span several stages (192: one lookup per stage).
    for dtype in (torch.float16, torch.bfloat16):
        for M in (3, 130, 300):
            x, packed, s, u, b = make_problem(kind, M, 5 * G, 77, "group", G, dtype=dtype, device="cuda")
            with bitmm.use_backend("wgmma"):
                y = bitmm.linear(kind, x, packed, s, u, b)
            assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("K", [8, 32, 40, 56])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_rows_shorter_than_a_stage(kind, K):
    # K < 64: the whole row is one partial stage (the TMA box is zero-filled past K).
    for mode, G in (("tensor", None), ("channel", None)) + ((("group", 32),) if K % 32 == 0 else ()):
        for M in (1, 70, 300):
            x, packed, s, u, b = make_problem(kind, M, K, 150, mode, G, dtype=torch.float16, device="cuda")
            with bitmm.use_backend("wgmma"):
                y = bitmm.linear(kind, x, packed, s, u, b)
            assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("M", [1, 64, 100, 256, 257])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_exact_on_integers(kind, dtype, M):
    # Small integer activations and unit scales: every product and partial sum is exact, so the
    # unpacked values, the A fragment's K order and the swizzled x tile must all be exact.
    check_exact_on_integers(kind, dtype, M, 131, "wgmma")  # K = 1984: 31 groups of 64; N not a multiple of 8


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_3d_noncontiguous_misaligned_and_graph(kind):
    x, packed, s, u, b = check_3d_noncontiguous_misaligned(kind, "wgmma", 70, 512, 136, rows=90)
    check_deterministic_and_graph(kind, "wgmma", x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_many_ctas_and_rows(kind):
    # Thousands of CTAs in both grid dimensions, N past 2^14 rows, M past the 256-row tile.
    x, packed, s, u, b = make_problem(kind, 1100, 256, 20011, "group", 64, dtype=torch.bfloat16, device="cuda")
    poison_cuda_allocator()
    with bitmm.use_backend("wgmma"):
        y = bitmm.linear(kind, x, packed, s, u, b)
    assert_close_to_reference(kind, y, x, packed, s, u, b)


@cuda_only
@pytest.mark.parametrize("tile", ["64x1", "128x1", "256x1"])
def test_wgmma_forced_tiles(tile):
    # Every CTA tile (BITMM_WG_TILE = rows of x x 128-row weight tiles) at M it does not get by
    # default: M past one tile, N past one and partial, K with a partial stage; all kinds, fp16 /
    # bf16, every scale mode the kernel templates on (per tensor; groups of a multiple of 64; other
    # multiples of 32), x-dtype and fp32 scales; per tensor / channel also without an offset (wg16: no fold, the
    # scale in the epilogue).
    run_in_child(
        "import torch\n"
        "from helpers import check_config_sweep\n"
        "torch.manual_seed(0)\n"
        "check_config_sweep('wgmma', [('tensor', None, False), ('group', 32, True), ('group', 64, False),\n"
        "                             ('group', 128, True), ('tensor', None, True, False),\n"
        "                             ('channel', None, False, False)],\n"
        "                   [(1, 832, 37), (70, 224, 300), (300, 4096, 520), (513, 384, 264)])\n",
        BITMM_WG_TILE=tile)


@cuda_only
@pytest.mark.parametrize("env", [
    {"BITMM_WG_WS": "0"},
    {"BITMM_WG_WS": "1", "BITMM_WG_TILE": "64x1"},
    {"BITMM_WG_WS": "1", "BITMM_WG_TILE": "128x1"},
    {"BITMM_WG_WS": "1", "BITMM_WG_TILE": "256x1"},
    {"BITMM_WG_WS": "1", "BITMM_WG_SPLIT": "3"},
    {"BITMM_WG_WS": "1", "BITMM_WG_SPLIT": "16"},  # more splits than stages: a CTA of one stage
    {"BITMM_WG_PAIR": "1", "BITMM_WG_TILE": "64x1"},  # two CTAs per SM (the CTA-barrier pipeline, 11 slots)
    {"BITMM_WG_PAIR": "1", "BITMM_WG_TILE": "64x1", "BITMM_WG_SPLIT": "3"},
], ids=["cta-sync", "ws-64", "ws-128", "ws-256", "ws-split3", "ws-split16", "pair-64", "pair-split3"])
def test_wgmma_pipeline_variants(env):
    # Both pipelines of the kernel (wg_linear.cuh, WS): every thread copies and a CTA barrier per
    # stage (BITMM_WG_WS=0), or a producer warp filling the ring through per-slot full / empty
    # mbarriers (1), on every CTA tile and with K splits: K of 1 stage (fewer than the ring's slots),
    # 4 stages, 64 stages (the ring wraps 5-16 times), a partial last stage; bitwise repeatable.  BITMM_WG_PAIR:
    # 64-row tiles on the CTA-barrier pipeline with a ring sized for two CTAs per SM (11 slots).  Each child
    # checks which instance it launches.  Per tensor / channel with and without an offset (wg16's no-fold path).
    pair = env.get("BITMM_WG_PAIR") == "1"
    ws = not pair and env.get("BITMM_WG_WS") != "0"
    run_in_child(
        "import torch\n"
        "from helpers import check_config_sweep\n"
        "from test_wgmma import check_ws_template\n"
        f"check_ws_template({ws}, {pair})\n"
        "torch.manual_seed(0)\n"
        "check_config_sweep('wgmma', [('tensor', None, False), ('channel', None, True), ('group', 32, True),\n"
        "                             ('group', 64, False), ('tensor', None, True, False),\n"
        "                             ('channel', None, False, False)],\n"
        "                   [(1, 64, 37), (70, 224, 300), (300, 4096, 520), (513, 1000, 136)], repeat=True)\n",
        **({"BITMM_WG_PAIR": "0"} | env))  # (an exported BITMM_WG_PAIR would change the instance)


def wg_template_args(name: str) -> list[str]:
    """The template arguments of a wg_linear_kernel instance's name from the profiler (T, KIND, GM, S32, BM, WS, PAIR)."""
    import re
    m = re.search(r"wg_linear_kernel<([^>]*)>", name)
    assert m, name
    return [a.strip() for a in m.group(1).split(",")]


def check_ws_template(ws: bool, pair: bool = False) -> None:
    """The wgmma kernel this process launches is the warp-specialized instance (its template argument WS true)
    or the CTA-barrier one, and the two-CTAs-per-SM one (PAIR) or not, from the profiler's kernel names (where the
    profiler sees kernels and the wgmma kernel runs: elsewhere the backend falls back to the tensor-core kernel)."""
    if not (profiler_sees_kernels() and wgmma_active()):
        return
    x, p, s, u, b = make_problem("ternary", 64, 256, 200, "tensor", None, dtype=torch.float16, device="cuda")
    with bitmm.use_backend("wgmma"):
        names = [n for n in kernel_names(lambda: bitmm.linear("ternary", x, p, s, u, b)) if "wg_linear_kernel" in n]
    truth = lambda a: a in ("true", "(bool)1")  # noqa: E731
    assert names and all(truth(wg_template_args(n)[5]) == ws and truth(wg_template_args(n)[6]) == pair
                         for n in names), (ws, pair, names)


@cuda_only
def test_wgmma_auto_pairs_ctas_on_one_wave_of_pairs():
    # wg_plan.h wg_pair_ctas (wg15, session 42): with BITMM_WG_PAIR unset, a 64-row plan without K split, per tensor or
    # channel, with more 64-row tiles than SMs and at most two per SM runs two CTAs per SM (the CTA-barrier pipeline,
    # PAIR), binary from M = 33; group-wise scales, a K split, M = 65 (two row tiles per weight tile, 128-row tiles)
    # and binary at M = 32 keep the warp-specialized pipeline.  Each against the float64 reference (odd K, M = 49 and 64).
    if not (wgmma_active() and profiler_sees_kernels()):
        pytest.skip("the wgmma kernel does not run here, or the profiler does not name kernels (the instance check)")
    run_in_child(
        "import torch, bitmm\n"
        "from helpers import make_problem, assert_close_to_reference, poison_cuda_allocator\n"
        "from test_wgmma import kernel_names, profiler_sees_kernels, wg_template_args\n"
        "sms = torch.cuda.get_device_properties(0).multi_processor_count\n"
        "wide = 192 * sms  # 1.5 weight tiles per SM\n"
        "truth = lambda a: a in ('true', '(bool)1')\n"
        "torch.manual_seed(0)\n"
        "for kind, mode, G, M, K, N, pair in [('ternary', 'tensor', None, 64, 200, wide, True),\n"
        "                                     ('int2', 'channel', None, 49, 328, wide + 37, True),\n"
        "                                     ('binary', 'tensor', None, 64, 200, 2 * 128 * sms, True),\n"
        "                                     ('ternary', 'group', 64, 64, 256, wide, False),\n"
        "                                     ('binary', 'tensor', None, 64, 200, 2 * 128 * sms + 1, False),\n"
        "                                     ('int2', 'tensor', None, 64, 2048, 64 * sms, False),\n"
        "                                     ('ternary', 'tensor', None, 65, 200, wide, False),\n"
        "                                     ('binary', 'channel', None, 33, 200, wide, True),\n"
        "                                     ('binary', 'tensor', None, 32, 200, wide, False)]:\n"
        "    x, p, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=torch.float16, device='cuda')\n"
        "    poison_cuda_allocator()\n"
        "    with bitmm.use_backend('wgmma'):\n"
        "        y = bitmm.linear(kind, x, p, s, u, b)\n"
        "        names = [n for n in kernel_names(lambda: bitmm.linear(kind, x, p, s, u, b)) if 'wg_linear_kernel' in n]\n"
        "    assert_close_to_reference(kind, y, x, p, s, u, b)\n"
        "    args = wg_template_args(names[0])\n"
        "    assert truth(args[6]) == pair and truth(args[5]) == (not pair), (kind, mode, M, K, N, names)\n",
        BITMM_WG_PAIR=None, BITMM_WG_TILE=None, BITMM_WG_SPLIT=None, BITMM_WG_WS=None)


@cuda_only
def test_wgmma_auto_pairs_ctas_on_doubled_k_splits():
    # wg_plan.h wg_pair_split (sessions 44-45): with BITMM_WG_PAIR unset, ternary / int2 per tensor or channel without an
    # offset whose plan is 64-row tiles with 2-4 K splits (M <= 64) run twice the splits as two CTAs per SM (PAIR), when
    # each doubled split keeps >= 64 stages; with an offset, group-wise scales, binary weights or shorter K, the plan's
    # splits on the warp-specialized pipeline.  The grid's z (the splits) and the instance from the profiler where it
    # names kernels (not under compute-sanitizer, which still checks the doubled workspace), each result against the
    # float64 reference (odd N; K = 16392, 24584, 32776: a partial last stage; on 132 SMs 2 -> 4, 3 -> 6 (N = 5119: 40
    # tiles) and 4 -> 8 (N = 4095: 32 tiles) splits).
    from test_wg_plan import emulated_plan
    if not wgmma_active():
        pytest.skip("the wgmma kernel does not run here")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    bm, splits = emulated_plan(33, 6107, 16392, sms)
    if not (bm == 64 and splits == 2):
        pytest.skip(f"on {sms} SMs the 16392 x 6107 plan ({bm} rows, {splits} splits) takes no K-split pair")
    run_in_child(
        "import torch, bitmm\n"
        "from helpers import make_problem, assert_close_to_reference, poison_cuda_allocator\n"
        "from test_wgmma import kernel_grids, profiler_sees_kernels, wg_template_args\n"
        "from test_wg_plan import emulated_plan\n"
        "sms = torch.cuda.get_device_properties(0).multi_processor_count\n"
        "see = profiler_sees_kernels()\n"
        "truth = lambda a: a in ('true', '(bool)1')\n"
        "torch.manual_seed(0)\n"
        "for kind, mode, G, off, M, K, N, pair in [('ternary', 'tensor', None, False, 33, 16392, 6107, True),\n"
        "                                          ('int2', 'channel', None, False, 64, 16392, 6144, True),\n"
        "                                          ('ternary', 'tensor', None, True, 33, 16392, 6107, False),\n"
        "                                          ('int2', 'group', 64, False, 17, 16384, 6144, False),\n"
        "                                          ('binary', 'tensor', None, False, 33, 16392, 6107, False),\n"
        "                                          ('ternary', 'channel', None, False, 64, 8192, 8192, False),\n"
        "                                          ('ternary', 'tensor', None, False, 33, 24584, 5119, True),\n"
        "                                          ('int2', 'channel', None, False, 17, 32776, 4095, True),\n"
        "                                          ('int2', 'tensor', None, True, 33, 24584, 5119, False)]:\n"
        "    bm, splits = emulated_plan(M, N, K, sms)\n"
        "    want = pair\n"
        "    pair = pair and bm == 64 and 2 <= splits <= 4 and -(-K // 64) >= 2 * splits * 64\n"
        "    assert pair or not want or sms != 132, (kind, M, K, N, bm, splits)  # the rows are pairs on 132 SMs\n"
        "    x, p, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=torch.float16, device='cuda', offset=off)\n"
        "    poison_cuda_allocator()\n"
        "    with bitmm.use_backend('wgmma'):\n"
        "        y = bitmm.linear(kind, x, p, s, u, b)\n"
        "        grids = [(n, g) for n, g in kernel_grids(lambda: bitmm.linear(kind, x, p, s, u, b))\n"
        "                 if 'wg_linear_kernel' in n] if see else []\n"
        "    assert_close_to_reference(kind, y, x, p, s, u, b)\n"
        "    if not see:\n"
        "        continue\n"
        "    (name, grid), = grids\n"
        "    args = wg_template_args(name)\n"
        "    assert truth(args[6]) == pair and truth(args[5]) == (not pair), (kind, mode, off, M, K, N, name)\n"
        "    assert grid[2] == (2 * splits if pair else splits), (kind, mode, off, M, K, N, grid, splits)\n",
        BITMM_WG_PAIR=None, BITMM_WG_TILE=None, BITMM_WG_SPLIT=None, BITMM_WG_WS=None)


_WS_CASES = (
    "cases = [(kind, dtype, mode, G, f32, off, M, K, N)\n"
    "         for kind in ('binary', 'ternary', 'int2') for dtype in (torch.float16, torch.bfloat16)\n"
    "         for mode, G, f32, off in (('tensor', None, False, True), ('channel', None, True, True),\n"
    "                                   ('tensor', None, True, False), ('channel', None, False, False),\n"
    "                                   ('group', 64, False, True), ('group', 32, True, True),\n"
    "                                   ('group', 192, False, True), ('group', 96, False, True),\n"
    "                                   ('group', 64, True, False), ('group', 32, False, False))\n"
    "         for M, K, N in ((1, 192, 37), (70, 576, 300), (300, 4416, 136), (513, 1152, 1000))\n"
    "         if not G or K % G == 0]\n")


@cuda_only
@pytest.mark.parametrize("env", [{}, {"BITMM_WG_TILE": "64x1", "BITMM_WG_SPLIT": "1"},
                                 {"BITMM_WG_TILE": "128x1", "BITMM_WG_SPLIT": "1"},
                                 {"BITMM_WG_TILE": "256x1", "BITMM_WG_SPLIT": "1"},
                                 {"BITMM_WG_SPLIT": "3"}, {"BITMM_WG_SPLIT": "16"}],
                         ids=["plan", "tile64", "tile128", "tile256", "split3", "split16"])
def test_wgmma_ws_matches_cta_pipeline_bitwise(env, tmp_path):
    # The two pipelines of wg_linear_kernel (BITMM_WG_WS: warp-specialized, the default, or CTA
    # barriers) run the same wgmma sequence on the same unpacked values, so their outputs must be equal
    # bit for bit; a slot refilled before its consumers were done, or read before it landed, would
    # change some output.  racecheck cannot judge the warp-specialized handshake (mbarriers; see
    # wg_plan.h), so this is its race check: the CTA-barrier pipeline (which racecheck does judge)
    # writes inputs and outputs, then the warp-specialized one (the default: BITMM_WG_WS empty, as unset)
    # recomputes each case three times.  The plan splits K on these shapes (8-9 stages per CTA, the ring never
    # wraps), so each tile also runs unsplit: up to 69 stages (K = 4416) through its 12 (BM = 64), 11 or 12
    # (BM = 128: 11 where a stage's group-wise s / u take 1-2 KB, the only ring whose slots pass between
    # different scale warps, kt mod 3) or 6 (BM = 256) slots; split3 / split16 start splits inside groups.
    # Each child checks which pipeline instance it launches (check_ws_template).
    if not wgmma_active():
        pytest.skip("the wgmma kernel does not run here (both pipelines would be the tensor-core fallback)")
    path = str(tmp_path / "cta.pt")
    run_in_child(
        "import torch, bitmm\n"
        "from helpers import make_problem\n"
        "torch.manual_seed(1)\n" + _WS_CASES +
        "from test_wgmma import check_ws_template\n"
        "saved = []\n"
        "check_ws_template(False)\n"
        "for kind, dtype, mode, G, f32, off, M, K, N in cases:\n"
        "    x, p, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device='cuda', offset=off)\n"
        "    if f32:\n"
        "        s, u, b = s.float(), u.float() if u is not None else None, b.float()\n"
        "    with bitmm.use_backend('wgmma'):\n"
        "        y = bitmm.linear(kind, x, p, s, u, b)\n"
        "    saved.append([t.cpu() if t is not None else None for t in (x, p, s, u, b, y)])\n"
        f"torch.save(saved, {path!r})\n",
        BITMM_WG_WS="0", BITMM_WG_PAIR="0", **env)
    run_in_child(
        "import torch, bitmm\n"
        "from helpers import assert_kernel_ran, forced_kernel, poison_cuda_allocator\n"
        "from test_wgmma import check_ws_template\n" + _WS_CASES +
        "check_ws_template(True)\n"
        f"saved = torch.load({path!r})\n"
        "assert len(saved) == len(cases) > 100\n"
        "for (kind, dtype, mode, G, f32, off, M, K, N), ts in zip(cases, saved):\n"
        "    x, p, s, u, b, y_cta = [t.cuda() if t is not None else None for t in ts]\n"
        "    for _ in range(3):\n"
        "        poison_cuda_allocator()\n"
        "        with bitmm.use_backend('wgmma'):\n"
        "            y = bitmm.linear(kind, x, p, s, u, b)\n"
        "            assert_kernel_ran(forced_kernel('wgmma', dtype, K, G), kind)\n"
        "        assert torch.equal(y, y_cta), (kind, dtype, mode, G, f32, off, M, K, N)\n",
        BITMM_WG_WS="", BITMM_WG_PAIR="0", **env)


@cuda_only
@pytest.mark.parametrize("splits", ["1", "3", "16"])
def test_wgmma_forced_k_splits(splits):
    # K splits (wg_plan.h; BITMM_WG_SPLIT): CTA z runs its share of the 64-input stages and writes an
    # fp32 partial tile, wg_splitk_reduce sums them in order.  Splits whose boundaries fall inside a
    # group (96, 192: groups spanning 1.5 / 3 stages; 32: two groups per stage), more splits than
    # stages (16 on K = 576: one stage each), a partial last stage, bias, x-dtype and fp32 scales;
    # bitwise reproducible and CUDA-graph replayable; the reduce kernel runs exactly when there are
    # splits.
    run_in_child(
        "import torch, bitmm\n"
        "from helpers import check_config_sweep, cuda_graphs_capturable, make_problem\n"
        "from test_wgmma import kernel_names, profiler_sees_kernels, wgmma_active\n"
        "torch.manual_seed(0)\n"
        f"splits = {splits}\n"
        "check_config_sweep('wgmma', [('tensor', None, False), ('channel', None, True), ('group', 32, True),\n"
        "                             ('group', 64, False), ('group', 96, False), ('group', 192, True)],\n"
        "                   [(1, 1152, 37), (70, 576, 300), (300, 3072, 136), (65, 1000, 20)], repeat=True)\n"
        "x, p, s, u, b = make_problem('int2', 130, 3072, 136, 'group', 64, dtype=torch.float16, device='cuda')\n"
        "with bitmm.use_backend('wgmma'):\n"
        "    names = kernel_names(lambda: bitmm.linear('int2', x, p, s, u, b))\n"
        "    if wgmma_active() and profiler_sees_kernels():\n"
        "        assert any('wg_linear_kernel' in n for n in names), names\n"
        "        assert any('wg_splitk_reduce' in n for n in names) == (splits > 1), names\n"
        "    ref = bitmm.linear('int2', x, p, s, u, b)\n"
        "    if cuda_graphs_capturable():\n"
        "        g = torch.cuda.CUDAGraph()\n"
        "        with torch.cuda.graph(g):\n"
        "            yg = bitmm.linear('int2', x, p, s, u, b)\n"
        "        x.copy_(torch.randn_like(x))\n"
        "        g.replay()\n"
        "        assert torch.equal(yg, bitmm.linear('int2', x, p, s, u, b))\n"
        "        assert not torch.equal(yg, ref)\n",
        BITMM_WG_SPLIT=splits)


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_without_offset_nonfinite(kind, dtype):
    # wg16: per tensor / channel without an offset the scale multiplies the fp32 sums in the epilogue instead of
    # every weight.  A NaN / Inf in x's row m still reaches row m only, and a non-finite per channel scale its
    # column only (a per tensor one every output), as through the folded path; K = 4160 splits K (each split's
    # partial tile scaled) and K = 192 does not.
    for K in (192, 4160):
        x, packed, s, u, b = make_problem(kind, 6, K, 40, "channel", dtype=dtype, device="cuda", offset=False)
        with bitmm.use_backend("wgmma"):
            clean = bitmm.linear(kind, x, packed, s, u, b)
            assert_kernel_ran(forced_kernel("wgmma", dtype, K), kind)
            assert_close_to_reference(kind, clean, x, packed, s, u, b)
            for bad in (float("nan"), float("inf")):
                x2 = x.clone()
                x2[2, 7] = bad
                y = bitmm.linear(kind, x2, packed, s, u, b)
                assert not torch.isfinite(y[2]).any(), y[2]
                rows = [0, 1, 3, 4, 5]
                assert torch.equal(y[rows], clean[rows])
                s2 = s.clone()
                s2[5] = bad
                y = bitmm.linear(kind, x, packed, s2, u, b)
                assert not torch.isfinite(y[:, 5]).any(), y[:, 5]
                cols = [n for n in range(40) if n != 5]
                assert torch.equal(y[:, cols], clean[:, cols])
                y = bitmm.linear(kind, x, packed, torch.tensor(bad, device="cuda", dtype=dtype), u, b)
                assert not torch.isfinite(y).any()


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_wgmma_default_k_splits(kind):
    # The default plan splits K where 64-row tiles leave SMs idle (few weight tiles, long K): here
    # 3 weight tiles x 1-2 row tiles, K = 4160 (65 stages, 8 splits of 8-9 stages).
    # (100, "tensor", no offset: wg16's epilogue scale on each split's partial tile)
    for M, mode, G, off in ((64, "group", 64, True), (100, "channel", None, True), (17, "group", 32, True),
                            (100, "tensor", None, False)):
        x, packed, s, u, b = make_problem(kind, M, 4160, 300, mode, G, dtype=torch.bfloat16, device="cuda", offset=off)
        poison_cuda_allocator()
        out = []
        with bitmm.use_backend("wgmma"):
            names = kernel_names(lambda: out.append(bitmm.linear(kind, x, packed, s, u, b)))
            poison_cuda_allocator()
            y = bitmm.linear(kind, x, packed, s, u, b)
        if wgmma_active() and profiler_sees_kernels() and torch.cuda.get_device_properties(0).multi_processor_count >= 16:
            assert any("wg_splitk_reduce" in n for n in names), names
        assert_close_to_reference(kind, out[0], x, packed, s, u, b)
        assert_close_to_reference(kind, y, x, packed, s, u, b)
