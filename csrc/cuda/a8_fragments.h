// The fused W2A8 kernel's per-lane data layout (a8_linear.cu): how a lane turns its packed weight words into the
// A fragments of int8 tensor-core mma's (mma.sync m16n8k32 .u8 x .s8 -> .s32), where each activation byte sits in
// shared memory so that the lane's B fragments hold the same k's, and how the partial sums are put back together.
// Plain C++ for the host too (no CUDA headers): tests/test_a8_emulation.py compiles it with g++ into a 32-lane
// emulation of the kernel's loop (tests/a8_emulate.cpp) and checks its integer sums exactly.
//
// mma.sync m16n8k32 (PTX ISA, "Matrix fragments for mma.m16n8k32"; lane = 4 g + t, g = groupID 0..7, t = 0..3):
//   A (16 x 32, u8): a0 = row g, k-slots 4t..4t+3 (byte j = slot 4t + j); a1 = row g + 8, same slots;
//                    a2 = row g, slots 16 + 4t..; a3 = row g + 8, slots 16 + 4t..
//   B (32 x 8, s8):  b0 = slots 4t..4t+3 of column g; b1 = slots 16 + 4t.. of column g
//   C (16 x 8, s32): c0, c1 = row g, columns 2t, 2t + 1; c2, c3 = row g + 8, columns 2t, 2t + 1
// Rows of A are 16 weight rows (outputs n), columns of B are 8 rows of x (m).  A k-slot is any k: the sum over k
// does not depend on the order, so each A byte only has to meet its x byte in the same slot of B.
//
// Weights (bitmm_format.h): a lane loads one uint4 of a row per step: two-plane kinds 2 blocks (lo0 hi0 lo1 hi1,
// 64 k), binary 4 blocks (128 k).  The 4 lanes t of a row group take 4 consecutive uint4s (one step's window).
//   two-plane: E = (lo & 0x55555555) | ((hi << 1) & 0xAAAAAAAA) has the 2-bit code of the weight at plane bit 2p
//   in bits 2p, 2p + 1; O = ((lo >> 1) & 0x55555555) | (hi & 0xAAAAAAAA) that of plane bit 2p + 1.  One AND with
//   0x03030303 << 2c leaves in byte j the code at plane bit 8j + 2c (E) / 8j + 2c + 1 (O), times 4^c: one LOP3
//   per 4 weights, codes 0..3 times 1..64 <= 192 (u8).  The factor 4^c is undone after the loop: mma's of one c
//   accumulate into their own int32 set, and set c is shifted right by 2c (exact: every product is a multiple).
//   binary: w & (0x01010101 << s) (s = 0..7) leaves bit 8j + s in byte j times 2^s; set s is shifted by s.
// Both give byte j of a fragment = the weight at block offset (bitmm_format.h's even/odd interleave)
//   2q + 16 (j & 1) + (j >> 1),   q = 2c (E) / 2c + 1 (O) for two planes, q = s for binary,
// so ONE permutation of each 32-byte block of x serves every kind: permuted word P[q] byte j = x[that offset].
//
// Shared memory holds each x row permuted, with a step's window interleaved by lane: the 16-byte chunk i of lane
// t's part of window w sits at byte w * kWindowBytes + (4 i + t) * 16, so the 4 lanes of a row read 64 contiguous
// bytes per 16-byte load; rows are kRowPad bytes longer than a multiple of the window (conflict-free across the
// two rows g, g + 1 of a quarter warp).  Binary interleaves the words of two blocks (Stage, unit_word) so that
// each mma's b0 and b1 are adjacent.
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define BITMM_A8_HD __host__ __device__ __forceinline__
#else
#define BITMM_A8_HD inline
#endif

