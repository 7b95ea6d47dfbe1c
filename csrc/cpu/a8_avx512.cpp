// linear_a8's integer sums on AVX-512 VNNI CPUs, read straight from the packed words:
//   sums[m, n] = sum_k xq[m, k] * code[n, k]      (stored codes: binary b, ternary t + 1, int2 q)
// exact in int32 (|sum| <= 3 * 128 * K < 2^31 for K <= kA8MaxK), the same integers the generic path
// (linear_a8.cpp: unpack to int8 codes, then a float matmul) computes, so the op's output is bitwise
// unchanged; only the codes are never written to memory.
//
// `vpdpbusd` adds, per dword lane, the products of 4 unsigned bytes (codes 0..3) with 4 signed bytes (xq).
// The codes come from the packed bits by shifts, ANDs and one vpternlogd, with the 4 weights that share a
// dword lane chosen so that this is cheap; xq is permuted once per call to the same order.  For a 32-weight
// block with plane words lo / hi (bitmm_format.h):
//   binary:   c_r = (word >> r) & 0x01010101, r = 0..7: byte j of c_r is the weight at bit 8j + r.
//   2 planes: E = (lo & 0x5555..) | ((hi << 1) & 0xAAAA..) holds, in 2-bit field f, the code at bit 2f
//             (lo bit + 2 * hi bit); O = ((lo >> 1) & 0x5555..) | (hi & 0xAAAA..) the code at bit 2f + 1.
//             (E >> 2r) & 0x03030303 and (O >> 2r) & 0x03030303, r = 0..3: byte j is the code at bit
//             8j + 2r and 8j + 2r + 1.
// bitmm_format.h's even/odd interleave then maps each bit position to its input k (offset_of_bit).
//
// Two layouts of the lanes, by the number of rows of x (a8_sums_avx512 picks):
//   row_major (M <= 6): a zmm is 16 consecutive packed words of ONE weight row (8 two-plane blocks: lane pair
//     (lo, hi) of a block in one qword, where one vpternlogd with per-dword masks makes E in the low dword
//     and O in the high one; or 16 binary blocks), multiplied with a full zmm of permuted x; 16 partial sums
//     per (row of x, weight row), added up once at the end.  Weight rows are read in order, 64 bytes at a
//     time, with a software prefetch 16 rows ahead: no transpose, and the streaming the hardware can follow.
//   row_lanes (M >= 7): lane i is weight row 16g + i of a 64-row tile, whose words are transposed per
//     64-word K chunk (16 x 16 dword transposes), and x's 4 bytes are broadcast to all lanes: each x byte
//     loaded serves 16 weight rows, where row_major loads x again for every weight row (past ~6 rows of x
//     it no longer fits L1).
// Per 16 lanes x 32 weights the codes cost ~8 (binary 15) shift / and / ternlog instructions, shared by up to
// 8 rows of x, and each row of x 8 vpdpbusd.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BITMM_X86 1
// GCC 12 reports the deliberately undefined upper lanes of _mm512_castsi128_si512 (filled by
// the inserts that follow) as "may be used uninitialized".
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // (_mm512_reduce_add_epi32's, likewise)
#endif

