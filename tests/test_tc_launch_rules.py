"""The tensor-core kernel's host-side launch rules (csrc/cuda/tc_launch_rules.h: the block-diagonal
kernel's residency and shared-memory reservation, the programmatic-dependent-launch rule), a host-only
header compiled here with the system C++ compiler, so the rules are checked on every machine, GPU or not."""
import subprocess

import pytest

from helpers import HOST_CXX, compile_host_program

pytestmark = pytest.mark.skipif(HOST_CXX is None, reason="no C++ compiler")

MAIN = r"""
#include "csrc/cuda/tc_launch_rules.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
using namespace bitmm::cuda;
int main(int argc, char** argv) {  // rule name, then its arguments per line of stdin
  const char* rule = argv[1];
  long long a[8];
  while (std::scanf("%lld %lld %lld %lld %lld %lld %lld %lld", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]) == 8) {
    if (!std::strcmp(rule, "fewest")) std::printf("%lld\n", (long long)tc_fewest_ctas_per_sm(a[0], (int)a[1], a[2]));
    if (!std::strcmp(rule, "smem"))
      std::printf("%lld\n", (long long)tc_reserved_smem((size_t)a[0], (int)a[1], (int)a[2], (int)a[3], a[4]));
    if (!std::strcmp(rule, "pdl")) std::printf("%d\n", (int)tc_pdl_rule(a[0], a[1]));
    if (!std::strcmp(rule, "bd2")) std::printf("%d\n", (int)tc_bd_two_warps_n(a[0], a[1], (int)a[2], a[3] != 0));
    if (!std::strcmp(rule, "longk")) {
      const TcBdLongK r = tc_bd_long_k(a[0], a[1], a[2], (int)a[3], a[4] != 0, a[5] != 0);
      std::printf("%d %d %d\n", r.wn, r.kt_max, r.stages);
    }
    if (!std::strcmp(rule, "small_fold"))
      std::printf("%d\n", (int)tc_grouped_small_m_fold((int)a[0], a[1], a[2], a[3] != 0));
    if (!std::strcmp(rule, "pt_wn2")) std::printf("%d\n", (int)tc_per_tensor_two_warps_n(a[0], a[1], a[2], (int)a[3], a[4] != 0));
    if (!std::strcmp(rule, "pt_wide_wn4")) std::printf("%d\n", (int)tc_per_tensor_wide_four_warps_n(a[0], a[1], a[2], (int)a[3]));
    if (!std::strcmp(rule, "digits")) std::printf("%d\n", (int)digits_auto_rule(a[0], a[1], a[2], (int)a[3]));
    if (!std::strcmp(rule, "gx")) std::printf("%lld\n", (long long)tc_gx_splits(a[0], (int)a[1], (int)a[2]));
    if (!std::strcmp(rule, "bd_m34")) std::printf("%d\n", (int)tc_grouped_bd_two_tiles((int)a[0], (int)a[1]));
    if (!std::strcmp(rule, "mid_m")) std::printf("%d\n", (int)tc_grouped_mid_m_two_tiles(a[0], (int)a[1], a[2] != 0));
    if (!std::strcmp(rule, "small_m"))
      std::printf("%d\n", tc_per_tensor_small_m_tiles(a[0], a[1], a[2] != 0, a[3] != 0, a[4] != 0, (int)a[5], (int)a[6],
                                                       (int)a[7]));
  }
}
"""

H200_SMEM_PER_SM = 233472  # 228 KB (H100 / H200); sm_80: 167936 (164 KB); sm_86 / sm_89: 102400
LIMIT = 114688             # the tensor-core kernel's 112 KB


@pytest.fixture(scope="module")
def rules_exe(tmp_path_factory):
    return compile_host_program(tmp_path_factory.mktemp("tc_rules"), MAIN)


def run(exe, rule, rows):
    text = "".join(" ".join(str(v) for v in (list(r) + [0] * (8 - len(r)))) + "\n" for r in rows)
    out = subprocess.run([str(exe), rule], input=text, check=True, capture_output=True, text=True)
    return [int(v) for v in out.stdout.split()]