namespace bitmm {
namespace a8 {

struct U4 {  // a uint4 without CUDA headers (same layout)
  uint32_t x, y, z, w;
};

constexpr int kRowPad = 64;  // bytes added to each shared-memory x row (see above)
// Largest K whose int32 sums cannot overflow: |x| <= 128 times a fragment byte <= 192 (two planes) or 128
// (binary) over the K / 4 or K / 8 weights of one accumulator set.  The launcher refuses larger K.
constexpr int64_t kMaxKTwoPlanes = 262144;   // 128 * 192 * 262144 / 4 = 2^31 * 0.75
constexpr int64_t kMaxKBinary = 262144;      // 128 * 128 * 262144 / 8 = 2^29

template <int kPlanes>
struct Layout {
  static constexpr int kLaneK = kPlanes == 2 ? 64 : 128;     // weights per lane per step (one uint4 of a row)
  static constexpr int kLaneBlocks = kLaneK / 32;            // 32-weight blocks per lane per step
  static constexpr int kWindowK = 4 * kLaneK;                // weights per row per step (4 lanes)
  static constexpr int kWindowBytes = kWindowK;              // x bytes per row per step (int8)
  static constexpr int kChunks = kLaneK / 16;                // 16-byte x chunks per lane per step
  static constexpr int kMmas = kPlanes == 2 ? 8 : 16;        // mma's per step and 8 x rows
  static constexpr int kSets = kPlanes == 2 ? 4 : 8;         // accumulator sets (powers 4^c / 2^s)
  static constexpr int kSetShift = kPlanes == 2 ? 2 : 1;     // set i holds sums times 2^(kSetShift * i)
  // mma j's accumulator set: two planes j = 4 h + c (h: block of the lane's pair), binary j = 8 p + s
  static constexpr int set_of(int j) { return kPlanes == 2 ? (j & 3) : (j & 7); }
};

// x bytes of one shared-memory row: the padded row rounded up to whole windows, plus kRowPad
template <int kPlanes>
BITMM_A8_HD int64_t smem_row_stride(int64_t padded_k) {
  constexpr int W = Layout<kPlanes>::kWindowBytes;
  return (padded_k + W - 1) / W * W + kRowPad;
}

// x is staged in units: two planes one 32-byte block (its permuted words P[0..7] as 2 chunks, P[0..3] and P[4..7]);
// binary two blocks a, b (the 2 blocks whose words make one mma's b0, b1), words interleaved as 4 chunks
// (a[2c], b[2c], a[2c + 1], b[2c + 1]) so that b0 / b1 are adjacent words (an aligned register pair: no moves).
template <int kPlanes>
struct Stage {
  static constexpr int kUnitBlocks = kPlanes == 2 ? 1 : 2;                          // blocks per unit
  static constexpr int kUnitChunks = 2 * kUnitBlocks;                               // 16-byte chunks per unit
  static constexpr int kLaneUnits = Layout<kPlanes>::kLaneBlocks / kUnitBlocks;     // units per lane and step
};

// Byte offset in a shared-memory row of chunk c of staging unit u (blocks u * kUnitBlocks ..): the lane t whose
// weights cover it, in the step's window, at its chunk i = kUnitChunks * (its unit in the lane) + c.
template <int kPlanes>
BITMM_A8_HD int64_t smem_unit_offset(int64_t u, int c) {
  using L = Layout<kPlanes>;
  using S = Stage<kPlanes>;
  const int64_t w = u / (4 * S::kLaneUnits);
  const int r = static_cast<int>(u % (4 * S::kLaneUnits));
  const int t = r / S::kLaneUnits, ul = r % S::kLaneUnits;
  const int i = S::kUnitChunks * ul + c;
  return w * L::kWindowBytes + (4 * i + t) * 16;
}

// Word j (0..3) of chunk c of a unit from its permuted blocks (P[0] = the unit's first block, P[1] its second)
template <int kPlanes>
BITMM_A8_HD uint32_t unit_word(const uint32_t (&P)[Stage<kPlanes>::kUnitBlocks][8], int c, int j) {
  if constexpr (kPlanes == 2) return P[0][4 * c + j];
  else return P[j & 1][2 * c + (j >> 1)];
}

BITMM_A8_HD uint32_t byte_perm(uint32_t a, uint32_t b, uint32_t sel) {
#ifdef __CUDA_ARCH__
  return __byte_perm(a, b, sel);
#else
  const uint64_t v = (static_cast<uint64_t>(b) << 32) | a;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>((v >> (8 * ((sel >> (4 * i)) & 7))) & 0xffu) << (8 * i);
  return r;
#endif
}

// The 32 x bytes of one block (X[i] = bytes 4 i .. 4 i + 3, little-endian) permuted: P[q] = (x[2q], x[16 + 2q],
// x[2q + 1], x[17 + 2q]): x[2q], x[2q + 1] are bytes 2 (q & 1), + 1 of X[q / 2], x[16 + 2q].. those of X[4 + q / 2].
BITMM_A8_HD void permute_block(const uint32_t (&X)[8], uint32_t (&P)[8]) {
#pragma unroll
  for (int q = 0; q < 8; ++q) P[q] = byte_perm(X[q >> 1], X[4 + (q >> 1)], (q & 1) ? 0x7362u : 0x5140u);
}

// Sum of the 4 signed bytes of v (the row sums of x)
BITMM_A8_HD int byte_sum(uint32_t v, int acc) {
#ifdef __CUDA_ARCH__
  return __dp4a(static_cast<int>(v), 0x01010101, acc);
#else
  for (int j = 0; j < 4; ++j) acc += static_cast<int8_t>((v >> (8 * j)) & 0xffu);
  return acc;
#endif
}

// A fragments of a lane's step: wg / wg8 = its uint4 of rows g / g + 8.  a[j] feeds mma j (set Layout::set_of(j)).
template <int kPlanes>
BITMM_A8_HD void a_frags(const U4& wg, const U4& wg8, uint32_t (&a)[Layout<kPlanes>::kMmas][4]) {
  if constexpr (kPlanes == 2) {
    const uint32_t lo[2][2] = {{wg.x, wg.z}, {wg8.x, wg8.z}}, hi[2][2] = {{wg.y, wg.w}, {wg8.y, wg8.w}};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t E[2], O[2];  // rows g, g + 8
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        E[r] = (lo[r][h] & 0x55555555u) | ((hi[r][h] << 1) & 0xAAAAAAAAu);
        O[r] = ((lo[r][h] >> 1) & 0x55555555u) | (hi[r][h] & 0xAAAAAAAAu);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const uint32_t m = 0x03030303u << (2 * c);
        a[4 * h + c][0] = E[0] & m;  // row g, slots 4t..: block offsets 2q + ..., q = 2c
        a[4 * h + c][1] = E[1] & m;  // row g + 8
        a[4 * h + c][2] = O[0] & m;  // row g, slots 16 + 4t..: q = 2c + 1
        a[4 * h + c][3] = O[1] & m;
      }
    }
  } else {
    const uint32_t w[2][4] = {{wg.x, wg.y, wg.z, wg.w}, {wg8.x, wg8.y, wg8.z, wg8.w}};
#pragma unroll
    for (int p = 0; p < 2; ++p) {
#pragma unroll
      for (int s = 0; s < 8; ++s) {
        const uint32_t m = 0x01010101u << s;
        a[8 * p + s][0] = w[0][2 * p] & m;      // row g, block 2p of the lane's 4: q = s
        a[8 * p + s][1] = w[1][2 * p] & m;      // row g + 8
        a[8 * p + s][2] = w[0][2 * p + 1] & m;  // row g, block 2p + 1
        a[8 * p + s][3] = w[1][2 * p + 1] & m;
      }
    }
  }
}

