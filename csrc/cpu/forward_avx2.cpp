// AVX2 forward kernel: lookup tables of partial sums, built by additions.
//
// For each activation row and every 4 consecutive inputs (in packed bit order,
// see bitmm_format.h) we build the 16 subset sums {0, a, b, a+b, c, ...,
// a+b+c+d} with 11 additions, and store each fp32 table as 4 byte planes of 16
// bytes.  A 4-bit slice (a "nibble") of a packed plane word then selects one
// table entry; `vpshufb` looks up 32 nibbles (32 output rows) per instruction
// and per byte plane, 4 unpacks reassemble the 32 fp32 entries, and 4 `vaddps`
// add them to the rows' accumulators.  Per 4 weights x 32 rows: 4 shuffles,
// 8 unpacks, 4 adds; exact fp32 table entries, fp32 accumulation, no multiply.
// Ternary / int2 weights index the same table with both planes (sum = 2H + L
// - X per scale group, bitmm_format.h); binary uses one plane (sum = L).
//
// The packed words of 32 rows are transposed once per K tile into nibble index
// vectors (byte q of the word of all 32 rows in one register), so the inner
// loop reads indices and tables only.  With a cpu_prepack blob
// (cpu_prepack_format.h: those vectors made once per layer, two nibbles per
// byte) there is no transpose: the inner loop splits each 32-byte vector of the
// blob into its two index vectors (one `vpand`, one shift + `vpand`) when few
// activation rows share them, or expands a K tile of the blob into the same
// index buffer once per tile when many do.  Either way the lookups and additions
// are the same, in the same order: outputs are bitwise equal to the transposing path.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "../cpu_prepack_format.h"
#include "cpu_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BITMM_X86 1
#include "lookup_tables.h"
#endif

namespace bitmm {
namespace cpu {

#ifdef BITMM_X86
namespace {

using lookup::kBlockTableBytes;
using lookup::kMaxTileGroups;
using lookup::kNibbles;
constexpr int kTileRows = 32;                      // output rows per register tile
constexpr int kTableBytes = 64;                    // 16 fp32 entries as 4 byte planes x 16
constexpr int kIndexBytesPerWord = 4 * 2 * 32;     // 4 bytes x 2 nibbles x 32 rows

// Tables of blocks [i0, i1) (block i: activation row i / nblocks, block i % nblocks), the entries
// of lookup::nibble_entries stored as 4 byte planes of 16 bytes, and their input sums.
__attribute__((target("avx2"))) void build_tables_range(const float* x, int64_t K, int64_t nblocks, uint8_t* tab,
                                                         float* xblk, int64_t i0, int64_t i1) {
  // in each lane: dword q = byte q of the lane's 4 floats; then qword q = byte q of 8 floats
  const __m256i bytes = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5,
                                         9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t m = i / nblocks, b = i % nblocks;
    const float* xr = x + m * K;
    alignas(32) float v[BLOCK_K];
    lookup::block_inputs(xr, K, b, v);
    uint8_t* t = tab + i * kBlockTableBytes;
    float total = 0.f;
    for (int nib = 0; nib < kNibbles; ++nib) {
      __m256 lo, hi;
      total += lookup::nibble_entries(v + 4 * nib, lo, hi);
      const __m256i L = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_castps_si256(lo), bytes), pairs);
      const __m256i H = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_castps_si256(hi), bytes), pairs);
      const __m256i p02 = _mm256_unpacklo_epi64(L, H);  // byte plane 0 | byte plane 2 (16 entries each)
      const __m256i p13 = _mm256_unpackhi_epi64(L, H);  // byte plane 1 | byte plane 3
      uint8_t* tp = t + nib * kTableBytes;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tp), _mm256_permute2x128_si256(p02, p13, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tp + 32), _mm256_permute2x128_si256(p02, p13, 0x31));
    }
    xblk[i] = total;
  }
}

// Tables for activation rows [0, rows) of x (fp32, (rows, K)) and per-block sums.
void build_tables(const float* x, int64_t K, int64_t nblocks, int64_t rows, uint8_t* tab, float* xblk) {
  // ~15 us per 128 blocks: one K = 4096 row stays on one thread (a fork costs more)
  at::parallel_for(0, rows * nblocks, 256, [&](int64_t i0, int64_t i1) {
    build_tables_range(x, K, nblocks, tab, xblk, i0, i1);
  });
}

