// Tensor-core CUDA kernel for bitmm linear ops (fp16 / bf16 activations).
//
// The packed weights are unpacked in registers into exact fp16 / bf16 values
// and fed to mma.sync.m16n8k16 (sm_80 and newer); no dequantized weight is
// ever written to memory.  Roles in the mma  D(16x8) += A(16x16) * B(16x8):
//   A = 16 weight rows (output features n) x 16 inputs k,
//   B = 16 inputs k x 8 activation rows m,   D = y^T tile, fp32.
//
// K order inside an mma.  A sum over k may visit k in any order, as long as A
// and B use the same one.  Each lane loads 16 bytes per weight row per step
// (64 two-plane or 128 binary weights: its "window"), and the four lanes of a
// quad (tig = lane % 4) hold four consecutive windows.  In k-step s, lane tig
// supplies its A registers from pairs j = 2s and 2s+1 of its own window, where
// pair j is the two weights (32b + 2i, 32b + 2i + 1) with b = j / 16, i = j % 16,
// i.e. bits i and 16 + i of block b (bitmm_format.h's even/odd interleave).
// x is staged in shared memory in plain k order, so the B registers of lane
// (m, tig) for k-step s are simply pairs 2s, 2s+1 of x's window tig: an 8-byte
// read, and 16 bytes per two k-steps.
//
// Unpacking, with no multiplication and no table: one shift + one LOP3 gives
// two weights as a half2 / bf162 of exact values.
//   ternary: value 2t in {-2, 0, +2}: bit 14 (exponent of 2.0) = !lo, bit 15
//            (sign) = !hi, so t=-1 (lo=0,hi=0) -> 0xC000 = -2, t=0 (lo=1) ->
//            -0 or +0, t=+1 (hi=1) -> 0x4000 = +2, in fp16 and bf16 alike.
//            The lo/hi planes are first merged per block into E (even pairs:
//            bit 2p = lo_2p, 2p+1 = hi_2p) and O (odd pairs), 4 ops per 32
//            weights, so one shift puts a pair's lo at bit 14 and hi at 15.
//   binary:  value 2b: the bit shifted to position 14 (2.0 or 0).
//   int2:    q at bits 0-1 of each half OR'ed into the exponent of 1024
//            (fp16) or 128 (bf16), minus 1025 / 129: exactly q - 1.
// fp16 x with per tensor / channel scales at M <= 8 unpack differently (tc10, below:
// "Subnormal unpacking"): codes as fp16 subnormals, one LOP3 per two weights.
// The factor 2 of binary / ternary is undone by the per-row scaling (s / 2).
// Group-wise scales (any group size that is a multiple of 32): each unpacked
// pair becomes v * s + u in x's dtype before the mma (one HFMA2 per two
// weights: the per-group scaling), which is how a plain fp16 / bf16 F.linear
// on the dequantized weight rounds it too.
//
// Work split: a CTA of 4 warps owns WN * RN * 16 weight rows (WN warps along
// N) and MT = 8 * CM activation rows; its WK = 4 / WN warps along K take
// alternate load steps and are reduced in shared memory in a fixed order
// (deterministic).  x is staged per K tile; rows of x beyond M are never read
// (their B registers are zero) and outputs beyond M or N are not stored.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "common.cuh"
#include "env_knobs.h"
#include "launch_util.cuh"
#include "tc_kernels.h"
#include "tc_launch_rules.h"

namespace bitmm {
namespace cuda {

constexpr int kTcWarps = 4;
constexpr int kTcSmemBytes = 112 * 1024;  // upper bound of dynamic shared memory per CTA
// Weight load steps per warp (cp.async ring slots, one step ahead per slot
// beyond the first): at most 6 (RN = 1) or 3 (RN = 2), i.e. 6 KB per warp.  The
// launcher picks the depth at run time: the deepest ring that does not lower
// the number of resident CTAs (bench/NOTES.md, tc7).
template <int RN> constexpr int kTcMaxStages = RN == 1 ? 6 : 3;
constexpr int kTcMinStages = 2;

template <typename T> struct TcTraits;
template <> struct TcTraits<__half> {
  static constexpr uint32_t kInt2Magic = 0x64006400u;   // 1024.0 in both halves
  static constexpr uint32_t kInt2Bias = 0x64016401u;    // 1025.0
};
template <> struct TcTraits<__nv_bfloat16> {
  static constexpr uint32_t kInt2Magic = 0x43004300u;   // 128.0
  static constexpr uint32_t kInt2Bias = 0x43014301u;    // 129.0
};

__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, __half) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The E / O merge of a two-plane block's bit planes lo and hi (pairs of 2-bit codes, see TcLayout):
//   E = (lo & 0x55555555) | ((hi << 1) & 0xAAAAAAAA),  O = ((lo >> 1) & 0x55555555) | (hi & 0xAAAAAAAA).
// Each is a bit select (a & m) | (b & ~m) with m = 0x55555555: one LOP3 (LUT 0xE4: ta = 0xF0, tb = 0xCC,
// tc = 0xAA, (ta & tc) | (tb & ~tc)) and a shift, where nvcc emitted two LOP3 and a shift (sm_90a SASS,
// session 22: it does not see that the two masks are complements).
__device__ __forceinline__ uint32_t bit_select(uint32_t a, uint32_t b, uint32_t m) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xE4;" : "=r"(d) : "r"(a), "r"(b), "r"(m));
  return d;
}
__device__ __forceinline__ uint32_t merge_even(uint32_t lo, uint32_t hi) { return bit_select(lo, hi << 1, 0x55555555u); }
__device__ __forceinline__ uint32_t merge_odd(uint32_t lo, uint32_t hi) { return bit_select(lo >> 1, hi, 0x55555555u); }

// Two weights (pair i of a block) as an exact half2 / bf162 bit pattern.  `e`
// is the block's E (even i) or O (odd i) word for two-plane kinds, the plane
// word for binary; `sh` = 14 - (i & ~1) for two-plane, 14 - i for binary.
template <int KIND, typename T>
__device__ __forceinline__ uint32_t unpack_pair(uint32_t e, int sh) {
  if constexpr (KIND == 1) {  // binary: 2b
    return (sh >= 0 ? (e << sh) : (e >> 1)) & 0x40004000u;
  } else if constexpr (KIND == 2) {  // ternary: 2t
    return ~(e << sh) & 0xC000C000u;
  } else {  // int2: q - 1, via the exponent trick
    // ((e >> (14 - sh)) & 0x00030003) | magic as one LOP3 (LUT 0xEA: (a & b) | c) with the magic in a register:
    // nvcc emitted two LOP3s, one per immediate.
    uint32_t h;
    asm("lop3.b32 %0, %1, 0x00030003, %2, 0xEA;" : "=r"(h) : "r"(e >> (14 - sh)), "r"(TcTraits<T>::kInt2Magic));
    const uint32_t bias = TcTraits<T>::kInt2Bias;
    uint32_t r;
    if constexpr (std::is_same_v<T, __half>) {
      const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&h), *reinterpret_cast<const __half2*>(&bias));
      r = *reinterpret_cast<const uint32_t*>(&v);
    } else {
      const __nv_bfloat162 v = __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&h),
                                       *reinterpret_cast<const __nv_bfloat162*>(&bias));
      r = *reinterpret_cast<const uint32_t*>(&v);
    }
    return r;
  }
}

template <typename T> __device__ __forceinline__ uint32_t fma_pair(uint32_t a, uint32_t s2, uint32_t u2);
template <> __device__ __forceinline__ uint32_t fma_pair<__half>(uint32_t a, uint32_t s2, uint32_t u2) {
  const __half2 v = __hfma2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&s2),
                            *reinterpret_cast<const __half2*>(&u2));
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <> __device__ __forceinline__ uint32_t fma_pair<__nv_bfloat16>(uint32_t a, uint32_t s2, uint32_t u2) {
  const __nv_bfloat162 v = __hfma2(*reinterpret_cast<const __nv_bfloat162*>(&a),
                                   *reinterpret_cast<const __nv_bfloat162*>(&s2),
                                   *reinterpret_cast<const __nv_bfloat162*>(&u2));
  return *reinterpret_cast<const uint32_t*>(&v);
}
// v * s + u in fp32 per half (s0 / u0 for the low half, s1 / u1 for the high one), rounded once to
// x's dtype (for float32 scales, which x's dtype may not represent exactly).
template <typename T>
__device__ __forceinline__ uint32_t fma_pair2_f32(uint32_t a, float s0, float s1, float u0, float u1) {
  if constexpr (std::is_same_v<T, __half>) {
    const T* h = reinterpret_cast<const T*>(&a);
    const float lo = fmaf(to_float<T>(h[0]), s0, u0), hi = fmaf(to_float<T>(h[1]), s1, u1);
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    // bf16 is the high half of an fp32: widen each half with one shift / mask of the 32-bit word (the
    // same floats).  Through 16-bit halves, ptxas split the pair with two PRMTs ahead of the caller's
    // fp32-or-x-dtype branch and joined it again with a third on the x-dtype side (wg_linear.cuh's
    // stage: 289 instructions against fp16's 259 at BM = 256 per tensor, sm_90a).
    const float lo = fmaf(__uint_as_float(a << 16), s0, u0), hi = fmaf(__uint_as_float(a & 0xffff0000u), s1, u1);
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}
template <typename T> __device__ __forceinline__ uint32_t fma_pair_f32(uint32_t a, float s, float u) {
  return fma_pair2_f32<T>(a, s, s, u, u);
}
template <typename T> __device__ __forceinline__ uint32_t splat(float v) {
  const T h = from_float<T>(v);
  const uint16_t b = *reinterpret_cast<const uint16_t*>(&h);
  return static_cast<uint32_t>(b) | (static_cast<uint32_t>(b) << 16);
}

// 16-byte global -> shared copy that bypasses L1 (weights are read once);
// src_bytes = 0 writes zeros (windows past the end of a row).
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sa), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
// wait_group takes an immediate: a uniform branch over the ring depths.
// The other depths out of line: inlined, the compiler merges the fast path below back into one
// jump table (10 instructions per step in tc12's and tc13's ncu source counts).
static __device__ __noinline__ void cp_async_wait_other(int n) {
  switch (n) {
    case 0: cp_async_wait<0>(); break;
    case 2: cp_async_wait<2>(); break;
    case 3: cp_async_wait<3>(); break;
    default: cp_async_wait<4>(); break;
  }
}
// The launcher's usual ring of 3 slots (n = 1) inline: a compare and a branch.
__device__ __forceinline__ void cp_async_wait_dyn(int n) {
  if (n == 1) cp_async_wait<1>();
  else cp_async_wait_other(n);
}

// Element i of a scale / offset / bias array (fp32, fp16 or bf16, as the flags say).  (Typed pointer
// arithmetic, not load_scale_bits with a byte offset: the kernels measured with it keep their address code.)
__device__ __forceinline__ float load_param(const void* p, int64_t i, bool is_float, bool is_half) {
  if (is_float) return __ldg(static_cast<const float*>(p) + i);
  if (is_half) return __half2float(__ldg(static_cast<const __half*>(p) + i));
  return __bfloat162float(__ldg(static_cast<const __nv_bfloat16*>(p) + i));
}
// The same loads as raw bits (fp32 as its bits, fp16 / bf16 zero-extended), for values loaded a step
// ahead of their use: converted by scale_of_bits where they are used, so that no instruction right
// after the load waits for it (a conversion next to its load stalled the warp for the load's whole
// latency at every step: tc30).  0 bits convert to 0.f in every dtype.
__device__ __forceinline__ uint32_t load_scale_bits(const char* a, bool is_float) {
  if (is_float) return __ldg(reinterpret_cast<const unsigned int*>(a));
  return __ldg(reinterpret_cast<const unsigned short*>(a));
}
__device__ __forceinline__ uint32_t load_param_bits(const void* p, int64_t i, bool is_float) {
  if (is_float) return __ldg(static_cast<const unsigned int*>(p) + i);
  return __ldg(static_cast<const unsigned short*>(p) + i);
}
__device__ __forceinline__ float scale_of_bits(uint32_t v, bool is_float, bool is_half) {
  if (is_float) return __uint_as_float(v);
  if (is_half) return __half2float(__ushort_as_half(static_cast<unsigned short>(v)));
  return __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(v)));
}

