// Hopper (sm_90a) warpgroup tensor-core kernel for bitmm linear ops at large M
// (prefill, training): y = x @ (v * s + u)^T + bias with the packed weights
// unpacked in registers into the A operand of wgmma, x streamed into shared
// memory as the B operand.  No dequantized weight is ever written to memory.
//
// Roles in one wgmma (m64nNk16, f32 accumulators), per warpgroup:
//   A = 64 weight rows (outputs n) x 16 inputs k, from registers: each warp
//       owns 16 rows, in mma.m16n8k16's A fragment layout (lane g = lane / 4,
//       t = lane % 4: rows g and g + 8, inputs 2t, 2t + 1 and 2t + 8, 2t + 9);
//   B = 16 inputs x N rows of x (N = BM), K-major in shared memory, 128-byte
//       swizzled: the tensor cores read it through a matrix descriptor;
//   D = y^T tile (64 outputs x BM rows of x), fp32 in registers.
// The A registers come straight from the packed words: the 16 inputs of a
// k-step are half a 32-weight block, and pair i of a block (weights 2i, 2i + 1:
// bits i and 16 + i, bitmm_format.h's even/odd interleave) is exactly the
// (2t, 2t + 1) pair an A register holds, with i = 8 * (k-step % 2) + t (and + 4
// for the second register pair).  So x needs no permutation: it is copied as is.
// Values unpacked: 2b (binary), 2t (ternary), q - 1 (int2), as in tc_linear.cuh
// (shift + LOP3 per two weights, int2 one HSUB2 more); the factor 2 goes into
// the scale.  Scaling: group-wise, or with an offset u, folded into each
// unpacked pair (v * s + u, one HFMA2 per two weights, in fp32 for fp32 scales:
// how F.linear on the dequantized weight rounds it too).  Known limit (as in
// tc_linear.cuh): with fp16 scales below 2^-13 the halved s / 2 is an fp16
// subnormal and loses its last bit (s = 3 * 2^-24 acts as 4 * 2^-24); fp32
// scales avoid it.  Per tensor / channel without an offset (wg16): no fold, s
// scales the fp32 sums once in the epilogue.  The unpacking must stay in a basic
// block of its own ahead of wgmma.fence (a runtime branch on the fold ends it):
// as one block with the wgmma's, ptxas sinks it between them and serializes
// them (warning C7513; measured in the SASS: one HGMMA at a time, each behind a
// wait).
//
// CTA: two warpgroups (256 threads) on 128 weight rows (64 each) and BM rows
// of x, which both read from the same shared-memory x tile.  K runs in stages
// of 64 inputs (one 128-byte swizzle row of x per activation row) through a
// ring of WgCfg::kStages shared-memory slots, kStages - 2 stages ahead: x by the
// TMA unit (thread 0; the slot's mbarrier counts its bytes), the packed weights
// by cp.async (threads 0-127).  The slot being refilled was read by the wgmma's
// of two stages back, which every thread has waited for (wgmma.wait_group 1)
// before the barrier that precedes the refill (the CTA-wide pipeline, WS = false).
// Warp-specialized (WS = true; BITMM_WG_WS): a third warpgroup's first warp
// is the producer, filling all kStages slots ahead: it waits for a slot's
// "empty" mbarrier (8 arrivals: each consumer warp, once the wgmma's that read
// the slot retired), then lane 0 starts x's TMA copy and every lane cp.async's
// 4 weight rows, each lane's copies arriving on the slot's "full" mbarrier;
// group-wise, the warpgroup's other three warps bring each stage's s / u into
// an s / u ring slot and arrive on the same "full" barrier (count 65, else 33);
// the consumers wait on "full" only, never on each other.  Epilogue: the tile goes
// through shared memory to 16-byte row-contiguous stores.  K splits (grid z,
// wg_plan.h): CTA z runs stages [z * KT / splits, (z + 1) * KT / splits) and
// writes its fp32 partial tile to the workspace; wg_splitk_reduce sums the
// splits in order, adds the bias and rounds once (bitwise reproducible).
// Requirements (else the launcher returns cudaErrorNotSupported and the caller
// uses another kernel): fp16 / bf16 x with K % 8 == 0 and a 16-byte aligned x
// (every 16-byte piece of x is all inside or all past K), groups a multiple of
// 32, no fused LoRA, a device of compute capability 9.0 and a build for sm_90a.
#pragma once
#include <cuda.h>  // CUtensorMap (the TMA descriptor of x)

#include <string>

#include "tc_linear.cuh"  // unpack_pair, fma_pair, splat, cp.async helpers, load_param
#include "wg_plan.h"      // CTA tile and K splits

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define BITMM_WGMMA_DEVICE 1
#endif
#include "wgmma_ops.cuh"