// out[j] lane i = word (w0 + j) of rows[i], for 8 rows and 4 words (16 bytes per row).
__attribute__((target("avx2"), always_inline)) inline void load_transpose_8x4(const uint32_t* const* rows,
                                                                               int64_t w0, __m256i out[4]) {
  __m256i r[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[i] + w0));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[i + 4] + w0));
    r[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
  const __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
  const __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);  // rows 0-3 | rows 4-7 of word w0
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}

// A 32-byte vector of nibble pairs as two index vectors: low nibbles at dst, high at dst + 32.
__attribute__((target("avx2"), always_inline)) inline void store_split_nibbles(uint8_t* dst, __m256i v, __m256i low4) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_and_si256(v, low4));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
}

// Nibble index vectors of 32 rows for words [w_begin, w_end) of their packed rows:
// idx[((w - w_begin) * 4 + q) * 2 + h] = 32 bytes, nibble h of byte q of word w, byte p
// of the vector belonging to row 8*(p%16/4) + 4*(p/16) + p%4 (undone by the unpacks).
__attribute__((target("avx2"))) void prepare_indices(const uint32_t* const* rows, int64_t w_begin, int64_t w_end,
                                                      uintptr_t next_tile_bytes, uint8_t* idx) {
  const __m256i byte_transpose =
      _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14,
                       3, 7, 11, 15);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t w0 = w_begin; w0 < w_end; w0 += 4) {  // w_begin is a multiple of 4 (16-byte loads)
    // Constant trip counts everywhere: with run-time ones GCC keeps A[][] on the stack.
    if ((w0 & 15) == 0) {  // once per 64-byte line of each row: the same line of the next tile's row
      // (a tile ahead: ~7% faster than 512 bytes ahead in the same row; prefetches never fault)
      for (int r = 0; r < kTileRows; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(rows[r] + w0) + next_tile_bytes),
                     _MM_HINT_T0);
    }
    __m256i A[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) load_transpose_8x4(rows + 8 * r, w0, A[r]);
    const int nwords = static_cast<int>(std::min<int64_t>(4, w_end - w0));
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m256i B[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) B[r] = _mm256_shuffle_epi8(A[r][j], byte_transpose);
      const __m256i t0 = _mm256_unpacklo_epi32(B[0], B[1]);
      const __m256i t1 = _mm256_unpackhi_epi32(B[0], B[1]);
      const __m256i t2 = _mm256_unpacklo_epi32(B[2], B[3]);
      const __m256i t3 = _mm256_unpackhi_epi32(B[2], B[3]);
      const __m256i Q[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                            _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
      if (j < nwords) {
        uint8_t* dst = idx + (w0 + j - w_begin) * kIndexBytesPerWord;
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          store_split_nibbles(dst + (2 * q) * 32, Q[q], low4);
        }
      }
    }
  }
}

// One lookup vector: acc (rows 8i..8i+7) += entries of table tp selected by the nibbles ix.
__attribute__((target("avx2,fma"), always_inline)) inline void lookup_add(const uint8_t* tp, __m256i ix,
                                                                          __m256& a0, __m256& a1, __m256& a2,
                                                                          __m256& a3, __m256 one) {
  const __m256i p0 =
      _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tp))), ix);
  const __m256i p1 = _mm256_shuffle_epi8(
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tp + 16))), ix);
  const __m256i p2 = _mm256_shuffle_epi8(
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tp + 32))), ix);
  const __m256i p3 = _mm256_shuffle_epi8(
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tp + 48))), ix);
  const __m256i l01 = _mm256_unpacklo_epi8(p0, p1), h01 = _mm256_unpackhi_epi8(p0, p1);
  const __m256i l23 = _mm256_unpacklo_epi8(p2, p3), h23 = _mm256_unpackhi_epi8(p2, p3);
  // Two of the four adds are fma(r, 1, acc): the same single rounding (r * 1 is exact),
  // run on an FMA pipe.  Zen 3's second add pipe is also one of its two shuffle pipes,
  // which the lookups saturate: lookups ~10-25% faster (bench/NOTES.md, v3).
  a0 = _mm256_add_ps(a0, _mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23)));
  a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23)), one, a1);
  a2 = _mm256_add_ps(a2, _mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23)));
  a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23)), one, a3);
}

