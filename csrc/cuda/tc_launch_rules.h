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
// tile per warp (RN = CM = 1), 1 = two (RN = 2, CM = 1), 2 = two with two activation tiles (RN = CM = 2).
// Two 16-row tiles where x (its M rows) spans several K tiles (x_split: every CTA restages x per K
// tile, then for 128 weight rows instead of 16-64) and at M = 3, 4 where N gives every SM a 128-row
// tile; CM = 2 only for fp16 ternary with x split.  Measurements: tc_linear.cuh, launch_tc_for.
// m8_env (BITMM_TC_M8, -1 unset): 0 one tile, 1 CM = 2, 2 CM = 1 wherever RN = 2 applies;
// rn2_from (BITMM_TC_RN2_FROM, 0 unset): RN = 2 from M = rn2_from on, whatever x's size.
inline int tc_per_tensor_small_m_tiles(int64_t M, int64_t N, bool x_split, bool fp16_ternary, int num_sms,
                                       int m8_env, int rn2_from) {
  if (M < 1 || M > 8 || m8_env == 0) return 0;
  const bool wide_m34 = M >= 3 && M <= 4 && (N + 127) / 128 >= num_sms;
  if (!(x_split || wide_m34 || (rn2_from > 0 && M >= rn2_from))) return 0;
  return m8_env == 1 || (m8_env != 2 && x_split && fp16_ternary) ? 2 : 1;
}

}  // namespace cuda
}  // namespace bitmm