// Shared-memory layout of staged x: per activation row, 32-bit pairs of
// consecutive inputs.  Every 32 pairs are followed by SEG_PAD pad words so that
// consecutive lane windows start 8 banks apart, and the row stride is 4 mod 32
// words: the 8 lanes of one LDS.128 phase (2 rows x 4 windows) then cover the
// 32 banks exactly once.
template <int KIND> struct TcLayout {
  static constexpr int PW = KIND == 1 ? 128 : 64;     // weights per lane window (16 bytes)
  static constexpr int STEP_K = 4 * PW;               // inputs per load step (a quad's windows)
  static constexpr int BLOCKS = PW / BLOCK_K;         // 32-weight blocks per window
  static constexpr int SEG_PAD = KIND == 1 ? 4 : 8;   // window stride 72 or 40 words = 8 mod 32
  static constexpr int WIN_WORDS = (PW / 64) * (32 + SEG_PAD);  // one window of one row (40 or 72 words)
  __host__ __device__ static int pair_addr(int p) { return (p >> 5) * (32 + SEG_PAD) + (p & 31); }
  __host__ __device__ static int row_words(int kt) {
    const int base = (kt / 64) * (32 + SEG_PAD);
    return base + ((4 - base % 32) + 32) % 32;
  }
};

// One lane window (16 bytes of weights per row, RN x 2 rows) through the
// mma's: unpack per block, fold the group scaling (grouped), multiply with the
// staged x of window `win`.  sb / ub: per (row, block) scale (already / 2 for
// binary and ternary) and offset, used when GROUPED.
// Accumulator sets: with few mma tiles per warp, even and odd k-steps use
// separate accumulators so two mma chains are in flight (more tiles already
// give independent chains, and registers are short there).
template <int RN, int CM> constexpr int kTcAccSets = RN * CM <= 2 ? 2 : 1;

// Subnormal unpacking (fp16 x, per tensor / per channel scales; the "DN" path).
// With a pair's code bits masked in place, the half2 is a pair of fp16 subnormals
// code * 2^(p - 24) (exponent field 0, code at mantissa bits p..), i.e. the exact code
// times a power of two: ONE LOP3 per two weights, no shift and no subtraction.  A
// k-step's four A registers must share one power: k-step s8 of a block (fields s8 of
// the E / O words; pairs 2 s8, 2 s8 + 1 of a binary word) is shifted down to field
// c = s8 % NQ, mantissa bits 2c.., and accumulates into accumulator set c (scale 4^c
// 2^-24), so NQ sets cost NQ x the accumulator registers and 8 / NQ shifts per word.
// The epilogue undoes the powers (exact) and, for two-plane kinds (values code - 1),
// subtracts the row sum of x: sum_k (code_k - 1) x_k = sum_k code_k x_k - X.  The
// tensor cores take fp16 subnormals exactly (products and sums in fp32; the smallest
// product, 2^-24 * 2^-24, is a normal fp32).  bf16 keeps the sign / exponent unpacking:
// a bf16 subnormal is ~2^-133, and its products with x underflow fp32.
// NQ = 4 for one or two mma tiles per warp (16 or 32 accumulator registers), else 0 (the
// older unpacking, one accumulator set: NQ = 2 at M = 16 measured 89 vs 75 us on the H200,
// 8192 x 28672, from the registers it adds).  NQ = 1 for int2 there (a shift and a LOP3 per
// pair instead of shift, LOP3 and HSUB2: the step loop 1414 -> 913 SASS instructions at RN = CM
// = 2) measured slower on most shapes (H200, session 18, bench/results/h200_s18_call4_ab_8ac0803
// .txt: 8192 x 28672 M = 9..16 -6..-11%, but M = 24 / 32 +16 / +27%, 8192^2 M = 9..32 +8..+35%,
// 28672 x 8192 +9..+32%).  Not profiled; the likely cost: the "- X" needs x's row sums, which
// every CTA makes over all of K (M x K additions, a warp per row, after each K tile's staging
// barrier and before its mma's) where x is split (M >= 9 at K = 8192), not overlapped.
// FOLD: group-wise scales folded into every unpacked pair (grouped, not block-diagonal), which
// needs real values in the mma, so no subnormal codes.
template <typename T, bool FOLD, int RN, int CM>
constexpr int kTcDnClasses = (!std::is_same_v<T, __half> || FOLD) ? 0 : (RN * CM <= 2 ? 4 : 0);
template <typename T, bool FOLD, int RN, int CM>
constexpr int kTcAccArrays = kTcDnClasses<T, FOLD, RN, CM> > 0 ? kTcDnClasses<T, FOLD, RN, CM> : kTcAccSets<RN, CM>;

// Block-diagonal decode path (BD: group-wise scales, M <= 4: CM = 1 or 2 activation tiles of 2
// rows of x each; below, one tile: tile c does the same for rows 2 c, 2 c + 1).
// With at most 2 rows of x, 6 of the mma's 8 B columns would be idle.  They separate the
// quad's four lane windows instead: B column c = 2 w + m holds row m of x over window w only
// (lane (g, tig) supplies column g from its own window tig, so it loads x when g >> 1 == tig
// and supplies zeros otherwise).  D[n][2 w + m] is then row n's partial sum over window w
// alone, and the lane (g, tig) that holds D columns 2 tig, 2 tig + 1 holds exactly its own
// window's two rows of x, whose group scales it already loads.  Scaling moves from every
// weight pair (FOLD: one HFMA2 per two weights) to the accumulator: at the end of each run of
// blocks that share a group (fb blocks: the largest of 1, 2, 4 that divides both the group's
// and the window's block counts) the lane flushes  tot += s * D + u * X  (X: the sum of x over
// those blocks, from per-block sums made while staging; two-plane codes add (-s) * X, see the
// subnormal unpacking), then restarts D.  Weights stay exact codes, so fp16 x keeps the
// subnormal unpacking (one LOP3 per two weights).  The epilogue sums tot over the quad (the
// four windows) with two shuffles, after which every lane of the quad holds them; lane tig = 0
// stores.  Two tiles (M = 3, 4) run two mma's per k-step on the same unpacked A.

// Element (r, c, e) of the accumulator sets as one fp32 sum: with NQ > 0 set q holds codes x 4^q
// 2^-24 (undo the powers, exact), else NA = 1 or 2 sets of real values (even / odd k-steps).
template <int NQ, int NA, int RN, int CM>
__device__ __forceinline__ float tc_sum_sets(const float (&acc)[NA][RN][CM][4], int r, int c, int e) {
  if constexpr (NQ > 0) {
    float v = 0.f;
#pragma unroll
    for (int q = NQ - 1; q >= 0; --q) v += acc[q][r][c][e] * static_cast<float>(1 << (24 - 2 * q));
    return v;
  } else {
    return NA == 2 ? acc[0][r][c][e] + acc[NA - 1][r][c][e] : acc[0][r][c][e];
  }
}

template <typename T, int KIND, bool GROUPED, bool BD /* block-diagonal decode path (above) */, int RN, int CM,
          bool S_F32 /* fp32 scales: fold in fp32 */, int SB /* blocks with a scale per window: L::BLOCKS (grouped) or 1 */>