// acc[i] (rows 8i..8i+7) += table entries selected by one plane over blocks [b0, b1).
__attribute__((target("avx2,fma"))) void accumulate_plane(const uint8_t* tab_m /* (nblocks, 512) of row m */,
                                                       const uint8_t* idx, int planes, int plane, int64_t tb0,
                                                       int64_t b0, int64_t b1, __m256 acc[4]) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const __m256 one = _mm256_set1_ps(1.f);
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* tb = tab_m + b * kBlockTableBytes;
    const uint8_t* ib = idx + ((b - tb0) * planes + plane) * kIndexBytesPerWord;
    // Not unrolled: fully unrolled, GCC hoists all 8 lookups ahead of the adds and spills.
#pragma GCC unroll 1
    for (int nib = 0; nib < kNibbles; ++nib) {
      const uint8_t* tp = tb + nib * kTableBytes;
      lookup_add(tp, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ib + nib * 32)), a0, a1, a2, a3, one);
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

// Software prefetch distance in the prepacked payload, bytes.  Each thread streams its
// tiles' bytes in order, so this runs into the next tile.  Without it the blob path was
// no faster than the transposing one cold (4096^2 ternary, M = 1, one run: 0.84-0.86 vs
// 0.82-1.06 ms); with it 0.45-0.51 vs 0.76-0.83 ms (1-6 KB similar, 8 KB worse).
constexpr int64_t kPrefetchBytes = 4096;
// accumulate_plane reading the prepacked tile (cpu_prepack_format.h) directly: chunk
// (b * planes + plane) of the tile, vector q = nibbles 2q (low) and 2q + 1 (high).
__attribute__((target("avx2,fma"))) void accumulate_plane_prepacked(const uint8_t* tab_m, const uint8_t* tile,
                                                                    int planes, int plane, int64_t b0, int64_t b1,
                                                                    __m256 acc[4]) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* tb = tab_m + b * kBlockTableBytes;
    const uint8_t* cb = tile + (b * planes + plane) * cpu_prepack::kChunkBytes;
    if (plane == 0) {  // the block's chunks of both planes (2 lines per plane), kPrefetchBytes ahead
      const char* pf = reinterpret_cast<const char*>(tile + b * planes * cpu_prepack::kChunkBytes + kPrefetchBytes);
      _mm_prefetch(pf, _MM_HINT_T0);
      _mm_prefetch(pf + 64, _MM_HINT_T0);
      if (planes == 2) {
        _mm_prefetch(pf + 128, _MM_HINT_T0);
        _mm_prefetch(pf + 192, _MM_HINT_T0);
      }
    }
#pragma GCC unroll 1
    for (int q = 0; q < 4; ++q) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + 32 * q));
      lookup_add(tb + (2 * q) * kTableBytes, _mm256_and_si256(v, low4), a0, a1, a2, a3, one);
      lookup_add(tb + (2 * q + 1) * kTableBytes, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), a0, a1, a2, a3,
                 one);
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

// The index buffer of prepare_indices for words [w_begin, w_end), from the prepacked tile.
__attribute__((target("avx2"))) void expand_prepacked(const uint8_t* tile, int64_t w_begin, int64_t w_end,
                                                      uint8_t* idx) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t w = w_begin; w < w_end; ++w) {
    const uint8_t* src = tile + w * cpu_prepack::kChunkBytes;
    uint8_t* dst = idx + (w - w_begin) * kIndexBytesPerWord;
    _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(src + kPrefetchBytes + 64), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32 * q));
      store_split_nibbles(dst + (2 * q) * 32, v, low4);
    }
  }
}

// Activation rows from which a prepacked K tile is expanded once into the index buffer
// (split once, read `rows` times) instead of split in the inner loop for every row.
constexpr int64_t kExpandRows = 4;

using Prepared = lookup::Prepared<uint8_t>;