namespace bitmm {
namespace cpu {

#ifdef BITMM_X86
namespace {

#define BITMM_A8_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

// ---- few rows of x: lanes = 16 consecutive words of one weight row (no transpose, rows streamed in order) ----
namespace row_major {

// Taken for M <= kMaxM (a8_sums_avx512): all rows of x share each unpacking of the codes, in one pass.
constexpr int kMaxM = 6;
constexpr int kVecWords = 16;         // packed words per zmm load (one 64-byte line of a row)
constexpr int64_t kPrefetchRows = 16;  // software prefetch distance, in weight rows


// Code vectors per zmm of packed words: 4 (two planes: 8 blocks, 256 weights) or 8 (binary: 16 blocks, 512).
template <bool kTwo>
constexpr int kCodeVecs = kTwo ? 4 : 8;

// The code vectors of 16 packed words q of one row (see the top of the file).
template <bool kTwo>
BITMM_A8_TARGET __attribute__((always_inline)) inline void unpack_codes(__m512i q, __m512i c[kCodeVecs<kTwo>]) {
  if constexpr (kTwo) {
    // qword lane = (lo, hi) of one block.  Low dword: E = lo on even bits, hi << 1 on odd bits (q >> 31 there);
    // high dword: O = lo >> 1 on even bits ((q << 31) there), hi on odd bits.  One vpternlogd 0xE4 = (A & C) |
    // (B & ~C) with C = 0x55555555 in low dwords and 0xAAAAAAAA in high ones does both.
    const __m512i sel = _mm512_set1_epi64(static_cast<long long>(0xAAAAAAAA55555555ull));
    const __m512i other = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(q, 31), _mm512_slli_epi64(q, 31));
    const __m512i R = _mm512_ternarylogic_epi32(q, other, sel, 0xE4);
    const __m512i m3 = _mm512_set1_epi32(0x03030303);
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) c[v] = _mm512_and_si512(_mm512_srli_epi32(R, 2 * v), m3);
  } else {
    const __m512i m1 = _mm512_set1_epi32(0x01010101);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) c[v] = _mm512_and_si512(_mm512_srli_epi32(q, v), m1);
  }
}

// sums[(m0 + i) * N + n0 + r] for i < MT, r < NR: rows n0.. of the packed weight against rows [m0, m0 + MT) of
// xperm (x rows of xstride bytes, in the code vectors' byte order).  vpdpbusd's latency is ~4-5 cycles: NR rows
// share a pass and, under 8 accumulators, each is split in two (even / odd code vector), so that at least 8
// independent addition chains run (M = 1: 4 rows x 2).
template <bool kTwo, int MT, int NR>
BITMM_A8_TARGET void row_group(const uint32_t* w, int64_t wpr, int64_t words, const int8_t* xperm, int64_t xstride,
                               int64_t m0, int64_t n0, int64_t N, int32_t* sums) {
  constexpr int V = kCodeVecs<kTwo>;
  constexpr int A = MT * NR < 8 ? 2 : 1;
  __m512i acc[NR][MT][A];
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i)
#pragma GCC unroll 2
      for (int a = 0; a < A; ++a) acc[r][i][a] = _mm512_setzero_si512();
  const int8_t* x0 = xperm + m0 * xstride;
  for (int64_t w0 = 0, c = 0; w0 < words; w0 += kVecWords, ++c) {
    const __mmask16 k = words - w0 >= kVecWords ? __mmask16(0xFFFF) : __mmask16((1u << (words - w0)) - 1);
    const int8_t* xc = x0 + c * V * 64;
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
      __m512i cv[V];
      // masked-off words load as 0: code 0, adding nothing
      unpack_codes<kTwo>(_mm512_maskz_loadu_epi32(k, w + (n0 + r) * wpr + w0), cv);
      // the same line 16 rows further on (~0.8 us ahead at M = 1; 8 and 32 were slower; a hint: past the end is
      // harmless)
      _mm_prefetch(reinterpret_cast<const char*>(w + (n0 + r + kPrefetchRows) * wpr + w0), _MM_HINT_T0);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v)
#pragma GCC unroll 8
        for (int i = 0; i < MT; ++i)
          acc[r][i][v % A] = _mm512_dpbusd_epi32(acc[r][i][v % A], cv[v], _mm512_loadu_si512(xc + i * xstride + v * 64));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      __m512i t = acc[r][i][0];
      if constexpr (A == 2) t = _mm512_add_epi32(t, acc[r][i][1]);
      sums[(m0 + i) * N + n0 + r] = _mm512_reduce_add_epi32(t);  // exact: int32 addition is associative
    }
}

// Rows of the packed weight per row_group call for MT rows of x: 4 for 1-2 rows, 2 for 3-4, else 1.
constexpr int rows_per_group(int m) { return m <= 2 ? 4 : (m <= 4 ? 2 : 1); }

using RowGroupFn = void (*)(const uint32_t*, int64_t, int64_t, const int8_t*, int64_t, int64_t, int64_t, int64_t,
                            int32_t*);

