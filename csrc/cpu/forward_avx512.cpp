// AVX-512 forward kernel: the AVX2 kernel's lookup tables (forward_avx2.cpp), looked up
// with `vpermd` instead of `vpshufb`.
//
// Same math as forward_avx2.cpp, bit for bit: for each activation row and every 4
// consecutive inputs (packed bit order) the 16 subset sums {0, a, b, a+b, c, ..., a+b+c+d},
// built by the same additions in the same order; each output row adds, per plane, the table
// entries its 4-bit weight slices ("nibbles") select, block after block and nibble after
// nibble, then y += s * (2H + L - X) + u * X per scale group (binary: s * L + u * X).
//
// What changes is the lookup.  A table of 16 fp32 entries is exactly one zmm register, and
// `vpermd` selects one of 16 dwords per lane by the low 4 bits of the index lane, ignoring the
// rest.  With lane i holding packed word w of output row i, `vpermd(word >> 4q, table_q)` looks
// up nibble q of 16 rows at once: one shift, one shuffle, one add per 16 rows and 4 weights,
// where the AVX2 kernel spends 4 `vpshufb` and 8 unpacks (byte-plane tables) per 32 rows.  The
// index lanes come from one of two sources:
//  * the packed words: a K tile of the rows' words is transposed into dword lanes once (16 x
//    16-byte loads, 12 inserts, 8 unpacks per 16 rows and 4 words), then read per activation row;
//  * a cpu_prepack blob (cpu_prepack_format.h, made for the AVX2 kernel: byte q of 32 rows' words
//    per 32-byte vector), read in place: a byte zero-extended to a dword lane (vpmovzxbd) indexes
//    its low nibble, shifted right by 4 its high one.  No transpose, two sequential streams per
//    row tile instead of 64 row segments.
//
// A row tile is 64 output rows (4 zmm): four independent addition chains per plane, as the AVX2
// kernel's four accumulators.  Lane j of register r is row 16r + j, or with a blob row
// 32 (r / 2) + row_of_byte(16 (r % 2) + j) (the blob's byte order; scales are gathered and
// outputs stored in that order).
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
// GCC 12 reports the deliberately undefined upper lanes of _mm512_castsi128_si512 (filled by
// the inserts that follow) as "may be used uninitialized".
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "lookup_tables.h"
#include "transpose_avx512.h"
#endif

