"""The Hopper wgmma grad_x kernel (csrc/cuda/wg_grad_x.cuh) against the float64 reference.

Session 48 wrote the kernel without a GPU, taken then only under BITMM_GX_WGMMA=1; session 49 ran these tests on
the H100 and made it the default (csrc/cuda/linear_cuda.cpp, use_wg_grad_x; BITMM_GX_WGMMA=0, read once per process,
turns it off).  Each test still runs its cases in a child process with the knob named, as the forced-tile tests
need their own knobs read at the start.  The cases are test_tc_grad_x's checks (same bound: at most 2x the error of
grad_y @ W in grad_y's dtype, or the dtype's floor) over every scaling mode (plain, per-pair fold in grad_y's dtype,
fold in fp32), fp16 / bf16, and shapes that reach every edge of the kernel: M across the 64-, 128- and 256-row tiles
(1, 3, 17, 64, 65, 130, 200, 300; 256-row tiles from M = 129 since session 49, forced at other M below); K with a
partial 128-input tile and K % 8 != 0 (scalar stores); N a multiple of 8 (the TMA pitch) but not of 64 (a partial
last stage of rows, zero-filled), and N long enough that the ring of stages wraps (2000 rows: 32 stages).  Each check asserts that the wgmma kernel ran (a declined launch falls back
silently).
"""
import subprocess

import pytest
import torch

from helpers import HOST_CXX, compile_host_program, run_in_child, wgmma_active

needs_wgmma = pytest.mark.skipif(not torch.cuda.is_available() or not wgmma_active(),
                                 reason="needs the sm_90a build on a compute capability 9.0 device")

_PRELUDE = (
    "import torch, bitmm\n"
    "from helpers import assert_kernel_ran\n"
    "from test_tc_grad_x import check_grad_x, SCALINGS\n"
    "torch.manual_seed(0)\n"
)


@needs_wgmma
@pytest.mark.parametrize("kind", ["binary", "ternary", "int2"])
def test_wg_grad_x_matches_reference(kind):
    run_in_child(
        _PRELUDE +
        f"kind = {kind!r}\n"
        # ceil(N / 64) stages from 1 to 32: 3 (odd), 12 (about the ring: 10-12 slots), 32 (the ring wraps)
        "shapes = [(1, 300, 40), (3, 520, 104), (33, 640, 136), (17, 4160, 72), (64, 1000, 336), (65, 256, 16),\n"
        "          (200, 1000, 712), (130, 768, 2000), (300, 129, 328)]\n"
        # + plain mode with a scale in grad_y's dtype (the epilogue's fp16 / bf16 read)
        "for dtype in (torch.float16, torch.bfloat16):\n"
        "    for scaling in SCALINGS + [('tensor', None, 'x', False)]:\n"
        "        for M, K, N in shapes:\n"
        "            check_grad_x(kind, M, K, N, *scaling, dtype, backend='wgmma')\n"
        "            assert_kernel_ran('wgmma', f'{kind} {dtype} {scaling} {(M, K, N)}')\n",
        BITMM_GX_WGMMA="1")