template <bool kTwo, int... I>
RowGroupFn row_group_fn(int mt, bool single_row, std::integer_sequence<int, I...>) {
  static constexpr RowGroupFn grouped[] = {&row_group<kTwo, I + 1, rows_per_group(I + 1)>...};
  static constexpr RowGroupFn single[] = {&row_group<kTwo, I + 1, 1>...};
  return (single_row ? single : grouped)[mt - 1];
}

// xperm rows [m0, m0 + rows): for each zmm of 16 words c and code vector v, 64 bytes: lane l, byte j = the input at
// bit position 8j + v (binary: block 16c + l) or 8j + 2v + (l & 1) (two planes: block 8c + l / 2) of its block; 0
// past K.  Also row_sums.
void permute_rows(const A8Args& a, int64_t m0, int64_t rows, int64_t vecs, int64_t xstride, int8_t* xperm) {
  const int64_t K = a.p->K;
  const bool two = planes_of(a.p->kind) == 2;
  const int V = two ? 4 : 8;
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t m = r0; m < r1; ++m) {
      const int8_t* xr = a.xq + (m0 + m) * K;
      int8_t* xp = xperm + m * xstride;
      for (int64_t c = 0; c < vecs; ++c) {
        for (int v = 0; v < V; ++v) {
          for (int l = 0; l < 16; ++l) {
            const int64_t b = two ? 8 * c + l / 2 : 16 * c + l;
            for (int j = 0; j < 4; ++j) {
              const int bit = two ? 8 * j + 2 * v + (l & 1) : 8 * j + v;
              const int64_t k = b * BLOCK_K + offset_of_bit(bit);
              xp[(c * V + v) * 64 + 4 * l + j] = k < K ? xr[k] : int8_t{0};
            }
          }
        }
      }
      int32_t total = 0;
      for (int64_t k = 0; k < K; ++k) total += xr[k];
      a.row_sums[m0 + m] = total;
    }
  });
}

void sums(const A8Args& a) {
  const LinearProblem& p = *a.p;
  const bool two = planes_of(p.kind) == 2;
  // only the words of blocks holding inputs < K (the rest of the padded row pairs with zero inputs anyway)
  const int64_t words = (p.K + BLOCK_K - 1) / BLOCK_K * planes_of(p.kind);
  const int64_t vecs = (words + kVecWords - 1) / kVecWords;
  const int64_t xstride = vecs * kVecWords * 32 / planes_of(p.kind);  // bytes per permuted row: 32 per block
  std::vector<int8_t> xperm(static_cast<size_t>(p.M * xstride));
  permute_rows(a, 0, p.M, vecs, xstride, xperm.data());
  const int mt = static_cast<int>(p.M);  // <= kMaxM
  const int nr = rows_per_group(mt);     // 4, 2 or 1
  const auto seq = std::make_integer_sequence<int, kMaxM>{};
  const RowGroupFn grouped = two ? row_group_fn<true>(mt, false, seq) : row_group_fn<false>(mt, false, seq);
  const RowGroupFn single = two ? row_group_fn<true>(mt, true, seq) : row_group_fn<false>(mt, true, seq);
  // 16 output rows per task at least: ~8 us of work at K = 4096, M = 1
  at::parallel_for(0, p.N, 16, [&](int64_t n_begin, int64_t n_end) {
    int64_t n = n_begin;
    for (; n + nr <= n_end; n += nr) grouped(a.w, a.wpr, words, xperm.data(), xstride, 0, n, p.N, a.sums);
    for (; n < n_end; ++n) single(a.w, a.wpr, words, xperm.data(), xstride, 0, n, p.N, a.sums);
  });
}

}  // namespace row_major