// Rows 8i .. 8i+7 of a [32 rows] vector of scale values: in row order, or (blob_order) in a
// cpu_prepack_scales tile's row_of_byte order, where rows 8i .. 8i+3 sit at p = 4i .. 4i+3 and
// rows 8i+4 .. 8i+7 at p = 16+4i .. 16+4i+3.
__attribute__((target("avx2"), always_inline)) inline __m256 load_rows8(const float* v, int i, bool blob_order) {
  if (!blob_order) return _mm256_load_ps(v + 8 * i);
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + 4 * i)), _mm_loadu_ps(v + 16 + 4 * i), 1);
}
static_assert(cpu_prepack::row_of_byte(4 * 3 + 2) == 8 * 3 + 2 && cpu_prepack::row_of_byte(16 + 4 * 3 + 2) == 8 * 3 + 4 + 2,
              "load_rows8's two halves");

// Output rows [n0, n0 + 32) for all activation rows of the chunk.  nonfinite: lanes set where a
// scale or offset value read here is NaN or +-Inf (all exponent bits set), ORed in.
__attribute__((target("avx2,fma"))) void row_tile(const ForwardArgs& a, const Prepared& pr, int64_t n0,
                                                  uint8_t* idx, __m256i& nonfinite) {
  const LinearProblem& p = *a.p;
  const int planes = planes_of(p.kind);
  const bool two = planes == 2;
  const uint32_t* rows[kTileRows];
  int64_t rid[kTileRows];
  lookup::tile_rows<kTileRows>(a, n0, rows, rid);
  // The K tile's scales and offsets, [group of the tile][row of the row tile] (lookup::gather_scales).
  alignas(32) float sbuf[kMaxTileGroups * kTileRows], ubuf[kMaxTileGroups * kTileRows], yv[kTileRows];
  const uint8_t* tile = a.prep ? a.prep + (n0 / kTileRows) * a.wpr * cpu_prepack::kChunkBytes : nullptr;
  const bool direct = tile && pr.rows < kExpandRows;  // read the blob in the inner loop
  const float* const sp = tile ? a.sprep : nullptr;   // a cpu_prepack_scales layout's scale plane, offset plane
  const float* const up = tile ? a.uprep : nullptr;
  for (int64_t tb0 = 0; tb0 < pr.kblocks; tb0 += pr.tile_blocks) {
    const int64_t tb1 = std::min(pr.kblocks, tb0 + pr.tile_blocks);
    if (!tile) prepare_indices(rows, tb0 * planes, tb1 * planes, static_cast<uintptr_t>(kTileRows * a.wpr * 4), idx);
    else if (!direct) expand_prepacked(tile, tb0 * planes, tb1 * planes, idx);
    const int64_t seg = pr.seg_blocks ? pr.seg_blocks : tb1 - tb0;
    const int64_t g0 = pr.seg_blocks ? tb0 / seg : 0;  // (tile_blocks is a multiple of seg)
    // Every scale / offset value passes through here (each row of the tile, each group; u = 0 when
    // absent): the op's NaN / Inf check, done here instead of by a second pass over them
    // (check_linear's defer_finite).
    const __m256i exp_bits = _mm256_set1_epi32(0x7f800000);
    // [group][32 rows] from here on: the gathered buffers (rows in order), or the tile's part of a
    // cpu_prepack_scales layout in place (rows in the blob's row_of_byte order: load_rows8 undoes it)
    const float* s_tile = sbuf;
    const float* u_tile = ubuf;
    if (sp) {
      s_tile = sp + ((n0 / kTileRows) * p.groups + g0) * kTileRows;
      u_tile = up ? up + ((n0 / kTileRows) * p.groups + g0) * kTileRows : lookup::kZeroScales;
    } else {
      lookup::gather_scales<kTileRows>(a, rid, g0, (tb1 - tb0) / seg, sbuf, ubuf);
    }
    for (int64_t j = 0; j < (tb1 - tb0) / seg; ++j) {  // (each row's value once, in either order)
      const float* sj = s_tile + j * kTileRows;
      const float* uj = u_tile + j * kTileRows;
      for (int i = 0; i < 4; ++i) {
        const __m256i sb = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sj + 8 * i)), exp_bits);
        const __m256i ub = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(uj + 8 * i)), exp_bits);
        nonfinite = _mm256_or_si256(nonfinite, _mm256_or_si256(_mm256_cmpeq_epi32(sb, exp_bits),
                                                               _mm256_cmpeq_epi32(ub, exp_bits)));
      }
    }
    for (int64_t m = 0; m < pr.rows; ++m) {
      const uint8_t* tab_m = pr.tab + m * pr.nblocks * kBlockTableBytes;
      float* ym = a.y + (pr.m0 + m) * p.N;
      for (int i = 0; i < kTileRows; ++i) yv[i] = (tb0 == 0 || n0 + i >= p.N) ? 0.f : ym[n0 + i];
      for (int64_t s0 = tb0; s0 < tb1; s0 += seg) {
        const int64_t s1 = std::min(tb1, s0 + seg);
        __m256 L[4], H[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        if (direct) {
          accumulate_plane_prepacked(tab_m, tile, planes, 0, s0, s1, L);
          if (two) accumulate_plane_prepacked(tab_m, tile, planes, 1, s0, s1, H);
        } else {
          accumulate_plane(tab_m, idx, planes, 0, tb0, s0, s1, L);
          if (two) accumulate_plane(tab_m, idx, planes, 1, tb0, s0, s1, H);
        }
        // once per scale group: y += s * sum + u * X
        const float* sv = s_tile + (s0 - tb0) / seg * kTileRows;
        const float* uv = u_tile + (s0 - tb0) / seg * kTileRows;
        float X = 0.f;
        for (int64_t b = s0; b < s1; ++b) X += pr.xblk[m * pr.nblocks + b];
        const __m256 X8 = _mm256_set1_ps(X);
        for (int i = 0; i < 4; ++i) {
          const __m256 sum = two ? _mm256_sub_ps(_mm256_add_ps(_mm256_add_ps(H[i], H[i]), L[i]), X8) : L[i];
          // s * sum + u * X as one explicit FMA on the rounded u * X: the compiler contracts
          // a * b + c * d either way it likes (-ffp-contract=fast), which made this kernel and
          // forward_avx512.cpp differ by an ulp; spelled out, both round alike.
          __m256 y8 = _mm256_load_ps(yv + 8 * i);
          y8 = _mm256_add_ps(y8, _mm256_fmadd_ps(load_rows8(sv, i, sp != nullptr), sum,
                                                 _mm256_mul_ps(load_rows8(uv, i, sp != nullptr), X8)));
          _mm256_store_ps(yv + 8 * i, y8);
        }
      }
      for (int i = 0; i < kTileRows && n0 + i < p.N; ++i) ym[n0 + i] = yv[i];
    }
  }
}

