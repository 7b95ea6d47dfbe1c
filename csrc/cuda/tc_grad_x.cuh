// Tensor-core grad_x = grad_y @ (v * scale + offset) on the packed (N, K) weights, untransposed.
//
// Roles in the mma  D(16x8) += A(16x16) * B(16x8), the reduction now running over n:
//   A = W^T: 16 inputs k (rows) x 16 weight rows n (the reduction),
//   B = grad_y^T: 16 weight rows n x 8 gradient rows m,   D = grad_x^T tile (k x m), fp32.
// A register of A holds two weights of the SAME input k from two DIFFERENT weight rows
// (n1 in the low half, n2 in the high half).  One PRMT puts the low (or high) half-words of
// the two rows' plane words side by side, and the forward kernel's merge / unpack then works
// unchanged on the pair: code bits of n1 in the low half, of n2 in the high half.
//
// Work split.  A warp owns a 256-input slice (8 blocks of 32) of K: lane (g = lane / 4,
// t = lane % 4) owns block g of the slice, and the weight rows 2t, 2t+1, 2t+8, 2t+9 of each
// 16-row tile (the A columns of its fragment).  Its 16 k-steps per tile take the 16 codes of
// its block words in turn; step st's D rows g and g + 8 are two fixed inputs of block g
// (kofs_g / kofs_g8 below), so the warp keeps 16 accumulator tiles (64 fp32 registers) for
// its 256 inputs x 8 gradient rows and walks down the weight rows (the reduction).  The CTA's
// 4 warps take alternate tiles of the same slice and are reduced in shared memory, in a fixed
// order; CTAs of other row ranges (grid.y, "splits") add into the fp32 buffer with one atomic
// per (input, gradient row) each (order-dependent bits: the deterministic mode uses the
// add/subtract kernel instead, grad_x.cu).
//
// Weights move with 16-byte cp.async copies into a per-warp ring in shared memory (16 rows
// x 64 bytes two-plane / 32 bytes binary per tile), ST - 1 tiles ahead; each lane then reads
// its 4 rows x one block (LDS.64 / LDS.32).  Rows are padded to 96 / 80 bytes so those reads
// are conflict free (2 / 1 wavefronts).  Rows past the split's end are copied as zeros, their
// B entries are 0 and (fma modes) their s and u too, so they add exactly 0.
//
// Scaling.  Per-tensor scale without offset ("plain"): the mma sums exact values (2t, 2b,
// q - 1) and the epilogue multiplies once.  With fp16 grad_y, plain mode unpacks codes as fp16
// subnormals (the forward's "subnormal unpacking", tc_linear.cuh): k-step st's A registers are
// the code fields masked in place, code * 2^(pw(st) - 24), ONE LOP3 per two weights and no shift
// for fields 0..4 (bits 0..9: the mantissa; one shift per word serves fields 5..7, or bits
// 10..15 of a binary half-word).  Each k-step has its own accumulator tile, so each tile keeps
// its own power, undone after the loop (exact); two-plane codes are value + 1, so the warp also
// sums grad_y over its rows with one extra mma on an all-ones A (G, any D row) and subtracts it:
// sum_n (code - 1) gy = sum_n code gy - G.  bf16 keeps the sign / exponent unpacking (a bf16
// subnormal times grad_y underflows fp32).  Otherwise ("fma": per-channel or group-wise
// scale, or any offset) every unpacked pair becomes v * s + u in grad_y's dtype before the
// mma (one HFMA2 per two weights, or an fp32 fma rounded once for float32 scales), as a
// plain fp16 / bf16 matmul on the dequantized weight rounds it; the two halves belong to
// different rows, so s and u are pairs (s[n1], s[n2]) at the lane's group.
#pragma once
#include <cstring>

#include "tc_linear.cuh"