namespace bitmm {
namespace cpu {

#ifdef BITMM_X86
namespace {

constexpr int kLanes = 16;                          // output rows per zmm
constexpr int kRegs = 4;                            // zmm per row tile
constexpr int kTileRows = kLanes * kRegs;           // 64 output rows per row tile
using lookup::kMaxTileGroups;
using lookup::kNibbles;
constexpr int kBlockTableFloats = kNibbles * 16;    // 8 tables of 16 fp32 per (activation row, block)

// Tables of blocks [i0, i1) (block i: activation row i / nblocks, block i % nblocks), the entries
// of lookup::nibble_entries as plain fp32 (entry e of nibble q at tab[(i * 8 + q) * 16 + e]), and
// their input sums.
__attribute__((target("avx2"))) void build_tables_range(const float* x, int64_t K, int64_t nblocks, float* tab,
                                                         float* xblk, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t m = i / nblocks, b = i % nblocks;
    alignas(32) float v[BLOCK_K];
    lookup::block_inputs(x + m * K, K, b, v);
    float* t = tab + i * kBlockTableFloats;
    float total = 0.f;
    for (int nib = 0; nib < kNibbles; ++nib) {
      __m256 lo, hi;
      total += lookup::nibble_entries(v + 4 * nib, lo, hi);
      _mm256_storeu_ps(t + 16 * nib, lo);
      _mm256_storeu_ps(t + 16 * nib + 8, hi);
    }
    xblk[i] = total;
  }
}

// The tile's 64 packed rows: row r at base + r * stride words.  A full tile's rows are consecutive
// rows of the weight (stride = words per row): its 64 addresses come from two registers; an
// array of 64 row pointers, as the tail tile needs (rows >= N repeat row N - 1), was spilled to
// the stack and reloaded for every 16-byte load (43% of the kernel's time at M = 1, perf).
struct StridedRows {
  const uint32_t* base;
  int64_t stride;
  const uint32_t* operator[](int r) const { return base + r * stride; }
};
struct ListedRows {
  const uint32_t* const* rows;
  const uint32_t* operator[](int r) const { return rows[r]; }
};

// Words [w_begin, w_end) of the tile's 64 rows as dword lanes: wbuf[(w - w_begin) * 64 + r]
// = word w of rows[r].  w_begin is a multiple of 4 and words_per_row too (whole 16-byte loads).
template <typename Rows>
__attribute__((target("avx512f"))) void transpose_words(const Rows rows, int64_t w_begin, int64_t w_end,
                                                         uint32_t* wbuf) {
  // 16 rows at a time, all their words, so that 16 row addresses are live in the loop (64 were
  // hoisted out of it and spilled).
#pragma GCC unroll 1
  for (int g = 0; g < kRegs; ++g) {  // rows 16g .. 16g + 15
    const uint32_t* rp[16];
    for (int r = 0; r < 16; ++r) rp[r] = rows[16 * g + r];
    for (int64_t w0 = w_begin; w0 < w_end; w0 += 4) {
      const int nwords = static_cast<int>(std::min<int64_t>(4, w_end - w0));
      __m512i z[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {  // z[r], 128-bit lane l: words w0 .. w0+3 of row 16g + r + 4l
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[r] + w0)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[r + 4] + w0)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[r + 8] + w0)), 2);
        z[r] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[r + 12] + w0)), 3);
      }
      // In-lane 4x4 transpose: out[j], lane l, dword r = word w0 + j of row 16g + r + 4l, i.e.
      // dword 4l + r of out[j] belongs to row 16g + 4l + r: lanes in row order.
      const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]);
      const __m512i t1 = _mm512_unpackhi_epi32(z[0], z[1]);
      const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]);
      const __m512i t3 = _mm512_unpackhi_epi32(z[2], z[3]);
      const __m512i out[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                              _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
      for (int j = 0; j < nwords; ++j)
        _mm512_store_si512(reinterpret_cast<__m512i*>(wbuf + (w0 + j - w_begin) * kTileRows + kLanes * g), out[j]);
    }
  }
}

using Prepared = lookup::Prepared<float>;

// Software prefetch of the words the next K tile will transpose (64 row segments), a few lines
// per block of this K tile's lookups.  Issued all at once in the transpose, as the AVX2 kernel
// does, they did not help cold (measured: within noise; presumably they queue behind each other
// and the transpose's demand loads).
struct SegmentPrefetch {
  const char* row0 = nullptr;  // first line of row 0's segment (64-byte aligned)
  int64_t row_bytes = 0;       // between rows
  int64_t lines = 0;           // lines per row segment
  int64_t rows = 0;            // rows left, from row0
  int64_t line = 0;            // next line of the current row
  int per_step = 0;            // lines per call of step()
  void step() {
    for (int i = 0; i < per_step && rows > 0; ++i) {
      _mm_prefetch(row0 + line * 64, _MM_HINT_T0);
      if (++line == lines) {
        line = 0;
        row0 += row_bytes;
        --rows;
      }
    }
  }
};