namespace bitmm {
namespace cuda {

constexpr int kWgThreads = 256;  // two warpgroups (the consumers; all threads without a producer warp)
// Warp-specialized: + a producer warpgroup (warps 8-11; warp 8 copies x and the weights, 9-11 the
// group-wise s / u, or exit at once without groups).  A whole
// warpgroup, not one warp: registers are split per SM sub-partition (4 per SM, 16384 each) and 9
// warps put 3 on one of them, which capped every thread at 168 registers (spills at BM = 256);
// with 12 warps setmaxnreg moves the producers' share to the consumers (kWgRegsConsumer).
constexpr int kWgThreadsWS = kWgThreads + 128;
// Per sub-partition: 40 + 2 x 232 = 504 <= 512 (16384 / 32).  The kernel starts with the
// launch-bounds share, 65536 / 384 -> 168 per thread (3 x 168 = 504 too); setmaxnreg.inc would wait
// forever if the registers to move were not free, so never build this file with -maxrregcount.
constexpr int kWgRegsProducer = 40, kWgRegsConsumer = 232;
static_assert(kWgRegsProducer + 2 * kWgRegsConsumer <= 512 && 3 * 168 >= kWgRegsProducer + 2 * kWgRegsConsumer,
              "setmaxnreg budget: what the consumers gain, the producer gives up");
constexpr int kWgK = 64;         // inputs per stage: 128 bytes of x per row, one swizzle row

// Shared memory of one CTA tile: BM rows of x by 128 weight rows, and how deep the ring is.
// SU_BYTES: group-wise s / u of one stage (the warp-specialized pipeline's scale warps copy them
// there, wg_su_bytes), in a ring of their own after the x / weight slots; 0 without.  PAIR: the
// ring sized so that two CTAs share an SM (113 KiB each; BITMM_WG_PAIR, 64-row tiles only).
template <int BM, int SU_BYTES = 0, bool PAIR = false> struct WgCfg {
  static constexpr int kRows = 128;                          // weight rows per CTA (64 per warpgroup)
  static constexpr int kXBytes = BM * kWgK * 2;              // x tile, 128B-swizzled rows
  static constexpr int kWBytes = kRows * 16;                 // packed weights (binary uses half)
  static constexpr int kStageBytes = kXBytes + kWBytes;      // a multiple of 1024: swizzle atoms stay aligned
  static constexpr int kSuBytes = SU_BYTES;                  // s / u of a stage (its own ring)
  // Ring slots: as many as fit in sm_90's 227 KiB per block (less the base's alignment slack
  // and 12 slots' barriers), at most 12.  A stage is 256 (BM = 64) to 1024 (BM = 256)
  // tensor-core cycles, and the weight stream comes from DRAM (~1 us away under load): small
  // tiles need many stages in flight to keep enough bytes on the way.  (Without s / u: 12, 12
  // and 6 slots for BM = 64, 128, 256, as the 220 KiB bound before session 41 gave.)
  static constexpr int kBudget = PAIR ? 113 * 1024 : 227 * 1024;  // per CTA (the SM's 228 KiB less 1 KiB per CTA)
  static constexpr int kFit = (kBudget - 1024 - 16 * 12) / (kStageBytes + kSuBytes);
  static constexpr int kStages = kFit < 12 ? kFit : 12;
  static constexpr int kAhead = kStages - 2;                 // stages in flight ahead of the one computed
  static constexpr int kOutStride = kRows + 8;               // epilogue tile row, in elements (bank spread)
  static constexpr int kSuOffset = kStages * kStageBytes;    // s / u ring: slot i at kSuOffset + kSuBytes * i
  // Two 8-byte mbarriers per slot: "full" (the slot's copies landed) at kBarOffset + 8 * slot,
  // "empty" (the consumers are done with it; warp-specialized variant only) 8 * kStages further.
  static constexpr int kBarOffset = kSuOffset + kStages * kSuBytes;
  static constexpr int kBytes = kBarOffset + 16 * kStages + 1024;  // + slack to align the base to 1024
  static_assert(kStageBytes % 1024 == 0, "swizzle atoms must stay 1024-byte aligned");
  static_assert(kSuBytes % 16 == 0, "barriers stay 8-byte aligned");
  static_assert(kStages >= 4, "ring too shallow");
  static_assert(kBytes <= kBudget, "more than a block may have");
  static_assert(BM * kOutStride * 2 <= kStages * kStageBytes, "epilogue tile fits in the ring");
  static_assert(kRows <= kWgThreads, "one weight copy per thread and stage");
};
// Bytes of one stage's group-wise s / u in shared memory: NB groups (GM 1: one per stage; GM 2:
// one per 32-input block) x 128 rows x (s, u), each raw in its dtype; laid out [s | u][group b][row].
// Only the warp-specialized pipeline keeps them there (its scale warps fetch them); elsewhere 0.
constexpr int wg_su_bytes(int gm, bool s32, bool ws) { return ws && gm != 0 ? (gm == 1 ? 1 : 2) * 128 * 2 * (s32 ? 4 : 2) : 0; }
template <int BM, int GM, bool S32, bool WS, bool PAIR = false> using WgCfgFor = WgCfg<BM, wg_su_bytes(GM, S32, WS), PAIR>;

__device__ __forceinline__ void cp_async_8(void* smem, const void* gmem, int src_bytes) {
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(sa), "l"(gmem), "r"(src_bytes));
}
// One stage's piece of packed weight row `row` (16 bytes, binary 8) from `src` (the row's words
// at the CTA's first stage) into the slot's weight area `ws`: the copy of both pipelines.
template <bool TWO>
__device__ __forceinline__ void copy_weight_piece(uint8_t* ws, int row, const uint32_t* src, int kt) {
  if constexpr (TWO) cp_async_16(ws + row * 16, src + kt * 4, 16);
  else cp_async_8(ws + row * 8, src + kt * 2, 8);
}
// mbarrier and TMA (cp.async.bulk.tensor) helpers; shared addresses are 32-bit.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void mbar_init_fence() {  // make the initialized barriers visible to the TMA unit
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(BITMM_WGMMA_DEVICE)
  uint32_t done = 0;
  while (!done)
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
#endif
}
template <int N> __device__ __forceinline__ void setmaxnreg_inc() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N> __device__ __forceinline__ void setmaxnreg_dec() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
// An arrival on `bar` once every cp.async this thread issued before has landed (.noinc: the
// arrival is one of the barrier's initial count, not an extra one).
__device__ __forceinline__ void cp_async_mbar_arrive(uint32_t bar) {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
#endif
}
// Named barrier 1 over the two consumer warpgroups (the producer warp never joins it).
__device__ __forceinline__ void consumer_sync() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("bar.sync 1, %0;\n" ::"n"(kWgThreads) : "memory");
#endif
}
// A box of the 2-D tensor map (inner coordinate c0, outer c1) into shared memory at dst,
// completing `bar`'s transaction; out-of-bounds elements land as zeros.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* tmap, int c0, int c1, uint32_t bar) {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
               ::"r"(dst), "l"(reinterpret_cast<uint64_t>(tmap)), "r"(c0), "r"(c1), "r"(bar) : "memory");
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
#if defined(BITMM_WGMMA_DEVICE)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Keeps the compiler from moving accumulator reads / writes across the asynchronous wgmma's.
template <int NA> __device__ __forceinline__ void fence_acc(float (&acc)[NA]) {
#pragma unroll
  for (int i = 0; i < NA; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

// Descriptor of a K-major, 128-byte-swizzled B tile at shared address `addr` (1024-aligned):
// start >> 4 (bits 0-13), leading byte offset 1 (unused for swizzled K-major), stride byte
// offset 1024 >> 4 (8-row atoms are 1024 bytes apart, bits 32-45), swizzle mode 1 = 128B (62-63).
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

// Pair i (0..15) of a block as two exact values: `e` is the block's E / O word
// (two-plane kinds: E for even i, O for odd i, tc_linear.cuh) or its plane word (binary).
template <int KIND, typename T> __device__ __forceinline__ uint32_t wg_unpack(uint32_t e, int i) {
  if constexpr (KIND == 1) {  // 2b: bits i, 16 + i rotated onto 14, 30 (i = 15 rotates right by one)
    return __funnelshift_l(e, e, (14 - i) & 31) & 0x40004000u;
  } else {
    return unpack_pair<KIND, T>(e, 14 - (i & ~1));
  }
}

// A group-wise s or u element as raw bits (fp32, or fp16 / bf16 in the low half): loaded ahead
// (the scale warps, or the CTA-barrier pipeline's consumers a stage ahead), converted when used.
template <bool S32> __device__ __forceinline__ uint32_t load_raw(const void* p, int64_t i) {
  if constexpr (S32) return __ldg(static_cast<const uint32_t*>(p) + i);
  else return __ldg(static_cast<const unsigned short*>(p) + i);
}
template <typename T, bool S32> __device__ __forceinline__ float raw_to_float(uint32_t r) {
  if constexpr (S32) return __uint_as_float(r);
  else if constexpr (std::is_same_v<T, __half>) return __half2float(__ushort_as_half(static_cast<unsigned short>(r)));
  else return __uint_as_float(r << 16);  // bf16: the high half of an fp32
}

// One stage's four wgmma's (k-steps of 16 along the 128-byte swizzled rows of the B tile at `tile`, +32 bytes each)
// on the A registers `a`, committed as one group; returns once the group before it has retired (wait_group 1).  All A
// registers and descriptors are defined before the fence: an unpack or address add sunk between the wgmma's makes
// ptxas serialize them (its warning C7513).  (Shared by wg_linear_kernel and wg_grad_x.cuh.)
template <int BM, typename T, int NA>
__device__ __forceinline__ void wg_stage_mma(float (&acc)[NA], uint32_t (&a)[4][4], const uint8_t* tile) {
  uint64_t desc[4];
  // wgx3: one descriptor per stage, the k-steps' 32-byte offsets added to its address field (16-byte units: + 2 per
  // k-step; the tile is 1024-byte aligned, so the field never carries), not wg_desc's mask / shift / or per k-step
  const uint64_t d0 = wg_desc(static_cast<uint32_t>(__cvta_generic_to_shared(tile)));
  const uint32_t d0_lo = static_cast<uint32_t>(d0), d0_hi = static_cast<uint32_t>(d0 >> 32);
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
    desc[ks] = (uint64_t{d0_hi} << 32) | (d0_lo + 2 * ks);  // (32-bit adds: no carry to propagate)
    asm volatile("" : "+l"(desc[ks])::"memory");
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[ks][e])::"memory");
  }
  fence_acc(acc);
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) WgmmaRS<BM, T>::mma(acc, a[ks], desc[ks]);
  wgmma_commit();
  wgmma_wait<1>();
}