__device__ __forceinline__ void tc_window_mma(float (&acc)[kTcAccArrays<T, GROUPED && !BD, RN, CM>][RN][CM][4], const uint4 (&cw)[RN][2], const uint32_t* xs,
                                              const int RS, const int rows, const int win, const int g,
                                              const int (&xl)[CM],  // not BD: this lane's x offset at window tig (below)
                                              const int xstep,      // not BD: the window's offset from window tig
                                              const float (&sb)[RN][2][SB], const float (&ub)[RN][2][SB],
                                              float (&tot)[RN][CM][4],  // BD: scaled sums (elements as D's)
                                              const float* xb,          // BD: [block of the K tile][2 CM] sums of x's rows
                                              const int fb,             // BD: blocks per flush (1, 2 or 4)
                                              const bool with_u) {      // BD: an offset u is given
  using L = TcLayout<KIND>;
  constexpr bool TWO = KIND != 1;
  constexpr bool FOLD = GROUPED && !BD;
  constexpr int NQ = kTcDnClasses<T, FOLD, RN, CM>;
  constexpr int NA = kTcAccArrays<T, FOLD, RN, CM>;
  // BD: this lane supplies B column g of activation tile c (row 2 c + (g & 1) of x) from its window
  // iff g >> 1 == tig (and that row exists).
  const bool bd_win = BD && (g >> 1) == (win & 3);
  float xr[CM][2];  // BD: sums of x rows 2 c, 2 c + 1 over the blocks since the last flush
#pragma unroll
  for (int c = 0; c < CM; ++c) xr[c][0] = xr[c][1] = 0.f;
  // Word offset of this lane's x fragments of window `win`, per activation tile: the window starts
  // on a 32-pair segment (PW / 2 is a multiple of 32), so pair_addr(win * PW / 2 + j) =
  // win * WIN_WORDS + pair_addr(j), and j = 16 b + 4 s4 is a compile-time constant below: each
  // LDS takes it as an immediate (the sum in pair_addr cost 4 instructions per LDS.128, ~24 per
  // step, in tc12's SASS).
  int xo[CM];
#pragma unroll
  for (int c = 0; c < CM; ++c) {
    // Lanes of activation rows past M read the last real row instead of zeros: their output
    // columns are never stored (no select needed).  BD: row 2 c + (g & 1) where the lane supplies
    // its column, else the window of zeros just before x (tc14: a select per B register cost 16
    // instructions per step).
    // Not BD, CM <= 4: the lane's part, min(8 c + g, rows - 1) * RS + tig * WIN_WORDS, comes precomputed (xl,
    // once per CTA) and the step's (win - tig) * WIN_WORDS as xstep (tc34: ~5 SASS instructions per step fewer).
    // (CM = 8 computes it here: 8 more live registers made the group-wise CM = 8 kernels spill.)
    const int mb = 2 * c + (g & 1);
    if constexpr (BD) xo[c] = !(bd_win && mb < rows) ? -L::WIN_WORDS : min(mb, rows - 1) * RS + win * L::WIN_WORDS;
    else if constexpr (CM <= 4) xo[c] = xl[c] + xstep;
    else xo[c] = min(8 * c + g, rows - 1) * RS + win * L::WIN_WORDS;
  }
#pragma unroll
  for (int b = 0; b < L::BLOCKS; ++b) {
    // Per block: the E / O merge (two-plane) and, grouped, the block's s and u.
    uint32_t ew[RN][2], ow[RN][2], s2[RN][2], u2[RN][2];
    float sf[RN][2], uf[RN][2];
#pragma unroll
    for (int r = 0; r < RN; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t words[4] = {cw[r][h].x, cw[r][h].y, cw[r][h].z, cw[r][h].w};
        if constexpr (TWO) {
          const uint32_t lo = words[2 * b], hi = words[2 * b + 1];
          ew[r][h] = merge_even(lo, hi);
          ow[r][h] = merge_odd(lo, hi);
        } else {
          ew[r][h] = ow[r][h] = words[b];
        }
        if constexpr (FOLD) {
          const float s = sb[r][h][b % SB], u = ub[r][h][b % SB];
          s2[r][h] = splat<T>(s);
          u2[r][h] = splat<T>(u);
          sf[r][h] = s;
          uf[r][h] = u;
        }
      }
#pragma unroll
    for (int s4 = 0; s4 < 4; ++s4) {
      // B for two k-steps: pairs 16b + 4*s4 .. +3 of window `win`, one LDS.128 per activation tile.
      uint4 bx[CM];
#pragma unroll
      for (int c = 0; c < CM; ++c) {
        bx[c] = *reinterpret_cast<const uint4*>(xs + xo[c] + L::pair_addr(16 * b + 4 * s4));
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {  // k-step: pairs 2*s8 (even) and 2*s8 + 1 (odd) of block b
        const int s8 = 2 * s4 + half;
        const int sh = 14 - 2 * s8;
#pragma unroll
        for (int r = 0; r < RN; ++r) {
          uint32_t a[4];
          if constexpr (NQ > 0) {  // subnormal unpacking: field s8 -> field c, one LOP3 per pair
            const int c = s8 % NQ, shq = 2 * (s8 - c);
            const uint32_t m = (TWO ? 0x00030003u : 0x00010001u) << (2 * c);
            a[0] = (ew[r][0] >> shq) & m;                   // row g,   weights 4 s8, 4 s8 + 1
            a[1] = (ew[r][1] >> shq) & m;                   // row g+8
            a[2] = (TWO ? ow[r][0] >> shq : ew[r][0] >> (shq + 1)) & m;  // row g,   4 s8 + 2, + 3
            a[3] = (TWO ? ow[r][1] >> shq : ew[r][1] >> (shq + 1)) & m;  // row g+8
#pragma unroll
            for (int cc = 0; cc < CM; ++cc)
              mma_16816(acc[c][r][cc], a, half ? bx[cc].z : bx[cc].x, half ? bx[cc].w : bx[cc].y, T{});
          } else {
          if constexpr (TWO) {
            a[0] = unpack_pair<KIND, T>(ew[r][0], sh);  // row g,   pair 2*s8
            a[1] = unpack_pair<KIND, T>(ew[r][1], sh);  // row g+8, pair 2*s8
            a[2] = unpack_pair<KIND, T>(ow[r][0], sh);  // row g,   pair 2*s8+1
            a[3] = unpack_pair<KIND, T>(ow[r][1], sh);  // row g+8, pair 2*s8+1
          } else {
            a[0] = unpack_pair<KIND, T>(ew[r][0], sh);
            a[1] = unpack_pair<KIND, T>(ew[r][1], sh);
            a[2] = unpack_pair<KIND, T>(ew[r][0], sh - 1);
            a[3] = unpack_pair<KIND, T>(ew[r][1], sh - 1);
          }
          if constexpr (FOLD) {
            if constexpr (S_F32) {  // fp32 scales: fold in fp32, round once (as F.linear's dequantized weight)
#pragma unroll
              for (int e = 0; e < 4; ++e) a[e] = fma_pair_f32<T>(a[e], sf[r][e & 1], uf[r][e & 1]);
            } else {      // scales in x's dtype: one HFMA2 per two weights, rounded once
#pragma unroll
              for (int e = 0; e < 4; ++e) a[e] = fma_pair<T>(a[e], s2[r][e & 1], u2[r][e & 1]);
            }
          }
#pragma unroll
          for (int c = 0; c < CM; ++c)
            // two accumulator sets (even / odd k-steps): two independent mma chains
            mma_16816(acc[half % kTcAccSets<RN, CM>][r][c], a, half ? bx[c].z : bx[c].x, half ? bx[c].w : bx[c].y, T{});
          }  // NQ == 0
        }
      }
    }
    if constexpr (BD) {
      // The per-group scaling, on the accumulator: after the last block of each run of fb blocks
      // (warp-uniform: fb and b are the same in every lane).
      // X: for the offset term, and for the two-plane codes' -X (fp16).  Without either it is not
      // read, and an Inf in x then gives +-Inf through v alone, as F.linear does, not Inf - Inf.
      if (with_u || (NQ > 0 && TWO)) {
#pragma unroll
        for (int c = 0; c < CM; ++c) {  // xb: [block][2 CM] sums of x rows 0 .. 2 CM - 1
          const float2 xv = reinterpret_cast<const float2*>(xb)[(win * L::BLOCKS + b) * CM + c];
          xr[c][0] += xv.x;
          xr[c][1] += xv.y;
        }
      }
      if (b == L::BLOCKS - 1 || ((b + 1) & (fb - 1)) == 0) {
#pragma unroll
        for (int r = 0; r < RN; ++r)
#pragma unroll
          for (int c = 0; c < CM; ++c)
#pragma unroll
            for (int e = 0; e < 4; ++e) {  // D element e of tile c: weight row g + 8 (e >> 1), x row 2 c + (e & 1)
              float v = tc_sum_sets<NQ, NA>(acc, r, c, e);
              const float X = xr[c][e & 1];
              const float s = sb[r][e >> 1][b % SB], u = ub[r][e >> 1][b % SB];
              // two-plane codes: sum (c - 1) x = sum c x - X
              if constexpr (NQ > 0 && TWO) v -= X;
              tot[r][c][e] = fmaf(s, v, with_u ? fmaf(u, X, tot[r][c][e]) : tot[r][c][e]);
#pragma unroll
              for (int q = 0; q < NA; ++q) acc[q][r][c][e] = 0.f;
            }
#pragma unroll
        for (int c = 0; c < CM; ++c) xr[c][0] = xr[c][1] = 0.f;
      }
    }
  }
}

// Weight bytes each CTA asks L2 for before its programmatic-dependent-launch wait (tc16): 16 KB x
// the ~800 CTAs of the M = 1 kernels is 13 MB, inside the 50 MB L2 (at most 34 MB: 16 CTAs on each
// of 132 SMs; BITMM_PDL=2 on a non-persistent grid: more); an uncapped first row tile per CTA was up to all of
// the weights: 8192 x 28672 g64 M = 1 54.5 us with it, 50.5 without, h200_s15_call3_ef543d6.txt).
constexpr int kTcPdlPrefetchBytes = 16384;

// K-split reduction.  The WK warps of a column reduce through CTA barriers: the WK - 1 non-leading
// warps store their partial sums into one buffer, and warp wk = 0 adds them in warp order.  tc13
// replaced this at RN = CM = 1 (M <= 8, no fused LoRA) by a barrier-free reduction (two buffers,
// shared-memory arrival counters, the last warp to arrive sums in warp order: the same bits), and
// tc15 tried named barriers (bar.arrive / bar.sync per warp column, e73560c).  Measured in one tree
// (H200, session 15, bench/results/h200_s15_call1_e73560c.txt, 8192 x 28672 ternary per tensor
// M = 1): CTA barriers 39.8-40.2 us, counters 42.5-43.3, named barriers 44.2-45.3; the barriers were the
// fastest at every M <= 4, shape and scale mode measured, and the only one racecheck can follow.
// Words: the WK - 1 non-leading warps' accumulators per warp column.
template <int RN, int CM> __host__ __device__ constexpr int tc_reduce_words(int wk, int wn) {
  return (wk - 1) * wn * RN * CM * 128;
}

template <typename T,  // activation / output dtype: __half or __nv_bfloat16
          int KIND,    // 1 binary, 2 ternary, 3 int2 (bitmm::Kind)
          bool GROUPED,// group-wise scale or offset: fold v * s + u per pair before the mma, or (BD) per group
          int RN,      // 16-row weight tiles per warp
          int CM,      // 8-row activation tiles per CTA (MT = 8 * CM rows of x)
          bool BD,     // block-diagonal decode path (GROUPED, RN = 1, 2 CM rows of x per CTA; above
                       //  tc_window_mma; its own kernel, tc_linear_bd_kernel)
          int SDT = -1>// the scale / offset dtype (DType) fixed at compile time (BD), or -1: p.s_dtype
__device__ __forceinline__ void
tc_linear_body(const LinearParams p,
               const int KT,   // x tile along K: a multiple of STEP_K
               const int WN,   // warps along N (the other 4 / WN split K)
               const int ST_FLAGS) { // bits 0-7: weight ring slots per warp, kTcMinStages ..
                                      // kTcMaxStages<RN>; bit 8: no L2 prefetch before the
                                      // PDL wait (BITMM_PDL=3); bit 9: group-wise RN = 2 scale
                                      // offsets in 64 bits (BITMM_TC_SCALE_OFF64=1, tc21's test knob)
  using L = TcLayout<KIND>;
  constexpr int MT = 8 * CM;               // shared-memory slots for rows of x (row sums, LoRA terms)
  constexpr int MR = BD ? 2 * CM : MT;     // rows of x per CTA (BD: 2 per activation tile)
  constexpr bool TWO = KIND != 1;
  const int ST = ST_FLAGS & 255;
  extern __shared__ __align__(16) uint32_t tc_smem[];
  const int RS = L::row_words(KT);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int WK = kTcWarps / WN;
  const int wn = warp % WN, wk = warp / WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * MR;
  const int rows = static_cast<int>(imin64(MR, p.M - m0));  // staged activation rows
  const int64_t Kp = padded_k(p.K);
  const int64_t ngroups = (p.K + p.group_size - 1) / p.group_size;  // real groups (padding reuses the last)
  // (BD: constants, so each scale / offset load is one typed load, not three behind two branches)
  const bool s_f32 = SDT >= 0 ? SDT == static_cast<int>(DType::kFloat) : p.s_dtype == DType::kFloat;
  const bool s_f16 = SDT >= 0 ? SDT == static_cast<int>(DType::kHalf) : p.s_dtype == DType::kHalf;
  const int s_es = s_f32 ? 4 : 2;  // bytes per scale / offset element (both in the scale's dtype)
  const bool has_u = p.offset != nullptr;
  const int64_t s_sg_bytes = p.s_sg * s_es, u_sg_bytes = p.u_sg * s_es;
  const int64_t s_sn_bytes = p.s_sn * s_es, u_sn_bytes = p.u_sn * s_es;
  static_assert(!BD || (GROUPED && RN == 1 && (CM == 1 || CM == 2)),
                "the block-diagonal path is for group-wise scales, one 16-row tile per warp, M <= 4 per CTA");
  constexpr int NQ = kTcDnClasses<T, GROUPED && !BD, RN, CM>;  // > 0: subnormal unpacking (tc_window_mma)
  // Row sums of x: for the offset term (per tensor / channel), and for the "- X" of the
  // subnormal path's two-plane codes.
  const bool need_X = !GROUPED && (p.offset != nullptr || (NQ > 0 && TWO));
  // Group of a 32-weight block: kb / gblocks, a shift when the group size is a power of two.
  const int gblocks = static_cast<int>(imin64(p.group_size, 1 << 30)) / BLOCK_K;
  const int gshift = (gblocks & (gblocks - 1)) == 0 ? __ffs(gblocks) - 1 : -1;
  // BD: blocks per flush, the largest of 1, 2, 4 that divides the group's and the window's blocks
  // (windows start at multiples of L::BLOCKS blocks, so such a run never crosses a group boundary).
  const int fb = gblocks % L::BLOCKS == 0 ? L::BLOCKS : (gblocks % 2 == 0 ? 2 : 1);
  // tc21 (load_scales, RN = 2): every byte offset of s and u within a row tile, the tile's rows
  // (< WN * RN * 16 <= 128) and all groups, fits in 32 bits.  Not for CM = 8 (M = 33..64, unmeasured:
  // the wgmma kernel takes those rows on Hopper): there both paths in one kernel cost spills (binary
  // 40 / 64 -> 208 / 244 bytes of spill stores / loads, sm_90a), so it keeps the 64-bit path alone.
  const bool off32 = GROUPED && RN > 1 && CM <= 4 && !(ST_FLAGS & 512) &&
                     (WN * RN * 16 - 1) * s_sn_bytes + (ngroups - 1) * s_sg_bytes < INT32_MAX &&
                     (WN * RN * 16 - 1) * u_sn_bytes + (ngroups - 1) * u_sg_bytes < INT32_MAX;

  float* Xs = reinterpret_cast<float*>(tc_smem);  // [MT] row sums of x (offset with per tensor/channel scales)
  float* Xb = Xs + MT;                             // BD: [KT / 32][MR] per-block sums of x's rows
  // [rows][RS] pairs of x (16-byte aligned: MT % 8 == 0, and KT / 32 is a multiple of 8)
  // BD: one window of zeros before x, read by the lanes that supply zero B columns (tc_window_mma).
  uint32_t* xs = tc_smem + MT + (BD ? MR * (KT / BLOCK_K) + L::WIN_WORDS : 0);
  if (BD) {
    for (int i = threadIdx.x; i < L::WIN_WORDS; i += blockDim.x) xs[i - L::WIN_WORDS] = 0u;  // (ordered by the staging barrier)
  }
  const int NC = WN * RN * 16;                     // weight rows of the CTA
  // Xs is zeroed once per CTA and summed over the K tiles of the first row tile: right
  // because a CTA walks several row tiles only when x fits in one K tile (stage_x below;
  // with several K tiles the launcher gives every row tile its own CTA, grid_y = n_tiles).
  if (need_X && threadIdx.x < MT) Xs[threadIdx.x] = 0.f;
  // CTAs walk row tiles nt = blockIdx.y, + gridDim.y, ... (persistent when x
  // fits in one K tile: staged once, then only weights stream).
  const int64_t n_tiles = (p.N + NC - 1) / NC;
  // Programmatic dependent launch (tc16; the launcher sets the attribute on sm_90+): this CTA may
  // start while the previous kernel on the stream is still running.  Until griddepcontrol.wait it
  // must neither read what that kernel writes nor write what it reads; an L2 prefetch is neither
  // (global memory is coherent in L2), so the start of the first row tile's weight rows (at most
  // kTcPdlPrefetchBytes per CTA: the whole tile of every CTA would be up to all the weights, past
  // L2) is requested first, its DRAM round trip overlapping the previous kernel's tail.  Then the
  // next kernel may launch in turn: its CTAs find room only as ours exit.  Without the attribute,
  // wait returns at once.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (!(ST_FLAGS & 256) && blockIdx.x == 0 && blockIdx.y < n_tiles) {
    const int64_t n0 = static_cast<int64_t>(blockIdx.y) * NC;
    const int nrows = static_cast<int>(imin64(NC, p.N - n0));
    const int row_bytes = static_cast<int>(imin64(imin64(p.wpr * 4, (p.wpr * 4 * KT + Kp - 1) / Kp),
                                                  kTcPdlPrefetchBytes / nrows));
    const int lines = (row_bytes + 127) / 128;
    const char* w0 = reinterpret_cast<const char*>(p.w + n0 * p.wpr);
    for (int i = threadIdx.x; i < nrows * lines; i += blockDim.x) {
      const int r = i / lines, l = i - r * lines;
      prefetch_l2(w0 + static_cast<int64_t>(r) * p.wpr * 4 + l * 128);
    }
  }
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif

  const T* x = static_cast<const T*>(p.x);
  const bool vec_x = (p.K % 8) == 0 && (reinterpret_cast<uintptr_t>(p.x) % 16) == 0;

  // Weight loads: each warp streams its load steps through a private ring of
  // ST shared-memory slots with cp.async, ST - 1 steps ahead of
  // the mma's; each lane reads back only the 16-byte pieces it copied itself
  // (no synchronisation).  The warp's steps are numbered j = tile * C + i
  // (step ls = wk + i * WK of tile `tile`), so prefetching runs across tiles.
  uint4* const ring0 = reinterpret_cast<uint4*>(xs + rows * RS);           // all warps' rings
  uint4* const ring = ring0 + static_cast<size_t>(warp) * ST * RN * 2 * 32;  // this warp's
  float* const red = reinterpret_cast<float*>(ring0 + kTcWarps * ST * RN * 2 * 32);  // K-split reduction
  constexpr int PER_WARP = RN * CM * 4 * 32;                               // one warp's accumulators
  float* const lora_t = red + tc_reduce_words<RN, CM>(WK, WN);            // [NC][MT] LoRA terms of a tile
  const int tile_steps_full = KT / L::STEP_K;
  const int C = wk < tile_steps_full ? (tile_steps_full - wk + WK - 1) / WK : 0;  // steps per full tile
  const int64_t n_tiles_k = (Kp + KT - 1) / KT;
  const int64_t my_n_tiles = blockIdx.y < n_tiles ? (n_tiles - 1 - blockIdx.y) / gridDim.y + 1 : 0;
  // Issue position (all 32-bit: K < 2^31): step index within the tile and slot.
  int iss_i = 0, iss_slot = 0;
  // (32-bit: steps per warp < 2^31, checked by the launcher)
  int iss_left = static_cast<int>(my_n_tiles * n_tiles_k * C);
  int64_t iss_nt = blockIdx.y;
  // Weight rows of this lane for the tile being issued: tile r, half h (row g
  // or g + 8); rows past N repeat row N-1 (valid memory) and are not stored.
  const uint32_t* wrow[RN][2];
  auto set_rows = [&](int64_t nt) {
#pragma unroll
    for (int r = 0; r < RN; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) wrow[r][h] = p.w + imin64(nt * NC + (wn * RN + r) * 16 + g + 8 * h, p.N - 1) * p.wpr;
  };
  set_rows(iss_nt);
  int iss_k = wk * L::STEP_K + tig * L::PW;  // lane window start of the next step to issue
  const int k_tile_adv = KT - C * WK * L::STEP_K;  // from past a tile's last step to the next tile's first
  // The issue position is kept incrementally, in 32-bit: the word of the window in its row
  // (iss_k / 32 words per plane) and the lane's slot in the ring (tc12's issue() was ~40
  // instructions per step, mostly 64-bit address and signed-division code).
  constexpr int kWordsPerBlock = TWO ? 2 : 1;
  const int Kp32 = static_cast<int>(imin64(Kp, INT32_MAX));
  auto word_of = [&](int k) { return static_cast<int>(static_cast<unsigned>(k) / BLOCK_K) * kWordsPerBlock; };
  int iss_word = word_of(iss_k);
  const int word_adv = WK * L::STEP_K / BLOCK_K * kWordsPerBlock;
  uint4* iss_dst = ring + lane;  // this lane's piece of slot iss_slot
  auto issue = [&]() {  // copies the next step into its slot; always commits one group
    if (iss_left > 0) {
      const bool in_k = iss_k < Kp32;
      const int bytes = in_k ? 16 : 0;  // zeros past the row: x is 0 there too
      const int word = in_k ? iss_word : 0;  // (a valid address even when nothing is read)
#pragma unroll
      for (int r = 0; r < RN; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) cp_async_16(iss_dst + (r * 2 + h) * 32, wrow[r][h] + word, bytes);
      --iss_left;
      if (iss_slot == ST - 1) {
        iss_slot = 0;
        iss_dst = ring + lane;
      } else {
        ++iss_slot;
        iss_dst += RN * 2 * 32;
      }
      iss_k += WK * L::STEP_K;
      iss_word += word_adv;
      if (++iss_i == C) {
        iss_i = 0;
        iss_k += k_tile_adv;
        if (iss_k >= n_tiles_k * KT) {  // next row tile of this CTA
          iss_k = wk * L::STEP_K + tig * L::PW;
          iss_nt += gridDim.y;
          set_rows(iss_nt);
        }
        iss_word = word_of(iss_k);
      }
    }
    cp_async_commit();
  };
  auto tile_steps = [&](int64_t kt) {
    return static_cast<int>(imin64(KT, (Kp - kt + L::STEP_K - 1) / L::STEP_K * L::STEP_K)) / L::STEP_K;
  };
#pragma unroll
  for (int j = 0; j < ST - 1; ++j) issue();
  int slot_c = 0;  // ring slot of the next step to compute
  // Group-wise s and u of a row tile into L2, one row tile ahead (tc11).  Each lane loads its
  // scales one step before their use (load_scales below), which hides an L2 hit but not a DRAM
  // miss: a 32-byte sector of fp16 scales serves 4 steps of a row at g64, and every new sector
  // stalled the warp for a DRAM round trip (H200, 8192 x 28672 int2 M = 1, BD: g64 97 us, g128
  // 75, per tensor 38).  Rows whose groups are contiguous (stride 1) only; others skip it.  (tc50, the same prefetch
  // for (G, N) storage, one span of the tile's rows per group: H100, session 47, 0.968-1.128 of the time without it
  // at M = 1, geomean 1.076; M = 16 1.004: reverted, bench/results/h100_s47_gn_prefetch_c1bc978.txt.)
  auto prefetch_scales = [&](int64_t nt_p) {
    if constexpr (GROUPED) {
      if (nt_p >= n_tiles) return;
      const int es = s_es;
      const int64_t row_bytes = ngroups * es;
      const int nsec = static_cast<int>(imin64((row_bytes + 31) / 32 + 1, 1 << 20));
#pragma unroll 1
      for (int t = 0; t < 2; ++t) {
        const char* base = static_cast<const char*>(t ? p.offset : p.scale);
        if (base == nullptr || (t ? p.u_sg : p.s_sg) != 1) continue;
        const int64_t sn = t ? p.u_sn : p.s_sn;
#pragma unroll 1
        for (int i = threadIdx.x; i < NC * nsec; i += blockDim.x) {
          const int row = i / nsec, sec = i - row * nsec;
          const int64_t n = imin64(nt_p * NC + row, p.N - 1);
          // the sectors of [row start, row start + row_bytes): every 32 bytes, then the last byte
          prefetch_l2(base + n * sn * es + imin64(static_cast<int64_t>(sec) * 32, row_bytes - 1));
        }
      }
    }
  };
  prefetch_scales(blockIdx.y);
  // x's offset of this lane's fragments at window tig, per activation tile (tc_window_mma's xl; rows of x past M
  // read the last real row: their outputs are never stored).
  int xlane[CM];
#pragma unroll
  for (int c = 0; c < CM; ++c) xlane[c] = CM <= 4 ? min(8 * c + g, rows - 1) * RS + tig * L::WIN_WORDS : 0;
  for (int64_t nt = blockIdx.y; nt < n_tiles; nt += gridDim.y) {
  prefetch_scales(nt + gridDim.y);
  const int64_t n_cta = nt * NC;
  // Group-wise: byte pointers to this lane's rows of s and u (rows g, g + 8 of each 16-row tile r;
  // rows past N read row N - 1 and are not stored), for load_scales.
  const char* srow[RN][2];
  const char* urow[RN][2];
  // RN = 2 (tc21): 32-bit byte offsets of those rows from the tile's first row instead (the pointers
  // would cost 16 more registers, see load_scales), where every offset of the tile fits (off32).
  const char* const s_tile = static_cast<const char*>(p.scale) + n_cta * s_sn_bytes;
  const char* const u_tile = has_u ? static_cast<const char*>(p.offset) + n_cta * u_sn_bytes : nullptr;
  int srel[RN][2], urel[RN][2];
  if constexpr (GROUPED && RN > 1) {
    const int last = static_cast<int>(imin64(NC - 1, p.N - 1 - n_cta));  // rows past N read row N - 1
#pragma unroll
    for (int r = 0; r < RN; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int rel = min((wn * RN + r) * 16 + g + 8 * h, last);
        // (unsigned: where off32 is false these wrap, defined and unused; where it is true they fit)
        srel[r][h] = static_cast<int>(static_cast<uint32_t>(rel) * static_cast<uint32_t>(s_sn_bytes));
        urel[r][h] = static_cast<int>(static_cast<uint32_t>(rel) * static_cast<uint32_t>(u_sn_bytes));
      }
  }
  if constexpr (GROUPED && RN == 1) {
#pragma unroll
    for (int r = 0; r < RN; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t n = imin64(n_cta + (wn * RN + r) * 16 + g + 8 * h, p.N - 1);
        srow[r][h] = static_cast<const char*>(p.scale) + n * p.s_sn * s_es;
        urow[r][h] = has_u ? static_cast<const char*>(p.offset) + n * p.u_sn * s_es : nullptr;
      }
  }
  constexpr int NA = kTcAccArrays<T, GROUPED && !BD, RN, CM>;
  float acc2[NA][RN][CM][4];
  float tot[RN][CM][4];  // BD: the scaled sums
#pragma unroll
  for (int r = 0; r < RN; ++r)
#pragma unroll
    for (int c = 0; c < CM; ++c)
#pragma unroll
      for (int e = 0; e < 4; ++e) tot[r][c][e] = 0.f;
#pragma unroll
  for (int q = 0; q < NA; ++q)
#pragma unroll
    for (int r = 0; r < RN; ++r)
#pragma unroll
      for (int c = 0; c < CM; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc2[q][r][c][e] = 0.f;
  for (int64_t kt0 = 0; kt0 < Kp; kt0 += KT) {
    const int steps = tile_steps(kt0);
    const int kb_tile = static_cast<int>(kt0 >> 5);  // (blocks per row < 2^31)
    const int kt_len = steps * L::STEP_K;
    const bool stage_x = n_tiles_k > 1 || nt == blockIdx.y;  // one K tile: x stays for all row tiles
    // The previous K tile is consumed; or (x in several K tiles and a CTA walking several row tiles,
    // which the launcher does not do today: grid_y = n_tiles there) the previous row tile's last one,
    // which without a K split nothing else would order.
    if (kt0 > 0 || (n_tiles_k > 1 && nt != blockIdx.y)) __syncthreads();
    // Stage x[m0 .. m0+rows) [kt0, kt0 + kt_len) as pairs, 4 pairs (8 inputs) per 16-byte piece.
    if (stage_x) {
      const int quads_per_row = kt_len / 8;
      const int total = rows * quads_per_row;
      // Row of piece v, v / quads_per_row, by a float reciprocal (a runtime integer division is ~20
      // instructions, and each thread needs 2 x kXBatch of them: 15% of the M = 1 kernel's
      // instructions went to the staging code in tc12's ncu counts).  Exact: (v + 0.5) / qpr is at
      // least 0.5 / qpr from an integer, and the float error, <= 2^-22 * v / qpr <= rows * 2^-22
      // (rows <= 64), stays below that while qpr < 2^15 (qpr = KT / 8 <= 112 KB / 16 B).
      const float inv_qpr = 1.f / static_cast<float>(quads_per_row);
      auto row_of = [&](int v) { return static_cast<int>((static_cast<float>(v) + 0.5f) * inv_qpr); };
      if (vec_x) {
        // kXBatch independent 16-byte loads in flight per thread before any store: one
        // L2 round trip per 2 KB x kXBatch of x per CTA, not one per 2 KB (tc8).
        constexpr int kXBatch = 8;
        for (int v0 = threadIdx.x; v0 < total; v0 += kXBatch * kTcWarps * 32) {
          uint4 val[kXBatch];
#pragma unroll
          for (int i = 0; i < kXBatch; ++i) {
            const int v = v0 + i * kTcWarps * 32;
            const int m = row_of(v), q = v - m * quads_per_row;
            const int64_t k = kt0 + 8 * q;
            // K % 8 == 0 here: a piece is either all inside x or all past K (zeros)
            val[i] = v < total && k < p.K ? __ldg(reinterpret_cast<const uint4*>(x + (m0 + m) * p.K + k))
                                          : make_uint4(0u, 0u, 0u, 0u);
          }
#pragma unroll
          for (int i = 0; i < kXBatch; ++i) {
            const int v = v0 + i * kTcWarps * 32;
            if (v < total) {
              const int m = row_of(v), q = v - m * quads_per_row;
              *reinterpret_cast<uint4*>(xs + m * RS + L::pair_addr(4 * q)) = val[i];
            }
          }
        }
      } else {
        for (int v = threadIdx.x; v < total; v += blockDim.x) {
          const int m = v / quads_per_row, q = v % quads_per_row;
          const int64_t k = kt0 + 8 * q;
          const T* src = x + (m0 + m) * p.K + k;
          union { uint4 v; T e[8]; } val;
#pragma unroll
          for (int j = 0; j < 8; ++j) val.e[j] = (k + j < p.K) ? src[j] : from_float<T>(0.f);
          *reinterpret_cast<uint4*>(xs + m * RS + L::pair_addr(4 * q)) = val.v;
        }
      }
    }
    // x is staged; and (LoRA) the previous row tile's epilogue has read lora_t, which this tile's
    // LoRA terms overwrite.  A later row tile with x kept and no LoRA needs no barrier here: the
    // K-split reduction's own barriers order `red` (tc13).  (x is restaged only when it spans several
    // K tiles, and then every CTA owns one row tile, grid_y = n_tiles.)
    if (stage_x || p.lora_xa) __syncthreads();
    if (BD && stage_x) {
      // Per-block sums of x (rows 0 .. MR - 1; zeros for a row past M) in a fixed order (deterministic).
      const int nb = kt_len / BLOCK_K;
      for (int i = threadIdx.x; i < MR * nb; i += blockDim.x) {
        const int kb = i / MR, m = i % MR;  // (MR a power of two: a shift and a mask)
        float sum = 0.f;
        if (m < rows) {
#pragma unroll 4
          for (int pi = 0; pi < BLOCK_K / 2; ++pi) {
            const uint32_t v = xs[m * RS + L::pair_addr(kb * (BLOCK_K / 2) + pi)];
            const T* hv = reinterpret_cast<const T*>(&v);
            sum += to_float<T>(hv[0]) + to_float<T>(hv[1]);
          }
        }
        Xb[i] = sum;
      }
      __syncthreads();
    }
    if (need_X && stage_x) {
      // Row sums of x in a fixed order (deterministic): warp w owns rows w, w+4, ...
      for (int m = warp; m < rows; m += kTcWarps) {
        float sum = 0.f;
        for (int pi = lane; pi < kt_len / 2; pi += 32) {
          const uint32_t v = xs[m * RS + L::pair_addr(pi)];
          const T* hv = reinterpret_cast<const T*>(&v);
          sum += to_float<T>(hv[0]) + to_float<T>(hv[1]);
        }
        sum = warp_sum(sum);
        if (lane == 0) Xs[m] += sum;
      }
    }

    // Group-wise scales and offsets of a lane window (rows g, g + 8 of each
    // tile r; one value per 32-weight block), read straight from global memory
    // (L1-cached: a 32-byte sector serves several steps) one step ahead of their
    // use, so the load latency hides behind a step of mma's (tc9; tc8 staged
    // the tile's scales in shared memory: 66 KB at M = 1 on K = 8192, which cut
    // the resident CTAs and put a barrier-bound staging phase before each row tile).
    constexpr int SB = GROUPED ? L::BLOCKS : 1;
    uint32_t sb[2][RN][2][SB] = {}, ub[2][RN][2][SB] = {};  // [buffer][tile][row half][block]: raw bits (load_scale_bits)
    // Per buffer, bit b: block b shares block b - 1's group (not loaded: compute_step copies the converted
    // value; a register copy of the raw bits here would wait for the load, tc30).
    uint32_t sm[2] = {0u, 0u};
    // The group of a block and its byte offset are the same for all of the lane's rows, so they
    // are computed once per block (tc11: per row and block, with 64-bit row arithmetic, they were
    // most of the decode kernel's step loop); the rows' base pointers once per row tile (srow).
    // (x 1/2 for the doubled values 2t / 2b; not for int2's q - 1 or the subnormal codes)
    constexpr float kScaleFactor = KIND == 3 || NQ > 0 ? 1.f : 0.5f;
    // Where the accumulators leave room (CM <= 4): the conversion waits for the step that uses the value.  At CM = 8
    // (M = 33..64, one kernel for every scale dtype) the raw and converted copies spilled (binary 40 -> 776 bytes), so
    // there the value is converted at its load as before and kept as float bits.
    constexpr bool kDeferScaleConv = CM <= 4;
    // (Deferred conversions assume a scale dtype fixed at compile time: a run-time one would branch three ways per
    // value at every step.  Every group-wise instance with CM <= 4 is typed, kTcFoldTyped and the BD kernel.)
    static_assert(!GROUPED || !kDeferScaleConv || SDT >= 0, "deferred scale conversion needs a typed instance");
    auto held_s = [&](uint32_t bits) {
      if constexpr (kDeferScaleConv) return bits;
      else return __float_as_uint(scale_of_bits(bits, s_f32, s_f16) * kScaleFactor);
    };
    auto held_u = [&](uint32_t bits) {
      if constexpr (kDeferScaleConv) return bits;
      else return __float_as_uint(scale_of_bits(bits, s_f32, s_f16));
    };
    // A block that shares its predecessor's group: deferred, the mask tells compute_step to reuse the converted
    // predecessor (a copy of the raw bits would wait for the load; zeroing the slot instead made ptxas spill in
    // the CM = 1 kernels); else the converted value is copied, as before tc30.
    auto keep_prev = [&](uint32_t (&sv)[SB], uint32_t (&uv)[SB], int b, uint32_t& same_mask) {
      if constexpr (kDeferScaleConv) {
        same_mask |= 1u << b;
      } else {
        sv[b] = sv[b > 0 ? b - 1 : 0];
        uv[b] = uv[b > 0 ? b - 1 : 0];
      }
    };
    auto load_scales = [&](int ls, uint32_t (&sv)[RN][2][SB], uint32_t (&uv)[RN][2][SB], uint32_t& same_mask) {
      same_mask = 0u;
      if constexpr (GROUPED && RN > 1) {
        // Two 16-row tiles per warp: the row pointers would cost 16 more registers (measured:
        // 168 -> 255 for fp16 int2 at M <= 16).  tc21: 32-bit byte offsets from the tile's first row
        // (srel / urel, one IADD per load) where they fit; else the row offsets are recomputed per
        // load in 64 bits, as before (IMAD was 13% of the instructions at g64 M = 16, session 17's ncu).
        const int kb0 = static_cast<int>((kt0 + static_cast<int64_t>(ls * 4 + tig) * L::PW) >> 5);
        if (off32) {
          int prev = -1;
#pragma unroll
          for (int b = 0; b < SB; ++b) {
            const int kb = kb0 + b;
            const int grp = min(gshift >= 0 ? (kb >> gshift) : kb / gblocks, static_cast<int>(ngroups) - 1);
            const int so = grp * static_cast<int>(s_sg_bytes), uo = grp * static_cast<int>(u_sg_bytes);
#pragma unroll
            for (int r = 0; r < RN; ++r)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                if (b > 0 && grp == prev) {  // the block shares its predecessor's group: no second load
                  keep_prev(sv[r][h], uv[r][h], b, same_mask);
                } else {
                  sv[r][h][b] = held_s(load_scale_bits(s_tile + (srel[r][h] + so), s_f32));
                  uv[r][h][b] = has_u ? held_u(load_scale_bits(u_tile + (urel[r][h] + uo), s_f32)) : 0u;
                }
              }
            prev = grp;
          }
          return;
        }
#pragma unroll
        for (int r = 0; r < RN; ++r)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t n = imin64(n_cta + (wn * RN + r) * 16 + g + 8 * h, p.N - 1);
#pragma unroll
            for (int b = 0; b < SB; ++b) {
              const int kb = kb0 + b;
              const int grp = min(gshift >= 0 ? (kb >> gshift) : kb / gblocks, static_cast<int>(ngroups) - 1);
              const bool same = b > 0 && (gshift >= 0 ? ((kb - 1) >> gshift) : (kb - 1) / gblocks) ==
                                              (gshift >= 0 ? (kb >> gshift) : kb / gblocks);
              if (same) {  // the block shares its predecessor's group: no second load
                keep_prev(sv[r][h], uv[r][h], b, same_mask);
              } else {
                sv[r][h][b] = held_s(load_param_bits(p.scale, n * p.s_sn + grp * p.s_sg, s_f32));
                uv[r][h][b] = has_u ? held_u(load_param_bits(p.offset, n * p.u_sn + grp * p.u_sg, s_f32)) : 0u;
              }
            }
          }
      } else if constexpr (GROUPED) {
        // tc37: 32-bit block and byte offsets (kb_tile: the K tile's first block; the launcher refuses scales
        // whose group offsets pass 2^31 bytes), added to the rows' 64-bit pointers once per load.
        const int kb0 = kb_tile + ((ls * 4 + tig) * L::PW >> 5);
        int prev = -1;
#pragma unroll
        for (int b = 0; b < SB; ++b) {
          const int kb = kb0 + b;
          const int grp = min(gshift >= 0 ? (kb >> gshift) : kb / gblocks, static_cast<int>(ngroups) - 1);
          if (b > 0 && grp == prev) {  // the block shares its predecessor's group: no second load
#pragma unroll
            for (int r = 0; r < RN; ++r)
#pragma unroll
              for (int h = 0; h < 2; ++h) keep_prev(sv[r][h], uv[r][h], b, same_mask);
          } else {
            const uint32_t so = static_cast<uint32_t>(grp) * static_cast<uint32_t>(s_sg_bytes),
                           uo = static_cast<uint32_t>(grp) * static_cast<uint32_t>(u_sg_bytes);
#pragma unroll
            for (int r = 0; r < RN; ++r)
#pragma unroll
              for (int h = 0; h < 2; ++h) {
                sv[r][h][b] = held_s(load_scale_bits(srow[r][h] + so, s_f32));
                uv[r][h][b] = has_u ? held_u(load_scale_bits(urow[r][h] + uo, s_f32)) : 0u;
              }
          }
          prev = grp;
        }
      }
    };
    auto compute_step = [&](int ls, const uint4 (&cw)[RN][2], const uint32_t (&svb)[RN][2][SB], const uint32_t (&uvb)[RN][2][SB],
                            uint32_t same_mask) {
      const int win = ls * 4 + tig;  // this lane's window index in the tile
      float sv[RN][2][SB], uv[RN][2][SB];  // the step's scales, converted here, a step after their loads
#pragma unroll
      for (int r = 0; r < RN; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int b = 0; b < SB; ++b) {
            if constexpr (!GROUPED) {
              sv[r][h][b] = uv[r][h][b] = 0.f;
            } else if constexpr (kDeferScaleConv) {
              const bool same = b > 0 && ((same_mask >> b) & 1u);
              sv[r][h][b] = same ? sv[r][h][b > 0 ? b - 1 : 0] : scale_of_bits(svb[r][h][b], s_f32, s_f16) * kScaleFactor;
              uv[r][h][b] = same ? uv[r][h][b > 0 ? b - 1 : 0] : scale_of_bits(uvb[r][h][b], s_f32, s_f16);
            } else {
              sv[r][h][b] = __uint_as_float(svb[r][h][b]);
              uv[r][h][b] = __uint_as_float(uvb[r][h][b]);
            }
          }
      // The scale dtype branch is taken per window, not per k-step.
      if constexpr (BD) tc_window_mma<T, KIND, GROUPED, BD, RN, CM, false, SB>(acc2, cw, xs, RS, rows, win, g, xlane, (win - tig) * L::WIN_WORDS, sv, uv, tot, Xb, fb, has_u);
      else if (GROUPED && s_f32) tc_window_mma<T, KIND, GROUPED, BD, RN, CM, true, SB>(acc2, cw, xs, RS, rows, win, g, xlane, (win - tig) * L::WIN_WORDS, sv, uv, tot, Xb, fb, has_u);
      else tc_window_mma<T, KIND, GROUPED, BD, RN, CM, false, SB>(acc2, cw, xs, RS, rows, win, g, xlane, (win - tig) * L::WIN_WORDS, sv, uv, tot, Xb, fb, has_u);
    };

    if (GROUPED && C > 0 && wk < steps) load_scales(wk, sb[0], ub[0], sm[0]);
    for (int i = 0; i < C; ++i) {
      cp_async_wait_dyn(ST - 2);  // this step has landed (this lane's copies)
      issue();
      const uint4* slot = ring + slot_c * (RN * 2 * 32);
      slot_c = slot_c == ST - 1 ? 0 : slot_c + 1;
      const int ls = wk + i * WK;
      if (ls >= steps) continue;  // past the end of the last tile
      // The buffer is picked by a branch on the step parity, so both keep static register indices.
      const int cur = i & 1;
      if (GROUPED && ls + WK < steps) {
        if (cur == 0) load_scales(ls + WK, sb[1], ub[1], sm[1]);
        else load_scales(ls + WK, sb[0], ub[0], sm[0]);
      }
      uint4 cw[RN][2];
#pragma unroll
      for (int r = 0; r < RN; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) cw[r][h] = slot[(r * 2 + h) * 32 + lane];
      if (cur == 0) compute_step(ls, cw, sb[0], ub[0], sm[0]);
      else compute_step(ls, cw, sb[1], ub[1], sm[1]);
    }
  }
  float acc[RN][CM][4];
#pragma unroll
  for (int r = 0; r < RN; ++r)
#pragma unroll
    for (int c = 0; c < CM; ++c)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if constexpr (BD) {  // the four windows' scaled sums (every lane then holds x rows 2 c, 2 c + 1)
          float v = tot[r][c][e];
          v += __shfl_xor_sync(0xffffffffu, v, 1);
          v += __shfl_xor_sync(0xffffffffu, v, 2);
          acc[r][c][e] = v;
        } else {
          acc[r][c][e] = tc_sum_sets<NQ, NA>(acc2, r, c, e);
        }
      }
  if (p.lora_xa) {
    // Fused LoRA term of the tile, l[n][m] = xa[m] . B[n] (fp32), by all warps:
    // a group of 8 lanes per (row, activation row), lanes striding over r
    // (coalesced loads of B's row), shuffles within the group.  Stored in
    // shared memory for the epilogue (the barrier below orders it).
    const int l8 = lane & 7;
    const unsigned gmask = 0xFFu << (lane & 24);
    const int items = NC * rows;
    const int r_len = static_cast<int>(p.lora_r);
    for (int it = threadIdx.x >> 3; it < items; it += kTcWarps * 4) {
      const int nl = it / rows, ml = it - nl * rows;
      const int64_t n = imin64(n_cta + nl, p.N - 1);
      const float* xa = p.lora_xa + (m0 + ml) * p.lora_r;
      float l = 0.f;
      if (p.lora_b_f32) {
        const float* lb = static_cast<const float*>(p.lora_b) + n * p.lora_r;
#pragma unroll 4
        for (int j = l8; j < r_len; j += 8) l = fmaf(__ldg(xa + j), __ldg(lb + j), l);
      } else {
        const T* lb = static_cast<const T*>(p.lora_b) + n * p.lora_r;
#pragma unroll 4
        for (int j = l8; j < r_len; j += 8) l = fmaf(__ldg(xa + j), to_float<T>(lb[j]), l);
      }
      l += __shfl_xor_sync(gmask, l, 4);
      l += __shfl_xor_sync(gmask, l, 2);
      l += __shfl_xor_sync(gmask, l, 1);
      if (l8 == 0) lora_t[nl * MT + ml] = l;
    }
  }
  // Reduce the K-split warps in shared memory, in a fixed order.
  const bool lead = wk == 0;  // this warp stores the tile
  // (Without a K split this barrier orders only the LoRA terms and the row sums Xs, which other
  // warps wrote; the block-diagonal path at M = 1 on wide N has neither.)
  if (WK > 1 || p.lora_xa || need_X) __syncthreads();
  if (WK > 1) {
    if (wk > 0) {
#pragma unroll
      for (int r = 0; r < RN; ++r)
#pragma unroll
        for (int c = 0; c < CM; ++c)
#pragma unroll
          for (int e = 0; e < 4; ++e) red[(warp - WN) * PER_WARP + ((r * CM + c) * 4 + e) * 32 + lane] = acc[r][c][e];
    }
    __syncthreads();
    if (wk == 0) {
      for (int k2 = 1; k2 < WK; ++k2) {
#pragma unroll
        for (int r = 0; r < RN; ++r)
#pragma unroll
          for (int c = 0; c < CM; ++c)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              acc[r][c][e] += red[((k2 - 1) * WN + wn) * PER_WARP + ((r * CM + c) * 4 + e) * 32 + lane];
      }
    }
  }
  if (lead) {

  // Epilogue: per row scaling (per tensor / channel), offset * X, bias; store.
  T* y = static_cast<T*>(p.y);
  // Values in the mma: codes (subnormal path), q - 1 (int2), or 2t / 2b (ternary / binary).
  const float vscale = (NQ > 0 || KIND == 3) ? 1.f : 0.5f;
#pragma unroll
  for (int r = 0; r < RN; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t n = n_cta + (wn * RN + r) * 16 + g + 8 * h;
      if (n >= p.N) continue;
      float s = 1.f, u = 0.f;
      if constexpr (!GROUPED) {
        s = load_param(p.scale, n * p.s_sn, s_f32, s_f16) * vscale;
        if (p.offset) u = load_param(p.offset, n * p.u_sn, s_f32, s_f16);
      }
      const float bias = p.bias ? load_param(p.bias, n, s_f32, s_f16) : 0.f;
#pragma unroll
      for (int c = 0; c < CM; ++c)
#pragma unroll
        for (int e2 = 0; e2 < 2; ++e2) {
          // (BD: every lane of the quad holds the sums of rows 2 c + e2; lane tig = 0 stores them)
          const int ml = BD ? 2 * c + e2 : 8 * c + 2 * tig + e2;
          if (ml >= rows || (BD && tig != 0)) continue;
          float v = acc[r][c][2 * h + e2];
          if constexpr (!GROUPED && NQ > 0 && TWO) v = s * (v - Xs[ml]) + u * Xs[ml];  // codes: sum (c - 1) x = sum c x - X
          else if constexpr (!GROUPED) v = s * v + (need_X ? u * Xs[ml] : 0.f);
          if (p.lora_xa) v = fmaf(p.lora_scale, lora_t[((wn * RN + r) * 16 + g + 8 * h) * MT + ml], v);
          y[(m0 + ml) * p.N + n] = from_float<T>(v + bias);
        }
    }
  }  // lead: epilogue
  }  // row tiles
  cp_async_wait<0>();
}