// ---- many rows of x: lanes = 16 weight rows (64-row tiles transposed per K chunk, x broadcast) ----
namespace row_lanes {

constexpr int kTileRows = 64;                     // output rows per tile: 4 zmm of 16 lanes
constexpr int kGroups = kTileRows / 16;
constexpr int kMaxMT = 8;                         // rows of x sharing one set of unpacked codes
constexpr int64_t kChunkWords = 64;               // K chunk: 64 words x 64 rows = 16 KB of transposed words
constexpr int64_t kMChunk = 256;                  // rows of x per pass over the weights (accumulators 64 KB)
constexpr int kPermBytes = BLOCK_K;               // xperm bytes per (row, block)

// The 8 code vectors of block b for lanes 16g..16g+15 (byte j of c[r]: the code at bit 8j + r).
template <bool kTwo>
BITMM_A8_TARGET __attribute__((always_inline)) inline void block_codes(const uint32_t* wb, __m512i c[8]) {
  if constexpr (kTwo) {
    const __m512i lo = _mm512_load_si512(wb), hi = _mm512_load_si512(wb + kTileRows);
    const __m512i even = _mm512_set1_epi32(0x55555555), m3 = _mm512_set1_epi32(0x03030303);
    // vpternlogd 0xE4 = (A & C) | (B & ~C) with C = even: A on even bits, B on odd bits
    const __m512i E = _mm512_ternarylogic_epi32(lo, _mm512_slli_epi32(hi, 1), even, 0xE4);
    const __m512i O = _mm512_ternarylogic_epi32(_mm512_srli_epi32(lo, 1), hi, even, 0xE4);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      c[2 * r] = _mm512_and_si512(_mm512_srli_epi32(E, 2 * r), m3);
      c[2 * r + 1] = _mm512_and_si512(_mm512_srli_epi32(O, 2 * r), m3);
    }
  } else {
    const __m512i w = _mm512_load_si512(wb), m1 = _mm512_set1_epi32(0x01010101);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) c[r] = _mm512_and_si512(_mm512_srli_epi32(w, r), m1);
  }
}

// Words [w_begin, w_end) of the tile's rows as dword lanes: wbuf[(w - w_begin) * 64 + r] = word w of row
// min(n0 + r, N - 1), for w_begin a multiple of 16: each row's 16 words in one (masked) 64-byte load, then a
// 16 x 16 dword transpose (4 rounds of 16 shuffles).  (forward_avx512.cpp's transpose_words, 16-byte loads from 64
// row pointers, made this kernel spend twice as long transposing as multiplying at M = 1.)
BITMM_A8_TARGET void transpose_rows(const uint32_t* w, int64_t wpr, int64_t N, int64_t n0, int64_t w_begin,
                                    int64_t w_end, uint32_t* wbuf) {
  for (int g = 0; g < kGroups; ++g) {
    const uint32_t* row0 = w + std::min<int64_t>(n0 + 16 * g, N - 1) * wpr;
    const int64_t last = N - 1 - (n0 + 16 * g);  // rows past it repeat row N - 1
    for (int64_t w0 = w_begin; w0 < w_end; w0 += 16) {
      const int nw = static_cast<int>(std::min<int64_t>(16, w_end - w0));
      const __mmask16 k = static_cast<__mmask16>((1u << nw) - 1);
      __m512i r[16], t[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_epi32(k, row0 + std::min<int64_t>(i, last) * wpr + w0);
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
      }
      // r[4i + j], 128-bit lane L: word 4L + j of rows 4i .. 4i + 3
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
      }
      uint32_t* out = wbuf + (w0 - w_begin) * kTileRows + 16 * g;
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i x0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
        const __m512i y0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44),
                      y1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
        // word 4L + j of rows 0..15: lane q from r[4q + j]'s lane L
        _mm512_store_si512(out + (0 + j) * kTileRows, _mm512_shuffle_i32x4(x0, y0, 0x88));
        _mm512_store_si512(out + (4 + j) * kTileRows, _mm512_shuffle_i32x4(x0, y0, 0xDD));
        _mm512_store_si512(out + (8 + j) * kTileRows, _mm512_shuffle_i32x4(x1, y1, 0x88));
        _mm512_store_si512(out + (12 + j) * kTileRows, _mm512_shuffle_i32x4(x1, y1, 0xDD));
      }
    }
  }
}