// The K loop of both wgmma kernels: stage(kt, tag) for kt = 0 .. KT - 1, the tag (std::integral_constant 0 / 1)
// naming the A double buffer as a compile-time index; then drained: every wgmma retired, every cp.async landed.
template <int NA, typename Stage>
__device__ __forceinline__ void wg_run_stages(int KT, Stage& stage, float (&acc)[NA]) {
  for (int kt = 0; kt < KT; kt += 2) {
    stage(kt, std::integral_constant<int, 0>{});
    if (kt + 1 < KT) stage(kt + 1, std::integral_constant<int, 1>{});
  }
  wgmma_wait<0>();
  fence_acc(acc);
  cp_async_wait<0>();
}

template <typename T,   // activation / output dtype: __half or __nv_bfloat16
          int KIND,     // 1 binary, 2 ternary, 3 int2 (bitmm::Kind)
          int GM,       // scale mode: 0 per tensor / channel (loaded once); group-wise (WS: fetched
                        // into the slot's s / u ring by the scale warps; else prefetched a stage ahead
                        // into registers): 1 groups of a multiple of 64 (one per stage), 2 other multiples of 32
          bool S32,     // s, u and bias in fp32 (folded in fp32, rounded once), else in x's dtype (HFMA2)
          int BM,       // rows of x per CTA: the wgmma's N (64, 128 or 256)
          bool WS,      // warp-specialized: a producer warp (warp 8) fills the ring, the two consumer
                        // warpgroups wait on per-slot "full" barriers and hand slots back through
                        // "empty" ones (no CTA-wide barrier per stage); else every thread does both
          bool PAIR = false>  // two CTAs per SM (BITMM_WG_PAIR; CTA-barrier pipeline, 64-row tiles): a
                              // ring of 11 slots in 113 KiB, at most 128 registers a thread