// The block-diagonal kernel with CM = 2 (M = 3, 4): resident CTAs per SM asked of ptxas (it takes
// 166-168 registers, sm_90a).
constexpr int kTcBdMinCtasPerSm = 3;

// The kernels: the body above under launch bounds.  The block-diagonal one asks ptxas for
// 3 (binary) or 4 CTAs per SM (<= 168 / 128 registers: M <= 2 is latency-bound, and without the
// bound it took 147-159).
// The others: resident CTAs per SM asked of ptxas per tile configuration, i.e. a register budget: what each had
// before tc13 without a bound (80-96 registers per tensor at M <= 8, 128 group-wise, ...; ptxas -v,
// sm_90a).  tc13's immediate-offset x loads and lighter issue code let ptxas hoist more loads, which
// took more registers without the bound (per tensor M <= 8: 96, i.e. 5 CTAs per SM instead of 6;
// binary group-wise RN = 1 / CM = 2: 163 instead of 127).  A bound of 1 is not "no bound": ptxas then
// takes up to 255 (af1c173); CM = 8 keeps it (204-255 registers either way, 2 CTAs per SM).
// RN = 2, CM = 1 (per tensor M <= 8, tc18): 4, i.e. <= 128 registers (126-128, no spills, sm_90a);
// with 5 (96) fp16 spilled 8-36 bytes with 2-6 LDL / STL in the step loop.  The rule takes it where
// x's tile holds a CTA to <= 4 per SM anyway (x large or split; M = 3, 4 from K ~4096 on).  H200,
// session 18, A/B in one machine (bench/results/h200_s18_call4_ab_8ac0803.txt): fp16 int2 / binary
// M = 3..8 5-27% faster (28672 x 8192 binary M = 8 59.3 -> 43.1 us, 8192 x 28672 int2 M = 8 45.1 ->
// 38.3), bf16 2-15%, 28672 x 8192 M = 1 int2 / binary 11% / 16%; nothing slower by more than 1%.
// tc20: RN = CM = 2 (per tensor M = 5..16 where the rule splits rows and columns) 5 -> 4, i.e. <= 128
// registers instead of 96; group-wise 3 -> 2 (168 -> 200-235, binary's 116-byte spill gone).  H200,
// session 19, A/B in one machine (bench/results/h200_s19_call1_f088648.txt): per tensor M = 9..16
// 3-22% faster on every shape and kind (28672 x 8192 ternary M = 16 88.3 -> 68.5 us, int2 97.1 -> 84.5;
// 4096^2 8-11%), fp16 ternary M = 5..8 2-11%; group-wise g64 M = 9..16 0-1% (not the limit there).
// The one-tile instance under 5 instead of 6 (80 -> 92-96 registers) measured within +-2% at M = 1, 2
// (binary 4096^2 -4%, ternary 8192 x 28672 M = 1 +2%): not taken.
template <bool GROUPED, int RN, int CM>
constexpr int kTcMinCtasPerSm = RN * CM == 1 ? (GROUPED ? 4 : 6)
                              : RN == 1      ? 4
                              : CM == 1      ? 4
                              : CM == 2      ? (GROUPED ? 2 : 4)
                              : CM == 4      ? (GROUPED ? 2 : 3)
                                             : 1;