// Rows of x [m0, m0 + MT) x lanes [16 g0, 16 (g0 + NG)) of the tile += blocks [b0, b1) of the chunk whose first
// block is cb0; accbuf[m * 64 + lane] (loaded unless first), xperm (rows, nblocks, 32).  vpdpbusd's latency is ~4-5
// cycles: few rows of x share one unpacking between NG lane groups, and under 8 accumulators each is split in two
// (even / odd r), so at least 8 independent addition chains run (M = 1: 4 groups x 2).
template <bool kTwo, int MT, int NG>
BITMM_A8_TARGET void accumulate(const uint32_t* wbuf, const int8_t* xperm, int64_t nblocks, int64_t m0, int g0,
                                int64_t cb0, int64_t b0, int64_t b1, bool first, int32_t* accbuf) {
  constexpr int planes = kTwo ? 2 : 1;
  constexpr int A = MT * NG < 8 ? 2 : 1;  // chains per accumulator
  __m512i acc[NG][MT][A];
#pragma GCC unroll 4
  for (int gg = 0; gg < NG; ++gg) {
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      acc[gg][i][0] = first ? _mm512_setzero_si512()
                            : _mm512_load_si512(accbuf + (m0 + i) * kTileRows + 16 * (g0 + gg));
      if constexpr (A == 2) acc[gg][i][A - 1] = _mm512_setzero_si512();
    }
  }
  for (int64_t b = b0; b < b1; ++b) {
    const int8_t* xb = xperm + (m0 * nblocks + b) * kPermBytes;
#pragma GCC unroll 4
    for (int gg = 0; gg < NG; ++gg) {
      __m512i c[8];
      block_codes<kTwo>(wbuf + (b - cb0) * planes * kTileRows + 16 * (g0 + gg), c);
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
#pragma GCC unroll 8
        for (int i = 0; i < MT; ++i) {
          int32_t xd;
          std::memcpy(&xd, xb + i * nblocks * kPermBytes + 4 * r, 4);
          acc[gg][i][r % A] = _mm512_dpbusd_epi32(acc[gg][i][r % A], c[r], _mm512_set1_epi32(xd));
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int gg = 0; gg < NG; ++gg) {
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      __m512i v = acc[gg][i][0];
      if constexpr (A == 2) v = _mm512_add_epi32(v, acc[gg][i][A - 1]);
      _mm512_store_si512(accbuf + (m0 + i) * kTileRows + 16 * (g0 + gg), v);
    }
  }
}

// Lane groups per call for MT rows of x: 4 for 1-2 rows, 2 for 3-4, else 1.
constexpr int groups_per_call(int mt) { return mt <= 2 ? 4 : (mt <= 4 ? 2 : 1); }

template <bool kTwo>
using AccumulateFn = void (*)(const uint32_t*, const int8_t*, int64_t, int64_t, int, int64_t, int64_t, int64_t, bool,
                              int32_t*);

template <bool kTwo, int... MT>
constexpr AccumulateFn<kTwo> accumulate_table_entry(int mt, std::integer_sequence<int, MT...>) {
  AccumulateFn<kTwo> fns[] = {&accumulate<kTwo, MT + 1, groups_per_call(MT + 1)>...};
  return fns[mt - 1];
}

// Rows [m0, m0 + rows) of x (permuted) against output rows [n0, n0 + 64).
template <bool kTwo>
BITMM_A8_TARGET void row_tile(const A8Args& a, const int8_t* xperm, int64_t nblocks, int64_t m0, int64_t rows,
                              int64_t n0, uint32_t* wbuf, int32_t* accbuf) {
  constexpr int planes = kTwo ? 2 : 1;
  const LinearProblem& p = *a.p;
  // only blocks holding inputs < K: the padding blocks' inputs are all zero
  const int64_t words = nblocks * planes;
  for (int64_t w0 = 0; w0 < words; w0 += kChunkWords) {
    const int64_t w1 = std::min(words, w0 + kChunkWords);
    transpose_rows(a.w, a.wpr, p.N, n0, w0, w1, wbuf);
    const int64_t cb0 = w0 / planes, cb1 = w1 / planes;
    for (int64_t mt0 = 0; mt0 < rows; mt0 += kMaxMT) {
      const int mt = static_cast<int>(std::min<int64_t>(kMaxMT, rows - mt0));
      const AccumulateFn<kTwo> fn = accumulate_table_entry<kTwo>(mt, std::make_integer_sequence<int, kMaxMT>{});
      for (int g = 0; g < kGroups; g += groups_per_call(mt))
        fn(wbuf, xperm, nblocks, mt0, g, cb0, cb0, cb1, w0 == 0, accbuf);
    }
  }
  const int64_t nv = std::min<int64_t>(kTileRows, p.N - n0);
  for (int64_t m = 0; m < rows; ++m)
    std::memcpy(a.sums + (m0 + m) * p.N + n0, accbuf + m * kTileRows, nv * sizeof(int32_t));
}

