// Hopper (sm_90a) warpgroup tensor-core kernel for grad_x = grad_y @ (v * s + u) at large M (training):
// the packed (N, K) weights as stored, untransposed, unpacked in registers into wgmma's A operand; grad_y
// streamed into shared memory by the TMA unit as the B operand.  No dequantized weight is written to memory,
// and no atomics: each output element is one CTA's fp32 sum, rounded once (bitwise reproducible).
//
// Written in session 48 without a GPU; tests/test_wg_grad_x.py passed on the H100 in session 49, which made it auto's
// grad_x from M = 33 (linear_cuda.cpp use_wg_grad_x, from M = 25 since session 50; BITMM_GX_WGMMA=0 turns it off).
// Measured there: latency-bound in the unpacking, one CTA of 8 warps per SM (bench/NOTES.md, wgx1); since session 50
// (wgx2a) 64-row tiles run two CTAs per SM.
//
// Why: tc_grad_x.cuh (mma.sync) re-reads and re-unpacks the weights for every 8 rows of grad_y, so its
// time grows linearly with M (H200, ternary g64 8192 x 28672, fp16: 115 us at M = 16, 418 us at M = 64,
// against fp16 grad @ W's ~117 us: bench/results/h200_s48_gx_layout_28662fd.txt), and the dense path
// above M = 64 (dequantize 2NK bytes, then cuBLAS) reached only 0.42x of fp16 at M = 256.  Here a weight
// tile is unpacked once per BM rows of grad_y.
//
// Roles in one wgmma (m64nBMk16, f32 accumulators), per warpgroup; the reduction runs over n:
//   A = W^T tile: 64 inputs k (D rows) x 16 weight rows n, from registers, in mma.m16n8k16's A fragment
//       layout per warp (lane g = lane / 4, t = lane % 4: D rows g and g + 8, n columns 2t, 2t + 1,
//       2t + 8, 2t + 9).  An A register holds two weights of the SAME input k from two DIFFERENT rows
//       (n1 = column 2t in the low half, n2 = 2t + 1 in the high half), as in tc_grad_x.cuh: one PRMT
//       puts the two rows' low (or high) half-words side by side, after which the forward's E / O merge
//       and unpack_pair take pair i of the merged word as (row n1, row n2) at input 2i (or 2i + 1).
//   B = grad_y^T: 16 rows n x BM gradient rows m, K-major (n contiguous) in shared memory, 128-byte
//       swizzled: the forward kernel's x tile with n in the place of k (same descriptor, wg_desc).
//   D = grad_x^T tile (64 inputs x BM gradient rows), fp32 in registers.
// Which inputs a warp's 16 D rows stand for: warp w of warpgroup wg takes block b = 2 wg + (w >> 1) of the
// CTA's four 32-input blocks and half hh = w & 1 of its words (bits 16 hh ..: inputs 2i + hh); D row r is
// pair i = r, i.e. input 32 b + 2 r + hh.  Lane g's rows g and g + 8 are pairs g and g + 8: the same parity,
// so one E (g even) or O (g odd) word serves both (shifts 14 - (g & ~1) and 8 less).  Per k-step (16 rows n)
// a lane reads its block's words of rows 2t, 2t + 1, 2t + 8, 2t + 9 (4 x LDS.64, binary LDS.32) and builds
// 4 A registers with 2 PRMT (binary 1), one merge and 2 unpacks per row pair.
//
// CTA: two warpgroups (256 threads) on 128 inputs k (one ROW_ALIGN_K chunk of every packed row: 16 bytes
// binary, 32 bytes two-plane; rows are padded to it, so a chunk never crosses a row's end) and BM rows of
// grad_y.  The reduction runs in stages of 64 rows n (one 128-byte swizzle row of grad_y per gradient row)
// through a ring of WgxCfg::kStages slots, kStages - 2 stages ahead, as wg_linear.cuh's CTA-barrier
// pipeline: grad_y by the TMA unit (thread 0; the slot's mbarrier counts its bytes), the packed words by
// cp.async (threads 0..127, one 16-byte piece each: two-plane rows are two pieces, binary one, padded to a
// 48- / 16-byte stride so that a k-step's four row reads hit distinct banks), and (fold, below) s and u
// by plain loads one stage ahead, stored into the slot one issue later (kAhead >= 2: before the barrier
// of the stage that reads them).  Rows past N: zero words, zero grad_y (TMA fill), s = u = 0.
// Scaling ("fold" unless one per-tensor scale and no offset): every unpacked pair becomes v * s + u
// (s = s[n, group of the block] halved for binary / ternary, whose values are 2b / 2t) in grad_y's
// dtype (one HFMA2 per two weights), or in fp32 rounded once for fp32 scales: how a dense fp16 / bf16
// matmul on the dequantized weight rounds it.  s and u of a stage sit in the slot as [block][row], the rows in the
// order the A fragments read them (su_at), one LDS.64 (fp32: LDS.128) per k-step for a lane's two row pairs.  Plain:
// exact values, s * vscale on the fp32 sums in the epilogue.
// Epilogue: the tile goes through shared memory as [m][k] to 16-byte row-contiguous stores (K % 8 == 0); a split
// of the reduction (below) stores its fp32 partial tile from registers instead.
// Requirements (else cudaErrorNotSupported and the caller uses another kernel): fp16 / bf16 grad_y with
// N % 8 == 0 (its rows through the TMA unit need a 16-byte pitch), grad_y 16-byte aligned (grad_x too where K % 8 == 0),
// groups a multiple of 32, s in fp32 or grad_y's dtype, compute capability 9.0 and a build for sm_90a.
// Grids under a wave (M <= 64 on 8192 inputs: 64 CTAs on 132 SMs) split the reduction over n (grid z, the glue's
// plan, wg_plan.h wg_gx_plan): each split writes an fp32 partial tile, wg_splitk_reduce sums them in split order
// (bitwise reproducible).  Not yet: the warp-specialized producer, a wider input tile per CTA.
#pragma once
#include "wg_linear.cuh"  // TMA / mbarrier / wgmma helpers, wg_desc, WgmmaRS, wg_encode_tiled, load_raw