namespace bitmm {
namespace cuda {

constexpr int kGxWarps = 4;
constexpr int kGxSliceK = 256;  // inputs per warp (8 blocks)
constexpr int kGxStages = 4;    // ring slots per warp (tiles in flight: kGxStages - 1)

enum class GxMode : int { kPlain = 0, kFma = 1, kFmaF32 = 2 };

template <int KIND> struct GxLayout {
  static constexpr int ROW_BYTES = KIND == 1 ? 32 : 64;    // one row's slice: 8 blocks x 1 or 2 words
  static constexpr int ROW_STRIDE = KIND == 1 ? 80 : 96;   // padded: conflict-free lane reads (header)
  static constexpr int CHUNKS = 16 * ROW_BYTES / 16;       // 16-byte copies per tile: 32 or 64
  static constexpr int SLOT_BYTES = 16 * ROW_STRIDE;
  // The rings, reused after the loop by the 4-warp reduction ([3][64][32] floats).
  static constexpr int RING_BYTES = kGxWarps * kGxStages * SLOT_BYTES;
  static constexpr int RED_BYTES = (kGxWarps - 1) * 64 * 32 * 4;
  static constexpr int SMEM_BYTES = RING_BYTES > RED_BYTES ? RING_BYTES : RED_BYTES;
};

template <typename T> __device__ __forceinline__ uint32_t pack2(T lo, T hi) {
  return static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&lo)) |
         (static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(&hi)) << 16);
}

// Offset in its block of the input that D row g (second = false) or g + 8 (second = true)
// stands for at k-step st (0..15); see gx_tile_mma.
template <int KIND> __host__ __device__ __forceinline__ int gx_kofs(int st, bool second) {
  if constexpr (KIND == 1) return offset_of_bit(second ? 16 + st : st);  // bit st of the low / high half-word
  // two-plane: step st = 8h + c takes code c of the E (row g) / O (row g + 8) word of half h,
  // i.e. bit position 16h + 2c (+ 1 for O)
  const int h = st >> 3, c = st & 7;
  return offset_of_bit(16 * h + 2 * c + (second ? 1 : 0));
}

// One 16-row tile through the 16 k-steps.  w[j][p]: plane word p (lo, hi; binary: p = 0) of
// the lane's block in its row j (j = 0..3: rows 2t, 2t+1, 2t+8, 2t+9).  b0 / b1: the B
// registers (grad_y at rows (2t, 2t+1) / (2t+8, 2t+9), gradient row g).  s2 / u2 (fma, T's
// precision) or sf / uf (fma, fp32) per row pair q (0: rows 2t, 2t+1; 1: rows 2t+8, 2t+9).
// Subnormal unpacking (header: "Scaling"): plain mode with fp16 grad_y.
template <typename T, GxMode MODE> constexpr bool kGxSubnormal = std::is_same_v<T, __half> && MODE == GxMode::kPlain;
// The power of two of k-step st's subnormal codes: its field's lowest bit in a half-word after the
// shift that brings it into the mantissa (bits 0..9): two-plane field c = st % 8 at bit 2c (c <= 4)
// or 2 (c - 5) (shifted down by 10); binary bit st at st (st <= 9) or st - 10.
template <int KIND> __host__ __device__ constexpr int gx_dn_pow(int st) {
  if constexpr (KIND == 1) return st <= 9 ? st : st - 10;
  const int c = st & 7;
  return c <= 4 ? 2 * c : 2 * (c - 5);
}
// Field of k-step st (see gx_dn_pow) masked in place in both half-words of `w` (`w10` = w >> 10).
template <int KIND> __device__ __forceinline__ uint32_t gx_dn_field(uint32_t w, uint32_t w10, int st) {
  if constexpr (KIND == 1) return st <= 9 ? w & (0x00010001u << st) : w10 & (0x00010001u << (st - 10));
  const int c = st & 7;
  return c <= 4 ? w & (0x00030003u << (2 * c)) : w10 & (0x00030003u << (2 * (c - 5)));
}