// xperm (rows, nblocks, 32) of rows [m0, m0 + rows) and their sums.
void permute_rows(const A8Args& a, int64_t m0, int64_t rows, int64_t nblocks, int8_t* xperm) {
  const int64_t K = a.p->K;
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t m = r0; m < r1; ++m) {
      const int8_t* xr = a.xq + (m0 + m) * K;
      int8_t* xp = xperm + m * nblocks * kPermBytes;
      int32_t total = 0;
      for (int64_t b = 0; b < nblocks; ++b) {
        for (int r = 0; r < 8; ++r) {
          for (int j = 0; j < 4; ++j) {
            const int64_t k = b * BLOCK_K + offset_of_bit(8 * j + r);
            const int8_t v = k < K ? xr[k] : int8_t{0};
            xp[b * kPermBytes + 4 * r + j] = v;
            total += v;
          }
        }
      }
      a.row_sums[m0 + m] = total;
    }
  });
}

void sums(const A8Args& a) {
  const LinearProblem& p = *a.p;
  const bool two = planes_of(p.kind) == 2;
  const int64_t nblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  const int64_t tiles = (p.N + kTileRows - 1) / kTileRows;
  const int64_t mchunk = std::min(p.M, kMChunk);
  std::vector<int8_t> xperm(static_cast<size_t>(mchunk * nblocks * kPermBytes));
  for (int64_t m0 = 0; m0 < p.M; m0 += mchunk) {
    const int64_t rows = std::min(mchunk, p.M - m0);
    permute_rows(a, m0, rows, nblocks, xperm.data());
    at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
      uint32_t* wbuf = static_cast<uint32_t*>(std::aligned_alloc(64, kChunkWords * kTileRows * sizeof(uint32_t)));
      int32_t* accbuf = static_cast<int32_t*>(std::aligned_alloc(64, rows * kTileRows * sizeof(int32_t)));
      for (int64_t t = t0; t < t1; ++t) {
        if (two)
          row_tile<true>(a, xperm.data(), nblocks, m0, rows, t * kTileRows, wbuf, accbuf);
        else
          row_tile<false>(a, xperm.data(), nblocks, m0, rows, t * kTileRows, wbuf, accbuf);
      }
      std::free(accbuf);
      std::free(wbuf);
    });
  }
}

}  // namespace row_lanes

}  // namespace

bool has_avx512_vnni() {
  static const bool has = has_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return has;
}

bool a8_avx512_applies(const LinearProblem& p) { return has_avx512_vnni() && avx512_enabled() && p.K <= kA8MaxK; }

void a8_sums_avx512(const A8Args& a) {
  // row_major streams each weight row once and re-reads x per row: past ~6 rows x leaves L1 (24 KB at K = 4096) and
  // row_lanes, which broadcasts x to 16 weight rows at a time, is faster (session 31, 4096^2, 2 threads, median
  // of 2 alternated sweeps: ternary M = 4 361-401 us against 474-520, M = 6 419-439 against 536-681, M = 8 546-839
  // against 616-806, M = 16 1188-1797 against 976-1273; bench/NOTES.md "CPU linear_a8")
  if (a.p->M <= row_major::kMaxM)
    row_major::sums(a);
  else
    row_lanes::sums(a);
}
const char* a8_kernel_name() { return has_avx512_vnni() && avx512_enabled() ? "avx512_vnni" : "generic"; }

#else
const char* a8_kernel_name() { return "generic"; }
bool has_avx512_vnni() { return false; }
bool a8_avx512_applies(const LinearProblem&) { return false; }
void a8_sums_avx512(const A8Args&) {}
#endif

}  // namespace cpu
}  // namespace bitmm