// Row tiles [t0, t1); true when a scale or offset value they read is NaN or +-Inf.
__attribute__((target("avx2,fma"))) bool row_tiles(const ForwardArgs& a, const Prepared& pr, int64_t t0, int64_t t1,
                                                   uint8_t* idx) {
  __m256i nonfinite = _mm256_setzero_si256();
  for (int64_t t = t0; t < t1; ++t) row_tile(a, pr, t * kTileRows, idx, nonfinite);
  return !_mm256_testz_si256(nonfinite, nonfinite);
}

}  // namespace

bool has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

bool avx2_forward_applies(const LinearProblem& p) {
  return has_avx2() && cpu_isa_cap() >= 1 && (p.groups == 1 || p.group_size % BLOCK_K == 0);
}

bool forward_avx2(const ForwardArgs& a) {
  return lookup::run_chunks<uint8_t, uint8_t>(
      *a.p, a.x, kBlockTableBytes, kTileRows, kIndexBytesPerWord,
      [&](const float* x, int64_t rows, int64_t nblocks, uint8_t* tab, float* xblk) {
        build_tables(x, a.p->K, nblocks, rows, tab, xblk);
      },
      [&](const Prepared& pr, int64_t t0, int64_t t1, uint8_t* idx) { return row_tiles(a, pr, t0, t1, idx); });
}

#else  // not x86: the generic kernel handles everything
bool has_avx2() { return false; }
bool avx2_forward_applies(const LinearProblem&) { return false; }
bool forward_avx2(const ForwardArgs&) { return true; }
#endif

int cpu_isa_cap() {
  static const int cap = [] {
    const char* e = std::getenv("BITMM_CPU_ISA");
    if (e != nullptr && std::strcmp(e, "avx2") == 0) return 1;
    if (e != nullptr && std::strcmp(e, "generic") == 0) return 0;
    return 2;
  }();
  return cap;
}

}  // namespace cpu
}  // namespace bitmm