// acc[r] (rows 16r .. 16r + 15) += table entries one plane selects over blocks [b0, b1): block b's
// plane word at wbuf[((b - tb0) * planes + plane) * 64 + row].  Per row the additions run in
// forward_avx2.cpp's order (block by block, nibble 0..7).
__attribute__((target("avx512f"))) void accumulate_plane(const float* tab_m, const uint32_t* wbuf, int planes,
                                                         int plane, int64_t tb0, int64_t b0, int64_t b1,
                                                         __m512 acc[kRegs], SegmentPrefetch& pf) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t b = b0; b < b1; ++b) {
    pf.step();
    const float* tb = tab_m + b * kBlockTableFloats;
    const uint32_t* wb = wbuf + ((b - tb0) * planes + plane) * kTileRows;
    const __m512i w0 = _mm512_load_si512(wb), w1 = _mm512_load_si512(wb + 16), w2 = _mm512_load_si512(wb + 32),
                  w3 = _mm512_load_si512(wb + 48);
#pragma GCC unroll 8
    for (int nib = 0; nib < kNibbles; ++nib) {
      const __m512 t = _mm512_loadu_ps(tb + 16 * nib);
      // vpermd reads only the low 4 bits of each index lane: the nibble, after the shift
      a0 = _mm512_add_ps(a0, _mm512_permutexvar_ps(_mm512_srli_epi32(w0, 4 * nib), t));
      a1 = _mm512_add_ps(a1, _mm512_permutexvar_ps(_mm512_srli_epi32(w1, 4 * nib), t));
      a2 = _mm512_add_ps(a2, _mm512_permutexvar_ps(_mm512_srli_epi32(w2, 4 * nib), t));
      a3 = _mm512_add_ps(a3, _mm512_permutexvar_ps(_mm512_srli_epi32(w3, 4 * nib), t));
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

// Software prefetch distance in each of the two blob streams, bytes (as forward_avx2.cpp's).
constexpr int64_t kBlobPrefetchBytes = 4096;

// accumulate_plane reading two cpu_prepack tiles (cpu_prepack_format.h; 32 rows each) in place
// of the transposed words: chunk (b * planes + plane) of a tile, vector q = byte q of the 32
// rows' words, i.e. nibble 2q in the low and 2q + 1 in the high half of each byte.  A byte
// zero-extended to a dword lane (vpmovzxbd) is a vpermd index for its low nibble; shifted right
// by 4, for its high one.  acc[0], acc[1]: bytes 0-15 and 16-31 of tile A, acc[2], acc[3]: of
// tile B; lane j of acc[2h + i] is row row_of_byte(16i + j) of that tile.  Per row the same
// entries are added in the same order as accumulate_plane's (block by block, nibble 0..7).
__attribute__((target("avx512f"))) void accumulate_plane_blob(const float* tab_m, const uint8_t* tile_a,
                                                              const uint8_t* tile_b, int planes, int plane,
                                                              int64_t b0, int64_t b1, __m512 acc[kRegs],
                                                              bool prefetch) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t b = b0; b < b1; ++b) {
    const float* tb = tab_m + b * kBlockTableFloats;
    const int64_t off = (b * planes + plane) * cpu_prepack::kChunkBytes;
    const uint8_t* ca = tile_a + off;
    const uint8_t* cb = tile_b + off;
    if (prefetch) {  // the block's chunks of every plane (2 lines each) in both tiles, kBlobPrefetchBytes ahead
      const int64_t ahead = b * planes * cpu_prepack::kChunkBytes + kBlobPrefetchBytes;
      for (int l = 0; l < 2 * planes; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(tile_a + ahead + 64 * l), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(tile_b + ahead + 64 * l), _MM_HINT_T0);
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ca + 32 * q)));
      const __m512i i1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ca + 32 * q + 16)));
      const __m512i i2 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cb + 32 * q)));
      const __m512i i3 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cb + 32 * q + 16)));
      const __m512 tl = _mm512_loadu_ps(tb + 16 * (2 * q)), th = _mm512_loadu_ps(tb + 16 * (2 * q + 1));
      a0 = _mm512_add_ps(a0, _mm512_permutexvar_ps(i0, tl));
      a1 = _mm512_add_ps(a1, _mm512_permutexvar_ps(i1, tl));
      a2 = _mm512_add_ps(a2, _mm512_permutexvar_ps(i2, tl));
      a3 = _mm512_add_ps(a3, _mm512_permutexvar_ps(i3, tl));
      a0 = _mm512_add_ps(a0, _mm512_permutexvar_ps(_mm512_srli_epi32(i0, 4), th));
      a1 = _mm512_add_ps(a1, _mm512_permutexvar_ps(_mm512_srli_epi32(i1, 4), th));
      a2 = _mm512_add_ps(a2, _mm512_permutexvar_ps(_mm512_srli_epi32(i2, 4), th));
      a3 = _mm512_add_ps(a3, _mm512_permutexvar_ps(_mm512_srli_epi32(i3, 4), th));
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