__global__ void __launch_bounds__(WS ? kWgThreadsWS : kWgThreads, PAIR ? 2 : 1)
    wg_linear_kernel(const LinearParams p, const __grid_constant__ CUtensorMap x_map) {
  static_assert(!PAIR || (!WS && BM == 64), "two CTAs per SM: the CTA-barrier pipeline's 64-row tiles only");
#if defined(BITMM_WGMMA_DEVICE)
  using S = WgCfgFor<BM, GM, S32, WS, PAIR>;
  constexpr bool TWO = KIND != 1;
  constexpr int NA = BM / 2;                 // accumulators per thread (64 x BM over 128 threads)
  constexpr int R = 2;                       // weight rows per thread: g and g + 8 of its warp's 16
  extern __shared__ uint8_t wg_smem_raw[];
  uint8_t* const smem = wg_smem_raw + ((1024 - (static_cast<uint32_t>(__cvta_generic_to_shared(wg_smem_raw)) & 1023)) & 1023);
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * S::kRows, m0 = static_cast<int64_t>(blockIdx.y) * BM;
  // This CTA's stages: [kt0, kt0 + KT) of the row's KT_all (all of them without K splits).
  const int KT_all = static_cast<int>((p.K + kWgK - 1) / kWgK);
  const int kt0 = static_cast<int>(static_cast<int64_t>(KT_all) * blockIdx.z / gridDim.z);
  const int KT = static_cast<int>(static_cast<int64_t>(KT_all) * (blockIdx.z + 1) / gridDim.z) - kt0;
  const bool s_f32 = S32, s_f16 = !S32 && std::is_same_v<T, __half>;  // for load_param
  const bool fold_f32 = p.s_dtype == DType::kFloat;                    // == S32 (see the unpacking)
  // wg16: per tensor / channel without an offset, the unpacked values stay as they are (exact) and s
  // scales the fp32 accumulators once, in the epilogue; only group-wise scales or an offset fold into
  // every pair.  (The fold was ~5 instructions per two weights with fp32 scales: fma_pair2_f32's two
  // widenings, two FFMAs and a pack, the larger part of a consumer's ~190 instructions a stage.)
  const bool fold = GM != 0 || p.offset != nullptr;
  // Values in the mma are 2b / 2t (binary, ternary) or q - 1 (int2).
  const float vscale = KIND == 3 ? 1.f : 0.5f;

  // x goes through the TMA unit (x_map: a 64-input x BM-row box, 128-byte swizzled as the wgmma
  // descriptor reads it, zeros past M and K), issued by thread 0, completing the slot's mbarrier:
  // the copy is in the async proxy, where the wgmma's read, so no proxy fence per stage.  The
  // packed weights (read by the threads, generic proxy) come by cp.async, one 16-byte (binary:
  // 8-byte) piece per row and stage; rows past N repeat row N - 1 (valid memory; never stored).
  const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t bar0 = smem_base + S::kBarOffset;  // "full" barrier of slot i at bar0 + 8 * i
  const uint32_t ebar0 = bar0 + 8 * S::kStages;      // "empty" barriers (WS)
  if (tid == 0) {
    for (int i = 0; i < S::kStages; ++i) {
      // full: the TMA issuer's expect_tx arrival (+ WS: the producer lanes' 32 cp.async arrivals,
      // and group-wise the 32 lanes of the scale warp that fetched the stage's s / u)
      mbar_init(bar0 + 8 * i, WS ? 1 + 32 + (GM != 0 ? 32 : 0) : 1);
      if (WS) mbar_init(ebar0 + 8 * i, kWgThreads / 32);  // one arrival per consumer warp
    }
    mbar_init_fence();
  }
  __syncthreads();
  if constexpr (WS) {
    if (tid >= kWgThreads) {
      setmaxnreg_dec<kWgRegsProducer>();
      if (tid >= kWgThreads + 32) {
        // Warps 9-11, group-wise only: the scale warps.  Warp 9 + j fetches the s / u of stages
        // kt = j mod 3 into the slot's s / u ring (plain loads and stores: a 2-byte element is
        // below cp.async's 4), then its 32 lanes arrive on the slot's full barrier (release: the
        // consumers' wait acquires the stores).  Three warps, so each has three stages' time for
        // its loads' latency; the consumers then read s / u from shared memory, where their own
        // global loads a stage ahead had stalled them (session 40's ncu: long-scoreboard stalls
        // 1.02 per issue against 0.36 per tensor).
        if constexpr (GM != 0) {
          constexpr int NB = GM == 1 ? 1 : 2, UNIT = GM == 1 ? kWgK : BLOCK_K;  // groups per stage, inputs per unit
          using Raw = std::conditional_t<S32, uint32_t, unsigned short>;
          const int upg = static_cast<int>(p.group_size / UNIT);  // units per group
          const int last_group = static_cast<int>((p.K + p.group_size - 1) / p.group_size) - 1;
          const int64_t s_row = imin64(n0 + lane, p.N - 1);  // rows lane + 32 r (row N - 1 past N)
          for (int kt = (tid - kWgThreads) / 32 - 1; kt < KT; kt += 3) {
            const int slot = kt % S::kStages;
            Raw* const su = reinterpret_cast<Raw*>(smem + S::kSuOffset + slot * S::kSuBytes);
            // One group at a time (GM 2: two), its 8 loads per lane in flight together: 16 values
            // at once spilled within the producers' 40 registers.
#pragma unroll 1
            for (int b = 0; b < NB; ++b) {
              const int unit = (kt0 + kt) * NB + b;
              const int64_t gi = imin64(unit / upg, last_group);
              Raw sv[S::kRows / 32], uv[S::kRows / 32];
#pragma unroll
              for (int r = 0; r < S::kRows / 32; ++r) {
                const int64_t n = imin64(s_row + 32 * r, p.N - 1);
                sv[r] = static_cast<Raw>(load_raw<S32>(p.scale, n * p.s_sn + gi * p.s_sg));
                uv[r] = p.offset ? static_cast<Raw>(load_raw<S32>(p.offset, n * p.u_sn + gi * p.u_sg)) : Raw{0};
              }
              if (b == 0 && kt >= S::kStages) mbar_wait(ebar0 + 8 * slot, (kt / S::kStages - 1) & 1);
#pragma unroll
              for (int r = 0; r < S::kRows / 32; ++r) {
                su[b * S::kRows + lane + 32 * r] = sv[r];
                su[(NB + b) * S::kRows + lane + 32 * r] = uv[r];
              }
            }
            mbar_arrive(bar0 + 8 * slot);
          }
        }
        return;
      }
      // The producer warp: stage kt into slot kt % kStages once the consumers released the slot's
      // previous stage (kt - kStages): x by the TMA unit (lane 0), the packed weights by cp.async
      // (lane copies rows lane + 32 r), each lane's copies arriving on the slot's full barrier.
      const uint32_t* src[S::kRows / 32];
#pragma unroll
      for (int r = 0; r < S::kRows / 32; ++r)
        src[r] = p.w + imin64(n0 + lane + 32 * r, p.N - 1) * p.wpr + kt0 * (TWO ? 4 : 2);
      for (int kt = 0; kt < KT; ++kt) {
        const int slot = kt % S::kStages;
        if (kt >= S::kStages) mbar_wait(ebar0 + 8 * slot, (kt / S::kStages - 1) & 1);
        if (lane == 0) {
          mbar_expect_tx(bar0 + 8 * slot, S::kXBytes);
          tma_load_2d(smem_base + slot * S::kStageBytes, &x_map, (kt0 + kt) * kWgK, static_cast<int>(m0), bar0 + 8 * slot);
        }
        uint8_t* const ws = smem + slot * S::kStageBytes + S::kXBytes;
#pragma unroll
        for (int r = 0; r < S::kRows / 32; ++r) copy_weight_piece<TWO>(ws, lane + 32 * r, src[r], kt);
        cp_async_mbar_arrive(bar0 + 8 * slot);
      }
      asm volatile("cp.async.wait_all;\n" ::: "memory");  // its copies land before the thread exits
      return;              // the consumers synchronize among themselves from here on (consumer_sync)
    }
    setmaxnreg_inc<kWgRegsConsumer>();
  }
  const uint32_t* const wsrc = p.w + imin64(n0 + (tid < S::kRows ? tid : 0), p.N - 1) * p.wpr + kt0 * (TWO ? 4 : 2);

  auto issue = [&](int kt) {  // stage kt into slot kt % kStages; always commits one cp.async group
    if (kt < KT) {
      const int slot = kt % S::kStages;
      if (tid == 0) {
        mbar_expect_tx(bar0 + 8 * slot, S::kXBytes);
        tma_load_2d(smem_base + slot * S::kStageBytes, &x_map, (kt0 + kt) * kWgK, static_cast<int>(m0), bar0 + 8 * slot);
      }
      uint8_t* const ws = smem + slot * S::kStageBytes + S::kXBytes;
      if (tid < S::kRows) copy_weight_piece<TWO>(ws, tid, wsrc, kt);
    }
    cp_async_commit();
  };

  // This thread's weight rows (local to the CTA) and their global indices.
  int r_loc[R];
  int64_t n_row[R];
#pragma unroll
  for (int h = 0; h < R; ++h) {
    r_loc[h] = 64 * wg + 16 * warp + g + 8 * h;
    n_row[h] = imin64(n0 + r_loc[h], p.N - 1);
  }

  // s and u of this thread's rows for the two 32-input blocks of a stage, folded into the
  // unpacked values: v * s + u (s halved for binary / ternary, whose values are 2b / 2t).
  uint32_t s2[R][2], u2[R][2];  // [row][block], in x's dtype
  float sf[R][2], uf[R][2];     // fp32 copies (fp32 scales fold in fp32)
  auto set_scales = [&](int h, int b, float s, float u) {
    sf[h][b] = s * vscale;
    uf[h][b] = u;
    s2[h][b] = splat<T>(sf[h][b]);
    u2[h][b] = splat<T>(uf[h][b]);
  };
  // Group-wise, CTA-barrier pipeline only (WS: the scale warps): raw s / u of the next stage's two
  // blocks (GM 1: one group for both), and the group of the next block (GM 2) or stage (GM 1) to
  // fetch; past K the last group repeats.
  constexpr int NB = GM == 1 ? 1 : 2;  // distinct groups per stage
  uint32_t s_raw[R][NB], u_raw[R][NB];
  const int units_per_group = static_cast<int>(p.group_size / (GM == 1 ? kWgK : BLOCK_K));
  const int last_group = static_cast<int>((p.K + p.group_size - 1) / p.group_size) - 1;
  // (a K split starts at stage kt0: unit kt0 * kWgK / unit, unit = 64 (GM 1) or 32 (GM 2) inputs)
  const int unit0 = kt0 * (GM == 1 ? 1 : 2);
  int fetch_group = GM != 0 ? unit0 / units_per_group : 0, fetch_rem = GM != 0 ? unit0 % units_per_group : 0;
  auto prefetch_scales = [&]() {
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      const int64_t gi = fetch_group < last_group ? fetch_group : last_group;
#pragma unroll
      for (int h = 0; h < R; ++h) {
        s_raw[h][b] = load_raw<S32>(p.scale, n_row[h] * p.s_sn + gi * p.s_sg);
        u_raw[h][b] = p.offset ? load_raw<S32>(p.offset, n_row[h] * p.u_sn + gi * p.u_sg) : 0u;
      }
      if (++fetch_rem == units_per_group) { fetch_rem = 0; ++fetch_group; }
    }
  };
  if constexpr (GM != 0) {
    if constexpr (!WS) prefetch_scales();
  } else {
#pragma unroll
    for (int h = 0; h < R; ++h) {
      const float s = load_param(p.scale, n_row[h] * p.s_sn, s_f32, s_f16);
      const float u = p.offset ? load_param(p.offset, n_row[h] * p.u_sn, s_f32, s_f16) : 0.f;
      set_scales(h, 0, s, u);
      set_scales(h, 1, s, u);
    }
  }

  float acc[NA];
