// Launch rules of the tensor-core kernel (tc_linear.cuh, launch_tc_cfg) that need no CUDA: host code
// only, so tests/test_tc_launch_rules.py compiles them with the system C++ compiler and checks them
// on every machine, GPU or not.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace bitmm {
namespace cuda {

// Shared memory the driver reserves per CTA (sm_80 .. sm_90), and the unit it allocates in.
constexpr int kSmemReservedPerCta = 1024;
constexpr int kSmemAllocUnit = 128;

// Persistent grids of the block-diagonal kernel with two activation tiles (CM = 2, 166-168
// registers): the fewest resident CTAs per SM, at most `most`, that still need the fewest row tiles
// per CTA.  Its SMs are near saturation at 2 CTAs, so a third CTA that only leaves a tail of second
// row tiles costs time: H200, session 16 (bench/results/h200_s16_call3_785310e.txt), 8192 x 28672
// g64 M = 3 (448 row tiles): int2 93.9 us at 3 CTAs per SM (396 slots: a second tile for 52 CTAs)
// vs 73.3 at 2, ternary 94.3 vs 74.0.  Not for CM = 1 (M <= 2), tuned with "most CTAs": there it
// cost binary on 8192^2 (160 registers, 3 CTAs -> 2) 6% at M = 2 (19.7 -> 21.0 us, s16 call 3 / 4).
inline int64_t tc_fewest_ctas_per_sm(int64_t tiles, int num_sms, int64_t most) {
  const int64_t per_cta = (tiles + num_sms * most - 1) / (num_sms * most);  // row tiles per CTA at most
  return (tiles + num_sms * per_cta - 1) / (num_sms * per_cta);
}

// The block-diagonal path at M <= 2 (one activation tile) on long K, where N is not wide (`wide_n`:
// tc_bd_wide_n, all 4 warps along N there): two warps along N (32-row CTAs, two warps splitting K)
// instead of the 16-row CTAs of the launch rule's CTA floor, where that gives every SM ~2 CTAs.
// H200, session 20 (bench/results/h200_s20_call2_2164435.txt, BITMM_TC_WN override, g64, 28672 x
// 8192): M = 1 int2 / ternary 70.3 / 70.3 us with WN = 2 vs 81.1 / 81.1 with WN = 1 (the add/subtract
// kernel, auto's pick there before, 77.6 / 78.3), binary 57.3 vs 58.7; M = 2 85.0 / 86.1 / 64.8 vs
// 93.2 / 93.4 / 71.8; call 3 (h200_s20_call3_longk_cb5ddf2.txt, the rule / WN = 1 / WN = 2 each in its
// own process): int2 M = 1 68.2-71.9 / 82.3 / 72.0.  Not where N is narrower (28672 x 4096, 128 32-row
// CTAs for 132 SMs: 56.5 vs 41.6 with WN = 1) nor at K = 14336 (14336 x 8192 M = 1 37.5 vs 29.5; M = 2
// 35.9 vs 38.6, binary M = 1 29.0 vs 31.2) nor on 8192^2 (20.8 vs 18.4).
constexpr int64_t kTcBdTwoWarpsNMinK = 16384;
// N's 32-row CTAs per SM: at least 1.875 (the measured winner had 1.94: 256 for 132 SMs; 28672 x 4096's
// 0.97 lost; between them unmeasured, so not taken: a review's point, session 20) / below 2.5.
inline bool tc_32_row_ctas_from_1_875_per_sm(int64_t N, int num_sms) {
  return (N + 31) / 32 * 8 >= static_cast<int64_t>(num_sms) * 15;
}
inline bool tc_32_row_ctas_below_2_5_per_sm(int64_t N, int num_sms) {
  return 2 * ((N + 31) / 32) < 5 * static_cast<int64_t>(num_sms);
}
inline bool tc_bd_two_warps_n(int64_t K, int64_t N, int num_sms, bool wide_n) {
  return K >= kTcBdTwoWarpsNMinK && !wide_n && tc_32_row_ctas_from_1_875_per_sm(N, num_sms);
}

// Where tc_bd_two_warps_n holds, the two-plane kinds (ternary, int2) instead keep one warp along N
// (16-row CTAs, 4 warps splitting K) and cap the K tile (session 21: at 4096 inputs, x restaged per K
// tile; since session 59 at kTcBdLongKTileInputs, below): a 16-row CTA's shared memory drops from ~92 KB
// (x of 28672 inputs: 57 KB) to ~50 KB, so more CTAs stay resident.  H200, session 21
// (bench/results/h200_s21_call2_9d5925a.txt, BITMM_TC_KT_MAX x BITMM_TC_WN overrides, each setting twice
// in its own process), 28672 x 8192 g64, int2 / ternary:
// M = 1 69.6-70.1 / 69.7-69.8 us (WN = 2, full K) -> 67.8-68.0 / 67.6; M = 2 82.2-84.8 / 82.8-84.8 ->
// 67.6 / 67.2-67.5.  KT = 2048 lost (76-77 us), as did KT = 4096 with WN = 2 (77-78); binary lost with
// WN = 1 at every cap (call 1: M = 1 57.1 -> 75-81 us), so binary keeps two warps along N.  Not where
// the two-warps rule does not hold: 28672 x 4096 (WN = 1, full K, 41.4 us at M = 1) took 49.7 with the cap.
// Wider N (32-row CTAs per SM: 3.9 on 16384 x 16384, 2.9 on 16384 x 12288; h200_s21_call3_7f7e73c.txt,
// h200_s21_call4_64565e4.txt, the cap vs two warps along N, int2 / ternary): M = 1 lost, 76.0 / 76.1 vs
// 60.8 / 60.7 us and 66.7 / 68.6 vs 47.8 / 47.7; M = 2 tied on 16384^2 (75.2 / 74.9 vs 76.2 / 76.5) and won
// on 16384 x 12288 (66.0 / 66.2 vs 71.0 / 71.0).  16384 x 8192 (1.94 per SM, as 28672 x 8192): M = 1
// 41.3 -> 39.6, M = 2 39.8 -> 39.1 with the cap.  So: at M = 2 the cap wherever the two-warps rule
// holds; at M = 1 only below 2.5 32-row CTAs per SM (1.94 won, 2.9 lost; between, unmeasured).
// Since session 59 the cap is 8192 inputs with a 3-slot weight ring (in place of 4096 with the deepest ring
// that fits), and it also applies where N is wide (tc_bd_wide_n): H100, session 59
// (bench/results/h100_s59_bd_{plan,kt8192_st3}_219951c.json, BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 against the
// launcher's plan, one process each, fp16 x, ternary / int2, g64 and g128), M = 1: 16384 x 53248 (wide N) g64
// 197.3 / 195.6 -> 174.8 / 175.1 us (3.00x -> 3.39x fp16), g128 184.0 / 184.4 -> 165.5 / 164.4; 16384^2 (the
// two-warps rule's WN = 2 kept) 0.93-0.95; 28672 x 8192 (its WN = 1 kept; 4096 -> 8192) 0.88-0.89; M = 2 on
// the same shapes 0.89-0.97.  Session 58 (h100_s58_kt8192_st3_87fb52e.json) had 16384 x 53248 g64 alike (200.6
// -> 173.8).  Binary lost (16384 x 53248 M = 1 g128 109.2 -> 130.6, 16384^2 1.07-1.18; only 28672 x 8192 M = 2
// won, 0.92-0.94): it keeps its rule.  Not where N is narrower than the two-warps rule's 1.875 32-row CTAs per
// SM (28672 x 4096: session 21's 4096 cap lost there; 8192 with 3 slots: session 60, below) nor K below 16384
// (K = 8192 is one tile of 8192 anyway; 8192 < K < 16384: session 60, below).  Why the capped, non-persistent grid
// wins is not understood: session 59's other probe, x whole with room for 3 slots at 4 CTAs per SM
// (bench/device_calls/s59_bd_quad.patch), ran within 1% of the plan on 16384 x 53248 M = 1 and lost 5-7% on
// 28672 x 8192, so the ring's depth alone is not it.  Session 60 (H100, h100_s60_*_d492af3): the rule as landed
// ran its probe's times (ternary / int2 0.998-1.042 of h100_s59_bd_kt8192_st3) and passed its tests on the GPU;
// bf16 x gains as fp16 (rule vs the launch before: 16384 x 53248 M = 1 0.81-0.87, M = 2 0.85-0.93; 28672 x 8192
// M = 1 0.91-0.93, M = 2 0.96-0.98).  The band left out stays out: 8192 < K < 16384 and N = 4096 on long K with the
// same cap and ring lost at M = 1 on all four shapes (14336 x 8192 1.08, 11008 / 14336 / 28672 x 4096 1.04-1.15)
// and were mixed at M = 2 (14336 x 8192 g64 0.87, 28672 x 4096 0.93, 11008 / 14336 x 4096 1.05-1.14; one process
// each, not repeated).  Nor K = 8192 split in two 4096 tiles with 3 slots (1.02-1.55): the capped grid's gain
// needs the long K, not just the non-persistent grid.  ncu of 16384 x 53248 ternary g64 M = 1, capped vs whole
// (same 25% occupancy, 4 CTAs per SM by registers): 202 vs 216 us under ncu, L1 hit 28% vs 3%, DRAM 1.48 vs
// 1.37 TB/s, long / short scoreboard stalls per issue 0.81 / 0.51 vs 1.18 / 0.73.
// Returns the warps along N, the K-tile cap in inputs and the weight ring's slots where it caps (0: the
// launcher's own) for the block-diagonal path at M <= 2.
constexpr int kTcBdLongKTileInputs = 8192;
constexpr int kTcBdLongKStages = 3;
struct TcBdLongK {
  int wn;      // warps along N (0: the launcher's own rule)
  int kt_max;  // K tile at most this many inputs (0: as many as fit)
  int stages;  // weight ring slots when x is in several K tiles (0: the deepest that fits)
};
inline TcBdLongK tc_bd_long_k(int64_t M, int64_t K, int64_t N, int num_sms, bool wide_n, bool binary) {
  constexpr TcBdLongK capped{0, kTcBdLongKTileInputs, kTcBdLongKStages};
  if (!binary && K >= kTcBdTwoWarpsNMinK && wide_n) return capped;
  if (!tc_bd_two_warps_n(K, N, num_sms, wide_n)) return {0, 0, 0};
  if (binary) return {2, 0, 0};
  // ternary / int2: one warp along N at M = 2 and below 2.5 32-row CTAs per SM (session 21), else two
  return {M >= 2 || tc_32_row_ctas_below_2_5_per_sm(N, num_sms) ? 1 : 2, capped.kt_max, capped.stages};
}

// Per tensor / channel M <= 3 (one 16-row tile per warp, one activation tile; x in one K tile) on short K where N
// gives every SM ~2 32-row CTAs (1.875 .. 2.5 per SM, the bounds above): two warps along N (32-row CTAs, two warps
// splitting K) instead of the launcher's one (16-row CTAs, 4 warps splitting K; its floor of 8 CTAs per SM).  The
// halved grid also turns on programmatic dependent launch (tc_pdl_rule: 512 CTAs in ~792 slots off, 256 on), and
// the gain needs both: H200, session 23 (bench/results/h200_s23_call2_709870d.txt, M = 1, A rule / B BITMM_TC_WN=2 /
// C BITMM_PDL=2 / D WN = 2 with BITMM_PDL=0, twice each, one process each, us): 8192^2 ternary 13.1 / 12.2 /
// 15.2 / 13.4, binary 11.1 / 9.1 / 12.1 / 10.2; 4096 x 8192 ternary 9.3 / 7.7 / 10.2 / 8.9, binary 7.9 / 6.1 /
// 8.2 / 7.4.  Not on long K (14336 x 8192 ternary 18.1 -> 20.3, binary 14.0 -> 13.7; 28672 x 8192 1.15-1.24x), nor
// narrower N (8192 x 6144, 1.45 per SM: 1.09-1.19x; 4096^2 1.03-1.10x) nor wider N (5120 x 13824, 3.3 per SM: 0.95 /
// 0.99, not taken; 8192 x 28672 ternary / int2 1.06-1.09x, binary 0.98; h200_s23_call1_2bc945f.txt).
// The rule at M = 1 against WN = 1 (h200_s23_call3_1aa4d98.txt, auto, twice each, per run): 0.77-0.96 on 8192^2,
// 4096 x 8192, 2048 x 8192, 6144 x 9216, 8192 x 10240 (binary 8192^2 11.0 -> 9.0 us, 4.30x fp16), 0.98-1.02 on the
// shapes it leaves.  M = 2, 3 (forced WN = 2 vs the rule there): K <= 4096 0.75-0.82 for every kind (2048 / 4096 x
// 8192); K = 6144 (6144 x 9216) ternary / int2 0.92-0.94, binary 0.99 / 1.04; K = 8192 ternary / int2 1.03-1.12 on
// 8192^2 but 0.97-1.01 on 8192 x 10240, binary 0.92-0.94 at M = 3 on both (not taken: binary's M = 2 there
// 0.95 / 1.05 and its M = 3 on 6144 x 9216 1.04); 14336 x 8192 1.05-1.19.  So M = 1 to K = 8192, M = 2, 3 to 6144
// (binary 4096).  bf16 x unmeasured (taken all the same, like the rules above).
constexpr int64_t kTcPerTensorTwoWarpsNMaxK = 8192;     // M = 1
constexpr int64_t kTcPerTensorTwoWarpsNMaxK23 = 6144;   // M = 2, 3 (binary: 4096)
inline bool tc_per_tensor_two_warps_n(int64_t M, int64_t K, int64_t N, int num_sms, bool binary) {
  const int64_t max_k = M == 1 ? kTcPerTensorTwoWarpsNMaxK : M <= 3 ? (binary ? 4096 : kTcPerTensorTwoWarpsNMaxK23) : 0;
  return M >= 1 && K <= max_k && tc_32_row_ctas_from_1_875_per_sm(N, num_sms) && tc_32_row_ctas_below_2_5_per_sm(N, num_sms);
}

// Group-wise M <= 2 with fp16 x on mid-sized layers (2^24 .. 2^26 weights: 4096^2 .. 8192^2): ternary and
// binary on the folding path (CM = 1, typed) instead of the block-diagonal one; and auto's M = 1 takes the
// tensor-core kernel there for every kind (int2 on the block-diagonal path).  H200, session 22
// (bench/results/h200_s22_call5_a02e416.txt, h200_s22_call7_53933d7.txt, g64, tensor-core backend, the
// folding path through BITMM_TC_BD=0, us, M = 1 / 2): binary 8192^2 19.2 / 19.7 -> 13.8 / 14.7, 4096^2
// 8.4 / 8.6 -> 6.9 / 7.0, 8192 x 4096 12.0 / 12.6 -> 10.2 / 10.7, 4096 x 8192 11.7 -> 8.7, 4096 x 14336
// 16.5 -> 14.4, 14336 x 4096 18.1 / 17.6 -> 15.7 / 16.4, 11008 x 4096 15.6 / 16.3 -> 13.3 / 15.1, but
// 4096 x 11008 12.8 / 12.9 -> 13.4 / 13.3; ternary 0.91-0.97 of the block-diagonal time on those shapes
// (4096 x 11008 1.00 / 0.99); int2 1.04-1.21 (keeps the block-diagonal path).  Larger layers lost at
// M = 1 (28672 x 8192 binary 56.6 -> 66.3, ternary 67.2 -> 77.1; 16384 x 12288 1.13-1.17; 8192 x 28672
// ternary 1.08); smaller than 4096^2 and bf16 x are unmeasured.  Auto at M = 1 before (the add/subtract
// kernel on some of these): 8192 x 4096 int2 16.7 vs the block-diagonal path's 13.6, ternary 16.8 vs
// folding 12.6, binary 13.3 vs 10.2; 4096^2 int2 9.7 vs 8.3, binary 8.0 vs 6.9; 8192^2 binary 18.4 vs 13.8.
// Landed in session 23 (bench/results/h200_s23_call2_709870d.txt, auto vs fp16 in one process, g64 M = 1):
// binary 8192^2 13.7 us (3.12x; the merged table's record before, another machine: 18.4), 11008 x 4096 13.4
// (15.7), 14336 x 4096 15.7 (18.2); ternary 8192^2 16.4 (17.9); int2 8192 x 4096 13.6 (16.7); the layers
// outside the range within 2% of their records.
constexpr int64_t kTcMidLayerMinWeights = int64_t{1} << 24;
constexpr int64_t kTcMidLayerMaxWeights = int64_t{1} << 26;
inline bool tc_mid_layer(int64_t K, int64_t N) {
  return K * N >= kTcMidLayerMinWeights && K * N <= kTcMidLayerMaxWeights;
}
// kind: 1 binary, 2 ternary, 3 int2; fp16: x is fp16.
inline bool tc_grouped_small_m_fold(int kind, int64_t K, int64_t N, bool fp16) {
  return fp16 && kind != 3 && tc_mid_layer(K, N);
}

// Group-wise M = 5..8: the two-activation-tile folding path of M = 9..16 (CM = 2, half its B columns idle;
// RN = 2, binary RN = 1) or the one-tile path (CM = 1, RN = 1), both with one kernel per scale dtype (tc25).
// H200, session 22 (bench/results/h200_s22_call2_9c2ffb1.txt, one machine, g64, M = 5 / 6 / 8, A = CM = 1
// untyped, B = CM = 2, C = CM = 1 typed, us): ternary / int2 take CM = 2 on N >= 8192 (8192 x 28672 int2
// 85.4-90.3 vs C 116.9-118.8, A 139.9-145.9; 28672 x 8192 89.1-90.8 vs 102.8-112.1; 8192^2 27.7-28.9 vs
// 31.6-32.5) and CM = 1 on 4096^2 (int2 12.6-12.9 vs 10.3-11.1); binary CM = 2 only where N is wide
// (8192 x 28672 84.2-86.9 vs 85.6-91.9), CM = 1 elsewhere (28672 x 8192 81.9-91.5 vs 74.9-85.1; 8192^2
// 25.5-27.1 vs 23.1-25.1).  Boundaries: ternary / int2 at 1/3 128-row tiles per SM (4096^2: 0.24 lost,
// 8192^2: 0.48 won; N and K changed together there, so the rule's use of N alone is a guess); binary at
// tc_grouped_wide's 1.5 tiles per SM (0.48 lost, 1.70 won).  Only M = 5, 6, 8, g64 and fp16 x measured
// (bf16 x follows the same rule unmeasured).
// N with at least 1.5 128-row tiles per SM: the group-wise wide-N boundary of auto's tensor-core pick at M = 17..32
// (linear_cuda.cpp, tc_grouped_wide) and of binary's two-tile choice below.
inline bool tc_wide_128_row_tiles(int64_t N, int num_sms) {
  return 2 * ((N + 127) / 128) >= 3 * static_cast<int64_t>(num_sms);
}
inline bool tc_grouped_mid_m_two_tiles(int64_t N, int num_sms, bool binary) {
  return binary ? tc_wide_128_row_tiles(N, num_sms) : 3 * ((N + 127) / 128) >= static_cast<int64_t>(num_sms);
}

// Per tensor / channel M = 17..64 (CM = 4 and 8, RN = 2) on wide N (>= 1.5 128-row CTAs per SM,
// tc_wide_128_row_tiles) and 4096 <= K <= 8192: all 4 warps along N (one 128-row CTA per tile, no K split) instead
// of the launcher's floor of 2 CTAs per SM, which there picks WN = 2 (twice the CTAs, two warps splitting K and a
// reduction) for ternary / int2 at M = 17..56 and binary at M = 17..32.  H100, session 35 (bench/results/h100_s35_call1_148a810.txt,
// decode_probe --rounds 3, fp16 x, BITMM_TC_WN=4 against the rule, us): ternary 8192 x 28672 M = 24 92.5 -> 66.8,
// M = 33 152.8 -> 105.9, 40 139.3 -> 107.8, 48 144.4 -> 110.6, 56 161.3 -> 116.7 (M = 64, WN = 4 already: 118.3);
// int2 alike (M = 24 102.5 -> 77.4, M = 33 165.3 -> 113.7); 4096 x 28672 ternary M = 24 52.3 -> 36.3, M = 33 86.7 ->
// 56.0; binary M = 24 74.8 -> 60.2 (8192 x 28672), 41.4 -> 33.2 (4096 x 28672), M >= 33 equal (WN = 4 already).
// Narrower N loses (8192^2 ternary M = 33 53.5 -> 63.9, 28672 x 8192 211 -> 241): half the CTAs.  bf16 x, other
// K and N between 1.5 and 1.64 tiles per SM unmeasured (taken all the same, like the rules above).
constexpr int64_t kTcPerTensorWideMinK = 4096;
constexpr int64_t kTcPerTensorWideMaxK = 8192;
inline bool tc_per_tensor_wide_four_warps_n(int64_t M, int64_t K, int64_t N, int num_sms) {
  return M >= 17 && M <= 64 && K >= kTcPerTensorWideMinK && K <= kTcPerTensorWideMaxK &&
         tc_wide_128_row_tiles(N, num_sms);
}

// Group-wise M = 3, 4: the block-diagonal path with two activation tiles (CM = 2) for int2 only; ternary and
// binary take the folding path (tc25's rule: CM = 1 at M <= 4, one kernel per scale dtype).  H200, session 22
// (bench/results/h200_s22_call4_7d4218f.txt, g64, BITMM_TC_BD=2 against the block-diagonal default, A B A B
// in one machine, 8 shapes, folding / block-diagonal time): binary 0.66-0.98 at M = 3 and 0.73-0.88 at M = 4
// (8192 x 28672 M = 3 76.6 -> 50.4 us); ternary M = 4 0.82-0.96, M = 3 0.83-0.86 on 4 shapes and 1.05-1.06 on
// the four with N = 8192 (28672 x 8192 98.0 vs 103.4 us), taken all the same (mean 0.95); int2 0.91-0.99 on
// 4096^2, 28672 x 4096 and 16384 x 12288 M = 3, 1.03-1.18 elsewhere, so int2 keeps the block-diagonal path.
// fp16 x only measured (bf16 x follows the same rule unmeasured).
// kind: 1 binary, 2 ternary, 3 int2; bd_env: BITMM_TC_BD (-1 when unset: >= 0 sets the limit for every kind).
inline bool tc_grouped_bd_two_tiles(int kind, int bd_env) { return bd_env >= 0 || kind == 3; }

// Dynamic shared memory per CTA (>= the `smem` bytes the kernel uses, <= smem_limit) such that the
// hardware keeps at most `want` CTAs per SM where registers (by_regs CTAs) and `smem` would allow
// more: with room for a further CTA per SM, the next call's CTAs (programmatic dependent launch)
// would take it while ours run.  8192 x 28672 binary g64 M = 3, whose x tile left that room, ran
// 82.3 us with 2 CTAs per SM asked and 3 possible (PDL on), against M = 4's 66.4 us with 2 possible
// (h200_s16_call4_eaee588.txt; set after that call, not yet timed).  The share is rounded down to the
// allocation unit (e.g. sm_80's 164 KB / 3 is not a multiple of it).  With want = 1 the limit may
// still leave room for 2 (launch_tc_cfg counts the CTAs the hardware allows for its PDL rule).
inline size_t tc_reserved_smem(size_t smem, int smem_per_sm, int smem_limit, int by_regs, int64_t want) {
  const int64_t by_smem = smem_per_sm / static_cast<int64_t>(smem + kSmemReservedPerCta);
  if (std::min<int64_t>(by_regs, by_smem) <= want) return smem;
  const int64_t share = smem_per_sm / want / kSmemAllocUnit * kSmemAllocUnit - kSmemReservedPerCta;
  return std::max(smem, static_cast<size_t>(std::min<int64_t>(smem_limit, share)));
}

// Programmatic dependent launch (tc16) where the next call's CTAs, which the GPU places in the slots
// ours leave free while ours run, are all placed early (free >= ours), or none (a full grid), or few
// (free <= ours / 4).  In between it lost: H200, session 15 (bench/results/h200_s15_call4_00ecaf2.txt),
// per tensor 8192 x 8192 M = 1, 512 CTAs in 792 slots: 15.6 us with it, 13.2 without; every other
// case measured there gained 1-18% (4096^2 M = 1: 7.25 -> 5.92 us; 8192 x 28672 g64 M = 1, 448 CTAs
// in 528 slots: 51.6 -> 50.0).  A fit to those 24 cases (per tensor and g64, M = 1 and 4, 4096^2 ..
// 8192 x 28672) with a guess at the cause (an uneven placement of the next call's CTAs), not a law.
inline bool tc_pdl_rule(int64_t free_slots, int64_t ours) {
  return free_slots <= 0 || free_slots >= ours || 4 * free_slots <= ours;
}

// Per tensor / channel scales, M <= 8 (tc18, launch_tc_for): the tile configuration, 0 = one 16-row
// tile per warp (RN = CM = 1), 1 = two (RN = 2, CM = 1), 2 = two with two activation tiles (RN = CM = 2,
// half the B columns idle).  x_split: x (its M rows, all of K) does not fit in shared memory beside the
// deepest weight ring, so every CTA restages it per K tile; x_big: x takes half of the budget or more,
// so one-tile CTAs (16-64 weight rows each) are few per SM and each stages x for few rows.
//  * RN = 2 where x is split; where x is big or (M = 3, 4) N has a 128-row tile per SM, if N gives
//    every SM a 32-row CTA (RN = 2 halves the CTAs: 4096^2 M = 1..4 lost, 6.0-7.1 -> 7.1-8.8 us).
//  * CM = 2 for fp16 ternary (its sign / exponent unpacking instead of the subnormal codes) where N is
//    narrow (fewer 128-row tiles than SMs); CM = 1 otherwise.  Until session 19 also where x was split
//    on wide N; since tc19 / tc20 (the RN = 2 launch bounds) CM = 1 wins there: H200, session 19
//    (bench/results/h200_s19_call1_f088648.txt, BITMM_TC_M8=2 vs the rule, same machine), 8192 x 28672
//    M = 5 / 8 41.3 / 38.8 vs 44.4 / 41.7 us; narrow N keeps CM = 2 (28672 x 8192 M = 5 / 8 51.3 / 57.0
//    vs 49.3 / 50.4, 8192^2 18.8 / 19.6 vs 18.1 / 17.3).  M = 6, 7 unmeasured.
// H200, session 17, fp16, us (one tile -> RN = 2, CM = 1 / CM = 2; bench/results/h200_s17_call3_eed8771.txt
// and h200_s17_call4_3de45cb.txt, the latter's M <= 4 through BITMM_TC_RN2_FROM):
//  x split: 8192 x 28672 M = 5 / 8 int2 117.1 / 123.2 -> 48.3 / 45.7 vs 62.3 / 58.9; ternary 117.1 /
//   122.7 -> 48.6 / 45.7 vs 45.8 / 43.4; 8192^2 ternary 35.0 / 36.7 -> 21.3 / 22.8 vs 18.6 / 18.2;
//   28672 x 8192 M = 2 / 3 / 4 int2 63.2 / 70.4 / 76.9 -> 44.4 / 49.9 / 52.7, ternary 62.3 / 69.9 / 76.2
//   -> 44.4 / 50.3 / 52.9 vs 41.1 / 44.8 / 44.9, binary 42.2 / 51.2 / 52.1 -> 32.4 / 37.9 / 41.4.
//  (binary M = 5 / 8 on 8192 x 28672, x split too: 84.1 / 94.9 -> 35.1 / 34.9.)
//  x big, not split: 28672 x 8192 M = 1 (x 72 KB) int2 40.4 -> 37.9, binary 30.8 -> 26.1, ternary
//   40.2 -> 38.5 vs 36.3; 8192^2 M = 3 int2 16.6 -> 14.6, ternary 16.6 -> 14.7 vs 14.1; M = 4 ternary
//   15.2 -> 15.7 vs 13.9, but int2 15.3 -> 15.6, binary 11.8 -> 13.2 (taken all the same).
//  N wide, M = 3 / 4 (x in one tile): 8192 x 28672 int2 38.3 / 40.9 -> 36.2 / 36.8, ternary 38.1 /
//   40.9 -> 36.4 / 37.0 vs 38.8 / 38.7, binary 28.3 / 29.8 -> 27.1 / 27.9.
//  Not taken: M = 1, 2 with x small (8192 x 28672 int2 33.4 -> 36.3, 8192^2 M = 2 13.0 -> 15.4).
//  bf16 (no subnormal codes), 8192 x 28672 M = 5 / 8: CM = 1 beats CM = 2 for every kind (int2 57.0 /
//   54.8 vs 63.0 / 60.3, ternary 44.2 / 41.4 vs 46.8 / 44.0).
// m8_env (BITMM_TC_M8, -1 unset): 0 one tile always, 1 CM = 2, 2 CM = 1 wherever RN = 2 applies;
// rn2_from (BITMM_TC_RN2_FROM, 0 unset): RN = 2 from M = rn2_from on, whatever x and N.
inline int tc_per_tensor_small_m_tiles(int64_t M, int64_t N, bool x_split, bool x_big, bool fp16_ternary,
                                       int num_sms, int m8_env, int rn2_from) {
  if (M < 1 || M > 8 || m8_env == 0) return 0;
  const bool wide = (N + 127) / 128 >= num_sms;
  const bool enough_ctas = (N + 31) / 32 >= num_sms;
  if (!(x_split || (enough_ctas && (x_big || (wide && M >= 3 && M <= 4))) || (rn2_from > 0 && M >= rn2_from)))
    return 0;
  if (m8_env == 1) return 2;
  return m8_env != 2 && fp16_ternary && !wide ? 2 : 1;
}

// The tensor-core grad_x kernel (tc_grad_x.cuh): splits of N (grid.y) for `per_split` CTAs per split
// (256-input slices x 8-row tiles of grad_y), 4 resident CTAs per SM.  Until session 24 the splits were
// wave / per_split rounded up: on 8192 x 28672 M = 1 17 splits of 32 slices, 544 CTAs for 528 slots, and ncu
// (bench/results/h200_s23_ncu_gradx_ternary_m1_1aa4d98.txt) saw the SMs active 66.4 k of 93.2 k cycles (the
// second wave's 16 CTAs ran alone).  Now the one of the two roundings with fewer waves per unit of work
// (ceil(CTAs / wave) / splits); a tie keeps the larger (e.g. 272 slices: 2 splits, 1.03 waves, not 1 split at
// 52% of a wave).  mode (BITMM_GX_SPLITS): 0 rounded up as before, 2 two waves rounded down, else the rule.
inline int64_t tc_gx_splits(int64_t per_split, int num_sms, int mode) {
  const int64_t wave = 4 * static_cast<int64_t>(num_sms);
  const int64_t up = std::max<int64_t>(1, (wave + per_split - 1) / per_split);
  if (mode == 0) return up;
  if (mode == 2) return std::max<int64_t>(1, 2 * wave / per_split);
  const int64_t down = std::max<int64_t>(1, wave / per_split);
  const int64_t waves_down = (down * per_split + wave - 1) / wave, waves_up = (up * per_split + wave - 1) / wave;
  return waves_down * up < waves_up * down ? down : up;  // waves_down / down < waves_up / up
}

// `auto`'s digits rule (session 34, H100 80GB HBM3, 132 SMs; bench/results/h100_s34_call6_digits_*_2a3519e.json and
// h100_s34_call7_digits_wide_*_79d22e8.json, decode_probe --rounds 3, tensorcore vs digits forced, per tensor, fp16 and
// bf16 x; after landing, auto against both: h100_s34_call8_digits_rule_8d47ba5.json): the digits backend (fp16 / bf16
// x as four int8 digit rows on the fused int8 kernel, exact sums: at least as accurate as the tensor-core path) at
// M <= 2 where N gives every SM at least 192 output rows (6 of the tensor-core kernel's 32-row CTAs) and
// 2048 <= K <= 8192.  Digits / tensor-core time over the 9 shapes timed there (N = 27648..128256, K = 2048..8192)
// x 3 kinds x fp16 / bf16: M = 1 0.60-0.97 and one tie (int2 8192 x 57344 fp16, 1.00), M = 2 0.64-1.04 (the losses
// on 3584 x 37888, 1.03-1.04); 8192 x 28672 fp16 ternary 29.4 vs 33.7 us, int2 29.7 vs 33.5, binary 19.4 vs 25.0.
// Where it does not hold: K = 16384 (16384 x 53248:
// 0.86-1.11 at M = 1, 1.02-1.28 at M = 2: 4 digit rows of x take 64 KB of shared memory per CTA), K = 1024
// (1024 x 131072: 0.94-1.14), N between 13824 and 22016 (0.86-1.22 by shape: 14336 / 13824 won, 16384 / 18944 /
// 22016 lost), narrower N and long K (8192^2 1.13-1.27, 4096^2 1.20-1.40, 28672 x 8192 1.31-1.45, 14336 x 4096
// 1.44-2.9).  M = 3, 4: 12-16 digit rows cost what 3-4 rows of W2A8 cost (8192 x 28672 M = 4 ternary 46.4 vs 39.0).
// The H200 (same SM count, faster memory) was not timed at this code: session 28's digits (before the a8 kernel's
// session-29 unpacking) lost there on 11 of 12 M = 1 cases (ternary 8192 x 28672 33.2 vs 30.9 us).  The caller
// (linear_cuda.cpp auto_takes_digits) applies it on compute capability 9.x only.
constexpr int64_t kDigitsAutoMaxM = 2;
constexpr int64_t kDigitsAutoMinK = 2048;
constexpr int64_t kDigitsAutoMaxK = 8192;
constexpr int64_t kDigitsAutoMinRowsPerSm = 192;
inline bool digits_auto_rule(int64_t M, int64_t K, int64_t N, int num_sms) {
  return M >= 1 && M <= kDigitsAutoMaxM && K >= kDigitsAutoMinK && K <= kDigitsAutoMaxK &&
         N >= kDigitsAutoMinRowsPerSm * static_cast<int64_t>(num_sms);
}

}  // namespace cuda
}  // namespace bitmm