template <typename T, int KIND, GxMode MODE>
__device__ __forceinline__ void gx_tile_mma(float (&acc)[16][4], const uint32_t (&w)[4][2], uint32_t b0, uint32_t b1,
                                            const uint32_t (&s2)[2], const uint32_t (&u2)[2], const float (&sf)[4],
                                            const float (&uf)[4]) {
  constexpr bool TWO = KIND != 1;
  constexpr bool DN = kGxSubnormal<T, MODE>;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {  // half-word of the block words: bit positions 16 hh ..
    // Per row pair q: rows side by side (low half: the pair's first row).
    uint32_t e[2], o[2];
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const uint32_t sel = hh ? 0x7632u : 0x5410u;
      const uint32_t lo = __byte_perm(w[2 * q][0], w[2 * q + 1][0], sel);
      if constexpr (TWO) {
        const uint32_t hi = __byte_perm(w[2 * q][1], w[2 * q + 1][1], sel);
        e[q] = merge_even(lo, hi);  // codes of even bit positions
        o[q] = merge_odd(lo, hi);   // codes of odd bit positions
      } else {
        e[q] = lo;  // binary: bit i of this half-word (row g); row g + 8 takes the other half-word
      }
    }
    if constexpr (!TWO) {
      // binary: D row g <- bit st of the low half-words, row g + 8 <- bit st of the high ones.
      if (hh == 1) continue;  // both half-words are handled below in one pass
    }
#pragma unroll
    for (int c = 0; c < (TWO ? 8 : 16); ++c) {
      const int st = TWO ? 8 * hh + c : c;
      uint32_t a[4];
      if constexpr (DN && TWO) {
        a[0] = gx_dn_field<KIND>(e[0], e[0] >> 10, st);  // row g,   cols 2t, 2t+1
        a[1] = gx_dn_field<KIND>(o[0], o[0] >> 10, st);  // row g+8, cols 2t, 2t+1
        a[2] = gx_dn_field<KIND>(e[1], e[1] >> 10, st);  // row g,   cols 2t+8, 2t+9
        a[3] = gx_dn_field<KIND>(o[1], o[1] >> 10, st);  // row g+8, cols 2t+8, 2t+9
      } else if constexpr (DN) {
        const uint32_t h0 = __byte_perm(w[0][0], w[1][0], 0x7632u), h1 = __byte_perm(w[2][0], w[3][0], 0x7632u);
        a[0] = gx_dn_field<KIND>(e[0], e[0] >> 10, st);
        a[1] = gx_dn_field<KIND>(h0, h0 >> 10, st);
        a[2] = gx_dn_field<KIND>(e[1], e[1] >> 10, st);
        a[3] = gx_dn_field<KIND>(h1, h1 >> 10, st);
      } else if constexpr (TWO) {
        const int sh = 14 - 2 * c;
        a[0] = unpack_pair<KIND, T>(e[0], sh);  // row g,   cols 2t, 2t+1
        a[1] = unpack_pair<KIND, T>(o[0], sh);  // row g+8, cols 2t, 2t+1
        a[2] = unpack_pair<KIND, T>(e[1], sh);  // row g,   cols 2t+8, 2t+9
        a[3] = unpack_pair<KIND, T>(o[1], sh);  // row g+8, cols 2t+8, 2t+9
      } else {
        const int sh = 14 - c;
        const uint32_t h0 = __byte_perm(w[0][0], w[1][0], 0x7632u), h1 = __byte_perm(w[2][0], w[3][0], 0x7632u);
        a[0] = unpack_pair<KIND, T>(e[0], sh);
        a[1] = unpack_pair<KIND, T>(h0, sh);
        a[2] = unpack_pair<KIND, T>(e[1], sh);
        a[3] = unpack_pair<KIND, T>(h1, sh);
      }
      if constexpr (MODE == GxMode::kFma) {
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = fma_pair<T>(a[i], s2[i >> 1], u2[i >> 1]);
      } else if constexpr (MODE == GxMode::kFmaF32) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int q = i >> 1;
          a[i] = fma_pair2_f32<T>(a[i], sf[2 * q], sf[2 * q + 1], uf[2 * q], uf[2 * q + 1]);
        }
      }
      mma_16816(acc[st], a, b0, b1, T{});
    }
  }
}