// SDT: the scale / offset dtype fixed at compile time (as the block-diagonal kernel, tc14), or -1
// (p.s_dtype at run time).  Typed instances for the group-wise folding path where its per-step scale
// loads matter (kTcFoldTyped: CM = 2..4 since tc24, CM = 1 since tc25); the rest keeps one instance for
// every scale dtype.
template <bool GROUPED, int CM> constexpr bool kTcFoldTyped = GROUPED && CM <= 4;
template <typename T, int KIND, bool GROUPED, int SDT, int RN, int CM>
__global__ void __launch_bounds__(kTcWarps * 32, kTcMinCtasPerSm<GROUPED, RN, CM>)
tc_linear_kernel(const LinearParams p, const int KT, const int WN, const int st_flags) {
  tc_linear_body<T, KIND, GROUPED, RN, CM, false, SDT>(p, KT, WN, st_flags);
}
// One block-diagonal instance per scale dtype (SDT: fp32, fp16, bf16): its per-step scale loads
// then take no dtype branches (tc14); and per CM (activation tiles of 2 rows of x each: M <= 2, 4).
template <typename T, int KIND, int SDT, int CM>
__global__ void __launch_bounds__(kTcWarps * 32, CM == 1 ? (KIND == 1 ? 3 : 4) : kTcBdMinCtasPerSm)
tc_linear_bd_kernel(const LinearParams p, const int KT, const int WN, const int st_flags) {
  tc_linear_body<T, KIND, true, 1, CM, true, SDT>(p, KT, WN, st_flags);
}