#pragma unroll
  for (int i = 0; i < NA; ++i) acc[i] = 0.f;
  uint32_t afrag[2][4][4];  // [buffer][k-step][register]: stage kt fills buffer kt % 2

  if constexpr (!WS) {
#pragma unroll
    for (int j = 0; j < S::kAhead; ++j) issue(j);
  }

  // One stage: wait for its copies, refill the slot of two stages back, unpack, issue the wgmma's.
  auto stage = [&](int kt, auto buf_tag) {
    constexpr int B = decltype(buf_tag)::value;
    if constexpr (WS) {
      mbar_wait(bar0 + 8 * (kt % S::kStages), (kt / S::kStages) & 1);  // stage kt's weights and x landed
    } else {
      cp_async_wait<S::kAhead - 1>();  // this thread's weight copies of stage kt landed
      mbar_wait(bar0 + 8 * (kt % S::kStages), (kt / S::kStages) & 1);  // and the x tile
      // Everyone's weights landed, and every wgmma of stage kt - 2 has retired (its slot is refilled
      // next).  wg6 (bench/NOTES.md) replaced this by per-warpgroup barriers and an "empty" mbarrier
      // per slot with thread 0 still issuing, 3-13% slower; WS moves the issuing to its own warp.
      __syncthreads();
      issue(kt + S::kAhead);
    }
    const uint8_t* const st = smem + (kt % S::kStages) * S::kStageBytes;
    if constexpr (GM != 0 && WS) {  // this stage's groups, from the slot's s / u (the scale warps')
      using Raw = std::conditional_t<S32, uint32_t, unsigned short>;
      const Raw* const su = reinterpret_cast<const Raw*>(smem + S::kSuOffset + (kt % S::kStages) * S::kSuBytes);
#pragma unroll
      for (int h = 0; h < R; ++h)
#pragma unroll
        for (int b = 0; b < 2; ++b) {
          const int j = (GM == 1 ? 0 : b) * S::kRows + r_loc[h];  // s at [group][row], u NB groups further
          set_scales(h, b, raw_to_float<T, S32>(su[j]), raw_to_float<T, S32>(p.offset ? su[NB * S::kRows + j] : 0u));
        }
    } else if constexpr (GM != 0) {  // this stage's groups (fetched during the previous stage)
#pragma unroll
      for (int h = 0; h < R; ++h)
#pragma unroll
        for (int b = 0; b < 2; ++b)
          set_scales(h, b, raw_to_float<T, S32>(s_raw[h][GM == 1 ? 0 : b]), raw_to_float<T, S32>(u_raw[h][GM == 1 ? 0 : b]));
    }
    // Packed words of the rows: per block b (32 inputs) the E / O word this lane's pairs use
    // (t odd: O), or the binary plane word.
    uint32_t word[R][2];  // [row h][block b]
#pragma unroll
    for (int h = 0; h < R; ++h) {
      if constexpr (TWO) {
        const uint4 v = *reinterpret_cast<const uint4*>(st + S::kXBytes + r_loc[h] * 16);
        const uint32_t lo[2] = {v.x, v.z}, hi[2] = {v.y, v.w};
#pragma unroll
        for (int b = 0; b < 2; ++b)
          word[h][b] = (tig & 1) ? merge_odd(lo[b], hi[b]) : merge_even(lo[b], hi[b]);
      } else {
        const uint2 v = *reinterpret_cast<const uint2*>(st + S::kXBytes + r_loc[h] * 8);
        word[h][0] = v.x;
        word[h][1] = v.y;
      }
    }
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      const int b = ks >> 1, i0 = 8 * (ks & 1) + tig;
      uint32_t (&a)[4] = afrag[B][ks];
      a[0] = wg_unpack<KIND, T>(word[0][b], i0);      // row g,     inputs 2t, 2t + 1
      a[1] = wg_unpack<KIND, T>(word[1][b], i0);      // row g + 8
      a[2] = wg_unpack<KIND, T>(word[0][b], i0 + 4);  // row g,     inputs 2t + 8, 2t + 9
      a[3] = wg_unpack<KIND, T>(word[1][b], i0 + 4);  // row g + 8
      // fp32 scales: fold in fp32, round once.  A runtime test although S32 says the same: the
      // two paths keep the unpacking in basic blocks of their own, which ptxas does not sink
      // past wgmma.fence; as one block it does, and serializes the wgmma's (C7513; measured in
      // the SASS: a wait after every HGMMA).  No fold (wg16): the runtime test on `fold` ends the
      // block the same way.
      if (!fold) {
        // the values as unpacked; s in the epilogue
      } else if (fold_f32) {
#pragma unroll
        for (int e = 0; e < 4; ++e) a[e] = fma_pair_f32<T>(a[e], sf[e & 1][b], uf[e & 1][b]);
      } else {      // scales in x's dtype: one HFMA2 per two weights
#pragma unroll
        for (int e = 0; e < 4; ++e) a[e] = fma_pair<T>(a[e], s2[e & 1][b], u2[e & 1][b]);
      }
    }
    if constexpr (GM != 0 && !WS) prefetch_scales();  // the next stage's, in flight during this one's wgmma's
    wg_stage_mma<BM, T>(acc, afrag[B], st);  // the previous stage's wgmma's have retired: its A buffer and slot are free
    // WS: hand that slot back to the producer, one arrival per warp (the warp's reads of it, its
    // weight words and the wgmma's x operand, are all done).
    if constexpr (WS) {
      __syncwarp();  // (every lane's reads of the slot happen before lane 0's release)
      if (kt > 0 && lane == 0) mbar_arrive(ebar0 + 8 * ((kt - 1) % S::kStages));
    }
  };
  wg_run_stages(KT, stage, acc);
  // Row scale of the epilogue: s * vscale where it was not folded (wg16), else 1 (exact either way
  // for the folded sums: fmaf(v, 1, b) = v + b).
  float se[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) se[h] = fold ? 1.f : sf[h][0];
  if (gridDim.z > 1) {  // K split: this split's fp32 partial tile into the workspace (no bias)
    float* const ws = p.wg_ws + static_cast<int64_t>(blockIdx.z) * p.M * p.N;
#pragma unroll
    for (int i = 0; i < BM / 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        // lanes g = 0..7 of one tig write 8 consecutive floats (whole 32-byte sectors when N % 8 == 0)
        const int64_t m = m0 + 8 * i + 2 * tig + (e & 1), n = n0 + r_loc[e >> 1];
        if (m < p.M && n < p.N) ws[m * p.N + n] = acc[4 * i + e] * se[e >> 1];
      }
    return;
  }
  // The ring is free (every stage's copies landed and were consumed): reuse it for the output tile.
  auto sync_consumers = [] {
    if constexpr (WS) consumer_sync();
    else __syncthreads();
  };
  sync_consumers();

  // Epilogue: bias, to x's dtype, into shared memory as [m][n], then row-contiguous stores.
  T* const out = reinterpret_cast<T*>(smem);
  float bs[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) bs[h] = p.bias ? load_param(p.bias, n_row[h], s_f32, s_f16) : 0.f;