namespace bitmm {
namespace cuda {

constexpr int kWgxInputs = 128;  // inputs k per CTA: 4 blocks, one ROW_ALIGN_K chunk of a packed row
constexpr int kWgxRows = 64;     // weight rows n per stage: one 128-byte swizzle row of grad_y
static_assert(kWgxInputs == ROW_ALIGN_K, "a CTA's chunk of a packed row is one row-alignment unit");

template <int BM, int KIND, bool S32> struct WgxCfg {
  static constexpr bool TWO = KIND != 1;
  static constexpr int kGBytes = BM * kWgxRows * 2;                 // grad_y tile, 128B-swizzled rows
  static constexpr int kWStride = TWO ? 48 : 16;                    // bytes per weight row (32 / 16 used)
  static constexpr int kWBytes = kWgxRows * kWStride;
  static constexpr int kSBytes = S32 ? 4 : 2;                        // one s or u in shared memory
  static constexpr int kSuBytes = 2 * 4 * kWgxRows * kSBytes;        // [s | u][block][row]
  static constexpr int kRaw = kGBytes + kWBytes + kSuBytes;
  static constexpr int kStageBytes = (kRaw + 1023) / 1024 * 1024;    // swizzle atoms stay 1024-byte aligned
  // wgx2a (prepared in session 49, measured in session 50): BM = 64 tiles run two CTAs per SM (ncu: 118 registers
  // for ternary fp16, of the 128 that allows; a ring of about half the shared memory), so the unpacking of one CTA
  // hides behind the other's (16 warps per SM, not 8).  H100, 8192 x 28672 M = 16-64: 0.76-0.80x of one CTA's time
  // per tensor, 0.84-0.86x g64 (ncu at M = 64 per tensor: issue slots busy 34% -> 46%; bench/NOTES.md, wgx2a).
  static constexpr int kCtasPerSm = wg_gx_ctas_per_sm(BM);  // (wg_plan.h: the plan counts the same slots)
  static constexpr int kBudget = (kCtasPerSm == 2 ? 113 : 227) * 1024;
  static constexpr int kFit = (kBudget - 1024 - 8 * 12) / kStageBytes;
  static constexpr int kStages = kFit < 12 ? kFit : 12;
  static constexpr int kAhead = kStages - 2;
  static constexpr int kOutStride = kWgxInputs + 8;                  // epilogue tile row, in elements
  static constexpr int kBarOffset = kStages * kStageBytes;           // "full" mbarrier of slot i at + 8 i
  static constexpr int kBytes = kBarOffset + 8 * kStages + 1024;     // + slack to align the base to 1024
  static_assert(kStages >= 4, "ring too shallow");
  static_assert(kBytes <= kBudget, "more than a block may have");
  static_assert(BM * kOutStride * 2 <= kStages * kStageBytes, "epilogue tile fits in the ring");
  static_assert((kGBytes + kWBytes) % 16 == 0, "s / u area 16-byte aligned");
};

template <typename T,  // grad_y / grad_x dtype: __half or __nv_bfloat16
          int KIND,    // 1 binary, 2 ternary, 3 int2 (bitmm::Kind)
          bool S32,    // s and u in fp32 (folded in fp32, rounded once), else in grad_y's dtype (HFMA2)
          int BM>      // rows of grad_y per CTA: the wgmma's N (64, 128 or 256)
__global__ void __launch_bounds__(kWgThreads, WgxCfg<BM, KIND, S32>::kCtasPerSm)
    wg_grad_x_kernel(const GradXParams p, const __grid_constant__ CUtensorMap g_map) {
#if defined(BITMM_WGMMA_DEVICE)
  using C = WgxCfg<BM, KIND, S32>;
  constexpr bool TWO = KIND != 1;
  constexpr int NA = BM / 2;  // accumulators per thread (64 x BM over 128 threads)
  using ST = std::conditional_t<S32, float, T>;
  extern __shared__ uint8_t wgx_smem_raw[];
  uint8_t* const smem =
      wgx_smem_raw + ((1024 - (static_cast<uint32_t>(__cvta_generic_to_shared(wgx_smem_raw)) & 1023)) & 1023);
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const int blk = 2 * wg + (warp >> 1), hh = warp & 1;  // this warp's block of the CTA's 4 and half-word
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kWgxInputs, m0 = static_cast<int64_t>(blockIdx.y) * BM;
  // This CTA's stages (64 rows of W / columns of grad_y each): [kt0, kt0 + KT) of KT_all; a split of the reduction
  // (grid z, p.wg_splits: grids under a wave) takes its share and writes an fp32 partial tile (epilogue).
  const int KT_all = static_cast<int>((p.N + kWgxRows - 1) / kWgxRows);
  const int kt0 = static_cast<int>(static_cast<int64_t>(KT_all) * blockIdx.z / gridDim.z);
  const int KT = static_cast<int>(static_cast<int64_t>(KT_all) * (blockIdx.z + 1) / gridDim.z) - kt0;
  const bool s_f32 = S32, s_f16 = !S32 && std::is_same_v<T, __half>;
  const bool fold_f32 = p.s_dtype == DType::kFloat;  // == S32; a runtime test (see the unpacking)
  // One scale, no offset: exact sums, s in the epilogue.  A runtime flag: its tests end the unpacking's basic
  // block ahead of wgmma.fence (wg_linear.cuh: as one block ptxas sinks the unpacking between the wgmma's).
  const bool fold = !one_scale_no_offset(p);
  const float vscale = KIND == 3 ? 1.f : 0.5f;

  const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t bar0 = smem_base + C::kBarOffset;
  if (tid == 0) {
    for (int i = 0; i < C::kStages; ++i) mbar_init(bar0 + 8 * i, 1);
    mbar_init_fence();
  }
  __syncthreads();

  // The packed words: thread c < 128 copies piece c % (TWO ? 2 : 1) of row c / (TWO ? 2 : 1) of each stage
  // (binary: threads 0..63).  wsrc advances by a stage (64 rows) per issue.
  constexpr int kPieces = TWO ? 2 : 1;  // 16-byte pieces per row
  const int c_row = tid / kPieces, c_part = tid % kPieces;
  const bool copier = tid < kWgxRows * kPieces;
  const uint32_t* wsrc = p.w + (static_cast<int64_t>(kt0) * kWgxRows + (copier ? c_row : 0)) * p.wpr +
                        (k0 / BLOCK_K) * (TWO ? 2 : 1) + 4 * c_part;
  const int c_dst = c_row * C::kWStride + 16 * c_part;
  int w_rows_left = static_cast<int>(p.N - (static_cast<int64_t>(kt0) * kWgxRows + c_row));  // (wgx4: as s_rows_left)
  // s / u (fold): thread tid fetches block sb = tid / 64, row sr = tid % 64 of each stage; its group is fixed.
  const int sb = tid >> 6, sr = tid & 63;
  // wgx3: within a block's 64 rows, s / u sit in the order the A fragments read them: row r = 16 ks + 8 q + 2 t + h
  // (k-step ks, A column half q, lane t = tig, pair half h) at 16 t + 4 ks + 2 q + h, so that one lane's two row pairs
  // of a k-step are 4 consecutive elements (one LDS.64, fp32: LDS.128) instead of two LDS.32 / LDS.64.
  const int su_at = 16 * ((sr >> 1) & 3) + 4 * (sr >> 4) + 2 * ((sr >> 3) & 1) + (sr & 1);
  const int64_t ngroups = (p.K + p.group_size - 1) / p.group_size;
  const int64_t s_grp = imin64((k0 + BLOCK_K * sb) / p.group_size, ngroups - 1);
  // wgx4: this thread's s / u elements as pointers advanced one stage (64 rows n) per issue, and the rows left before
  // N as a 32-bit count (N < 2^31: the launcher), where each issue multiplied out n * s_sn + group * s_sg in 64 bits.
  constexpr int kSElt = S32 ? 4 : 2;
  const int64_t n_first = static_cast<int64_t>(kt0) * kWgxRows + sr;
  const char* s_src = static_cast<const char*>(p.scale) + (n_first * p.s_sn + s_grp * p.s_sg) * kSElt;
  const char* u_src = p.offset ? static_cast<const char*>(p.offset) + (n_first * p.u_sn + s_grp * p.u_sg) * kSElt
                               : nullptr;
  const bool has_u = p.offset != nullptr;
  const int64_t s_step = static_cast<int64_t>(kWgxRows) * p.s_sn * kSElt;
  const int64_t u_step = has_u ? static_cast<int64_t>(kWgxRows) * p.u_sn * kSElt : 0;  // (no offset: u_src stays null)
  int s_rows_left = static_cast<int>(p.N - n_first);  // row n of the next issue is real while this is > 0
  // the slot-relative byte offsets of this thread's s and u (su_at below), computed once
  int su_off = C::kGBytes + C::kWBytes + (sb * kWgxRows + su_at) * C::kSBytes;
  asm volatile("mov.b32 %0, %0;" : "+r"(su_off));  // (opaque: ptxas rebuilt it from SR_TID.X every stage)
  constexpr int kUOff = 4 * kWgxRows * C::kSBytes;
  uint32_t s_pend = 0, u_pend = 0;  // raw bits fetched by the last issue, stored by the next one
  int pend_slot = -1;
  // wgx3: the ring's slots by counters that advance one stage per call (issue and stage run in order), not kt % kStages
  // and kt / kStages (a magic-number multiply, a shift and an IMAD each, per use)
  int wr_slot = 0, rd_slot = 0;
  uint32_t rd_phase = 0;

  auto issue = [&](int kt) {  // stage kt into slot kt % kStages; always commits one cp.async group
    if (fold && pend_slot >= 0) {  // the previous issue's s / u (loaded a stage ago) into its slot
      uint8_t* const at = smem + pend_slot * C::kStageBytes + su_off;
      float s = raw_to_float<T, S32>(s_pend) * vscale, u = raw_to_float<T, S32>(u_pend);
      if constexpr (S32) {
        *reinterpret_cast<float*>(at) = s;
        *reinterpret_cast<float*>(at + kUOff) = u;
      } else {
        *reinterpret_cast<T*>(at) = from_float<T>(s);
        *reinterpret_cast<T*>(at + kUOff) = from_float<T>(u);
      }
      pend_slot = -1;
    }
    const int slot = wr_slot;
    wr_slot = wr_slot + 1 == C::kStages ? 0 : wr_slot + 1;
    if (kt < KT) {
      if (tid == 0) {
        mbar_expect_tx(bar0 + 8 * slot, C::kGBytes);
        tma_load_2d(smem_base + slot * C::kStageBytes, &g_map, (kt0 + kt) * kWgxRows, static_cast<int>(m0), bar0 + 8 * slot);
      }
      if (copier) {
        const bool real = w_rows_left > 0;  // row (kt0 + kt) * 64 + c_row < N
        cp_async_16(smem + slot * C::kStageBytes + C::kGBytes + c_dst, real ? wsrc : p.w, real ? 16 : 0);
        w_rows_left -= kWgxRows;
      }
      if (fold) {
        const bool real = s_rows_left > 0;  // rows past N: s = u = 0 (their zero codes unpack to nonzero values)
        s_pend = real ? load_raw<S32>(s_src, 0) : 0u;
        u_pend = real && has_u ? load_raw<S32>(u_src, 0) : 0u;
        pend_slot = slot;
        s_src += s_step;
        u_src += u_step;
        s_rows_left -= kWgxRows;
      }
    }
    wsrc += static_cast<int64_t>(kWgxRows) * p.wpr;
    cp_async_commit();
  };

  float acc[NA];
#pragma unroll
  for (int i = 0; i < NA; ++i) acc[i] = 0.f;
  uint32_t afrag[2][4][4];  // [buffer][k-step][register]: stage kt fills buffer kt % 2
  const uint32_t sel = hh ? 0x7632u : 0x5410u;  // PRMT: both rows' low (hh = 0) or high half-words
  const int sh_a = TWO ? 14 - (g & ~1) : 14 - g;  // pair g (row g); pair g + 8 (row g + 8): 8 less
  // wgx3: the E / O merge without a branch on g's parity, merge_even / merge_odd as one formula (lo >> par, hi << (1 -
  // par), the left shift as a multiply: the FMA pipe, where the unpacking's LOP3 / SHF / PRMT all run on the ALU pipe).
  // With the branch, nvcc predicated both merges: four issued instructions (two of them off) for three.
  const uint32_t par = g & 1, hmul = 2u >> par;
  // the row pairs' byte offset within a stage's weights for this lane (rows 2 tig, 2 tig + 1 of block blk), opaque so
  // that ptxas keeps it (and the PRMT selector) in registers instead of rebuilding both from SR_TID.X every other stage
  int w_lane = 2 * tig * C::kWStride + (TWO ? 8 : 4) * blk;
  uint32_t sel_r = sel;
  asm volatile("mov.b32 %0, %0;" : "+r"(w_lane));
  asm volatile("mov.b32 %0, %0;" : "+r"(sel_r));

#pragma unroll 1
  for (int j = 0; j < C::kAhead; ++j) issue(j);

  auto stage = [&](int kt, auto buf_tag) {
    constexpr int B = decltype(buf_tag)::value;
    const int slot = rd_slot;  // == kt % kStages; rd_phase == (kt / kStages) & 1
    cp_async_wait<C::kAhead - 1>();            // this thread's copies of stage kt landed
    mbar_wait(bar0 + 8 * slot, rd_phase);      // and the grad_y tile
    if (++rd_slot == C::kStages) rd_slot = 0, rd_phase ^= 1u;
    // Everyone's copies (and s / u stores) of stage kt are visible, and every wgmma of stage kt - 2 has
    // retired (each thread waited for it: wgmma_wait<1> below), so its slot may be refilled.
    __syncthreads();
    issue(kt + C::kAhead);
    const uint8_t* const st = smem + slot * C::kStageBytes;
    const uint8_t* const wt = st + C::kGBytes;
    const ST* const su = reinterpret_cast<const ST*>(wt + C::kWBytes);
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      uint32_t (&a)[4] = afrag[B][ks];
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        // rows r1 = 16 ks + 2 tig + 8 q and r1 + 1 (A columns 2t + 8q, 2t + 8q + 1): w_lane holds the 2 tig
        if constexpr (TWO) {
          const uint8_t* const wr = wt + w_lane + (16 * ks + 8 * q) * C::kWStride;  // row r1 at this warp's block
          const uint2 w1 = *reinterpret_cast<const uint2*>(wr);
          const uint2 w2 = *reinterpret_cast<const uint2*>(wr + C::kWStride);
          const uint32_t lo = __byte_perm(w1.x, w2.x, sel_r), hi = __byte_perm(w1.y, w2.y, sel_r);
          const uint32_t e = bit_select(lo >> par, hi * hmul, 0x55555555u);  // (g & 1) ? merge_odd : merge_even
          a[2 * q] = unpack_pair<KIND, T>(e, sh_a);          // D row g:     pair g
          a[2 * q + 1] = unpack_pair<KIND, T>(e, sh_a - 8);  // D row g + 8: pair g + 8
        } else {
          const uint8_t* const wr = wt + w_lane + (16 * ks + 8 * q) * C::kWStride;  // row r1 at this warp's block
          const uint32_t w1 = *reinterpret_cast<const uint32_t*>(wr);
          const uint32_t w2 = *reinterpret_cast<const uint32_t*>(wr + C::kWStride);
          const uint32_t lo = __byte_perm(w1, w2, sel_r);
          a[2 * q] = unpack_pair<KIND, T>(lo, sh_a);
          a[2 * q + 1] = unpack_pair<KIND, T>(lo, sh_a - 8);  // (g = 7: -1, unpack_pair's shift right by one)
        }
      }
      // Fold in fp32 (runtime tests, see `fold`; == S32: the other type's branch compiles to nothing): rows
      // (r1, r1 + 1) of q = 0 in .x / .y, of q = 1 in .z / .w (su_at above)
      if (fold && fold_f32) {
        if constexpr (S32) {
          const float4 s = *reinterpret_cast<const float4*>(su + blk * kWgxRows + 16 * tig + 4 * ks);
          const float4 u = *reinterpret_cast<const float4*>(su + (4 + blk) * kWgxRows + 16 * tig + 4 * ks);
          a[0] = fma_pair2_f32<T>(a[0], s.x, s.y, u.x, u.y);
          a[1] = fma_pair2_f32<T>(a[1], s.x, s.y, u.x, u.y);
          a[2] = fma_pair2_f32<T>(a[2], s.z, s.w, u.z, u.w);
          a[3] = fma_pair2_f32<T>(a[3], s.z, s.w, u.z, u.w);
        }
      }
    }
    // Fold in grad_y's dtype (runtime tests, see `fold`): s and u of rows (r1, r1 + 1) at this warp's block, as pairs,
    // after the whole stage's unpacking (wgx3: one branch a stage, not one per k-step, so ptxas issues the k-steps' loads
    // together; the fp32 fold stays per k-step, above: hoisted, its loads cost the 128-register instances a spill).
    if (fold && !fold_f32) {
      if constexpr (!S32) {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {  // the pair of q = 0 in .x, of q = 1 in .y
          uint32_t (&a)[4] = afrag[B][ks];
          const uint2 s2 = *reinterpret_cast<const uint2*>(su + blk * kWgxRows + 16 * tig + 4 * ks);
          const uint2 u2 = *reinterpret_cast<const uint2*>(su + (4 + blk) * kWgxRows + 16 * tig + 4 * ks);
          a[0] = fma_pair<T>(a[0], s2.x, u2.x);
          a[1] = fma_pair<T>(a[1], s2.x, u2.x);
          a[2] = fma_pair<T>(a[2], s2.y, u2.y);
          a[3] = fma_pair<T>(a[3], s2.y, u2.y);
        }
      }
    }
    // the four wgmma's (k-steps of 16 rows n along grad_y's swizzled rows); on return the previous stage's have
    // retired: its A buffer and slot are free
    wg_stage_mma<BM, T>(acc, afrag[B], st);
  };
  wg_run_stages(KT, stage, acc);
  __syncthreads();  // every stage consumed: the ring is free for the output tile