// B fragment of mma j from a lane's x chunks of the step (chunk i = its 16 bytes at window offset (4 i + t) * 16)
template <int kPlanes>
BITMM_A8_HD void b_frag(const U4 (&ch)[Layout<kPlanes>::kChunks], int j, uint32_t& b0, uint32_t& b1) {
  auto word = [&](int i, int k) -> uint32_t {
    const U4& c = ch[i];
    return k == 0 ? c.x : k == 1 ? c.y : k == 2 ? c.z : c.w;
  };
  if constexpr (kPlanes == 2) {
    // block h (bytes 32 h..), words q = 2c and 2c + 1: byte 32 h + 8 c = chunk 2h + c / 2, word 2 (c & 1)
    const int h = j >> 2, c = j & 3;
    b0 = word(2 * h + (c >> 1), 2 * (c & 1));
    b1 = word(2 * h + (c >> 1), 2 * (c & 1) + 1);
  } else {
    // unit p (blocks 2p, 2p + 1 of the lane's 4), word q = s of each: chunk 4p + s / 2, words 2 (s & 1) and + 1
    const int p = j >> 3, s = j & 7;
    b0 = word(4 * p + (s >> 1), 2 * (s & 1));
    b1 = word(4 * p + (s >> 1), 2 * (s & 1) + 1);
  }
}