template <typename T,     // grad_y / grad_x dtype: __half or __nv_bfloat16
          int KIND,       // 1 binary, 2 ternary, 3 int2
          GxMode MODE>    // plain (per-tensor scale, no offset) or the per-pair fma (header)
__global__ void __launch_bounds__(kGxWarps * 32, 4)
tc_grad_x_kernel(const GradXParams p,
                 float* accum,                 // (M, K) fp32, zeroed: one atomic add per CTA and element
                 const int64_t rows_per_cta) { // weight rows of a CTA (grid.y splits N), a multiple of 16
  using L = GxLayout<KIND>;
  constexpr bool TWO = KIND != 1;
  constexpr int PLANES = TWO ? 2 : 1;
  __shared__ __align__(16) unsigned char smem[L::SMEM_BYTES];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t blk0 = static_cast<int64_t>(blockIdx.x) * (kGxSliceK / BLOCK_K);  // first block of the slice
  const int64_t word0 = blk0 * PLANES;                                            // its first word in a row
  const int64_t m0 = static_cast<int64_t>(blockIdx.z) * 8;
  const int64_t n_begin = static_cast<int64_t>(blockIdx.y) * rows_per_cta;
  const int64_t n_end = imin64(p.N, n_begin + rows_per_cta);
  const int n_tiles = static_cast<int>((n_end - n_begin + 15) / 16);
  const int my_tiles = warp < n_tiles ? (n_tiles - 1 - warp) / kGxWarps + 1 : 0;  // tiles warp, warp + 4, ...
  const T* gy = static_cast<const T*>(p.x);
  const int64_t mrow = imin64(m0 + g, p.M - 1);  // B column g: gradient row (rows past M repeat the last; not stored)
  const bool s_f32 = p.s_dtype == DType::kFloat, s_f16 = p.s_dtype == DType::kHalf;
  // Group of the lane's block (constant over the walk down the rows).
  const int64_t gblocks = imin64(p.group_size, int64_t{1} << 30) / BLOCK_K;
  const int64_t ngroups = (p.K + p.group_size - 1) / p.group_size;
  const int64_t grp = imin64((blk0 + g) / gblocks, ngroups - 1);
  // Unpacked values: 2t / 2b / q - 1, or (subnormal unpacking) t / b / q - 1 once the powers are undone.
  constexpr bool DN = kGxSubnormal<T, MODE>;
  const float vscale = KIND == 3 || DN ? 1.f : 0.5f;

  unsigned char* const ring = smem + warp * kGxStages * L::SLOT_BYTES;
  // Rows are counted from n_begin in 32 bits (the launcher keeps rows_per_cta <= 2^30); this warp's
  // tile j starts at row 16 (warp + kGxWarps j).  The copies' sources advance by a tile of the warp
  // (kGxWarps x 16 rows) per issue, so issue() has no multiply (it had ~45 SASS instructions of 64-bit
  // index math per tile, as many as the tile's unpacking once tc33 made that one LOP3 per pair).
  const int span = static_cast<int>(n_end - n_begin);
  constexpr int kChunksPerLane = L::CHUNKS / 32;
  constexpr int64_t kTileRowsOfWarp = 16 * kGxWarps;
  int crow[kChunksPerLane];      // the lane's copy i: its row in the tile being issued, from n_begin
  bool cword[kChunksPerLane];    // its words exist (past the row's last word: zeros)
  int64_t coff[kChunksPerLane];  // its source word offset in p.w
  int cdst[kChunksPerLane];      // its byte offset in a ring slot
#pragma unroll
  for (int i = 0; i < kChunksPerLane; ++i) {
    const int c = lane + 32 * i;
    const int row = c / (L::ROW_BYTES / 16), part = c % (L::ROW_BYTES / 16);
    const int64_t word = word0 + part * 4;
    crow[i] = 16 * warp + row;
    cword[i] = word < p.wpr;
    coff[i] = (n_begin + crow[i]) * p.wpr + word;
    cdst[i] = row * L::ROW_STRIDE + part * 16;
  }
  int iss = 0;  // tiles issued by this warp
  auto issue = [&]() {  // copies this warp's next tile into its slot; always commits one group
    if (iss < my_tiles) {
      unsigned char* slot = ring + (iss % kGxStages) * L::SLOT_BYTES;
#pragma unroll
      for (int i = 0; i < kChunksPerLane; ++i) {
        const bool ok = crow[i] < span && cword[i];
        cp_async_16(slot + cdst[i], p.w + (ok ? coff[i] : 0), ok ? 16 : 0);  // (a valid address when not ok)
        crow[i] += static_cast<int>(kTileRowsOfWarp);
        coff[i] += kTileRowsOfWarp * p.wpr;
      }
    }
    ++iss;
    cp_async_commit();
  };
  // B and the scales of a tile: grad_y at the lane's 4 rows, and (fma) s, u at them, as raw bits (0: a row
  // past the split), loaded one tile ahead; tile_regs turns them into the mma's operands at the tile that uses
  // them (a conversion next to its load would wait for it: tc30).
  const unsigned short* const gy_bits = reinterpret_cast<const unsigned short*>(gy) + mrow * p.N + n_begin;
  auto load_b = [&](int j, uint32_t (&gb)[4], uint32_t (&sb)[4], uint32_t (&ub)[4]) {
    const int rel0 = 16 * (warp + j * kGxWarps) + 2 * t;  // < span + 64 <= 2^30 + 64
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int rel = rel0 + (r & 1) + 8 * (r >> 1);
      const bool real = rel < span;
      gb[r] = real ? gy_bits[rel] : 0u;
      if constexpr (MODE != GxMode::kPlain) {
        // Rows past the split: s = u = 0, so their A entries are +-0 and the zero B entries
        // give 0 (the zero-filled codes unpack to nonzero values: with row N-1's s and u,
        // v * s + u could overflow to Inf, and Inf * 0 = NaN in every output).
        const int64_t nc = imin64(n_begin + rel, p.N - 1);
        sb[r] = real ? load_param_bits(p.scale, nc * p.s_sn + grp * p.s_sg, s_f32) : 0u;
        ub[r] = real && p.offset ? load_param_bits(p.offset, nc * p.u_sn + grp * p.u_sg, s_f32) : 0u;
      }
    }
  };
  auto tile_regs = [&](const uint32_t (&gb)[4], const uint32_t (&sb)[4], const uint32_t (&ub)[4], uint32_t& b0,
                       uint32_t& b1, uint32_t (&s2)[2], uint32_t (&u2)[2], float (&sf)[4], float (&uf)[4]) {
    b0 = gb[0] | (gb[1] << 16);
    b1 = gb[2] | (gb[3] << 16);
    if constexpr (MODE != GxMode::kPlain) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        sf[r] = scale_of_bits(sb[r], s_f32, s_f16) * vscale;
        uf[r] = scale_of_bits(ub[r], s_f32, s_f16);
      }
    }
    if constexpr (MODE == GxMode::kFma) {
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        s2[q] = pack2<T>(from_float<T>(sf[2 * q]), from_float<T>(sf[2 * q + 1]));
        u2[q] = pack2<T>(from_float<T>(uf[2 * q]), from_float<T>(uf[2 * q + 1]));
      }
    }
  };

  float acc[16][4];