#pragma unroll
  for (int i = 0; i < BM / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int h = e >> 1, ml = 8 * i + 2 * tig + (e & 1);
      out[ml * S::kOutStride + r_loc[h]] = from_float<T>(fmaf(acc[4 * i + e], se[h], bs[h]));
    }
  sync_consumers();
  const int rows = static_cast<int>(imin64(BM, p.M - m0)), cols = static_cast<int>(imin64(S::kRows, p.N - n0));
  T* const y = static_cast<T*>(p.y);
  if (p.N % 8 == 0) {  // 16-byte stores: y's rows are 16-byte aligned (y from at::empty)
    for (int c = tid; c < rows * (S::kRows / 8); c += kWgThreads) {
      const int ml = c / (S::kRows / 8), q = c % (S::kRows / 8);
      if (8 * q < cols)
        *reinterpret_cast<uint4*>(y + (m0 + ml) * p.N + n0 + 8 * q) =
            *reinterpret_cast<const uint4*>(out + ml * S::kOutStride + 8 * q);
    }
  } else {
    for (int c = tid; c < rows * S::kRows; c += kWgThreads) {
      const int ml = c / S::kRows, nl = c % S::kRows;
      if (nl < cols) y[(m0 + ml) * p.N + n0 + nl] = out[ml * S::kOutStride + nl];
    }
  }