// Step s of lane t (t = lane % 4) reads the row's uint4 number 4 s + t; past the row's last uint4 (a partial last
// window) it re-reads that one (then lane_valid is false and its B is zero, so it adds nothing).
BITMM_A8_HD int lane_u4(int s, int t, int row_u4) { return 4 * s + t < row_u4 ? 4 * s + t : row_u4 - 1; }
BITMM_A8_HD bool lane_valid(int s, int t, int row_u4) { return 4 * s + t < row_u4; }

// Byte offset in shared memory of a lane's first x chunk of step s for x row m (B column g of tile m / 8): its row's
// window s, or the zero window (at byte `zeros`) where the lane has no x row (m >= M) or no weights (!valid).
template <int kPlanes>
BITMM_A8_HD int64_t b_base(int s, int t, int m, int M, bool valid, int64_t stride, int64_t zeros) {
  return (valid && m < M ? m * stride + static_cast<int64_t>(s) * Layout<kPlanes>::kWindowBytes : zeros) + 16 * t;
}

// Where the CTA's sum for weight row rr (0..15) of the tile and x row m sits in the warps' C fragments:
// tile cm = m / 8, lane 4 (rr % 8) + (m % 8) / 2, register 2 (rr >= 8) + m % 2.
BITMM_A8_HD void c_position(int rr, int m, int& cm, int& lane, int& reg) {
  cm = m >> 3;
  lane = 4 * (rr & 7) + ((m & 7) >> 1);
  reg = 2 * (rr >> 3) + (m & 1);
}

// A CTA takes `chunk_rows` rows of x (at most kMaxChunkRows: its B tiles; fewer where that many rows of x would not
// fit the device's shared memory): CTA `cta` of the grid covers chunk cta % chunks of x's rows and weight-row
// group cta / chunks, so the CTAs that read one group of weight rows run next to each other (the group's weights
// are read from DRAM once and from L2 by the other chunks).
constexpr int kMaxChunkRows = 16;
BITMM_A8_HD void cta_position(int64_t cta, int64_t chunks, int64_t& chunk, int64_t& group) {
  chunk = cta % chunks;
  group = cta / chunks;
}

// One CTA's dynamic shared memory, in bytes from its start: `rows` x rows of `stride` bytes, the zero window, the
// warps' int32 partial sums (red_index) and the row sums of x (xsum_index).
struct SmemLayout {
  int64_t stride, zeros, red, xsum, total;
};
template <int kPlanes>
BITMM_A8_HD SmemLayout smem_layout(int64_t rows, int64_t padded_k, int warps, int cm) {
  SmemLayout l;
  l.stride = smem_row_stride<kPlanes>(padded_k);
  l.zeros = rows * l.stride;
  l.red = l.zeros + Layout<kPlanes>::kWindowBytes;
  l.xsum = l.red + static_cast<int64_t>(warps) * cm * 4 * 32 * 4;
  l.total = l.xsum + kMaxChunkRows * 4;
  return l;
}