def test_fewest_ctas_per_sm_table(rules_exe):
    # (row tiles, SMs, most CTAs per SM) -> CTAs per SM
    cases = [((448, 132, 3), 2),   # 8192 x 28672, M = 3: 2 tiles per CTA either way; 2 CTAs per SM
             ((448, 132, 4), 4),   # one wave at 4: kept
             ((448, 132, 2), 2),
             ((512, 132, 3), 2),   # 8192^2 (WN = 1): 2 tiles per CTA either way
             ((1000, 132, 3), 3),  # 3 tiles per CTA at 3 CTAs, 4 at 2: kept
             ((100, 132, 3), 1),   # fewer tiles than SMs: one CTA per SM
             ((1, 132, 3), 1),
             ((396, 132, 3), 3)]   # exactly one full wave
    assert run(rules_exe, "fewest", [c for c, _ in cases]) == [e for _, e in cases]


def test_fewest_ctas_keeps_the_fewest_tiles_per_cta(rules_exe):
    rows = [(t, s, m) for t in (1, 7, 131, 132, 133, 263, 264, 265, 448, 512, 1000, 1792, 5000)
            for s in (16, 78, 108, 132) for m in (1, 2, 3, 4, 6)]
    for (t, s, m), c in zip(rows, run(rules_exe, "fewest", rows)):
        ceil = lambda a, b: -(-a // b)  # noqa: E731
        assert 1 <= c <= m, (t, s, m, c)
        assert ceil(t, s * c) == ceil(t, s * m), (t, s, m, c)          # no more tiles per CTA than at m
        assert c == 1 or ceil(t, s * (c - 1)) > ceil(t, s * m), (t, s, m, c)  # and the fewest CTAs that do it


def test_reserved_smem_keeps_the_hardware_to_want(rules_exe):
    rows = [(smem, per_sm, LIMIT, regs, want) for per_sm in (H200_SMEM_PER_SM, 167936, 102400)
            for smem in (20000, 50000, 73952, 78048, 98528) for regs in (2, 3, 4, 6) for want in (1, 2, 3, 4)
            if want <= regs and smem <= LIMIT]
    for (smem, per_sm, limit, regs, want), got in zip(rows, run(rules_exe, "smem", rows)):
        assert smem <= got <= limit, (smem, per_sm, regs, want, got)
        if min(regs, per_sm // (smem + 1024)) <= want:
            assert got == smem  # nothing to enforce: untouched
            continue
        # the allocation (rounded up to 128 bytes with the driver's 1 KB) leaves room for at most
        # `want` CTAs, unless the kernel's limit stops it (want = 1 on a 228 KB SM)
        alloc = -(-(got + 1024) // 128) * 128
        if got < limit:
            assert per_sm // alloc == want, (smem, per_sm, regs, want, got)
        assert per_sm // alloc <= max(want, per_sm // (limit + 1024))


def test_reserved_smem_values(rules_exe):
    rows = [(78048, H200_SMEM_PER_SM, LIMIT, 3, 2),  # room for 2 already: untouched
            (76176, H200_SMEM_PER_SM, LIMIT, 3, 2),  # binary M = 3 x tile: 3 would fit -> 112 KB, 2 fit
            (30000, H200_SMEM_PER_SM, LIMIT, 4, 3),  # 233472 / 3 = 77824 (a multiple of 128) - 1 KB
            (30000, 167936, LIMIT, 4, 3)]            # 167936 / 3 = 55978.7 -> 55936 - 1 KB
    assert run(rules_exe, "smem", rows) == [78048, LIMIT, 76800, 54912]


def test_pdl_rule(rules_exe):
    # (free slots, our CTAs) -> PDL: a full grid, all of the next call's CTAs early, or few of them
    cases = [((0, 396), 1), ((-5, 396), 1), ((396, 396), 1), ((500, 396), 1), ((99, 396), 1),
             ((100, 396), 0), ((280, 512), 0), ((80, 448), 1), ((132, 264), 0)]
    assert run(rules_exe, "pdl", [c for c, _ in cases]) == [e for _, e in cases]


def test_per_tensor_small_m_tiles_table(rules_exe):
    # (M, N, x split, x big, fp16 ternary, SMs, BITMM_TC_M8 (-1 unset), BITMM_TC_RN2_FROM (0 unset)) -> configuration
    # (0: RN = CM = 1, 1: RN = 2, CM = 1, 2: RN = CM = 2)
    cases = [((1, 28672, 0, 0, 0, 132, -1, 0), 0),   # 8192 x 28672 M = 1: x small
             ((2, 28672, 0, 0, 0, 132, -1, 0), 0),   # M = 2 is not a wide M = 3, 4
             ((3, 28672, 0, 0, 0, 132, -1, 0), 1),   # 224 128-row tiles >= 132 SMs
             ((4, 28672, 0, 1, 1, 132, -1, 0), 1),   # fp16 ternary, wide N, x in one tile: CM = 1
             ((4, 16896, 0, 0, 0, 132, -1, 0), 1),   # exactly one 128-row tile per SM
             ((4, 16768, 0, 0, 0, 132, -1, 0), 0),   # 131 tiles, x small
             ((4, 8192, 0, 0, 0, 132, -1, 0), 0),    # narrow N, x small
             ((4, 8192, 0, 1, 0, 132, -1, 0), 1),    # 8192^2 M = 4: x big
             ((4, 8192, 0, 1, 1, 132, -1, 0), 2),    # fp16 ternary, narrow N: CM = 2
             ((1, 8192, 0, 1, 0, 132, -1, 0), 1),    # 28672 x 8192 M = 1: x big (72 KB)
             ((6, 4096, 0, 1, 0, 132, -1, 0), 0),    # 4096^2: 128 32-row CTAs < 132 SMs
             ((6, 4224, 0, 1, 0, 132, -1, 0), 1),    # 132 of them
             ((6, 4096, 1, 1, 0, 132, -1, 0), 1),    # x split: whatever N
             ((8, 301, 1, 1, 1, 132, -1, 0), 2),     # fp16 ternary with x split, narrow N: CM = 2
             ((8, 28672, 1, 1, 1, 132, -1, 0), 1),   # ... wide N: CM = 1 (session 19)
             ((5, 16896, 1, 1, 1, 132, -1, 0), 1),   # exactly one 128-row tile per SM: wide
             ((5, 16768, 1, 1, 1, 132, -1, 0), 2),   # 131 tiles: narrow
             ((8, 28672, 1, 1, 0, 132, -1, 0), 1),
             ((5, 28672, 0, 1, 0, 132, -1, 0), 1),   # 8192 x 28672 binary M = 5: x big, not split
             ((5, 28672, 0, 0, 0, 132, -1, 0), 0),
             ((9, 28672, 1, 1, 0, 132, -1, 0), 0),   # M > 8: not this rule
             ((0, 28672, 1, 1, 0, 132, -1, 0), 0),
             ((8, 28672, 1, 1, 1, 132, 0, 0), 0),    # BITMM_TC_M8=0: one tile
             ((8, 28672, 1, 1, 0, 132, 1, 0), 2),    # =1: CM = 2 for every kind
             ((8, 28672, 1, 1, 1, 132, 2, 0), 1),    # =2: CM = 1 for fp16 ternary too
             ((1, 4096, 0, 0, 0, 132, -1, 1), 1),    # BITMM_TC_RN2_FROM=1: RN = 2 whatever x and N
             ((1, 4096, 0, 0, 1, 132, -1, 1), 2),    # (fp16 ternary, narrow N: CM = 2)
             ((2, 4096, 0, 0, 1, 132, -1, 3), 0),    # below rn2_from
             ((1, 4096, 0, 0, 0, 132, 1, 1), 2)]
    assert run(rules_exe, "small_m", [c for c, _ in cases]) == [e for _, e in cases]


def test_block_diagonal_two_warps_along_n_table(rules_exe):
    # (K, N, SMs, N wide) -> two warps along N: long K (>= 16384), N not wide, >= 1.875 32-row CTAs per SM
    cases = [((8192, 8192, 132, 0), 0),            # 8192^2: one warp along N (measured 18.0 vs 20.3 us)
             ((28672, 8192, 132, 0), 1),           # 28672 x 8192 (measured 70.3 vs 81.1 us; 256 CTAs)
             ((28672, 4096, 132, 0), 0),           # 28672 x 4096 (128 CTAs: measured 56.5 vs 41.6 us)
             ((16384, 32 * 248, 132, 0), 1),       # both boundaries (248 CTAs = 1.875 x 132 + 0.5)
             ((16383, 32 * 248, 132, 0), 0),
             ((16384, 32 * 247, 132, 0), 0),
             ((16384, 32 * 247 + 1, 132, 0), 1),
             ((16384, 8192, 114, 0), 1),           # a 114-SM device: 256 >= 213.75
             ((16384, 4096, 108, 0), 0),           # a 108-SM device: 128 < 202.5
             ((28672, 28672, 132, 1), 0)]          # wide N (tc_bd_wide_n): the launcher's own rule
    assert run(rules_exe, "bd2", [c for c, _ in cases]) == [e for _, e in cases]


def test_block_diagonal_long_k_table(rules_exe):
    # (M, K, N, SMs, N wide, binary) -> (WN, KT, ring slots).  Ternary / int2 on K >= 16384: the K tile capped at
    # 8192 inputs with a 3-slot ring (session 59) where N is wide (the launcher's own WN) or the two-warps rule
    # holds (then one warp along N at M = 2 and below 2.5 32-row CTAs per SM, else two); binary two warps along N
    # uncapped where the two-warps rule holds; elsewhere no change (0, 0, 0)
    C = (8192, 3)
    cases = [((1, 28672, 8192, 132, 0, 0), (1, *C)),     # measured (H100, s59): int2 M = 1 60.2 -> 53.0 us
             ((2, 28672, 8192, 132, 0, 0), (1, *C)),     # M = 2 59.1 -> 55.4
             ((1, 28672, 8192, 132, 0, 1), (2, 0, 0)),   # binary lost with WN = 1 (57 -> 75-81 us) and the cap
             ((2, 28672, 8192, 132, 0, 1), (2, 0, 0)),
             ((1, 28672, 4096, 132, 0, 0), (0, 0, 0)),   # two-warps rule off: session 21's cap lost (41.4 -> 49.7)
             ((1, 16383, 8192, 132, 0, 0), (0, 0, 0)),
             ((1, 16383, 53248, 132, 1, 0), (0, 0, 0)),  # K below 16384, wide N: unmeasured
             ((1, 16384, 12288, 132, 0, 0), (2, *C)),    # 2.9 CTAs per SM: WN = 2 (s21), capped as 16384^2
             ((2, 16384, 12288, 132, 0, 0), (1, *C)),
             ((1, 16384, 16384, 132, 0, 0), (2, *C)),    # 3.9: measured ternary 53.4 -> 50.8 us
             ((2, 16384, 16384, 132, 0, 0), (1, *C)),    # ... M = 2 67.3 -> 62.1
             ((1, 16384, 32 * 329, 132, 0, 0), (1, *C)),        # the 2.5-per-SM boundary (330 CTAs)
             ((1, 16384, 32 * 329 + 1, 132, 0, 0), (2, *C)),
             ((1, 16384, 32 * 248, 132, 0, 0), (1, *C)),        # the two-warps rule's own boundary
             ((1, 16384, 32 * 247, 132, 0, 0), (0, 0, 0)),
             ((1, 16384, 32 * 332, 133, 0, 0), (1, *C)),        # an odd SM count: 2.5 x 133 = 332.5
             ((1, 16384, 32 * 332 + 1, 133, 0, 0), (2, *C)),
             ((1, 16384, 53248, 132, 1, 0), (0, *C)),    # wide N: measured ternary g64 197.3 -> 174.8 us
             ((2, 16384, 53248, 132, 1, 0), (0, *C)),    # ... M = 2 196.1 -> 174.9
             ((2, 28672, 28672, 132, 1, 0), (0, *C)),
             ((1, 16384, 53248, 132, 1, 1), (0, 0, 0))]  # binary, wide N: the cap lost (109.2 -> 130.6 g128)
    out = run(rules_exe, "longk", [c for c, _ in cases])
    assert list(zip(out[::3], out[1::3], out[2::3])) == [e for _, e in cases]


def test_grouped_mid_m_two_tiles_table(rules_exe):
    # (N, SMs, binary) -> group-wise M = 5..8 on the two-activation-tile configuration: ternary / int2 from
    # 1/3 128-row tiles per SM, binary from 1.5
    cases = [((28672, 132, 0), 1),                       # measured: int2 85-90 vs 117-119 us
             ((8192, 132, 0), 1),                        # 8192^2 / 28672 x 8192 (64 tiles): won
             ((4096, 132, 0), 0),                        # 4096^2 (32 tiles): lost
             ((128 * 44, 132, 0), 1), ((128 * 43, 132, 0), 0), ((128 * 43 + 1, 132, 0), 1),  # 3 x 44 = 132
             ((128 * 45, 133, 0), 1), ((128 * 44, 133, 0), 0),                              # odd SM count
             ((28672, 132, 1), 1),                       # binary, 224 tiles (1.70 per SM): won
             ((8192, 132, 1), 0),                        # binary, 64 tiles: lost
             ((128 * 197 + 1, 132, 1), 1), ((128 * 197, 132, 1), 0),                             # 2 x 198 = 3 x 132
             ((128 * 200, 133, 1), 1), ((128 * 199, 133, 1), 0)]                            # 3 x 133 = 399
    assert run(rules_exe, "mid_m", [c for c, _ in cases]) == [e for _, e in cases]


def test_grouped_bd_two_tiles_table(rules_exe):
    # (kind, BITMM_TC_BD or -1) -> group-wise M = 3, 4 on the block-diagonal path: int2 by default, every
    # kind when the override is set (it then caps M itself)
    cases = [((3, -1), 1), ((2, -1), 0), ((1, -1), 0), ((1, 4), 1), ((2, 4), 1), ((2, 0), 1)]
    assert run(rules_exe, "bd_m34", [c for c, _ in cases]) == [e for _, e in cases]


def test_grouped_small_m_fold_table(rules_exe):
    # (kind, K, N, fp16) -> group-wise M <= 2 on the folding path: ternary / binary, fp16 x, 2^24 .. 2^26 weights
    cases = [((1, 8192, 8192, 1), 1),     # measured: binary 19.2 -> 13.8 us
             ((2, 4096, 4096, 1), 1),     # 2^24: ternary 8.3 -> 7.8
             ((2, 4096, 4095, 1), 0), ((1, 4095, 4096, 1), 0),   # below 2^24: unmeasured
             ((1, 8192, 8193, 1), 0),     # above 2^26 (28672 x 8192 lost: 56.6 -> 66.3)
             ((2, 28672, 8192, 1), 0), ((1, 8192, 28672, 1), 0),
             ((3, 8192, 8192, 1), 0),     # int2 keeps the block-diagonal path (1.04-1.21)
             ((1, 8192, 8192, 0), 0),     # bf16 x: unmeasured
             ((2, 4096, 14336, 1), 1), ((1, 14336, 4096, 1), 1), ((2, 11008, 4096, 1), 1)]
    assert run(rules_exe, "small_fold", [c for c, _ in cases]) == [e for _, e in cases]


def test_per_tensor_two_warps_along_n_table(rules_exe):
    # (M, K, N, SMs, binary) -> per tensor two warps along N: 1.875 .. 2.5 32-row CTAs per SM and K <= 8192 at M = 1,
    # K <= 6144 at M = 2, 3 (binary 4096), never at M >= 4
    cases = [((1, 8192, 8192, 132, 0), 1),         # measured: ternary 12.9 -> 12.0 us, binary 11.0 -> 9.0
             ((1, 4096, 8192, 132, 1), 1),         # binary 7.9 -> 6.1
             ((2, 8192, 8192, 132, 0), 0),         # M = 2 at K = 8192 lost (1.03)
             ((2, 4096, 8192, 132, 1), 1), ((3, 4096, 8192, 132, 0), 1),   # 0.78-0.82
             ((2, 6144, 9216, 132, 0), 1), ((3, 6144, 9216, 132, 1), 0),   # ternary 0.93; binary M = 3 1.04
             ((2, 6145, 9216, 132, 0), 0), ((2, 4097, 8192, 132, 1), 0),
             ((4, 2048, 8192, 132, 0), 0), ((0, 2048, 8192, 132, 0), 0),
             ((1, 14336, 8192, 132, 0), 0),        # long K lost (ternary 18.1 -> 20.3)
             ((1, 8193, 8192, 132, 0), 0), ((1, 1, 8192, 132, 0), 1),
             ((1, 8192, 6144, 132, 0), 0),         # 1.45 per SM lost (1.10-1.18x)
             ((1, 8192, 13824, 132, 0), 0),        # 3.3 per SM: 0.95 / 0.99, not taken
             ((1, 4096, 4096, 132, 0), 0), ((1, 8192, 28672, 132, 0), 0),
             ((1, 8192, 32 * 248, 132, 0), 1), ((1, 8192, 32 * 247, 132, 0), 0),   # 1.875 x 132 = 247.5
             ((1, 8192, 32 * 329, 132, 0), 1), ((1, 8192, 32 * 329 + 1, 132, 0), 0),   # 2.5 x 132 = 330
             ((1, 8192, 8192, 108, 0), 1), ((1, 8192, 8192, 144, 0), 0)]            # 256 CTAs: 2.37 / 1.78 per SM
    assert run(rules_exe, "pt_wn2", [c for c, _ in cases]) == [e for _, e in cases]


def test_grad_x_splits_table(rules_exe):
    # (CTAs per split, SMs, mode) -> splits of N: of wave / per_split rounded down or up (wave = 4 CTAs per SM),
    # the one with fewer waves per unit of work, a tie the larger; mode 0 rounded up (before), 2 two waves
    cases = [((32, 132, 1), 16),     # 8192 x 28672 M = 1: 512 CTAs in one wave, not 544 in two
             ((32, 132, 0), 17), ((32, 132, 2), 33),
             ((112, 132, 1), 4),     # K = 28672: 448 CTAs (1 wave) vs 560 (2 waves, 5 splits)
             ((272, 132, 1), 2),     # K = 69632: 1 split fills 52% of a wave, 2 splits 1.03 waves: a tie, the larger
             ((16, 132, 1), 33), ((16, 132, 0), 33),   # 4096 x N: 528 CTAs, exact
             ((64, 132, 1), 8),      # M = 9..16 on K = 8192: 512 vs 576
             ((600, 132, 1), 1), ((600, 132, 0), 1), ((600, 132, 2), 1),   # more CTAs per split than a wave
             ((1, 1, 1), 4)]
    assert run(rules_exe, "gx", [c for c, _ in cases]) == [e for _, e in cases]


def test_digits_auto_rule_table(rules_exe):
    # (M, K, N, SMs) -> auto takes the digits kernels: M <= 2, 2048 <= K <= 8192, N >= 192 rows per SM (H100,
    # session 34: digits 0.60-0.94 of the tensor-core time at M = 1 on N = 25344..131072, K = 2048..8192)
    cases = [((1, 8192, 28672, 132), 1), ((2, 8192, 28672, 132), 1),   # ternary 29.4 vs 33.7 us; M = 2 31.9 vs 34.2
             ((3, 8192, 28672, 132), 0),                                # 12 digit rows: 4 rows of W2A8 lost
             ((0, 8192, 28672, 132), 0),
             ((1, 2048, 32768, 132), 1), ((1, 2047, 32768, 132), 0),    # K = 1024 lost (0.94-1.14)
             ((1, 8192, 57344, 132), 1), ((1, 8193, 57344, 132), 0),    # K = 16384 lost (0.86-1.28)
             ((1, 4096, 192 * 132, 132), 1), ((1, 4096, 192 * 132 - 1, 132), 0),
             ((1, 8192, 22016, 132), 0), ((1, 8192, 16384, 132), 0),    # lost: 1.05-1.28
             ((1, 8192, 8192, 132), 0), ((1, 28672, 8192, 132), 0),     # 1.13-1.45
             ((1, 4096, 192 * 108, 108), 1), ((1, 4096, 192 * 108, 109), 0)]   # rows per SM, not a shape
    assert run(rules_exe, "digits", [c for c, _ in cases]) == [e for _, e in cases]


def test_per_tensor_wide_four_warps_n_table(rules_exe):
    # (M, K, N, SMs) -> the tensor-core launch keeps all 4 warps along N at CM = 4 / 8: M = 17..64, 4096 <= K <= 8192,
    # N >= 1.5 128-row tiles per SM (H100, session 35: ternary 8192 x 28672 M = 24 92.5 -> 66.8 us, M = 33 152.8 ->
    # 105.9; narrower N lost: 8192^2 M = 33 53.5 -> 63.9, 28672 x 8192 211 -> 241)
    wide = 128 * (3 * 132 // 2)   # 25,344: the narrowest N with 1.5 128-row tiles per SM on 132 SMs
    cases = [((24, 8192, 28672, 132), 1), ((33, 8192, 28672, 132), 1), ((64, 8192, 28672, 132), 1),
             ((17, 4096, 28672, 132), 1), ((16, 4096, 28672, 132), 0), ((65, 4096, 28672, 132), 0),
             ((33, 4095, 28672, 132), 0), ((33, 8193, 28672, 132), 0),
             ((33, 8192, wide, 132), 1), ((33, 8192, wide - 128, 132), 0),
             ((33, 8192, 8192, 132), 0), ((33, 28672, 8192, 132), 0),
             ((33, 8192, 128 * 162, 108), 1), ((33, 8192, 128 * 162, 109), 0)]   # tiles per SM, not a shape
    assert run(rules_exe, "pt_wide_wn4", [c for c, _ in cases]) == [e for _, e in cases]