#pragma unroll
  for (int st = 0; st < 16; ++st)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[st][e] = 0.f;
  // Subnormal two-plane codes: G, the sum of grad_y over this warp's rows (D column 2t + (e & 1), any row).
  float accg[4] = {0.f, 0.f, 0.f, 0.f};
  constexpr uint32_t kOnes = 0x3C003C00u;  // fp16 (1, 1)
  const uint32_t ones[4] = {kOnes, kOnes, kOnes, kOnes};

#pragma unroll
  for (int j = 0; j < kGxStages - 1; ++j) issue();
  uint32_t gb[4] = {0u, 0u, 0u, 0u}, sb[4] = {0u, 0u, 0u, 0u}, ub[4] = {0u, 0u, 0u, 0u};  // tile j's raw bits
  if (my_tiles > 0) load_b(0, gb, sb, ub);
  for (int j = 0; j < my_tiles; ++j) {
    uint32_t b0, b1, s2[2] = {0u, 0u}, u2[2] = {0u, 0u};
    float sf[4] = {0.f, 0.f, 0.f, 0.f}, uf[4] = {0.f, 0.f, 0.f, 0.f};
    tile_regs(gb, sb, ub, b0, b1, s2, u2, sf, uf);
    cp_async_wait<kGxStages - 2>();  // tile j has landed (this lane's copies) ...
    __syncwarp();                    // ... and every lane's
    const unsigned char* slot = ring + (j % kGxStages) * L::SLOT_BYTES;
    uint32_t w[4][2];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = 2 * t + (r & 1) + 8 * (r >> 1);
      if constexpr (TWO) {
        const uint2 v = *reinterpret_cast<const uint2*>(slot + row * L::ROW_STRIDE + g * 8);
        w[r][0] = v.x;
        w[r][1] = v.y;
      } else {
        w[r][0] = *reinterpret_cast<const uint32_t*>(slot + row * L::ROW_STRIDE + g * 4);
        w[r][1] = 0u;
      }
    }
    __syncwarp();  // every lane has read the slot before it is refilled
    issue();
    // Next tile's B and scales, one tile ahead of their use (raw: tile_regs converts them next time round).
    if (j + 1 < my_tiles) load_b(j + 1, gb, sb, ub);
    gx_tile_mma<T, KIND, MODE>(acc, w, b0, b1, s2, u2, sf, uf);
    if constexpr (DN && TWO) mma_16816(accg, ones, b0, b1, T{});
  }
  cp_async_wait<0>();
  __syncthreads();  // all rings drained: the reduction reuses their shared memory
  if constexpr (DN) {  // undo the powers (exact), then the codes' + 1: sum (code - 1) gy = sum code gy - G
#pragma unroll
    for (int st = 0; st < 16; ++st)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[st][e] *= static_cast<float>(1 << (24 - gx_dn_pow<KIND>(st)));
        if constexpr (TWO) acc[st][e] -= accg[e];
      }
  }

  // Reduce the 4 warps in a fixed order (warp 0 + 1 + 2 + 3), then one atomic per element.
  float* red = reinterpret_cast<float*>(smem);  // [3][16 * 4][32]
  if (warp > 0) {
#pragma unroll
    for (int st = 0; st < 16; ++st)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[((warp - 1) * 64 + st * 4 + e) * 32 + lane] = acc[st][e];
  }
  __syncthreads();
  if (warp == 0) {
    const float esc = MODE == GxMode::kPlain ? load_param(p.scale, 0, s_f32, s_f16) * vscale : 1.f;
    const int64_t kbase = (blk0 + g) * BLOCK_K;
#pragma unroll
    for (int st = 0; st < 16; ++st)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = acc[st][e];
#pragma unroll
        for (int w2 = 1; w2 < kGxWarps; ++w2) v += red[((w2 - 1) * 64 + st * 4 + e) * 32 + lane];
        // D element e: row g (e < 2) or g + 8, column (gradient row) 2t + (e & 1)
        const int64_t k = kbase + gx_kofs<KIND>(st, e >= 2);
        const int64_t m = m0 + 2 * t + (e & 1);
        if (k < p.K && m < p.M) atomicAdd(accum + m * p.K + k, v * esc);
      }
  }
}