// dst[c * dst_stride + i] = src[i][c] for i, c < 16 (transpose_avx512.h on the floats' bits).
__attribute__((target("avx512f"), always_inline)) inline void transpose16(const float* const src[16], float* dst,
                                                                          int64_t dst_stride) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_castps_si512(_mm512_loadu_ps(src[i]));
  transpose16x16_epi32(r);
  for (int c = 0; c < 16; ++c) _mm512_storeu_ps(dst + c * dst_stride, _mm512_castsi512_ps(r[c]));
}

// lookup::gather_scales_into for the 64-row tile, 16 groups x 16 rows at a time through transpose16 where
// a row's groups are contiguous (group-wise scales, sg = 1): one scalar store per value was ~40% of
// the kernel's time at M = 1, g64 (perf, one thread, hot).  The same values in the same places.
__attribute__((target("avx512f"))) void gather_scales_64(const ScaleView<float>& v, const int64_t rid[kTileRows],
                                                         int64_t g0, int64_t ng, float* buf) {
  if (v.ptr == nullptr || v.sg != 1 || ng < 16) {
    lookup::gather_scales_into<kTileRows>(v, rid, g0, ng, buf);
    return;
  }
  const int64_t full = ng / 16 * 16;
  for (int rb = 0; rb < kTileRows / 16; ++rb) {
    const float* src[16];
    for (int i = 0; i < 16; ++i) src[i] = v.ptr + rid[16 * rb + i] * v.sn + g0;
    for (int64_t j0 = 0; j0 < full; j0 += 16) {
      const float* s16[16];
      for (int i = 0; i < 16; ++i) s16[i] = src[i] + j0;
      transpose16(s16, buf + j0 * kTileRows + 16 * rb, kTileRows);
    }
    for (int64_t j = full; j < ng; ++j)
      for (int i = 0; i < 16; ++i) buf[j * kTileRows + 16 * rb + i] = src[i][j];
  }
}