// x rows per CTA: up to `max_rows` (<= kMaxChunkRows: two B tiles), fewer (at most 8, then halving) where that many
// rows would not fit in `smem_limit` bytes of shared memory; 0 where not even `unit` rows do (unit: kDigits for the
// digits backend, whose rows go in fours: M and every candidate from 8 down are then multiples of 4).  The CTA's
// bytes in *smem.
template <int kPlanes>
inline int pick_chunk_rows(int64_t M, int64_t padded_k, int warps, int64_t smem_limit, int64_t* smem, int unit = 1,
                           int max_rows = kMaxChunkRows) {
  for (int rows = static_cast<int>(M < max_rows ? M : max_rows); rows >= unit; rows = rows > 8 ? 8 : rows / 2) {
    *smem = smem_layout<kPlanes>(rows, padded_k, warps, rows > 8 ? 2 : 1).total;
    if (*smem <= smem_limit) return rows;
  }
  return 0;
}

// The launcher's decisions (host code; tests/test_a8_emulation.py table-tests them on the CPU): the CTA
// configuration (`warps` warps, `ks` of them splitting each 16-row weight tile's K: 16, 64 or 128 weight rows per
// CTA) and the x rows per CTA (`chunk_rows`, 16 or at most 8), by a cost fitted to the H200 (session 28,
// bench/results/h200_s28_call3_*: 72 cases, three kinds, four shapes, M = 1-16 and the digits' 4-64 rows, every
// configuration and chunk): a CTA first stages its rows of x whole (chunk_rows x K bytes), then streams its weights
// (rows x K x planes / 8 bytes), one after the other and at about the same rate per byte (~2.5 TB/s over the GPU
// each), so the time is the busiest SM's CTAs, ceil(CTAs / SMs), times those bytes.  The cheapest candidate; on a
// tie the finer configuration and the larger chunk.  Before it, few rows of x (M = 1; two-plane M = 2) take the
// finest configuration.  Over the 72 measured cases its picks are 1.4% slower than the best on geometric mean
// (worst 1.22x: binary 8192 x 28672 M = 1, 4 warps on one tile, 18.3 us against 15.0 on 8 tiles); the rule before
// it (the finest whose x bytes stay within half its weight bytes among those giving every SM two CTAs) was 44%
// off (worst 3.7x: 8192^2 M = 16, 4 warps on one tile staging 128 KB of x per 32 KB of weights).  `force` 1 / 2 / 3
// keeps only that configuration, `max_rows` caps the chunk (probe overrides); chunk_rows 0 where no candidate fits
// the shared memory.
struct Config {
  int warps, ks, chunk_rows;
  int64_t smem;  // the CTA's dynamic shared memory (smem_layout)
};
template <int kPlanes>
inline Config pick_config(int64_t M, int64_t N, int64_t padded_k, int num_sms, int64_t smem_limit, int unit = 1,
                          int force = 0, int max_rows = kMaxChunkRows) {
  const int cfgs[3][2] = {{4, 4}, {8, 2}, {8, 1}};  // {warps, ks}: 16, 64, 128 weight rows per CTA
  const int caps[2] = {kMaxChunkRows, 8};
  Config best{4, 4, 0, 0};
  // few rows of x (x bytes within half the weight bytes of a 16-row tile: M = 1, two-plane M = 2): the finest
  // configuration, whose staging overlaps the other resident CTAs' streaming (the cost below overstates it there:
  // it picks 8 warps on 8 tiles for ternary 8192 x 28672 M = 1, measured 10% slower than 4 warps on one tile)
  if (force == 0 && 2 * 8 * (M < kMaxChunkRows ? M : kMaxChunkRows) <= 16 * kPlanes) {
    best.chunk_rows = pick_chunk_rows<kPlanes>(M, padded_k, 4, smem_limit, &best.smem, unit, max_rows);
    if (best.chunk_rows > 0) return best;
  }
  int64_t best_cost = INT64_MAX;
  for (int c = 0; c < 3; ++c) {
    if (force >= 1 && force <= 3 && c != force - 1) continue;
    for (const int cap : caps) {
      int64_t smem = 0;
      const int rows_x = pick_chunk_rows<kPlanes>(M, padded_k, cfgs[c][0], smem_limit, &smem, unit,
                                                  cap < max_rows ? cap : max_rows);
      if (rows_x == 0) continue;
      const int64_t rows_w = 16 * cfgs[c][0] / cfgs[c][1];
      const int64_t ctas = (N + rows_w - 1) / rows_w * ((M + rows_x - 1) / rows_x);
      const int64_t per_cta = rows_x * padded_k + rows_w * padded_k * kPlanes / 8;
      const int64_t cost = (ctas + num_sms - 1) / num_sms * per_cta;
      if (cost < best_cost) {
        best_cost = cost;
        best = Config{cfgs[c][0], cfgs[c][1], rows_x, smem};
      }
    }
  }
  return best;
}