  // Epilogue: (plain) s * vscale, to grad_y's dtype, into shared memory as [m][k], then row-contiguous stores.
  const float se = fold ? 1.f : load_param(p.scale, 0, s_f32, s_f16) * vscale;
  if (gridDim.z > 1) {  // split: this split's fp32 partial tile into the workspace (wg_splitk_reduce sums them in order)
    float* const ws = p.wg_ws + static_cast<int64_t>(blockIdx.z) * p.M * p.K;
#pragma unroll
    for (int i = 0; i < BM / 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t m = m0 + 8 * i + 2 * tig + (e & 1), k = k0 + BLOCK_K * blk + 2 * (g + 8 * (e >> 1)) + hh;
        if (m < p.M && k < p.K) ws[m * p.K + k] = acc[4 * i + e] * se;
      }
    return;
  }
  T* const out = reinterpret_cast<T*>(smem);
#pragma unroll
  for (int i = 0; i < BM / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = g + 8 * (e >> 1), ml = 8 * i + 2 * tig + (e & 1);
      out[ml * C::kOutStride + BLOCK_K * blk + 2 * r + hh] = from_float<T>(acc[4 * i + e] * se);
    }
  __syncthreads();
  const int rows = static_cast<int>(imin64(BM, p.M - m0)), cols = static_cast<int>(imin64(kWgxInputs, p.K - k0));
  T* const y = static_cast<T*>(p.y);
  if (p.K % 8 == 0) {  // 16-byte stores: grad_x's rows are 16-byte aligned (the launcher checks y)
    for (int c = tid; c < rows * (kWgxInputs / 8); c += kWgThreads) {
      const int ml = c / (kWgxInputs / 8), q = c % (kWgxInputs / 8);
      if (8 * q < cols)
        *reinterpret_cast<uint4*>(y + (m0 + ml) * p.K + k0 + 8 * q) =
            *reinterpret_cast<const uint4*>(out + ml * C::kOutStride + 8 * q);
    }
  } else {
    for (int c = tid; c < rows * kWgxInputs; c += kWgThreads) {
      const int ml = c / kWgxInputs, kl = c % kWgxInputs;
      if (kl < cols) y[(m0 + ml) * p.K + k0 + kl] = out[ml * C::kOutStride + kl];
    }
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // (as wg_linear_kernel: machine code without wgmma must never run)
#endif  // BITMM_WGMMA_DEVICE
}

template <typename T, int KIND, bool S32, int BM>
cudaError_t launch_wgx_cfg(const GradXParams& p, int splits, int dev, cudaStream_t stream) {
  using C = WgxCfg<BM, KIND, S32>;
  const int64_t m_tiles = (p.M + BM - 1) / BM, k_tiles = padded_k(p.K) / kWgxInputs;
  if (m_tiles > 65535 || k_tiles > 0x7fffffff || p.M > 0x7fffffff || p.N > 0x7fffffff) return cudaErrorNotSupported;
  // grad_y (M, N) row-major: boxes of 64 rows n x BM gradient rows (N % 8 == 0: a 16-byte row pitch).
  static_assert(kWgxRows == 64, "a stage's grad_y box is one 128-byte swizzle row");
  CUtensorMap g_map;
  if (!wg_tensor_map(&g_map, p.x, p.M, p.N, BM, std::is_same_v<T, __half>)) return cudaErrorNotSupported;
  auto kernel = wg_grad_x_kernel<T, KIND, S32, BM>;
  static std::once_flag raised[kMaxTcDevices];  // one per instantiation and device
  cudaError_t err = cudaSuccess;
  std::call_once(raised[dev], [&] {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kBytes);
    // two CTAs' rings need the largest shared-memory carveout (as wg_linear.cuh's pair pipeline)
    if (err == cudaSuccess && C::kCtasPerSm == 2)
      err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  });
  if (err != cudaSuccess) return err;
  // grid.x over 128-input tiles (fast: CTAs that share a grad_y tile run together), grid.y over BM-row tiles,
  // grid.z over splits of the reduction.
  kernel<<<dim3(static_cast<unsigned>(k_tiles), static_cast<unsigned>(m_tiles), static_cast<unsigned>(splits)),
           kWgThreads, C::kBytes, stream>>>(p, g_map);
  if (splits > 1) return wg_launch_splitk_reduce<T>(p.wg_ws, splits, p.M, p.K, nullptr, false, p.y, stream);
  return cudaGetLastError();
}