// Output rows [n0, n0 + 64) for all activation rows of the chunk; nonfinite as in forward_avx2.cpp.
__attribute__((target("avx512f"))) void row_tile(const ForwardArgs& a, const Prepared& pr, int64_t n0,
                                                 uint32_t* wbuf, __mmask16& nonfinite) {
  const LinearProblem& p = *a.p;
  const int planes = planes_of(p.kind);
  const bool two = planes == 2;
  const uint32_t* rows[kTileRows];
  int64_t rid[kTileRows];
  lookup::tile_rows<kTileRows>(a, n0, rows, rid);
  // lane i of the accumulators (register i / 16, lane i % 16) holds row n0 + lane_row[i]: i
  // itself, or with a blob the tiles' byte order (accumulate_plane_blob)
  int lane_row[kTileRows];
  const uint8_t* tile_a = nullptr;
  const uint8_t* tile_b = nullptr;
  int64_t tile_ix = 0, tile_ix_b = 0;  // their indices
  if (a.prep) {
    const int64_t t = n0 / cpu_prepack::kTileRows, tiles = cpu_prepack::num_tiles(p.N);
    tile_ix = t;
    tile_ix_b = t + 1 < tiles ? t + 1 : t;  // rows >= N: not stored
    tile_a = a.prep + t * a.wpr * cpu_prepack::kChunkBytes;
    tile_b = a.prep + tile_ix_b * a.wpr * cpu_prepack::kChunkBytes;
    for (int i = 0; i < kTileRows; ++i)
      lane_row[i] = cpu_prepack::kTileRows * (i / 32) + cpu_prepack::row_of_byte(i % 32);
    for (int i = 0; i < kTileRows; ++i) rid[i] = std::min<int64_t>(n0 + lane_row[i], p.N - 1);
  } else {
    std::iota(lane_row, lane_row + kTileRows, 0);
  }
  alignas(64) float sbuf[kMaxTileGroups * kTileRows], ubuf[kMaxTileGroups * kTileRows], yv[kTileRows];
  const __m512i exp_bits = _mm512_set1_epi32(0x7f800000);
  for (int64_t tb0 = 0; tb0 < pr.kblocks; tb0 += pr.tile_blocks) {
    const int64_t tb1 = std::min(pr.kblocks, tb0 + pr.tile_blocks);
    if (!tile_a) {  // (a blob is read in place)
      if (n0 + kTileRows <= p.N)
        transpose_words(StridedRows{a.w + n0 * a.wpr, a.wpr}, tb0 * planes, tb1 * planes, wbuf);
      else
        transpose_words(ListedRows{rows}, tb0 * planes, tb1 * planes, wbuf);
    }
    // The next K tile's words: this row tile's next K range, or the next row tile's first one.
    SegmentPrefetch pf;
    if (!tile_a) {
      const bool last = tb1 >= pr.kblocks;
      const int64_t nb0 = last ? 0 : tb1, nb1 = std::min(pr.kblocks, nb0 + pr.tile_blocks);
      const int64_t r0 = last ? n0 + kTileRows : n0;
      // integer addresses: r0 may be N (no row there; then rows = 0 and nothing is prefetched)
      const uintptr_t first = reinterpret_cast<uintptr_t>(a.w) + 4 * static_cast<uintptr_t>(r0 * a.wpr + nb0 * planes);
      const uintptr_t end = first + 4 * static_cast<uintptr_t>((nb1 - nb0) * planes);
      pf.row0 = reinterpret_cast<const char*>(first & ~uintptr_t(63));
      pf.row_bytes = a.wpr * 4;
      pf.lines = (end - (first & ~uintptr_t(63)) + 63) / 64;
      pf.rows = std::max<int64_t>(0, std::min<int64_t>(kTileRows, p.N - r0));
      const int64_t steps = (tb1 - tb0) * planes;
      pf.per_step = static_cast<int>((pf.rows * pf.lines + steps - 1) / steps);
    }
    const int64_t seg = pr.seg_blocks ? pr.seg_blocks : tb1 - tb0;
    const int64_t g0 = pr.seg_blocks ? tb0 / seg : 0;
    // The tile's scales and offsets, [group][lane]: gathered into sbuf / ubuf, or read in place from a
    // cpu_prepack_scales layout, whose 32-row tiles hold them in the lanes' order (row_of_byte): lanes
    // 0-31 from tile A's, 32-63 from tile B's.
    const bool layout = tile_a && a.sprep;
    const int64_t off_a = (tile_ix * p.groups + g0) * cpu_prepack::kTileRows;  // tile A's group g0 in a plane
    const int64_t off_b = (tile_ix_b * p.groups + g0) * cpu_prepack::kTileRows;
    if (!layout) {
      gather_scales_64(a.s, rid, g0, (tb1 - tb0) / seg, sbuf);
      gather_scales_64(a.u, rid, g0, (tb1 - tb0) / seg, ubuf);
    }
    // register r's 16 values of group j: from the gathered buffer, or from a layout plane (plane nullptr: a
    // layout without an offset plane, zeros)
    auto values = [&](const float* plane, const float* buf, int64_t j, int r) -> const float* {
      if (!layout) return buf + j * kTileRows + kLanes * r;
      const int64_t in_tile = j * cpu_prepack::kTileRows + kLanes * (r & 1);
      return plane ? plane + (r < 2 ? off_a : off_b) + in_tile : lookup::kZeroScales + in_tile;
    };
    auto sv = [&](int64_t j, int r) { return values(a.sprep, sbuf, j, r); };
    auto uv = [&](int64_t j, int r) { return values(a.uprep, ubuf, j, r); };
    for (int64_t j = 0; j < (tb1 - tb0) / seg; ++j) {
      for (int r = 0; r < kRegs; ++r) {
        const __m512i sb = _mm512_and_si512(_mm512_loadu_si512(sv(j, r)), exp_bits);
        const __m512i ub = _mm512_and_si512(_mm512_loadu_si512(uv(j, r)), exp_bits);
        nonfinite |= _mm512_cmpeq_epi32_mask(sb, exp_bits) | _mm512_cmpeq_epi32_mask(ub, exp_bits);
      }
    }
    for (int64_t m = 0; m < pr.rows; ++m) {
      const float* tab_m = pr.tab + m * pr.nblocks * kBlockTableFloats;
      float* ym = a.y + (pr.m0 + m) * p.N;
      for (int i = 0; i < kTileRows; ++i)
        yv[i] = (tb0 == 0 || n0 + lane_row[i] >= p.N) ? 0.f : ym[n0 + lane_row[i]];
      for (int64_t s0 = tb0; s0 < tb1; s0 += seg) {
        const int64_t s1 = std::min(tb1, s0 + seg);
        __m512 L[kRegs], H[kRegs] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                                     _mm512_setzero_ps()};
        if (tile_a) {
          accumulate_plane_blob(tab_m, tile_a, tile_b, planes, 0, s0, s1, L, m == 0);
          if (two) accumulate_plane_blob(tab_m, tile_a, tile_b, planes, 1, s0, s1, H, false);
        } else {
          accumulate_plane(tab_m, wbuf, planes, 0, tb0, s0, s1, L, pf);
          if (two) accumulate_plane(tab_m, wbuf, planes, 1, tb0, s0, s1, H, pf);
        }
        // once per scale group: y += s * sum + u * X (forward_avx2.cpp's operations and order)
        const int64_t j = (s0 - tb0) / seg;
        float X = 0.f;
        for (int64_t b = s0; b < s1; ++b) X += pr.xblk[m * pr.nblocks + b];
        const __m512 X16 = _mm512_set1_ps(X);
        for (int r = 0; r < kRegs; ++r) {
          const __m512 sum = two ? _mm512_sub_ps(_mm512_add_ps(_mm512_add_ps(H[r], H[r]), L[r]), X16) : L[r];
          __m512 y16 = _mm512_load_ps(yv + kLanes * r);
          y16 = _mm512_add_ps(y16, _mm512_fmadd_ps(_mm512_loadu_ps(sv(j, r)), sum,
                                                   _mm512_mul_ps(_mm512_loadu_ps(uv(j, r)), X16)));
          _mm512_store_ps(yv + kLanes * r, y16);
        }
      }
      for (int i = 0; i < kTileRows; ++i)
        if (n0 + lane_row[i] < p.N) ym[n0 + lane_row[i]] = yv[i];
    }
  }
}