// Shared-memory index of warp `warp`'s sum in register `reg` of lane `lane` for x tile `cm` (kCM tiles), and the
// output element o of a CTA of `rows` weight rows: weight row rc of the CTA (tile rc / 16, row rc % 16) and x row m;
// the row sum of the CTA's x row m (kMaxChunkRows of them, added up by the staging threads).
template <int kCM>
BITMM_A8_HD int red_index(int warp, int cm, int reg, int lane) { return ((warp * kCM + cm) * 4 + reg) * 32 + lane; }
BITMM_A8_HD int xsum_index(int m) { return m; }
BITMM_A8_HD void out_position(int o, int rows, int& rc, int& m) {
  rc = o % rows;
  m = o / rows;
}

// The output element from the exact integer sums, the same float32 operations in the same order as
// a8_epilogue_kernel and the ATen epilogue (linear_a8.cpp): each rounded, never contracted into an FMA.
BITMM_A8_HD float epilogue(int sum, int X, int shift, float xs, float s, bool has_u, float u, bool has_b, float b) {
#ifdef __CUDA_ARCH__
  float acc = __fmul_rn(static_cast<float>(sum - shift * X), s);
  if (has_u) acc = __fadd_rn(acc, __fmul_rn(static_cast<float>(X), u));
  acc = __fmul_rn(acc, xs);
  if (has_b) acc = __fadd_rn(acc, b);
  return acc;
#else
  volatile float acc = static_cast<float>(sum - shift * X) * s;  // (volatile: one rounding per operation)
  if (has_u) {
    volatile float t = static_cast<float>(X) * u;
    acc = acc + t;
  }
  acc = acc * xs;
  if (has_b) acc = acc + b;
  return acc;
#endif
}

// ---- The "digits" backend: fp16 / bf16 x on the same kernel, each row as four int8 digits --------------------
// Row m of x becomes the 30-bit fixed point X[k] = rint(x[k] * 2^-e[m]) with e[m] = ilogb(max_k |x[k]|) - 29, so
// |X| <= 2^30, and X = d0 + 2^8 d1 + 2^16 d2 + 2^24 d3 with int8 digits (d0..d2 in [-128, 127], |d3| <= 64).  Digit j
// of row m is row kDigits m + j of the kernel's x, so the kernel's int32 sums of the four rows give the exact integer
// sum_k X[k] code[n, k] (T below, in int64), which the epilogue turns into y in float64.  Every fp16 x is exact in
// this form when its row's max / min nonzero |x| is below 2^19 (2^30 over fp16's 11-bit significand); otherwise the
// smaller elements are rounded to 2^e[m], 2^-30 of the row's largest, a far smaller error than fp16's own (2^-11).
constexpr int kDigits = 4;                 // x rows per row of x
constexpr int kDigitFracBits = 29;         // e = ilogb(amax) - 29: |x| * 2^-e < 2^30
constexpr int kDigitsNonFinite = INT_MIN;  // e of a row with a NaN / Inf: its outputs are NaN

