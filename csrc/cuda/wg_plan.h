// Launch plan of the Hopper wgmma kernel (wg_linear.cuh): CTA tile and K splits.  Host code only,
// shared by the kernel's launcher and the torch glue (which allocates the split-K workspace).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "env_knobs.h"

namespace bitmm {
namespace cuda {

struct WgPlan {
  int bm;      // rows of x per CTA: 64, 128 or 256 (the wgmma's N)
  int splits;  // CTAs along K per output tile (grid z); > 1: fp32 partial tiles into a workspace of
               // splits x M x N floats, summed in split order by a second kernel (deterministic)
               // (wg_gx_plan: along the reduction over N, splits x M x K)
};

constexpr int kWgMaxSplits = 8;
constexpr int kWgMinStagesPerSplit = 8;  // 512 inputs: keeps the ring's fill / drain a small part of a split
constexpr int64_t kWgMaxWorkspaceBytes = int64_t{256} << 20;  // splits x M x N fp32 (grad_x: x M x K; forced splits too)

inline int wg_env_choice(const char* name, std::initializer_list<const char*> values, std::initializer_list<int> as) {
  const char* v = std::getenv(name);
  if (v == nullptr) return 0;
  auto a = as.begin();
  for (const char* s : values) {
    if (std::string(v) == s) return *a;
    ++a;
  }
  return 0;
}

// BITMM_WG_TILE=64x1|128x1|256x1 (rows of x x 128-row weight tiles) and BITMM_WG_SPLIT=1..16 force
// the tile and the number of K splits (probes, tests); read once per process.
inline int wg_forced_tile() {
  static const int forced = wg_env_choice("BITMM_WG_TILE", {"64x1", "128x1", "256x1"}, {64, 128, 256});
  return forced;
}
inline int wg_forced_splits() {
  static const int forced = [] {
    const int n = env_int("BITMM_WG_SPLIT");
    return n >= 1 && n <= 16 ? n : 0;
  }();
  return forced;
}

// The warp-specialized pipeline of the kernel (a producer warp fills the ring through per-slot
// mbarriers; wg_linear_kernel's WS) is the default since session 40; BITMM_WG_WS=0 (exactly) keeps the
// CTA-barrier pipeline (every thread copies, a __syncthreads per stage).  Read once per process.
// Measured: H200 (bench/results/h200_wg_probe_ws_3b8c0c9.json) faster on all 15 probed cases, 3-15%;
// H100 (bench/results/h100_s40_ws_ab_a4a9e0d.txt, M = 1024 / 4096, four shapes, three kinds, per
// tensor and g64, each pipeline in its own process) 0.905-1.010 of the CTA-barrier time, geomean
// 0.961, 47 of 48 cases faster (binary g64 4096^2 M = 1024: 1.010).  Checked: the kernel test files
// pass with it (2651 tests at cbb8126; test_wgmma.py 666 + 6 at a4a9e0d on the H100; as the default,
// the whole GPU suite at 3778bab, 9764 tests); its results equal the CTA-barrier pipeline's bit for
// bit (test_wgmma_ws_matches_cta_pipeline_bitwise: the same wgmma sequence on the same values);
// memcheck, synccheck and initcheck over the tests that force it: 0 errors (3778bab).  racecheck cannot judge it: it
// reports every pair between the consumers' reads of a weight slot and the producer's cp.async
// writes, and a control kernel shows it flags a correct mbarrier handshake the same way while named
// barriers stay clean (bench/results/h200_mbar_control_d96fd6f.txt), so racecheck runs
// (bench/sanitize.sh) check the CTA-barrier pipeline (BITMM_WG_WS=0), whose stage body is the same
// code.  The illegal address racecheck hit with --kernel-name on the H200 (h200_ws_racecheck_bisect_0a08e8f.txt)
// did not occur on the H100 with the same compute-sanitizer 2025.3.1 (bench/results/s40_device_runs.txt).
// Off only for BITMM_WG_WS=0 exactly (unset, empty or any other value: on).
inline bool wg_warp_specialized_from(const char* e) { return e == nullptr || std::string(e) != "0"; }
inline bool wg_warp_specialized() {
  static const bool on = wg_warp_specialized_from(std::getenv("BITMM_WG_WS"));
  return on;
}
// Two CTAs per SM at 64-row tiles (wg_linear.cuh, PAIR: the CTA-barrier pipeline with an 11-slot ring, 113 KiB
// per CTA), wg15.  Meant to let a second CTA's consumer warps cover the first's stage latency; what it measurably
// gains (5-10%) fits the grid's one wave of pairs instead of 1.7 waves of single CTAs (NOTES, wg15).  Taken where the
// 64-row plan has no K split, per-tensor / per-channel scales, more 64-row tiles than SMs but no more than two per SM
// (one wave of pairs where single CTAs need two waves), and not for binary weights at M <= 32.  H100, session 42,
// forced wgmma, --rounds 2, each setting in its own process; pair / one-CTA time:
//   bench/results/h100_s42_pair_025796f.txt (fp16 x): 4096 x 28672 and 8192 x 28672 (224 tiles on 132 SMs) per
//     tensor, M = 17 / 33 / 64, 0.93-0.995 for every kind (ternary 8192 x 28672 M = 64 108.9 vs 115.1 us; predicted
//     75-85, see NOTES); group-wise 1.03-1.21 (it gives up wg13's scale warps); 8192^2 and 28672 x 8192 (64 tiles, K
//     split in two) 1.15-1.42, where the pair's second CTA has no tile; M = 128 (128-row tiles) unchanged.
//   bench/results/h100_s42_pair_rule_1b4b39c.txt (the rule against BITMM_WG_PAIR=0, fp16 and bf16 x, per tensor,
//     K = 2048..14336, N = 17408 / 20480 / 28672 / 33792, i.e. 136-264 tiles, M = 17 / 49 / 64): ternary and int2
//     0.90-0.99 everywhere; binary 0.94-0.99 at M = 49 / 64 but 0.96-1.20 at M = 17 (8192 x 33792 123.6 vs 103.2
//     us), hence binary only from M = 33 (33-48 unmeasured).
// BITMM_WG_PAIR=1 forces it at every 64-row plan, 0 forbids it; unset (or any other value) leaves it to this rule.
// Read once per process.
constexpr int64_t kWgPairBinaryMinM = 33;
inline int wg_pair_env(const char* e) {  // 1: forced on, 0: forced off, -1: the rule
  return e == nullptr ? -1 : std::string(e) == "1" ? 1 : std::string(e) == "0" ? 0 : -1;
}
inline bool wg_pair_ctas(int bm, int splits, bool grouped, bool binary, int64_t M, int64_t N, int num_sms) {
  static const int env = wg_pair_env(std::getenv("BITMM_WG_PAIR"));
  if (bm != 64 || env == 0) return false;
  if (env == 1) return true;
  const int64_t tiles = (N + 127) / 128 * ((M + 63) / 64);
  return !grouped && splits == 1 && !(binary && M < kWgPairBinaryMinM) && tiles > num_sms &&
         tiles <= 2 * static_cast<int64_t>(num_sms);
}

// K-split pairs (sessions 44-45): where the plan is 64-row tiles with K splits (small M on N <= ~8.4k, wg7), twice the
// splits as two CTAs per SM (wg_pair_ctas' instance, the CTA-barrier pipeline with an 11-slot ring): the same one wave
// of CTAs, two consumer chains an SM.  Taken where measured faster (2 -> 4 on 48-64 tiles, 3 -> 6 on 34-44 tiles and
// 4 -> 8 on 27-33 tiles, fp16 / bf16 x; the rule's edges measured in session 46): ternary / int2 per
// tensor or per channel without an offset (wg16's path: nothing folded per weight pair), M <= 64, a plan of 2-4
// splits (doubled to 4-8, kWgMaxSplits at most), and at least kWgPairSplitMinStages stages (64 inputs each) per
// doubled split, so each split's fill / drain and the reduction's doubled workspace stay small beside its stream.
// H100, forced wgmma, fp16 x, --rounds 2, each setting in its own process, time / the one-CTA plan (BITMM_WG_PAIR=0),
// M = 17 / 33 / 64:
//   bench/results/h100_s43_pair_c649f98.txt: 28672 x 8192 (K x N; 2 -> 4 splits, 112 stages each) ternary / int2
//     0.91-0.95; 8192^2 (32 stages each) 0.97-1.02 (not taken: below kWgPairSplitMinStages); binary 1.04-1.19.
//   bench/results/h100_s44_pair_split_2a34da4.txt: ternary / int2 16384 x 6144 (48 tiles, 2 -> 4 splits, 64 stages
//     each) 0.93-0.95, 16384 x 8192 0.93-0.98, 28672 x 8192 0.92-0.96; binary 0.97-1.14 there; N = 4096 (32 tiles,
//     the plan's 4 splits kept, pairs on half the SMs) 1.09-1.22 (not this rule: doubling would need 8 splits of
//     >= 64 stages, K >= 32768: below).
//   bench/results/h100_s45_pair_split_4a1c09c.txt (session 45): 3 -> 6 splits on 40 tiles (28672 x 5120, 32768 x 5120:
//     74-75 / 85-86 stages a doubled split) ternary / int2 0.884-0.971 (geomean 0.940, 12 cases); 4 -> 8 on 32 tiles
//     (32768 x 4096, 65536 x 4096: 64 / 128 stages each) 0.925-0.993 (geomean 0.953, 12 cases).
//   The rule itself against BITMM_WG_PAIR=0 (bench/results/h100_s44_pair_split_rule_49d7ac6.txt, fp16 and bf16 x,
//     the three shapes above and 8192^2): taken cases 0.915-0.969 (fp16) / 0.896-0.977 (bf16); binary and 8192^2,
//     not taken, 0.97-1.02.
//   The rule of 2-4 splits against BITMM_WG_PAIR=0 (bench/results/h100_s46_pair_rule_dc90888.txt, session 46, fp16 and
//     bf16 x, ternary / int2, M = 17 / 33 / 64): 28672 x 5120 and 28672 x 5632 (40 / 44 tiles, 3 -> 6), 24576 x 4352
//     (34 tiles, exactly 64 stages a doubled split), 32768 x 3456 / 4096 / 4224 (27 / 32 / 33 tiles, 4 -> 8): 0.911-0.984,
//     faster in all 72 cases (geomean 0.936-0.949 per M and dtype); the GPU test's 3 -> 6 / 4 -> 8 cases passed.
// With an offset (the fold per pair) and group-wise scales: unmeasured / wg_pair_ctas' loss (wg13's scale warps),
// so not taken.  BITMM_WG_PAIR=0 forbids it, =1 leaves the plan's splits as they are (wg_pair_ctas pairs every 64-row
// plan); forced tiles or splits (BITMM_WG_TILE / BITMM_WG_SPLIT) are never doubled.
constexpr int64_t kWgPairSplitMinStages = 64;
constexpr int64_t kWgPairSplitMaxM = 64;
// the plan's splits the rule doubles: 2 (sessions 43-44), 3 and 4 (session 45), the measured cases
constexpr int kWgPairSplitMinFrom = 2, kWgPairSplitMaxFrom = 4;
static_assert(2 * kWgPairSplitMaxFrom <= kWgMaxSplits, "a doubled split count past kWgMaxSplits");
inline bool wg_pair_split_rule(const WgPlan& plan, int64_t M, int64_t K, bool grouped, bool offset, bool binary) {
  const int64_t stages = (K + 63) / 64;
  return plan.bm == 64 && plan.splits >= kWgPairSplitMinFrom && plan.splits <= kWgPairSplitMaxFrom &&
         M <= kWgPairSplitMaxM &&
         stages >= 2 * plan.splits * kWgPairSplitMinStages && !grouped && !offset && !binary;
}
inline bool wg_pair_split(const WgPlan& plan, int64_t M, int64_t K, bool grouped, bool offset, bool binary) {
  static const int env = wg_pair_env(std::getenv("BITMM_WG_PAIR"));
  return env == -1 && wg_forced_tile() == 0 && wg_forced_splits() == 0 &&
         wg_pair_split_rule(plan, M, K, grouped, offset, binary);
}

// The plan: for each x tile (256, 128, 64 rows; none twice M or more, except 64), the K splits that fill
// one wave (below), then the one whose estimated time is least (ties: the larger tile):
//     waves x (BM + kWgStageOverheadRows) x stages per split,
// waves = ceil(tiles x splits / SMs).  A CTA's stage costs its BM rows of MMA plus a part that does not grow
// with BM (the stage's weight copy, unpacking and barrier; wgmma's fixed latency), counted as
// kWgStageOverheadRows more rows.  The split's reduction pass (the fp32 workspace written and read once, a
// second kernel) is not counted.  Measured on the H100, session 37 (bench/results/h100_s37_call3_wgplan_375ca15.txt,
// h100_s37_call4_dd7c6a1.txt; ternary per tensor / g64, int2 per tensor / g64, M = 128..512, 7 shapes with
// N = 4096..14336, 72 cases of 2-6 plans each, the tiles and splits forced by BITMM_WG_TILE / BITMM_WG_SPLIT):
// with any overhead of 128 rows or more the estimate picks the fastest measured plan in all 72 (at exactly 128
// through the tie going to the larger tile; below 128 it picks 64-row tiles in two waves on 4096 x 11008 at
// M = 192, 1.35-1.41x slower, and 128-row tiles there at M = 512, 1.12-1.21x); 192 sits inside that range.
// Against the rule before (the largest tile giving 3/4 of a CTA per SM, K split only under 64-row tiles),
// us, K x N, ternary per tensor: M = 256 8192 x 8192 256-row x 2 splits 63.8 vs 128-row 75.3 (fp16 F.linear 58.2),
// 28672 x 8192 198.4 vs 252.2 (191.2), 4096 x 4096 256 x 4 25.2 vs 64 x 1 34.3 (19.4), 14336 x 4096 56.6 vs
// 111.8 (62.2); M = 128 28672 x 8192 128 x 2 133.8 vs 64-row 222.0 (183.7); M = 512 8192 x 5120 256 x 1 94.2 vs
// 128-row 144.9; M = 320 (a 256-row tile would be 3/8 padding) 128-row tiles on 8192 x 5120 (73.1 vs 92.1 with
// 256) and 4096 x 11008.  At M <= 256 on N with >= 3/4 of a 256-row tile per SM (8192 x 28672) the plan is as
// before; at M = 257..384 such N can move to 128-row tiles (N = 11008, 27648: 5120 x 27648 M = 320 / 384 timed
// at 1.02 of the 256-row tile, call 5).  Splits now reach M ~ 2047 on small N, where the workspace is up to
// SMs x 128 KiB (one wave of splits); 2048^2 M = 768 took 1.06x the unsplit 128-row plan's time.  (Before K splits
// existed, wg4: 256-row tiles alone on 8192 x 8192 M = 256 ran 64 CTAs, 0.55x.)  A CTA of 256 weight rows
// x 128 rows of x measured 1.2-1.9x slower than 128 x 256 (wg2, wg3).
//
// K splits (wg7): where the tiles leave more than a quarter of the SMs idle (small M on
// N <= ~12k: 28672 x 8192 at M = 64 ran on 64 of 132 SMs, 1.7x the time of 8192 x 28672), K is cut
// into as many splits as fit in one wave (tiles x splits <= SMs: floor, not ceil), at most
// kWgMaxSplits and at least kWgMinStagesPerSplit stages each.  The workspace round trip (splits x M
// x N fp32, written and read once, mostly in L2) is at most SMs x 128 KiB: tiles x splits <= SMs.
// One wave, measured on the H200 (bench/results/h200_wg_probe_splitk_e848b4d.json, 132 SMs): 64
// tiles (28672 x 8192, 8192 x 8192 at M <= 64) 2 splits 121.6 / 39.4 us where ceil's 3 (192 CTAs,
// a 60-CTA second wave) took 162.7 / 52.9 and 4 (two full waves) 124.1 / 42.4; 32 tiles (4096 x
// 4096) 4 splits 14.5 us where 5 took 20.6.  (Session 37: splits past one wave lost again, 4096 x 14336
// M = 256 256-row x 2 splits 71.8 vs 57.8 us unsplit.)
// honor_env = false: the plan as if BITMM_WG_TILE / BITMM_WG_SPLIT were unset (auto's dispatch
// decision, so the probe knobs change how the kernel runs, never which kernel runs).  allow_splits = false:
// the best tile without K splits (a launch with no split-K workspace).
constexpr int64_t kWgStageOverheadRows = 192;

inline int64_t wg_fill_splits(int64_t tiles, int64_t stages, int num_sms) {
  if (4 * tiles >= 3 * static_cast<int64_t>(num_sms)) return 1;
  int64_t splits = num_sms / tiles;
  if (splits > kWgMaxSplits) splits = kWgMaxSplits;
  if (splits > stages / kWgMinStagesPerSplit) splits = stages / kWgMinStagesPerSplit;
  return splits < 1 ? 1 : splits;
}

inline WgPlan wg_plan(int64_t M, int64_t N, int64_t K, int num_sms, bool honor_env = true, bool allow_splits = true) {
  const int64_t n_tiles = (N + 127) / 128, stages = (K + 63) / 64;
  const int forced_bm = honor_env ? wg_forced_tile() : 0;
  const int forced_splits = !allow_splits ? 1 : honor_env ? wg_forced_splits() : 0;
  // (no CTA to plan, or no stage to split: every caller checks M, N and K first; the guards keep the
  // arithmetic below away from a division by zero)
  if (M <= 0 || n_tiles <= 0 || stages <= 0 || num_sms <= 0) return {forced_bm != 0 ? forced_bm : 64, 1};
  int bm = 64;
  int64_t splits = 1, best = -1;
  for (const int b : {256, 128, 64}) {
    if (forced_bm != 0 ? b != forced_bm : b > 64 && b >= 2 * M) continue;
    const int64_t tiles = n_tiles * ((M + b - 1) / b);
    const int64_t s = forced_splits != 0 ? (forced_splits < stages ? forced_splits : stages)
                                         : wg_fill_splits(tiles, stages, num_sms);
    const int64_t waves = (tiles * s + num_sms - 1) / num_sms;
    const int64_t cost = waves * (b + kWgStageOverheadRows) * ((stages + s - 1) / s);
    if (best < 0 || cost < best) {
      best = cost;
      bm = b;
      splits = s;
    }
  }
  while (splits > 1 && splits * M * N * 4 > kWgMaxWorkspaceBytes) --splits;
  return {bm, static_cast<int>(splits)};
}

// The wgmma grad_x kernel's plan (wg_grad_x.cuh; written in session 48, BM retuned in session 49 on the H100).
// BM (rows of grad_y per CTA): 64 up to M = 64, 128 up to M = 128, else 256.  Session 49 (8192 x 28672, fp16,
// ternary; bench/results/h100_s49_gx_bm256_869beb4.json against h100_s49_gx_ab_99d388b.txt): at M = 256, BM = 256
// (64 tiles, 2 splits) took 226 us per tensor and 303 us g64, against BM = 128's 301-317 / 493-498 (128 tiles,
// unsplit; 8192^2: 79 / 98 against 88-94 / 144-146).  The unpacking, paid once per BM rows, dominates (one CTA of 8
// warps per SM), so the tallest tile wins from M = 129.  CTAs cover 128 inputs each (one ROW_ALIGN_K chunk of the
// packed rows).  Splits of the reduction over n (the N rows of W, stages of 64) where the tiles fill at most half the
// CTA slots (SMs x wg_gx_ctas_per_sm): about one wave, at most 8, each split at least kWgMinStagesPerSplit stages; forced_bm / forced_splits (> 0; the
// glue reads BITMM_GX_WG_BM / BITMM_GX_WG_SPLIT) override them, the splits still at most one per stage and 16.
// Either way the workspace (splits x M x K fp32) stays under kWgMaxWorkspaceBytes.
inline int wg_gx_bm(int64_t M) { return M <= 64 ? 64 : M <= 128 ? 128 : 256; }
// CTAs per SM of the kernel's BM-row tiles (wgx2a, session 50): 64-row tiles run two (at most 128 registers and about
// half the shared memory each), the taller ones one.  wg_grad_x.cuh's launch bounds and ring size follow it, and the
// splits below count its CTA slots.
constexpr int wg_gx_ctas_per_sm(int bm) { return bm == 64 ? 2 : 1; }
inline WgPlan wg_gx_plan(int64_t M, int64_t N, int64_t K, int num_sms, int forced_bm, int forced_splits) {
  const int bm = forced_bm == 64 || forced_bm == 128 || forced_bm == 256 ? forced_bm : wg_gx_bm(M);
  const int64_t tiles = std::max<int64_t>(1, (M + bm - 1) / bm * ((K + 127) / 128));
  const int64_t stages = (N + 63) / 64;
  int64_t splits = 1;
  if (forced_splits > 0) splits = std::min<int64_t>({forced_splits, stages, 16});
  else if (const int64_t slots = int64_t{num_sms} * wg_gx_ctas_per_sm(bm); 2 * tiles <= slots)
    splits = std::min<int64_t>({kWgMaxSplits, slots / tiles, stages / kWgMinStagesPerSplit});
  const int64_t ws_cap = kWgMaxWorkspaceBytes / std::max<int64_t>(1, M * K * 4);
  splits = std::max<int64_t>(1, std::min(splits, ws_cap));
  return {bm, static_cast<int>(splits)};
}

// Auto's M range for the wgmma grad_x kernel (linear_cuda.cpp use_wg_grad_x adds the build, device and backend tests;
// the H100 measurements behind each bound are in its comment): from kWgxMinM on weights over kDenseSmallWeight
// elements, to kWgxMaxMFold where the kernel folds s and u into the weights (an offset, per-channel or group-wise
// scales) and to kWgxMaxMPlain with one scale and no offset ("plain"); on small weights ("small": at most
// kDenseSmallWeight elements) from 8 plain / 12 with a fold to 128 / 64 (session 51); the dense path above, except where
// auto may not take it (the deterministic mode, BITMM_AUTO_NO_DENSE): there at every M from the lower bound.  Here, a
// host-only function, so tests/test_wg_grad_x.py checks the boundaries on every machine, GPU or not.
constexpr int64_t kWgxMinM = 25;
constexpr int64_t kWgxMinMSmallPlain = 8;    // weights of at most kDenseSmallWeight elements, one scale, no offset ...
constexpr int64_t kWgxMaxMSmallPlain = 128;  // ... up to this M (then the dense path)
constexpr int64_t kWgxMinMSmallFold = 12;    // small weights with a fold (any offset, per-channel or group-wise s) ...
constexpr int64_t kWgxMaxMSmallFold = 64;    // ... up to this M
constexpr int64_t kWgxMaxMPlain = 1024;
constexpr int64_t kWgxMaxMFold = 256;
constexpr bool wg_gx_auto_takes(int64_t M, bool small, bool plain, bool may_take_dense) {
  if (M < (!small ? kWgxMinM : plain ? kWgxMinMSmallPlain : kWgxMinMSmallFold)) return false;
  if (!may_take_dense) return true;
  if (small) return M <= (plain ? kWgxMaxMSmallPlain : kWgxMaxMSmallFold);
  return M <= (plain ? kWgxMaxMPlain : kWgxMaxMFold);
}

}  // namespace cuda
}  // namespace bitmm