// Shared-memory words of x's tile for `rows` rows and all of K (padded to a load step).  Past the
// budget beside the deepest weight ring (kTcRingWords: launch_tc_cfg sizes the K tile with it), x
// spans several K tiles and every CTA restages it per K tile (8 rows at K = 8192: 160 KB), which the
// launch rules below weigh.  (The K-split reduction's and LoRA's words, at most ~2 K, are left out.)
constexpr int kTcRingWords = kTcMaxStages<1> * kTcWarps * 1 * 2 * 32 * 4;  // words of the deepest ring, RN = 1 or 2
static_assert(kTcRingWords == kTcMaxStages<2> * kTcWarps * 2 * 2 * 32 * 4, "the deepest ring is RN-independent");
template <int KIND> inline int64_t tc_x_words(int64_t Kp, int rows) {
  using L = TcLayout<KIND>;
  const int64_t k_all = std::min<int64_t>((Kp + L::STEP_K - 1) / L::STEP_K * L::STEP_K, 1 << 28);
  return rows * static_cast<int64_t>(L::row_words(static_cast<int>(k_all)));
}

// Launch rule (no autotuning): CM from M; WN (warps along N; the other
// 4 / WN warps split K) so that the grid has at least ~3 CTAs per SM.
template <typename T, int KIND, bool GROUPED, int RN, int CM, bool BD = false>
cudaError_t launch_tc_cfg(const LinearParams& p, int num_sms, cudaStream_t stream) {
  using L = TcLayout<KIND>;
  constexpr int MT = 8 * CM;            // shared-memory slots for rows of x (tc_linear_body)
  constexpr int MR = BD ? 2 * CM : MT;  // rows of x per CTA (BD: B columns 2 w + m, m < 2, per activation tile)
  const int64_t Kp = padded_k(p.K);
  const int rows = static_cast<int>(imin64(MR, p.M));
  const int64_t steps_total = (Kp + L::STEP_K - 1) / L::STEP_K;
  const int64_t m_tiles = (p.M + MR - 1) / MR;
  auto n_tiles_for = [&](int wn) { return (p.N + wn * RN * 16 - 1) / (wn * RN * 16); };
  // Warps along N: fewer (and more CTAs, the other warps splitting K) until the
  // grid has ~8 CTAs per SM at M <= 8 on one 16-row tile per warp (RN = 2, tc18:
  // one CTA per SM).  With more rows of x, every CTA stages them once per K tile,
  // so CTAs keep all 4 warps on N (64 RN rows) unless the grid would not cover
  // the GPU twice.
  // M = 9..16 (CM = 2): one CTA per SM is enough (H200, 594c55d, BITMM_TC_WN override:
  // 8192 x 28672 M = 16 58.3 us with WN = 4 (224 CTAs) vs 75.7 us with WN = 2 (448 CTAs)).
  // Block-diagonal path at M = 1, two-plane kinds, N wide enough for kTcBdWideMinCtasPerSm (3) CTAs
  // of 64 rows per SM (tc_bd_wide): all 4 warps along N (H200, session 13, BITMM_TC_WN override,
  // bench/NOTES.md tc12: int2 g64 on 8192 x 28672 63.9-66.7 us with WN = 4 (448 CTAs) vs 78.0-82.9
  // us with WN = 1 (1792 CTAs)): a warp that walks all of its rows' steps (no K split) reuses each
  // 32-byte sector of s and u for 4 consecutive steps instead of loading a new one at every step.
  // Not for binary (g64: 75.9 us with WN = 4 vs 67.0 with WN = 1), not for narrower N (unmeasured
  // between 32 and 64 rows per CTA, i.e. WN = 2) and not at M = 2 (g64 76.4 vs 77.6 us, g128 73.0
  // vs 64.8): those keep the rule below.
  // The folding path at M = 4..8 (group-wise, CM = 1, not BD) takes the same 3-CTAs-per-SM floor,
  // for the same reason (its per-pair fold loads s and u per step like BD), all kinds: H200,
  // session 14 (bench/results/h200_s14_call1.txt, BITMM_TC_WN override), 8192 x 28672 g64 M = 4:
  // int2 130.1 -> 107.4 us, binary 87.5 -> 81.8 us with WN = 4 (448 CTAs) instead of WN = 1
  // (auto at b38f292, h200_s14_call4_b38f292.txt: 106.2 / 79.1).  Not at M = 3: one tree (e12937e,
  // bench/results/h200_s14_call6_e12937e.txt), 8192 x 28672 g64, WN = 1 vs 4: M = 3 int2 101.6 vs
  // 119.7 us, binary 70.4 vs 95.4, ternary 95.4 vs 116.8; M = 4 126.6 vs 103.3, 83.6 vs 77.9, 115.2
  // vs 89.8; M = 5 / 8 int2 172.3 / 170.1 vs 153.8 / 149.1 (not understood: M = 3 and 4 run the
  // same tiles).
  // The block-diagonal path with two activation tiles (M = 3, 4) takes the wide-N floor where N allows
  // it and CM = 2's one CTA per SM elsewhere: H200, session 16 (bench/results/h200_s16_call2_98173d4.txt,
  // g64, BITMM_TC_WN override): 8192 x 28672 int2 M = 4 73.6 us with WN = 4 vs 77.3 / 78.5 with WN = 1 / 2;
  // 8192^2 int2 M = 3 24.3 us with the rule's WN = 2 vs 27.9 with WN = 1.
  // Shared-memory budget: 112 KB, or the device's opt-in maximum if smaller (sm_86 / sm_89: 99 KB).
  // Per-device facts, cached (atomics: several host threads may launch at once).
  static std::atomic<int> optin[kMaxTcDevices], smem_per_sm[kMaxTcDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev >= kMaxTcDevices) return cudaErrorInvalidDevice;
  if (optin[dev] == 0) {
    int v = 0, w = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&w, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess)
      return cudaErrorInvalidDevice;
    smem_per_sm[dev] = w;
    optin[dev] = v;
  }
  const int smem_limit = std::min(kTcSmemBytes, optin[dev].load());
  const int budget_words = smem_limit / 4 - MT;  // minus the row sums
  constexpr int stage_words = kTcWarps * RN * 2 * 32 * 4;  // one slot of every warp's cp.async ring
  int stages = kTcMaxStages<RN>;
  const bool lora = p.lora_xa != nullptr;
  auto words_for = [&](int kt, int wn) {  // x tile (BD: its block sums), weight ring, K-split reduction, LoRA terms
    return rows * L::row_words(kt) + (BD ? MR * (kt / BLOCK_K) + L::WIN_WORDS : 0) + stages * stage_words +
           tc_reduce_words<RN, CM>(kTcWarps / wn, wn) + (lora ? wn * RN * 16 * MT : 0);
  };
  const bool x_split = !BD && tc_x_words<KIND>(Kp, rows) + kTcRingWords > budget_words;
  const bool bd_wide = BD && (p.M == 1 || CM > 1) && tc_bd_wide(p, num_sms);
  const bool fold_one_tile = GROUPED && !BD && CM == 1 && p.M >= 4;
  int WN = 4;
  const int64_t min_ctas = (bd_wide || fold_one_tile ? kTcBdWideMinCtasPerSm : CM == 1 && RN == 1 ? 8 : CM <= 2 ? 1 : 2) *
                           static_cast<int64_t>(num_sms);
  while (WN > 1 && n_tiles_for(WN) * m_tiles < min_ctas) WN /= 2;
  // The folding path with x in several K tiles (M = 5..8 at K = 8192): two warps along N where that
  // still gives every SM a CTA.  H200, session 17 (bench/results/h200_s17_call2_dad7c77.txt,
  // BITMM_TC_WN override, g64 M = 8): 8192^2 int2 49.1 us (WN = 1, the floor above) -> 37.4, binary
  // 41.9 -> 31.0; 8192 x 28672 int2 146.9 (WN = 4) -> 142.3, binary 114.2 -> 115.9.
  if (fold_one_tile && x_split && n_tiles_for(2) * m_tiles >= num_sms) WN = 2;
  // Per tensor / channel M <= 3 on ~2 32-row CTAs per SM, short K: two warps along N (tc28, tc_launch_rules.h).
  if constexpr (!GROUPED && !BD && RN == 1 && CM == 1)
    if (tc_per_tensor_two_warps_n(p.M, p.K, p.N, num_sms, KIND == static_cast<int>(Kind::kBinary))) WN = 2;
  // Per tensor / channel M = 17..64 on wide N, 4096 <= K <= 8192: all 4 warps along N (tc_launch_rules.h).
  if constexpr (!GROUPED && !BD && RN == 2 && (CM == 4 || CM == 8))
    if (tc_per_tensor_wide_four_warps_n(p.M, p.K, p.N, num_sms)) WN = 4;
  // The block-diagonal path at M <= 2 on long K: binary two warps along N, ternary / int2 the K tile capped
  // with a 3-slot ring (and one or two warps along N where N is not wide) (tc_bd_long_k, tc_launch_rules.h).
  int kt_rule = 0, st_rule = 0;
  if constexpr (BD && CM == 1) {
    constexpr bool binary = KIND == static_cast<int>(Kind::kBinary);
    const TcBdLongK lk = tc_bd_long_k(p.M, p.K, p.N, num_sms, tc_bd_wide_n(p, num_sms), binary);
    if (lk.wn > 0) WN = lk.wn;
    kt_rule = lk.kt_max;
    st_rule = lk.stages;
  }
  // Benchmark override of the rule (read once).  Where tc_bd_long_k caps the K tile, the cap stays: tc22's
  // launch there is BITMM_TC_WN=2 with BITMM_TC_KT_MAX=1000000 (no cap).
  static const int wn_env = env_int("BITMM_TC_WN");
  if (wn_env == 1 || wn_env == 2 || wn_env == 4) WN = wn_env;
  int kt_steps = 1;
  for (int pass = 0; pass < 2; ++pass) {
    kt_steps = 1;
    while (kt_steps < steps_total && words_for((kt_steps + 1) * L::STEP_K, WN) <= budget_words) ++kt_steps;
    // Fewer load steps per tile than K-split warps: keep the warps busy along N instead.
    if (kt_steps >= kTcWarps / WN || WN == 4) break;
    while (WN < 4 && kt_steps < kTcWarps / WN) WN *= 2;
  }
  // The K tile at most this many inputs of x (fewer bytes of shared memory per CTA, x restaged per K
  // tile): the long-K rule above, or the benchmark override (read once; it replaces the rule's cap), but
  // no fewer load steps than K-split warps (as above).
  static const int kt_env = env_int("BITMM_TC_KT_MAX");
  const int kt_max = kt_env > 0 ? kt_env : kt_rule;
  if (kt_max > 0) kt_steps = std::min(kt_steps, std::max(kTcWarps / WN, kt_max / L::STEP_K));
  const int KT = kt_steps * L::STEP_K;
  // Ring depth with x in several K tiles: the deepest ring (which sized KT above), or tc_bd_long_k's 3 slots where
  // that rule's own cap split x (session 59; not under a BITMM_TC_KT_MAX cap, so that the earlier sessions' runs
  // with it alone keep their launch).  Benchmark override of the ring depth (read once): where x fits one K tile it
  // replaces the stage rule's pick below; with x in several K tiles it replaces either depth, so a capped K tile can
  // be measured with another ring and the CTAs per SM it leaves room for.
  static const int st_env = env_int("BITMM_TC_STAGES");
  const bool st_forced = st_env >= kTcMinStages && st_env <= kTcMaxStages<RN>;
  if (KT < Kp && st_forced) stages = st_env;
  else if (KT < Kp && kt_env <= 0 && st_rule >= kTcMinStages && st_rule <= kTcMaxStages<RN>) stages = st_rule;
  size_t smem = sizeof(uint32_t) * (MT + words_for(KT, WN));
  // Does not fit (a tiny group size with many rows of x): the caller falls back to the add/subtract kernel.
  if (smem > static_cast<size_t>(smem_limit)) return cudaErrorNotSupported;
  void (*kernel)(const LinearParams, int, int, int) = nullptr;
  static_assert(static_cast<int>(DType::kFloat) == 0 && static_cast<int>(DType::kHalf) == 1 &&
                static_cast<int>(DType::kBFloat16) == 2, "ki below indexes the typed kernels by DType");
  constexpr bool typed = BD || kTcFoldTyped<GROUPED, CM>;  // one kernel per scale dtype
  const int ki = typed ? static_cast<int>(p.s_dtype) : 0;  // which kernel of this configuration (by scale dtype)
  if (ki < 0 || ki > 2) return cudaErrorNotSupported;
  // Typed kernels only for the scale dtypes that reach here: fp32, or x's own dtype (prepare_scales), so
  // fp16 x with bf16 scales (and the converse) is not built.
  constexpr int kXd = static_cast<int>(std::is_same_v<T, __half> ? DType::kHalf : DType::kBFloat16);
  constexpr int kF32 = static_cast<int>(DType::kFloat);
  if (typed && p.s_dtype != DType::kFloat && static_cast<int>(p.s_dtype) != kXd) return cudaErrorNotSupported;
  if constexpr (BD) {
    kernel = p.s_dtype == DType::kFloat ? tc_linear_bd_kernel<T, KIND, kF32, CM>
                                        : tc_linear_bd_kernel<T, KIND, kXd, CM>;
  } else if constexpr (typed) {
    kernel = p.s_dtype == DType::kFloat ? tc_linear_kernel<T, KIND, GROUPED, kF32, RN, CM>
                                        : tc_linear_kernel<T, KIND, GROUPED, kXd, RN, CM>;
  } else {
    kernel = tc_linear_kernel<T, KIND, GROUPED, -1, RN, CM>;
  }
  static std::once_flag raised[3][kMaxTcDevices];
  cudaError_t err = cudaSuccess;
  std::call_once(raised[ki][dev], [&] {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_limit);
  });
  if (err != cudaSuccess) return err;
  // The kernel's registers (occupancy) and the PTX version its code came from (PDL below needs
  // griddepcontrol, compiled in from compute_90 on: an sm_80 PTX JIT-compiled for a Hopper device
  // has no wait and must launch plainly), per configuration and device, read once.
  static std::atomic<int> regs[3][kMaxTcDevices], ptx_ver[3][kMaxTcDevices];
  if (regs[ki][dev] == 0) {
    cudaFuncAttributes fa{};
    if (cudaFuncGetAttributes(&fa, kernel) != cudaSuccess) return cudaErrorInvalidDevice;
    ptx_ver[ki][dev] = fa.ptxVersion;
    regs[ki][dev] = fa.numRegs > 0 ? fa.numRegs : 64;
  }
  const int64_t n_tiles = n_tiles_for(WN);
  int64_t grid_y = n_tiles;
  bool pdl = false;  // programmatic dependent launch (below)
  if (KT >= Kp) {
    // x fits in one K tile: persistent CTAs (as many as are resident), x staged once each.
    const int by_regs = 65536 / (((regs[ki][dev] * 32 + 255) / 256 * 256) * kTcWarps);
    // Ring depth: first as many resident CTAs as the registers (and the work)
    // allow, then 3 slots if possible: measured on the H100 (bench/NOTES.md,
    // tc7), more resident warps beat a deeper ring, and 3 slots beat 6 where
    // both keep the same CTAs resident (M = 1: 14.9 vs 16.7 us on 8192 x 8192).
    const int64_t tiles = n_tiles * m_tiles;
    int64_t want = std::min<int64_t>({by_regs, 16, (tiles + num_sms - 1) / num_sms});
    // Block-diagonal kernels with two activation tiles: the fewest CTAs with the fewest row tiles each
    if (BD && CM > 1) want = tc_fewest_ctas_per_sm(tiles, num_sms, want);
    constexpr int kPreferredStages = 3 <= kTcMaxStages<RN> ? 3 : kTcMaxStages<RN>;
    int st = kTcMaxStages<RN>;
    int64_t best = -1;
    for (int d = kTcMaxStages<RN>; d >= kTcMinStages; --d) {  // most resident CTAs; then closest to 3 slots
      stages = d;
      const size_t bytes = sizeof(uint32_t) * (MT + words_for(KT, WN));
      if (bytes > static_cast<size_t>(smem_limit)) continue;
      const int64_t c = std::min<int64_t>(want, smem_per_sm[dev] / static_cast<int64_t>(bytes + kSmemReservedPerCta));
      if (c > best || (c == best && std::abs(d - kPreferredStages) < std::abs(st - kPreferredStages))) best = c, st = d;
    }
    if (st_forced) st = st_env;  // (the benchmark override above)
    stages = st;
    smem = sizeof(uint32_t) * (MT + words_for(KT, WN));
    // ... and that residency asked of the hardware through the shared memory each CTA reserves
    if (BD && CM > 1) smem = tc_reserved_smem(smem, smem_per_sm[dev], smem_limit, by_regs, want);
    const int by_smem = smem_per_sm[dev] / static_cast<int>(smem + kSmemReservedPerCta);
    const int resident = std::max(1, std::min({by_regs, by_smem, 16}));  // CTAs per SM the hardware allows
    const int per_sm = BD && CM > 1 ? std::min(resident, static_cast<int>(want)) : resident;
    grid_y = std::min<int64_t>(n_tiles, (static_cast<int64_t>(num_sms) * per_sm + m_tiles - 1) / m_tiles);
    // Programmatic dependent launch by the slots ours leave free (tc_pdl_rule)
    const int64_t ours = m_tiles * std::min<int64_t>(grid_y, 65535);
    const int64_t free_slots = static_cast<int64_t>(num_sms) * resident - ours;
    pdl = tc_pdl_rule(free_slots, ours);
  } else if (n_tiles > 65535) {
    return cudaErrorNotSupported;  // > 1 M output rows with x in several K tiles
  }
  dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(std::min<int64_t>(grid_y, 65535)));
  // A warp counts the load steps it issues in 32 bits (its row tiles x K tiles x steps per K tile).
  if ((n_tiles + grid.y - 1) / grid.y * ((Kp + KT - 1) / KT) * (KT / L::STEP_K) > INT32_MAX) return cudaErrorNotSupported;
  if constexpr (GROUPED && RN == 1) {  // tc37: the kernel's group byte offsets (load_scales) are 32-bit
    const int64_t es = p.s_dtype == DType::kFloat ? 4 : 2, ng = (p.K + p.group_size - 1) / p.group_size;
    if ((ng - 1) * p.s_sg * es >= INT32_MAX || (ng - 1) * p.u_sg * es >= INT32_MAX) return cudaErrorNotSupported;
  }
  // Programmatic dependent launch (tc16, the kernel's griddepcontrol above) where the kernel's code
  // has it (compute_90+), by the rule above (persistent grids only; unmeasured for x in several K
  // tiles).  BITMM_PDL=0 launches plainly (the L2 prefetch stays: it is what was measured as "off"),
  // =2 always with it, =3 without the prefetch (benchmark / fallback switches, read once).  The rule
  // looks at this call's grid, while the slots left free are the previous kernel's: it assumes the
  // same layer shape back to back, as in the benchmarks (consecutive layers of a model differ).
  static const int pdl_env = std::getenv("BITMM_PDL") != nullptr ? env_int("BITMM_PDL") : 1;
  if (pdl_env == 0) pdl = false;
  if (pdl_env == 2) pdl = true;
  // BITMM_TC_SCALE_OFF64=1: group-wise RN = 2 kernels load s and u through 64-bit offsets (the path
  // for offsets past 2^31 bytes, which no test can allocate), so a test reaches it (read once).
  static const bool off64_env = env_int("BITMM_TC_SCALE_OFF64") == 1;
  const int flags = stages | (pdl_env == 3 ? 256 : 0) | (off64_env ? 512 : 0);
  if (pdl && ptx_ver[ki][dev] >= 90) return launch_pdl(kernel, grid, dim3(kTcWarps * 32), smem, stream, p, KT, WN, flags);
  kernel<<<grid, kTcWarps * 32, smem, stream>>>(p, KT, WN, flags);
  return cudaGetLastError();
}