// e[m] from the row's max |x| (NaN where the row has a NaN, as torch.amax / the absmax kernel propagate it)
BITMM_A8_HD int digits_exponent(float amax) {
  if (!(amax <= 3.4028234663852886e38f)) return kDigitsNonFinite;  // NaN or Inf
  if (amax == 0.f) return 0;                                        // (all digits 0)
#ifdef __CUDA_ARCH__
  return ilogbf(amax) - kDigitFracBits;
#else
  return std::ilogb(amax) - kDigitFracBits;
#endif
}

// The four digits of one element (e from digits_exponent, not kDigitsNonFinite): X = rint(x 2^-e) (exact scaling,
// round half to even), then d0 = the low byte as int8, X = (X - d0) / 256, and so on; d3 is what remains.
BITMM_A8_HD uint32_t digits_of(float x, int e) {
#ifdef __CUDA_ARCH__
  // x 2^-e in float64: exact (x has 24 bits; -e in [-98, 162], 2^-e built from its exponent bits: no libm call)
  int X = __double2int_rn(static_cast<double>(x) * __hiloint2double((1023 - e) << 20, 0));
#else
  int X = static_cast<int>(std::nearbyint(std::scalbn(static_cast<double>(x), -e)));
#endif
  uint32_t r = 0;
#pragma unroll
  for (int j = 0; j < kDigits - 1; ++j) {
    const int d = static_cast<int8_t>(X & 0xff);
    r |= static_cast<uint32_t>(static_cast<uint8_t>(d)) << (8 * j);
    X = (X - d) / 256;  // (exact)
  }
  return r | static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(X))) << 24;
}

// The exact integer sums of a row of x: T = sum_k X[k] (code[n, k] - shift) and XT = sum_k X[k] from the kernel's
// sums over the four digit rows (sum[j] = sum_k d_j code, X[j] = sum_k d_j).  |T| <= 2^30 * 2 * K < 2^53.
BITMM_A8_HD void combine_digits(const int (&sum)[kDigits], const int (&X)[kDigits], int shift, int64_t& T,
                                int64_t& XT) {
  T = 0;
  XT = 0;
#pragma unroll
  for (int j = 0; j < kDigits; ++j) {
    const int64_t w = int64_t{1} << (8 * j);
    T += (static_cast<int64_t>(sum[j]) - static_cast<int64_t>(shift) * X[j]) * w;
    XT += static_cast<int64_t>(X[j]) * w;
  }
}

// y = 2^e (s T + u XT) + b in float64 (T, XT exact in it; scaling by 2^e exact), each operation rounded, never
// contracted into an FMA, then rounded to float32; NaN for a row with a NaN / Inf.
BITMM_A8_HD float epilogue_digits(int64_t T, int64_t XT, int e, float s, bool has_u, float u, bool has_b, float b) {
  if (e == kDigitsNonFinite) return NAN;
#ifdef __CUDA_ARCH__
  double acc = __dmul_rn(static_cast<double>(T), static_cast<double>(s));
  if (has_u) acc = __dadd_rn(acc, __dmul_rn(static_cast<double>(XT), static_cast<double>(u)));
  acc = scalbn(acc, e);
  if (has_b) acc = __dadd_rn(acc, static_cast<double>(b));
  return __double2float_rn(acc);
#else
  volatile double acc = static_cast<double>(T) * static_cast<double>(s);
  if (has_u) {
    volatile double t = static_cast<double>(XT) * static_cast<double>(u);
    acc = acc + t;
  }
  acc = std::scalbn(static_cast<double>(acc), e);
  if (has_b) acc = acc + static_cast<double>(b);
  return static_cast<float>(acc);
#endif
}

}  // namespace a8
}  // namespace bitmm