#elif defined(__CUDA_ARCH__)
  // Machine code without wgmma (any device pass but sm_90a) must never run: the host launches this
  // kernel only on compute capability 9.0 with BITMM_WGMMA, but should a driver ever pick a plain
  // sm_90 image of a "9.0;9.0a" build, trap rather than return an unwritten y.
  __trap();
#endif  // BITMM_WGMMA_DEVICE
}

// y = sum of the K splits' partial tiles, in split order, + bias, rounded once to x's dtype.
template <typename T>
__global__ void wg_splitk_reduce(const float* __restrict__ ws, int splits, int64_t M, int64_t N, const void* bias,
                                 bool b_f32, T* __restrict__ y) {
  const int64_t total = M * N, plane = M * N;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = ws[i];
    for (int z = 1; z < splits; ++z) v += ws[z * plane + i];
    const bool b_f16 = !b_f32 && std::is_same_v<T, __half>;
    y[i] = from_float<T>(v + (bias ? load_param(bias, i % N, b_f32, b_f16) : 0.f));
  }
}

// cuTensorMapEncodeTiled, a driver API function, through the runtime's entry-point query (no
// link against libcuda).  Null where the driver does not provide it (then: not supported).
using WgEncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
inline WgEncodeTiled wg_encode_tiled() {
  static const WgEncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      return static_cast<WgEncodeTiled>(nullptr);
    return reinterpret_cast<WgEncodeTiled>(f);
  }();
  return fn;
}

// A row-major (rows, cols) fp16 / bf16 matrix at `base` as a 2-D tensor map for the wgmma kernels' B tiles: boxes
// of 64 columns (128 bytes, the swizzle span) x box_rows rows, 128-byte swizzle (chunk c of row r at
// r * 128 + ((c ^ (r % 8)) << 4): what wg_desc describes), zeros outside.  The row pitch (2 cols bytes) must be a
// multiple of 16 and the base 16-byte aligned (the callers check).  False where the driver cannot encode it.
inline bool wg_tensor_map(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int box_rows, bool half) {
  const WgEncodeTiled encode = wg_encode_tiled();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t pitch[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)}, elem_strides[2] = {1, 1};
  const CUtensorMapDataType dt = half ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return encode(map, dt, 2, const_cast<void*>(base), dims, pitch, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) ==
         CUDA_SUCCESS;
}