__attribute__((target("avx512f"))) bool row_tiles(const ForwardArgs& a, const Prepared& pr, int64_t t0, int64_t t1,
                                                  uint32_t* wbuf) {
  __mmask16 nonfinite = 0;
  for (int64_t t = t0; t < t1; ++t) row_tile(a, pr, t * kTileRows, wbuf, nonfinite);
  return nonfinite != 0;
}

}  // namespace

bool avx512_enabled() { return cpu_isa_cap() >= 2; }

bool has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && has_avx2();
  return has;
}

bool avx512_forward_applies(const LinearProblem& p) {
  return has_avx512() && avx512_enabled() && (p.groups == 1 || p.group_size % BLOCK_K == 0);
}

bool forward_avx512(const ForwardArgs& a) {
  return lookup::run_chunks<float, uint32_t>(
      *a.p, a.x, kBlockTableFloats, kTileRows, kTileRows,
      [&](const float* x, int64_t rows, int64_t nblocks, float* tab, float* xblk) {
        // ~15 us per 128 blocks: one K = 4096 row stays on one thread
        at::parallel_for(0, rows * nblocks, 256, [&](int64_t i0, int64_t i1) {
          build_tables_range(x, a.p->K, nblocks, tab, xblk, i0, i1);
        });
      },
      [&](const Prepared& pr, int64_t t0, int64_t t1, uint32_t* wbuf) { return row_tiles(a, pr, t0, t1, wbuf); });
}

#else  // not x86
bool has_avx512() { return false; }
bool avx512_enabled() { return false; }
bool avx512_forward_applies(const LinearProblem&) { return false; }
bool forward_avx512(const ForwardArgs&) { return true; }
#endif

}  // namespace cpu
}  // namespace bitmm
