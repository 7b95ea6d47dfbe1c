"""The Hopper wgmma kernel's launch plan (csrc/cuda/wg_plan.h: CTA tile rows and K splits), a host-only
header compiled here with the system C++ compiler, so the rule is checked on every machine, GPU or not."""
import os
import subprocess

import pytest

from helpers import HOST_CXX, compile_host_program

pytestmark = pytest.mark.skipif(HOST_CXX is None, reason="no C++ compiler")

MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {  // M N K SMs honor_env allow_splits ... -> "bm splits" per sextuple
  for (int i = 1; i + 5 < argc; i += 6) {
    const auto p = bitmm::cuda::wg_plan(std::atoll(argv[i]), std::atoll(argv[i + 1]), std::atoll(argv[i + 2]),
                                        std::atoi(argv[i + 3]), std::atoi(argv[i + 4]) != 0,
                                        std::atoi(argv[i + 5]) != 0);
    std::printf("%d %d\n", p.bm, p.splits);
  }
}
"""


@pytest.fixture(scope="module")
def plan_exe(tmp_path_factory):
    return compile_host_program(tmp_path_factory.mktemp("wg_plan"), MAIN)


def plans(exe, cases, env=None, honor_env=True, allow_splits=True):
    args = [str(v) for M, N, K, sms in cases for v in (M, N, K, sms, int(honor_env), int(allow_splits))]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True,
                         env={k: v for k, v in {**os.environ, **(env or {})}.items()
                              if env is not None or not k.startswith("BITMM_WG_")})
    return [tuple(map(int, line.split())) for line in out.stdout.splitlines()]


# (M, N, K, SMs) -> (rows of x per CTA, K splits); 132 SMs = H100 / H200.  Splits fill one wave
# (tiles x splits <= SMs: measured on the H200, wg8 in bench/NOTES.md), at most 8, at least 8
# stages of 64 inputs each; only where the tiles leave more than a quarter of the SMs idle.
EXPECTED = [
    ((64, 8192, 28672, 132), (64, 2)),   # 64 weight tiles: 2 splits (ceil gave 3: a partial 2nd wave)
    ((64, 8192, 8192, 132), (64, 2)),
    ((32, 8192, 8192, 132), (64, 2)),
    ((64, 4096, 4096, 132), (64, 4)),    # 32 tiles: 4 (not 5)
    ((64, 28672, 8192, 132), (64, 1)),   # 224 tiles: no split
    ((64, 11008, 4096, 132), (64, 1)),   # 86 tiles: one wave holds only 1 split
    ((17, 300, 4160, 132), (64, 8)),     # 3 tiles: at most 8 splits
    ((64, 300, 512, 132), (64, 1)),      # 8 stages: no room for two splits of >= 8
    ((64, 300, 1024, 132), (64, 2)),
    # Session 37: per x tile the one-wave splits, then the least estimated time (wg_plan.h); these picks were the
    # fastest measured plan on the H100 (bench/results/h100_s37_call3_*, h100_s37_call4_*)
    ((256, 8192, 8192, 132), (256, 2)),  # 64 tiles: 2 splits (was 128-row tiles, no split)
    ((256, 8192, 28672, 132), (256, 2)),
    ((256, 4096, 4096, 132), (256, 4)),  # 32 tiles: 4 splits (was 64-row tiles)
    ((256, 4096, 14336, 132), (256, 4)),
    ((256, 14336, 4096, 132), (256, 1)), # 112 tiles: no split (as before)
    ((256, 28672, 8192, 132), (256, 1)),
    ((128, 8192, 8192, 132), (128, 2)),  # M = 65..128: 128-row tiles (was 64-row, 128 CTAs)
    ((100, 28672, 8192, 132), (128, 1)),
    ((129, 8192, 8192, 132), (256, 2)),
    ((192, 11008, 4096, 132), (256, 1)), # 86 CTAs in one wave, not 258 64-row ones in two
    ((320, 5120, 8192, 132), (128, 1)),  # a 256-row tile would be 3/8 padding: 120 128-row CTAs
    ((320, 11008, 4096, 132), (128, 1)),
    ((512, 5120, 8192, 132), (256, 1)),
    ((512, 4096, 4096, 132), (256, 2)),  # 2 x tiles x 32 weight tiles: 2 splits
    ((1024, 4096, 4096, 132), (256, 1)),
    ((4096, 8192, 28672, 132), (256, 1)),
    ((64, 4096, 4096, 16), (64, 1)),     # a 16-SM part: 32 tiles already fill it
    ((64, 1024, 4096, 16), (64, 2)),     # 8 tiles on 16 SMs
]


def test_plan_table(plan_exe):
    assert plans(plan_exe, [c for c, _ in EXPECTED]) == [e for _, e in EXPECTED]


def test_splits_fit_one_wave(plan_exe):
    cases = [(M, N, K, sms) for M in (1, 17, 33, 64, 100, 256) for N in (96, 300, 2048, 4096, 8192, 11008, 28672)
             for K in (64, 512, 1000, 4096, 28672) for sms in (16, 78, 114, 132)]
    for (M, N, K, sms), (bm, splits) in zip(cases, plans(plan_exe, cases)):
        tiles = -(-N // 128) * -(-M // bm)
        stages = -(-K // 64)
        assert 1 <= splits <= 8, (M, N, K, sms, splits)
        if splits > 1:
            assert tiles * splits <= sms and splits * 8 <= stages, (M, N, K, sms, bm, splits)
            assert 4 * tiles < 3 * sms


def test_forced_knobs_change_the_plan_not_the_decision(plan_exe):
    # BITMM_WG_SPLIT / BITMM_WG_TILE (probes, tests) force the launch plan; auto's choice of kernel
    # asks for the plan without them (linear_cuda.cpp, use_wgmma: honor_env = false).
    cases = [(32, 8192, 8192, 132), (64, 28672, 8192, 132)]
    default = plans(plan_exe, cases)
    env = {"BITMM_WG_SPLIT": "3", "BITMM_WG_TILE": "128x1"}
    assert plans(plan_exe, cases, env=env) == [(128, 3), (128, 3)]
    assert plans(plan_exe, cases, env=env, honor_env=False) == default


def emulated_plan(M, N, K, sms, overhead_rows=192):
    """wg_plan.h's rule written again from its comment: per x tile (none twice M or more, except 64) the splits that
    fill one wave, then the least waves x (rows + overhead) x stages per split; ties to the larger tile."""
    n_tiles, stages = -(-N // 128), -(-K // 64)
    best = None
    for bm in (256, 128, 64):
        if bm > 64 and bm >= 2 * M:
            continue
        tiles = n_tiles * -(-M // bm)
        splits = 1
        if 4 * tiles < 3 * sms:
            splits = max(1, min(sms // tiles, 8, stages // 8))
        cost = -(-tiles * splits // sms) * (bm + overhead_rows) * -(-stages // splits)
        if best is None or cost < best[0]:
            best = (cost, bm, splits)
    bm, splits = best[1], best[2]
    while splits > 1 and splits * M * N * 4 > 256 << 20:
        splits -= 1
    return bm, splits


def test_plan_matches_its_cost_model(plan_exe):
    cases = [(M, N, K, sms) for M in (1, 17, 33, 64, 65, 100, 128, 129, 192, 256, 320, 384, 512, 768, 1024, 2048, 4096)
             for N in (96, 300, 2048, 4096, 5120, 8192, 11008, 14336, 28672) for K in (512, 2048, 4096, 8192, 28672)
             for sms in (16, 114, 132)]
    got = plans(plan_exe, cases)
    assert got == [emulated_plan(*c) for c in cases]
    # the rule before session 37 for M <= 64 (64-row tiles): unchanged
    assert all(bm == 64 for (M, *_), (bm, _) in zip(cases, got) if M <= 64)


def test_plan_without_rows(plan_exe):
    # M = 0, N = 0, K = 0 reach no kernel and a device has SMs, but the plan must not divide by zero (tiles, stages
    # with a forced split, SMs)
    cases = [(0, 8192, 8192, 132), (16, 0, 8192, 132), (16, 8192, 0, 132), (256, 8192, 8192, 0)]
    assert plans(plan_exe, cases) == [(64, 1)] * 4
    assert plans(plan_exe, cases[2:3], env={"BITMM_WG_SPLIT": "4"}) == [(64, 1)]


def test_plan_without_splits(plan_exe):
    # The launcher's own plan where the glue gave none (no split-K workspace): the best tile with one split each,
    # not the tile chosen for its splits (M = 129 on 8192^2 plans 256 x 2; unsplit, 64 CTAs of 256 rows would lose
    # to 128 of 128)
    cases = [(129, 8192, 8192, 132), (256, 4096, 4096, 132), (64, 8192, 8192, 132), (1024, 8192, 28672, 132)]
    assert plans(plan_exe, cases, allow_splits=False) == [(128, 1), (64, 1), (64, 1), (256, 1)]
    assert plans(plan_exe, cases[:1], env={"BITMM_WG_SPLIT": "4"}, allow_splits=False) == [(128, 1)]


WS_MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
int main() { std::printf("%d\n", bitmm::cuda::wg_warp_specialized() ? 1 : 0); }
"""