// Group-wise scales: the block-diagonal path up to this many rows of x (then the folding path; M = 3, 4 int2 only).
// H200, session 16 (bench/results/h200_s16_call2_98173d4.txt, g64, decode_probe): at M = 4 it
// beats the folding path on every kind and shape probed (8192 x 28672 int2 73.6 vs 101.5 us, binary
// 65.8 vs 75.2, ternary 72.5 vs 85.4; 28672 x 8192 int2 94.7 vs 149.6; 8192^2 24.7 vs 37.0; 4096^2
// level); with 4 activation tiles (M = 5..8, CM = 4, no subnormal codes) it lost on most
// (8192 x 28672 binary M = 8 130.4 vs 112.3, 4096^2 int2 19.2 vs 12.3), so that kernel is gone.
constexpr int kTcBdMaxM = 4;

template <typename T, int KIND>
cudaError_t launch_tc_for(const LinearParams& p, int num_sms, cudaStream_t stream) {
  const bool grouped = p.group_size < padded_k(p.K);
  // Benchmark override: BITMM_TC_BD=m takes the block-diagonal path up to M = m only (at most
  // kTcBdMaxM, every kind; 0: never, i.e. group-wise M <= 4 on the folding path; read once).
  static const int bd_env = std::getenv("BITMM_TC_BD") != nullptr ? env_int("BITMM_TC_BD") : -1;
  const int bd_max_m = bd_env >= 0 ? bd_env : kTcBdMaxM;
  return BITMM_BOOL_SWITCH(grouped, GROUPED, [&] {
    if constexpr (GROUPED) {
      // M <= 2: the block-diagonal path, but ternary / binary with fp16 x on mid-sized layers fold
      // (tc_grouped_small_m_fold, tc_launch_rules.h; BITMM_TC_BD set: its limit for every kind).
      if (p.M <= bd_max_m && p.M <= 2 &&
          !(bd_env < 0 && tc_grouped_small_m_fold(KIND, p.K, p.N, std::is_same_v<T, __half>)))
        return launch_tc_cfg<T, KIND, true, 1, 1, true>(p, num_sms, stream);
      // M = 3, 4: int2 only, unless BITMM_TC_BD asks for more (tc_grouped_bd_two_tiles, tc_launch_rules.h).
      if (p.M <= bd_max_m && p.M <= kTcBdMaxM && tc_grouped_bd_two_tiles(KIND, bd_env))
        return launch_tc_cfg<T, KIND, true, 1, 2, true>(p, num_sms, stream);
    }
    if constexpr (!GROUPED) {
      // Per tensor / channel, M <= 8: two 16-row weight tiles per warp (128 rows per CTA) where x is
      // large, or N wide at M = 3, 4; fp16 ternary with two activation tiles where N is
      // narrow (tc18; the rule, its measurements and its overrides BITMM_TC_M8 / BITMM_TC_RN2_FROM:
      // tc_per_tensor_small_m_tiles in tc_launch_rules.h).
      static const int m8_env = std::getenv("BITMM_TC_M8") != nullptr ? env_int("BITMM_TC_M8") : -1;
      static const int rn2_from = env_int("BITMM_TC_RN2_FROM");
      if (p.M >= 1 && p.M <= 8) {
        // x against the 112 KB budget less 8 row sums (a device's smaller opt-in limit aside) and the deepest ring
        const int budget = kTcSmemBytes / 4 - 8;
        const int64_t xw = tc_x_words<KIND>(padded_k(p.K), static_cast<int>(p.M));
        const bool x_split = xw + kTcRingWords > budget;
        switch (tc_per_tensor_small_m_tiles(p.M, p.N, x_split, 2 * xw >= budget, KIND == 2 && std::is_same_v<T, __half>,
                                            num_sms, m8_env, rn2_from)) {
          case 1: return launch_tc_cfg<T, KIND, false, 2, 1>(p, num_sms, stream);
          case 2: return launch_tc_cfg<T, KIND, false, 2, 2>(p, num_sms, stream);
          default: break;
        }
      }
    }
    if constexpr (GROUPED) {
      // Group-wise M = 5..8: the M = 9..16 configuration below (CM = 2) where N is wide enough, else
      // CM = 1 (tc_grouped_mid_m_two_tiles, tc_launch_rules.h).  BITMM_TC_FOLD_CM=1 / 2 forces either
      // (benchmark override, read once).
      static const int fold_cm_env = env_int("BITMM_TC_FOLD_CM");
      const bool two_tiles = fold_cm_env == 2 ||
          (fold_cm_env != 1 && tc_grouped_mid_m_two_tiles(p.N, num_sms, KIND == static_cast<int>(Kind::kBinary)));
      if (p.M <= 8 && !(p.M >= 5 && two_tiles)) return launch_tc_cfg<T, KIND, true, 1, 1>(p, num_sms, stream);
    } else {
      if (p.M <= 8) return launch_tc_cfg<T, KIND, false, 1, 1>(p, num_sms, stream);
    }
    if constexpr (GROUPED) {
      // Group-wise M = 9..16 (and 5..8 as above): one 16-row tile per warp (RN = 1) for binary, two for the others.
      // ptxas (sm_90a): RN = 1 takes 127 instead of 246 registers for binary (4 CTAs per SM instead
      // of 2), 128 instead of 168 for fp16 int2.  H200, session 14 (bench/results/h200_s14_call1.txt),
      // 8192 x 28672 g64 M = 16: binary 124.5 -> 116.8 us with RN = 1, int2 154.6 -> 169.9 (worse).
      // BITMM_TC_RN=1 / 2 forces either (benchmark override, read once).
      static const int rn_env = env_int("BITMM_TC_RN");
      const bool rn1 = rn_env == 1 || (rn_env != 2 && KIND == 1);
      if (p.M <= 16 && rn1) return launch_tc_cfg<T, KIND, true, 1, 2>(p, num_sms, stream);
    }
    if (p.M <= 16) return launch_tc_cfg<T, KIND, GROUPED, 2, 2>(p, num_sms, stream);
    if (p.M <= 32) return launch_tc_cfg<T, KIND, GROUPED, 2, 4>(p, num_sms, stream);
    return launch_tc_cfg<T, KIND, GROUPED, 2, 8>(p, num_sms, stream);
  });
}

}  // namespace cuda
}  // namespace bitmm