@needs_wgmma
def test_wg_grad_x_dispatch_fallback_determinism_and_nonfinite():
    run_in_child(
        _PRELUDE +
        "from helpers import make_problem\n"
        # auto (linear_cuda.cpp use_wg_grad_x, session 51's rule): weights of at most 2^24 elements take this kernel
        # with a fold (an offset, per-channel or group-wise scales) from M = 12 to 64, plain (one scale, no offset)
        # from M = 8 to 128, the tensor-core kernel below and the dense path above, except where auto may not take
        # it (the deterministic mode): there this kernel
        # BITMM_AUTO_NO_DENSE=1 (bench/sanitize.sh's racecheck / initcheck units): auto never takes the dense path and
        # takes this kernel there instead, as in the deterministic mode
        "import os\n"
        "DENSE = 'wgmma' if os.environ.get('BITMM_AUTO_NO_DENSE') == '1' else 'dense'\n"
        "check_grad_x('ternary', 100, 1000, 336, 'group', 64, 'x', True, torch.float16, backend='auto')\n"
        "assert_kernel_ran(DENSE, 'auto at M = 100, small weights, fold')\n"
        "torch.use_deterministic_algorithms(True)\n"
        "check_grad_x('ternary', 100, 1000, 336, 'group', 64, 'x', True, torch.float16, backend='auto')\n"
        "assert_kernel_ran('wgmma', 'auto at M = 100, deterministic')\n"
        "torch.use_deterministic_algorithms(False)\n"
        "check_grad_x('int2', 11, 1000, 336, 'channel', None, 'f32', False, torch.bfloat16, backend='auto')\n"
        "assert_kernel_ran('tensorcore', 'auto at M = 11 keeps the tensor-core kernel, small weights, fold')\n"
        "check_grad_x('int2', 12, 1000, 336, 'channel', None, 'f32', False, torch.bfloat16, backend='auto')\n"
        "assert_kernel_ran('wgmma', 'auto at M = 12, small weights, fold')\n"
        "check_grad_x('ternary', 64, 1000, 336, 'group', 64, 'x', True, torch.float16, backend='auto')\n"
        "assert_kernel_ran('wgmma', 'auto at M = 64, small weights, fold')\n"
        "check_grad_x('ternary', 65, 1000, 336, 'group', 64, 'x', True, torch.float16, backend='auto')\n"
        "assert_kernel_ran(DENSE, 'auto at M = 65, small weights, fold')\n"
        "check_grad_x('binary', 7, 1000, 336, 'tensor', None, 'x', False, torch.float16, backend='auto')\n"
        "assert_kernel_ran('tensorcore', 'auto at M = 7 keeps the tensor-core kernel, small weights, plain')\n"
        "check_grad_x('binary', 8, 1000, 336, 'tensor', None, 'x', False, torch.float16, backend='auto')\n"
        "assert_kernel_ran('wgmma', 'auto at M = 8, small weights, plain')\n"
        "check_grad_x('binary', 128, 1000, 336, 'tensor', None, 'x', False, torch.float16, backend='auto')\n"
        "assert_kernel_ran('wgmma', 'auto at M = 128, small weights, plain')\n"
        "check_grad_x('binary', 129, 1000, 336, 'tensor', None, 'x', False, torch.float16, backend='auto')\n"
        "assert_kernel_ran(DENSE, 'auto at M = 129, small weights, plain')\n"
        # larger weights (4096 x 4104): the tensor-core kernel to M = 24, then this kernel to M = 256 with a fold (g64
        # and an offset) or to M = 1024 plain (one scale, no offset), then the dense path (which kernel ran only; the
        # values are checked above)
        "_, p, s, u, _ = make_problem('ternary', 1, 4096, 4104, 'group', 64, dtype=torch.float16, device='cuda',\n"
        "                             offset=True, bias=False)\n"
        "st = torch.tensor(0.7, device='cuda')\n"
        "for M, ss, uu, want in ((24, s, u, 'tensorcore'), (25, s, u, 'wgmma'), (256, s, u, 'wgmma'), (257, s, u, DENSE),\n"
        "                        (24, st, None, 'tensorcore'), (1024, st, None, 'wgmma'), (1025, st, None, DENSE)):\n"
        "    bitmm.linear_grad_x(torch.randn(M, 4104, device='cuda', dtype=torch.float16), p, ss, uu, 'ternary', 4096)\n"
        "    assert_kernel_ran(want, f'auto at M = {M}, {\"plain\" if uu is None else \"fold\"}')\n"
        # N % 8 != 0: grad_y's rows cannot go through the TMA unit; the forced backend falls back
        "check_grad_x('binary', 70, 300, 45, 'group', 32, 'x', True, torch.float16, backend='wgmma')\n"
        "assert_kernel_ran('tensorcore', 'N = 45 falls back')\n"
        # no atomics: the same bits on every call, in the deterministic mode too
        "_, p, s, u, _ = make_problem('ternary', 1, 1024, 520, 'group', 64, dtype=torch.float16, device='cuda',\n"
        "                             offset=True, bias=False)\n"
        "g = torch.randn(200, 520, device='cuda', dtype=torch.float16)\n"
        "with bitmm.use_backend('wgmma'):\n"
        "    a = bitmm.linear_grad_x(g, p, s, u, 'ternary', 1024)\n"
        "    assert_kernel_ran('wgmma', 'determinism')\n"
        "    for _ in range(3):\n"
        "        assert torch.equal(bitmm.linear_grad_x(g, p, s, u, 'ternary', 1024), a)\n"
        "    torch.use_deterministic_algorithms(True)\n"
        "    assert torch.equal(bitmm.linear_grad_x(g, p, s, u, 'ternary', 1024), a)\n"
        "    torch.use_deterministic_algorithms(False)\n"
        # scales as (N, G) views of (G, N) storage (strides (1, N)): the same values, the same bits
        "    s_gn, u_gn = s.t().contiguous().t(), u.t().contiguous().t()\n"
        "    assert s_gn.stride() == (1, s.shape[0])\n"
        "    assert torch.equal(bitmm.linear_grad_x(g, p, s_gn, u_gn, 'ternary', 1024), a)\n"
        # a NaN in grad_y's row 7 makes row 7 of grad_x NaN and leaves the others as they were
        "    g2 = g.clone()\n"
        "    g2[7, 11] = float('nan')\n"
        "    b = bitmm.linear_grad_x(g2, p, s, u, 'ternary', 1024)\n"
        "    assert torch.isnan(b[7]).all()\n"
        "    keep = torch.arange(200, device='cuda') != 7\n"
        "    assert torch.equal(b[keep], a[keep])\n"
        # more rows than one launch takes (65535): the glue's row chunks
        "check_grad_x('int2', 65600, 256, 64, 'channel', None, 'x', True, torch.float16, backend='wgmma')\n"
        "assert_kernel_ran('wgmma', 'M = 65600')\n",
        BITMM_GX_WGMMA="1")
    # BITMM_GX_WGMMA=0 turns the kernel off: the forced backend then runs the tensor-core grad_x kernel
    run_in_child(
        _PRELUDE +
        "check_grad_x('ternary', 100, 1000, 336, 'group', 64, 'x', True, torch.float16, backend='wgmma')\n"
        "assert_kernel_ran('tensorcore', 'BITMM_GX_WGMMA=0')\n",
        BITMM_GX_WGMMA="0")