// The glue's plan (wg_plan.h wg_gx_plan: BM and the reduction's splits, the workspace allocated for them), else
// BM by M without splits.
template <typename T, int KIND>
cudaError_t launch_wg_grad_x_for(const GradXParams& p, cudaStream_t stream) {
  // (grad_x's alignment matters only for the 16-byte stores, K % 8 == 0; then every row chunk of the glue's
  // launches keeps it)
  if (p.group_size % BLOCK_K != 0 || p.N % 8 != 0 || reinterpret_cast<uintptr_t>(p.x) % 16 != 0 ||
      (p.K % 8 == 0 && reinterpret_cast<uintptr_t>(p.y) % 16 != 0))
    return cudaErrorNotSupported;
  if (p.M == 0) return cudaSuccess;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev >= kMaxTcDevices) return cudaErrorInvalidDevice;
  const bool s32 = p.s_dtype == DType::kFloat;
  if (!s32 && p.s_dtype != p.x_dtype) return cudaErrorNotSupported;
  const int bm = p.wg_bm != 0 ? p.wg_bm : wg_gx_bm(p.M);
  const int splits = p.wg_splits > 1 && p.wg_ws != nullptr ? p.wg_splits : 1;
  return BITMM_BOOL_SWITCH(s32, S32, [&] {
    switch (bm) {
      case 64: return launch_wgx_cfg<T, KIND, S32, 64>(p, splits, dev, stream);
      case 128: return launch_wgx_cfg<T, KIND, S32, 128>(p, splits, dev, stream);
      default: return launch_wgx_cfg<T, KIND, S32, 256>(p, splits, dev, stream);
    }
  });
}

template <typename T>
cudaError_t launch_wg_grad_x_kinds(const GradXParams& p, cudaStream_t stream) {
  switch (p.kind) {
    case 1: return launch_wg_grad_x_for<T, 1>(p, stream);
    case 2: return launch_wg_grad_x_for<T, 2>(p, stream);
    default: return launch_wg_grad_x_for<T, 3>(p, stream);
  }
}

}  // namespace cuda
}  // namespace bitmm