@pytest.mark.parametrize("value,on", [(None, True), ("", True), ("1", True), ("2", True), ("yes", True),
                                      ("0", False)])
def test_warp_specialized_pipeline_is_the_default(value, on, tmp_path):
    # wg_plan.h wg_warp_specialized(): the wgmma kernel's warp-specialized pipeline unless BITMM_WG_WS is exactly
    # "0" (session 40; it was opt-in, "1" only, before), read from the process environment.
    exe = compile_host_program(tmp_path, WS_MAIN)
    env = {k: v for k, v in os.environ.items() if k != "BITMM_WG_WS"}
    if value is not None:
        env["BITMM_WG_WS"] = value
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, env=env)
    assert out.stdout.strip() == ("1" if on else "0")


PAIR_MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {  // bm splits grouped binary M N SMs ... -> 0 / 1 per septuple
  for (int i = 1; i + 6 < argc; i += 7)
    std::printf("%d\n", bitmm::cuda::wg_pair_ctas(std::atoi(argv[i]), std::atoi(argv[i + 1]), std::atoi(argv[i + 2]) != 0,
                                                  std::atoi(argv[i + 3]) != 0, std::atoll(argv[i + 4]),
                                                  std::atoll(argv[i + 5]), std::atoi(argv[i + 6])) ? 1 : 0);
}
"""
# (bm, splits, grouped, binary, M, N, SMs) -> two CTAs per SM under the rule (BITMM_WG_PAIR unset): per tensor, 64-row
# tiles, no K split, more 64-row tiles than SMs and at most two per SM, binary from M = 33 (session 42: 136-264 tiles).
PAIR_CASES = [
    ((64, 1, 0, 0, 64, 28672, 132), 1), ((64, 1, 0, 0, 17, 28672, 132), 1),
    ((64, 1, 1, 0, 64, 28672, 132), 0),                                       # group-wise: wg13's scale warps win
    ((64, 2, 0, 0, 64, 8192, 132), 0), ((64, 1, 0, 0, 64, 16896, 132), 0),   # K split / exactly one tile per SM (132)
    ((64, 2, 0, 0, 64, 28672, 132), 0),                                       # a (forced) K split at 224 tiles
    ((64, 1, 0, 0, 64, 17024, 132), 1), ((64, 1, 0, 0, 64, 33792, 132), 1),  # 133 tiles / exactly two per SM (264)
    ((64, 1, 0, 0, 64, 33920, 132), 0), ((64, 1, 0, 0, 65, 28672, 132), 0),  # 265 tiles / two row tiles (448)
    ((128, 1, 0, 0, 64, 28672, 132), 0), ((256, 1, 0, 0, 200, 28672, 132), 0),
    ((64, 1, 0, 0, 64, 28672, 78), 0), ((64, 1, 0, 0, 64, 28672, 114), 1),   # other SM counts
    ((64, 1, 0, 1, 32, 28672, 132), 0), ((64, 1, 0, 1, 33, 28672, 132), 1),  # binary: from M = 33
    ((64, 1, 0, 1, 17, 33792, 132), 0), ((64, 1, 1, 1, 64, 28672, 132), 0),
]


@pytest.mark.parametrize("value", [None, "", "2", "1", "0"])
def test_pair_ctas_rule_and_override(value, tmp_path):
    # wg_plan.h wg_pair_ctas (wg15): the rule above when BITMM_WG_PAIR is unset or neither "0" nor "1"; "1" takes two
    # CTAs per SM at every 64-row plan (group-wise and split too), "0" never.
    exe = compile_host_program(tmp_path, PAIR_MAIN)
    env = {k: v for k, v in os.environ.items() if k != "BITMM_WG_PAIR"}
    if value is not None:
        env["BITMM_WG_PAIR"] = value
    args = [str(v) for case, _ in PAIR_CASES for v in case]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True, env=env).stdout.split()
    want = [w if value not in ("0", "1") else int(value == "1" and case[0] == 64) for case, w in PAIR_CASES]
    assert list(map(int, out)) == want, list(zip(PAIR_CASES, out))


PAIR_SPLIT_MAIN = r"""
#include "csrc/cuda/wg_plan.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {  // M N K SMs grouped offset binary ... -> "bm splits pair" as the glue launches it
  for (int i = 1; i + 6 < argc; i += 7) {
    const long long M = std::atoll(argv[i]), K = std::atoll(argv[i + 2]);
    bitmm::cuda::WgPlan plan = bitmm::cuda::wg_plan(M, std::atoll(argv[i + 1]), K, std::atoi(argv[i + 3]));
    const bool pair = bitmm::cuda::wg_pair_split(plan, M, K, std::atoi(argv[i + 4]) != 0, std::atoi(argv[i + 5]) != 0,
                                                 std::atoi(argv[i + 6]) != 0);
    std::printf("%d %d %d\n", plan.bm, pair ? 2 * plan.splits : plan.splits, pair ? 1 : 0);
  }
}
"""
# (M, N, K, SMs, grouped, offset, binary) -> (bm, splits, pair) as linear_cuda.cpp launches it (sessions 44-45: ternary /
# int2 without an offset or groups, 64-row plans of 2-4 K splits, M <= 64, doubled splits of >= 64 stages each)
PAIR_SPLIT_CASES = [
    ((33, 8192, 28672, 132, 0, 0, 0), (64, 4, 1)),    # measured: 0.92-0.96 of the plan's time
    ((17, 6144, 16384, 132, 0, 0, 0), (64, 4, 1)),    # 48 tiles, 2 -> 4 splits of exactly 64 stages
    ((64, 8192, 16384, 132, 0, 0, 0), (64, 4, 1)),
    ((64, 8192, 16320, 132, 0, 0, 0), (64, 2, 0)),    # 255 stages: one of 4 splits would hold 63
    ((64, 8192, 8192, 132, 0, 0, 0), (64, 2, 0)),     # 32 stages a doubled split (measured 0.97-1.02)
    ((17, 6144, 16384, 132, 0, 1, 0), (64, 2, 0)),    # an offset: the fold per pair (unmeasured)
    ((17, 6144, 16384, 132, 1, 0, 0), (64, 2, 0)),    # group-wise
    ((33, 8192, 28672, 132, 0, 0, 1), (64, 2, 0)),    # binary: 0.97-1.14
    ((33, 4096, 28672, 132, 0, 0, 0), (64, 4, 0)),    # 32 tiles, 4 splits: 8 would hold 56 stages
    ((65, 8192, 28672, 132, 0, 0, 0), (128, 2, 0)),   # M past 64: 128-row tiles
    ((64, 28672, 28672, 132, 0, 0, 0), (64, 1, 0)),   # no K split (wg_pair_ctas' case)
    ((16, 6144, 65536, 132, 0, 0, 0), (64, 4, 1)),    # (auto sends M < 17 elsewhere; the rule itself has no floor)
    ((64, 2048, 65536, 132, 0, 0, 0), (64, 8, 0)),    # 16 tiles, 8 splits: 16 would pass kWgMaxSplits
    ((33, 5000, 28672, 132, 0, 0, 0), (64, 6, 1)),    # 40 tiles, 3 -> 6 splits (448 stages, 74-75 each)
    ((17, 5120, 32768, 132, 0, 0, 0), (64, 6, 1)),    # measured (session 45): 3 -> 6 0.88-0.97 of the plan's time
    ((64, 5120, 24576, 132, 0, 0, 0), (64, 6, 1)),    # 384 stages: exactly 64 a doubled split
    ((64, 5120, 24512, 132, 0, 0, 0), (64, 3, 0)),    # 383 stages: one of 6 splits would hold 63
    ((33, 4224, 65536, 132, 0, 0, 0), (64, 8, 1)),    # 33 tiles, 4 -> 8 splits (128 stages each)
    ((33, 4096, 32768, 132, 0, 0, 0), (64, 8, 1)),    # measured: 4 -> 8 0.93-0.99
    ((64, 4096, 32704, 132, 0, 0, 0), (64, 4, 0)),    # 511 stages: one of 8 splits would hold 63
    ((33, 5120, 28672, 132, 0, 1, 0), (64, 3, 0)),    # an offset
    ((33, 4096, 65536, 132, 0, 0, 1), (64, 4, 0)),    # binary
    ((64, 8192, 28672, 114, 0, 0, 0), (64, 1, 0)),    # 114 SMs: 64 tiles leave room for no second split
    ((40, 6144, 16384, 100, 0, 0, 0), (64, 4, 1)),    # 100 SMs: 48 tiles, 2 -> 4 splits
]


@pytest.mark.parametrize("value", [None, "", "2", "1", "0"])
def test_pair_split_rule_and_override(value, tmp_path):
    # wg_plan.h wg_pair_split (sessions 44-45): under the rule (BITMM_WG_PAIR unset or neither "0" nor "1") the cases above;
    # "0" and "1" leave the plan's splits as they are ("1": wg_pair_ctas pairs every 64-row plan without doubling).
    exe = compile_host_program(tmp_path, PAIR_SPLIT_MAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITMM_WG_")}
    if value is not None:
        env["BITMM_WG_PAIR"] = value
    args = [str(v) for case, _ in PAIR_SPLIT_CASES for v in case]
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True, env=env).stdout.splitlines()
    got = [tuple(map(int, line.split())) for line in out]
    want = [w if value not in ("0", "1") or not w[2] else (w[0], w[1] // 2, 0) for _, w in PAIR_SPLIT_CASES]
    assert got == want, list(zip(PAIR_SPLIT_CASES, got))


def test_pair_split_never_doubles_forced_plans(tmp_path):
    # BITMM_WG_TILE / BITMM_WG_SPLIT (probes, tests) launch exactly the plan they name
    exe = compile_host_program(tmp_path, PAIR_SPLIT_MAIN)
    base = {k: v for k, v in os.environ.items() if not k.startswith("BITMM_WG_")}
    for knob, want in (({"BITMM_WG_SPLIT": "2"}, (64, 2, 0)), ({"BITMM_WG_TILE": "64x1"}, (64, 2, 0))):
        out = subprocess.run([str(exe), "33", "8192", "28672", "132", "0", "0", "0"], check=True, capture_output=True,
                             text=True, env={**base, **knob}).stdout.split()
        assert tuple(map(int, out)) == want, knob