// Launch rule: grid.x = 256-input slices, grid.z = 8-row tiles of grad_y, grid.y = splits of N
// so that the grid is about a wave of 4 CTAs per SM (the resident limit at <= 128 registers;
// tc_gx_splits, tc_launch_rules.h), with at least 4 row tiles per warp.  cudaErrorNotSupported where
// the tensor-core path does not apply.
template <typename T, int KIND>
cudaError_t launch_tc_grad_x_for(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream) {
  if (p.group_size % BLOCK_K != 0) return cudaErrorNotSupported;
  if (p.M == 0) return cudaSuccess;
  const int64_t Kp = padded_k(p.K);
  const int64_t slices = (Kp + kGxSliceK - 1) / kGxSliceK;
  const int64_t m_tiles = (p.M + 7) / 8;
  if (m_tiles > 65535 || slices > (int64_t{1} << 31) - 1) return cudaErrorNotSupported;
  // BITMM_GX_SPLITS=0: rounded up, the rule before; =2: two waves (benchmark switches, read once).
  static const int splits_mode = [] {
    const char* e = std::getenv("BITMM_GX_SPLITS");
    return e == nullptr ? 1 : std::strcmp(e, "0") == 0 ? 0 : std::strcmp(e, "2") == 0 ? 2 : 1;
  }();
  int64_t splits = tc_gx_splits(slices * m_tiles, num_sms, splits_mode);
  splits = imin64(splits, imax64(1, (p.N + 16 * kGxWarps * 4 - 1) / (16 * kGxWarps * 4)));
  int64_t rows = (p.N + splits - 1) / splits;
  rows = (rows + 15) / 16 * 16;
  splits = (p.N + rows - 1) / rows;
  if (splits > 65535 || rows > (int64_t{1} << 30)) return cudaErrorNotSupported;  // (the kernel counts rows in 32 bits)
  // One scale for the whole tensor, no offset: exact sums, one multiply in the epilogue.
  const bool plain = p.offset == nullptr && p.s_sn == 0 && p.s_sg == 0 && p.group_size >= Kp;
  const dim3 grid(static_cast<unsigned>(slices), static_cast<unsigned>(splits), static_cast<unsigned>(m_tiles));
  if (plain) {
    tc_grad_x_kernel<T, KIND, GxMode::kPlain><<<grid, kGxWarps * 32, 0, stream>>>(p, accum, rows);
  } else if (p.s_dtype == DType::kFloat && p.offset != nullptr) {
    // fp32 s and u: v * s + u in fp32, rounded once.  Without an offset the T-precision path
    // (2t or 2b times T(s / 2), q - 1 times T(s)) gives the same weights as T(v s) wherever s / 2
    // (s for int2) is a normal number of T: |s| >= 2^-13 in fp16 (2^-14 for int2), any s in
    // bf16; below, fp16's subnormal rounding of T(s / 2) can differ by one subnormal step.
    tc_grad_x_kernel<T, KIND, GxMode::kFmaF32><<<grid, kGxWarps * 32, 0, stream>>>(p, accum, rows);
  } else {
    tc_grad_x_kernel<T, KIND, GxMode::kFma><<<grid, kGxWarps * 32, 0, stream>>>(p, accum, rows);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_tc_grad_x_kinds(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream) {
  switch (p.kind) {
    case 1: return launch_tc_grad_x_for<T, 1>(p, accum, num_sms, stream);
    case 2: return launch_tc_grad_x_for<T, 2>(p, accum, num_sms, stream);
    default: return launch_tc_grad_x_for<T, 3>(p, accum, num_sms, stream);
  }
}

}  // namespace cuda
}  // namespace bitmm