@needs_wgmma
@pytest.mark.parametrize("env", [{"BITMM_GX_WG_SPLIT": "3"}, {"BITMM_GX_WG_BM": "256", "BITMM_GX_WG_SPLIT": "2"},
                                 {"BITMM_GX_WG_BM": "256", "BITMM_GX_WG_SPLIT": "1"},
                                 {"BITMM_GX_WG_BM": "64", "BITMM_GX_WG_SPLIT": "1"}],
                         ids=["split3", "bm256-split2", "bm256-nosplit", "bm64-nosplit"])
def test_wg_grad_x_forced_tiles_and_splits(env):
    # The plan (wg_plan.h wg_gx_plan) splits the reduction only where the tiles fill under half the SMs and each
    # split keeps 8 stages, so most shapes above run unsplit on BM = 64 / 128; these force splits (fp32 partial
    # tiles, summed in order by wg_splitk_reduce: 1 to 16 stages a split here) and the other tiles.  The last case
    # has more rows than one launch takes (65535) and 3 stages: under split3 both row chunks reuse one workspace.
    run_in_child(
        _PRELUDE +
        "shapes = [(3, 520, 136), (70, 1000, 712), (300, 129, 328), (130, 768, 2000)]\n"
        "for kind in ('binary', 'ternary', 'int2'):\n"
        "    for scaling in SCALINGS:\n"
        "        for M, K, N in shapes:\n"
        "            check_grad_x(kind, M, K, N, *scaling, torch.float16, backend='wgmma')\n"
        "            assert_kernel_ran('wgmma', f'{kind} {scaling} {(M, K, N)}')\n"
        "check_grad_x('ternary', 65600, 256, 192, 'channel', None, 'x', True, torch.bfloat16, backend='wgmma')\n"
        "assert_kernel_ran('wgmma', 'M = 65600')\n",
        BITMM_GX_WGMMA="1", **env)