// After a split launch: y (M, N) = the splits' fp32 partial tiles in `ws` summed in split order (+ bias), rounded once.
template <typename T>
cudaError_t wg_launch_splitk_reduce(const float* ws, int splits, int64_t M, int64_t N, const void* bias, bool b_f32,
                                    void* y, cudaStream_t stream) {
  const cudaError_t err = cudaGetLastError();  // (the split launch's)
  if (err != cudaSuccess) return err;
  const int64_t blocks = (M * N + 255) / 256;
  wg_splitk_reduce<T><<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(
      ws, splits, M, N, bias, b_f32, static_cast<T*>(y));
  return cudaGetLastError();
}

template <typename T, int KIND, int GM, bool S32, int BM, bool WS, bool PAIR = false>
cudaError_t launch_wg_cfg(const LinearParams& p, int splits, int dev, cudaStream_t stream) {
  using S = WgCfgFor<BM, GM, S32, WS, PAIR>;
  const int64_t m_tiles = (p.M + BM - 1) / BM, n_tiles = (p.N + S::kRows - 1) / S::kRows;
  if (m_tiles > 65535 || n_tiles > 0x7fffffff || p.M > 0x7fffffff || p.K > 0x7fffffff) return cudaErrorNotSupported;
  // x (M, K) row-major: boxes of 64 inputs x BM rows (K % 8 == 0: a 16-byte row pitch).
  static_assert(kWgK == 64, "a stage's x box is one 128-byte swizzle row");
  CUtensorMap x_map;
  if (!wg_tensor_map(&x_map, p.x, p.M, p.K, BM, std::is_same_v<T, __half>)) return cudaErrorNotSupported;
  auto kernel = wg_linear_kernel<T, KIND, GM, S32, BM, WS, PAIR>;
  static std::once_flag raised[kMaxTcDevices];  // one per instantiation and device
  cudaError_t err = cudaSuccess;
  std::call_once(raised[dev], [&] {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kBytes);
    // two CTAs' rings need the largest shared-memory carveout (the others need it for one)
    if (err == cudaSuccess && PAIR)
      err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  });
  if (err != cudaSuccess) return err;
  kernel<<<dim3(static_cast<unsigned>(n_tiles), static_cast<unsigned>(m_tiles), static_cast<unsigned>(splits)),
           WS ? kWgThreadsWS : kWgThreads, S::kBytes, stream>>>(p, x_map);
  if (splits > 1) return wg_launch_splitk_reduce<T>(p.wg_ws, splits, p.M, p.N, p.bias, p.s_dtype == DType::kFloat, p.y, stream);
  return cudaGetLastError();
}

template <typename T, int KIND, int GM, bool S32>
cudaError_t launch_wg_tile(const LinearParams& p, int num_sms, int dev, cudaStream_t stream) {
  // The glue's plan (it allocated the workspace for its splits), else one without K splits.
  const WgPlan plan = p.wg_bm != 0 ? WgPlan{p.wg_bm, p.wg_splits}
                                   : wg_plan(p.M, p.N, p.K, num_sms, true, /*allow_splits=*/false);
  const int splits = plan.splits > 1 && p.wg_ws != nullptr ? plan.splits : 1;
  // Two CTAs per SM at 64-row tiles (wg_plan.h wg_pair_ctas: per tensor, one wave of pairs; wg_pair_split: the glue
  // doubled the plan's K splits for them; BITMM_WG_PAIR).
  if ((p.wg_pair != 0 && plan.bm == 64 && splits > 1) ||
      wg_pair_ctas(plan.bm, splits, GM != 0, KIND == static_cast<int>(Kind::kBinary), p.M, p.N, num_sms))
    return launch_wg_cfg<T, KIND, GM, S32, 64, false, true>(p, splits, dev, stream);
  return BITMM_BOOL_SWITCH(wg_warp_specialized(), WS, [&] {
    switch (plan.bm) {
      case 64: return launch_wg_cfg<T, KIND, GM, S32, 64, WS>(p, splits, dev, stream);
      case 128: return launch_wg_cfg<T, KIND, GM, S32, 128, WS>(p, splits, dev, stream);
      default: return launch_wg_cfg<T, KIND, GM, S32, 256, WS>(p, splits, dev, stream);
    }
  });
}

template <typename T, int KIND>
cudaError_t launch_wg_for(const LinearParams& p, int num_sms, cudaStream_t stream) {
  if (!wg_supports(p)) return cudaErrorNotSupported;
  const int gm = p.group_size >= padded_k(p.K) ? 0 : p.group_size % kWgK == 0 ? 1 : 2;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev >= kMaxTcDevices) return cudaErrorInvalidDevice;
  const bool s32 = p.s_dtype == DType::kFloat;
  if (!s32 && p.s_dtype != p.x_dtype) return cudaErrorNotSupported;  // (the ops' checks rule it out)
  return BITMM_BOOL_SWITCH(s32, S32, [&] {
    switch (gm) {
      case 0: return launch_wg_tile<T, KIND, 0, S32>(p, num_sms, dev, stream);
      case 1: return launch_wg_tile<T, KIND, 1, S32>(p, num_sms, dev, stream);
      default: return launch_wg_tile<T, KIND, 2, S32>(p, num_sms, dev, stream);
    }
  });
}

}  // namespace cuda
}  // namespace bitmm