# The plan, a host-only header compiled here with the system C++ compiler (as tests/test_wg_plan.py does for the
# forward's plan; kept in this file so that test_wg_plan.py's ids, and with them the cover3 sanitizer shards cut in
# sessions 44-48, stay as they were: bench/sanitize.sh).
GX_MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {  // M N K SMs forced_bm forced_splits ... -> "bm splits" per sextuple
  for (int i = 1; i + 5 < argc; i += 6) {
    const auto p = bitmm::cuda::wg_gx_plan(std::atoll(argv[i]), std::atoll(argv[i + 1]), std::atoll(argv[i + 2]),
                                           std::atoi(argv[i + 3]), std::atoi(argv[i + 4]), std::atoi(argv[i + 5]));
    std::printf("%d %d\n", p.bm, p.splits);
  }
}
"""


@pytest.mark.skipif(HOST_CXX is None, reason="no C++ compiler")
def test_wg_gx_plan(tmp_path):
    # The wgmma grad_x kernel's plan (wg_plan.h wg_gx_plan): grad_x (M, K) = grad_y (M, N) @ W, CTAs of BM rows x 128
    # inputs, the reduction over N in stages of 64 rows, split where the tiles fill at most half the CTA slots (two per
    # SM for 64-row tiles).
    exe = compile_host_program(tmp_path, GX_MAIN)
    cases = [  # (M, N, K, SMs, forced_bm, forced_splits) -> (bm, splits)
        ((64, 28672, 8192, 132, 0, 0), (64, 4)),     # 64 tiles: four splits fill 256 of 264 CTA slots (2 per SM)
        ((16, 28672, 4096, 132, 0, 0), (64, 8)),     # 32 tiles
        ((1, 28672, 1024, 132, 0, 0), (64, 8)),      # 8 tiles: at most 8 splits
        ((64, 300, 1024, 132, 0, 0), (64, 1)),       # 5 stages: under 8 per split
        ((64, 8192, 28672, 132, 0, 0), (64, 1)),     # 224 tiles: over half the 264 slots
        ((128, 28672, 8192, 132, 0, 0), (128, 2)),   # 64 tiles of 128 rows
        ((129, 28672, 8192, 132, 0, 0), (256, 2)),   # from M = 129 tiles of 256 rows (session 49)
        ((256, 28672, 8192, 132, 0, 0), (256, 2)),
        ((512, 28672, 8192, 132, 0, 0), (256, 1)),   # 128 tiles: more than half the SMs
        ((600, 8192, 8192, 132, 0, 0), (256, 1)),
        ((4096, 8192, 8192, 132, 0, 0), (256, 1)),
        ((300, 129, 328, 132, 64, 16), (64, 3)),     # forced: at most one split per stage (3)
        ((300, 5000, 328, 132, 256, 40), (256, 16)),  # forced: at most 16
        ((300, 5000, 328, 132, 100, 0), (256, 8)),   # a tile the kernel has not: the rule's; 6 tiles, 8 splits
        ((2560, 28672, 8192, 132, 0, 16), (256, 3)),  # forced splits capped by the 256 MiB workspace (80 MiB each)
        ((65535, 28672, 8192, 132, 0, 16), (256, 1)),
    ]
    args = [str(v) for c, _ in cases for v in c]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout.splitlines()
    assert [tuple(map(int, line.split())) for line in out] == [want for _, want in cases]


GX_AUTO_MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {  // M small plain may_take_dense ... -> 0 / 1 per quadruple
  for (int i = 1; i + 3 < argc; i += 4)
    std::printf("%d\n", bitmm::cuda::wg_gx_auto_takes(std::atoll(argv[i]), std::atoi(argv[i + 1]) != 0,
                                                       std::atoi(argv[i + 2]) != 0, std::atoi(argv[i + 3]) != 0));
}
"""


@pytest.mark.skipif(HOST_CXX is None, reason="no C++ compiler")
def test_wg_gx_auto_range(tmp_path):
    # Auto's M range for this kernel (wg_plan.h wg_gx_auto_takes, which linear_cuda.cpp use_wg_grad_x calls), at every
    # boundary: the GPU test above checks which kernel ran at some of them; this one runs everywhere.
    exe = compile_host_program(tmp_path, GX_AUTO_MAIN)
    cases = []  # ((M, small, plain, may_take_dense), takes)
    for small, plain, lo, hi in ((True, True, 8, 128), (True, False, 12, 64), (False, True, 25, 1024),
                                 (False, False, 25, 256)):
        cases += [((lo - 1, small, plain, True), False), ((lo, small, plain, True), True),
                  ((hi, small, plain, True), True), ((hi + 1, small, plain, True), False),
                  # the deterministic mode (auto may not take the dense path): every M from the lower bound
                  ((lo - 1, small, plain, False), False), ((hi + 1, small, plain, False), True),
                  ((1 << 20, small, plain, False), True)]
    cases += [((0, True, True, True), False), ((1, False, False, False), False)]
    args = [str(int(v)) for c, _ in cases for v in c]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout.split()
    assert [bool(int(v)) for v in out] == [want for _, want in cases], cases
