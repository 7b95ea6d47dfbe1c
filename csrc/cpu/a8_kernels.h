// linear_a8's integer sums on x86 CPUs, read straight from the packed words, written once for every vector width:
//   sums[m, n] = sum_k xq[m, k] * code[n, k]      (stored codes: binary b, ternary t + 1, int2 q)
// exact in int32 (|sum| <= 3 * 128 * K < 2^31 for K <= kA8MaxK), the same integers the generic path
// (linear_a8.cpp: unpack to int8 codes, then a float matmul) computes, so the op's output is bitwise
// unchanged; only the codes are never written to memory.
//
// Included, inside an anonymous namespace, by a8_avx512.cpp (AVX-512 VNNI: `vpdpbusd`, 16 dword lanes) and
// a8_avx2.cpp (AVX2: `vpmaddubsw` + `vpmaddwd`, 8 lanes), after they define BITMM_A8_TARGET (the functions' target
// attribute) and a struct `Isa` of vector operations:
//   V                                 the vector type; kLanes dword lanes
//   kSplitChains                      true where the multiply-add's latency on the accumulator is several cycles
//   zero(), set1(int32), load / loadu / store (64-byte aligned / unaligned), add, band, srli32 / slli32 (count)
//   load_words(p, valid)              kLanes packed words from p, lanes >= valid zero (never read)
//   select(a, b, m)                   (a & m) | (b & ~m)
//   planes_to_codes(q)                lanes (lo, hi) of a block per qword -> (E, O) (below)
//   dot(acc, codes, x)                acc + per-lane sum of 4 u8 codes x 4 s8 inputs (exact)
//   reduce(v)                         sum of the lanes
//   transpose(r)                      r[i] = word i of the kLanes rows (in: r[i] = kLanes words of row i)
//
// A dword lane multiplies 4 u8 codes with 4 s8 inputs.  The codes come from the packed bits by shifts, ANDs and
// one select, with the 4 weights that share a lane chosen so that this is cheap; xq is permuted once per call to
// the same order.  For a 32-weight block with plane words lo / hi (bitmm_format.h):
//   binary:   c_r = (word >> r) & 0x01010101, r = 0..7: byte j of c_r is the weight at bit 8j + r.
//   2 planes: E = (lo & 0x5555..) | ((hi << 1) & 0xAAAA..) holds, in 2-bit field f, the code at bit 2f
//             (lo bit + 2 * hi bit); O = ((lo >> 1) & 0x5555..) | (hi & 0xAAAA..) the code at bit 2f + 1.
//             (E >> 2r) & 0x03030303 and (O >> 2r) & 0x03030303, r = 0..3: byte j is the code at bit
//             8j + 2r and 8j + 2r + 1.
// bitmm_format.h's even/odd interleave then maps each bit position to its input k (offset_of_bit).
//
// Two layouts of the lanes, by the number of rows of x (a8_sums picks):
//   row_major (M <= kRowMajorMaxM): a vector is kLanes consecutive packed words of ONE weight row (two-plane
//     blocks as (lo, hi) qwords, where one select with per-dword masks makes E in the low dword and O in the high
//     one; or binary blocks), multiplied with a full vector of permuted x; kLanes partial sums per (row of x,
//     weight row), added up once at the end.  Weight rows are read in order, a vector at a time, with a software
//     prefetch 16 rows ahead: no transpose, and streaming the hardware can follow.
//   row_lanes (larger M): lane i is weight row kLanes * g + i of a 4 * kLanes-row tile, whose words are transposed
//     per 64-word K chunk, and x's 4 bytes are broadcast to all lanes: each x byte loaded serves kLanes weight
//     rows, where row_major loads x again for every weight row (past ~6 rows of x it no longer fits L1).
// Per lane and 32 weights the codes cost ~1 (binary 2) shift / and / select instructions, shared by up to 8 rows
// of x, and each row of x 8 multiply-adds (AVX2: 3 instructions each).
#pragma once

namespace a8 {

using V = Isa::V;
constexpr int kLanes = Isa::kLanes;
constexpr int kVecBytes = 4 * kLanes;  // one vector of codes or inputs

// The code vectors of one 32-bit lane layout: 4 (two planes, from E / O) or 8 (binary, from the word).
template <bool kTwo>
constexpr int kCodeVecs = kTwo ? 4 : 8;

// Code vector v of `src` (two planes: R = planes_to_codes(q) in row_major, or E / O in row_lanes; binary: the
// word vector), i.e. bytes of 2-bit (two planes) or 1-bit codes.
template <bool kTwo>
BITMM_A8_TARGET __attribute__((always_inline)) inline V code_vec(V src, int shift) {
  return Isa::band(Isa::srli32(src, shift), Isa::set1(kTwo ? 0x03030303 : 0x01010101));
}

// ---- few rows of x ----
namespace row_major {

constexpr int kMaxM = 6;               // taken for M <= kMaxM: all rows of x share each unpacking, in one pass
constexpr int64_t kPrefetchRows = 16;  // software prefetch distance, in weight rows

// sums[(m0 + i) * N + n0 + r] for i < MT, r < NR: rows n0.. of the packed weight against rows [m0, m0 + MT) of
// xperm (x rows of xstride bytes, in the code vectors' byte order).  Where the multiply-add's latency is several
// cycles (vpdpbusd: ~4-5), NR rows share a pass and, under 8 accumulators, each is split in two (even / odd code
// vector), so that at least 8 independent addition chains run (M = 1: 4 rows x 2).
template <bool kTwo, int MT, int NR>
BITMM_A8_TARGET void row_group(const uint32_t* w, int64_t wpr, int64_t words, const int8_t* xperm, int64_t xstride,
                               int64_t m0, int64_t n0, int64_t N, int32_t* sums) {
  constexpr int CV = kCodeVecs<kTwo>;
  constexpr int A = Isa::kSplitChains && MT * NR < 8 ? 2 : 1;
  V acc[NR][MT][A];
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i)
#pragma GCC unroll 2
      for (int a = 0; a < A; ++a) acc[r][i][a] = Isa::zero();
  const int8_t* x0 = xperm + m0 * xstride;
  for (int64_t w0 = 0, c = 0; w0 < words; w0 += kLanes, ++c) {
    const int8_t* xc = x0 + c * CV * kVecBytes;
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
      // words past `words` load as 0: code 0, adding nothing
      const V q = Isa::load_words(w + (n0 + r) * wpr + w0, words - w0);
      const V src = kTwo ? Isa::planes_to_codes(q) : q;
      // the same line 16 rows further on (~0.8 us ahead at M = 1; 8 and 32 were slower), or of the last row
      _mm_prefetch(reinterpret_cast<const char*>(w + std::min(n0 + r + kPrefetchRows, N - 1) * wpr + w0),
                   _MM_HINT_T0);
#pragma GCC unroll 8
      for (int v = 0; v < CV; ++v) {
        const V cv = code_vec<kTwo>(src, kTwo ? 2 * v : v);
#pragma GCC unroll 8
        for (int i = 0; i < MT; ++i)
          acc[r][i][v % A] = Isa::dot(acc[r][i][v % A], cv, Isa::loadu(xc + i * xstride + v * kVecBytes));
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      V t = acc[r][i][0];
      if constexpr (A == 2) t = Isa::add(t, acc[r][i][1]);
      sums[(m0 + i) * N + n0 + r] = Isa::reduce(t);  // exact: int32 addition is associative
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

// xperm row m: for each vector of kLanes words c and code vector v, kVecBytes bytes: lane l, byte j = the input at
// bit position 8j + v (binary: block kLanes * c + l) or 8j + 2v + (l & 1) (two planes: block kLanes / 2 * c + l / 2)
// of its block; 0 past K.  Also row_sums.
void permute_rows(const A8Args& a, int64_t vecs, int64_t xstride, int8_t* xperm) {
  const int64_t K = a.p->K;
  const bool two = planes_of(a.p->kind) == 2;
  const int CV = two ? 4 : 8;
  for (int64_t m = 0; m < a.p->M; ++m) {
    const int8_t* xr = a.xq + m * K;
    int8_t* xp = xperm + m * xstride;
    for (int64_t c = 0; c < vecs; ++c) {
      for (int v = 0; v < CV; ++v) {
        for (int l = 0; l < kLanes; ++l) {
          const int64_t b = two ? kLanes / 2 * c + l / 2 : kLanes * c + l;
          for (int j = 0; j < 4; ++j) {
            const int bit = two ? 8 * j + 2 * v + (l & 1) : 8 * j + v;
            const int64_t k = b * BLOCK_K + offset_of_bit(bit);
            xp[(c * CV + v) * kVecBytes + 4 * l + j] = k < K ? xr[k] : int8_t{0};
          }
        }
      }
    }
    int32_t total = 0;
    for (int64_t k = 0; k < K; ++k) total += xr[k];
    a.row_sums[m] = total;
  }
}

void sums(const A8Args& a) {
  const LinearProblem& p = *a.p;
  const bool two = planes_of(p.kind) == 2;
  // only the words of blocks holding inputs < K (the rest of the padded row pairs with zero inputs anyway)
  const int64_t words = (p.K + BLOCK_K - 1) / BLOCK_K * planes_of(p.kind);
  const int64_t vecs = (words + kLanes - 1) / kLanes;
  const int64_t xstride = vecs * kLanes * BLOCK_K / planes_of(p.kind);  // bytes per permuted row: 32 per block
  std::vector<int8_t> xperm(static_cast<size_t>(p.M * xstride));
  permute_rows(a, vecs, xstride, xperm.data());
  const int mt = static_cast<int>(p.M);  // <= kMaxM
  const int nr = rows_per_group(mt);     // 4, 2 or 1
  const auto seq = std::make_integer_sequence<int, kMaxM>{};
  const RowGroupFn grouped = two ? row_group_fn<true>(mt, false, seq) : row_group_fn<false>(mt, false, seq);
  const RowGroupFn single = two ? row_group_fn<true>(mt, true, seq) : row_group_fn<false>(mt, true, seq);
  // at least 16 output rows and 2^16 products per task (~8 us of work at K = 4096, M = 1): a small layer stays on
  // one thread
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 16) / (p.K * p.M));
  at::parallel_for(0, p.N, grain, [&](int64_t n_begin, int64_t n_end) {
    int64_t n = n_begin;
    for (; n + nr <= n_end; n += nr) grouped(a.w, a.wpr, words, xperm.data(), xstride, 0, n, p.N, a.sums);
    for (; n < n_end; ++n) single(a.w, a.wpr, words, xperm.data(), xstride, 0, n, p.N, a.sums);
  });
}

}  // namespace row_major

// ---- many rows of x ----
namespace row_lanes {

constexpr int kGroups = 4;                        // lane groups per tile
constexpr int kTileRows = kGroups * kLanes;       // output rows per tile
constexpr int kMaxMT = 8;                         // rows of x sharing one unpacking of the codes
constexpr int64_t kChunkWords = 64;               // K chunk: 64 words x kTileRows rows of transposed words
constexpr int64_t kMChunk = 256;                  // rows of x per pass over the weights
constexpr int kPermBytes = BLOCK_K;               // xperm bytes per (row, block)

// Words [w_begin, w_end) of the tile's rows as dword lanes: wbuf[(w - w_begin) * kTileRows + r] = word w of row
// min(n0 + r, N - 1), for w_begin a multiple of kLanes: each row's kLanes words in one (masked) load, then a
// kLanes x kLanes dword transpose.  (forward_avx512.cpp's transpose_words, 16-byte loads from 64 row pointers, made
// this kernel spend twice as long transposing as multiplying at M = 1.)
BITMM_A8_TARGET void transpose_rows(const uint32_t* w, int64_t wpr, int64_t N, int64_t n0, int64_t w_begin,
                                    int64_t w_end, uint32_t* wbuf) {
  for (int g = 0; g < kGroups; ++g) {
    const uint32_t* row0 = w + std::min<int64_t>(n0 + kLanes * g, N - 1) * wpr;
    // rows past N - 1 repeat it (a group wholly past it: row0 is row N - 1 and last 0; their lanes are dropped)
    const int64_t last = std::max<int64_t>(0, N - 1 - (n0 + kLanes * g));
    for (int64_t w0 = w_begin; w0 < w_end; w0 += kLanes) {
      V r[kLanes];
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) r[i] = Isa::load_words(row0 + std::min<int64_t>(i, last) * wpr + w0, w_end - w0);
      Isa::transpose(r);
      uint32_t* out = wbuf + (w0 - w_begin) * kTileRows + kLanes * g;
#pragma GCC unroll 16
      for (int j = 0; j < kLanes; ++j) Isa::store(out + j * kTileRows, r[j]);
    }
  }
}

// Rows of x [m0, m0 + MT) x lane groups [g0, g0 + NG) of the tile += blocks [b0, b1) of the chunk whose first
// block is cb0; accbuf[m * kTileRows + lane] (loaded unless first), xperm (rows, nblocks, 32).  Where the
// multiply-add's latency is several cycles (vpdpbusd: ~4-5), few rows of x share one unpacking between NG lane
// groups, and under 8 accumulators each is split in two (even / odd r), so at least 8 independent addition chains
// run (M = 1: 4 groups x 2).
template <bool kTwo, int MT, int NG>
BITMM_A8_TARGET void accumulate(const uint32_t* wbuf, const int8_t* xperm, int64_t nblocks, int64_t m0, int g0,
                                int64_t cb0, int64_t b0, int64_t b1, bool first, int32_t* accbuf) {
  constexpr int planes = kTwo ? 2 : 1;
  constexpr int A = Isa::kSplitChains && MT * NG < 8 ? 2 : 1;  // chains per accumulator
  V acc[NG][MT][A];
#pragma GCC unroll 4
  for (int gg = 0; gg < NG; ++gg) {
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      acc[gg][i][0] = first ? Isa::zero() : Isa::load(accbuf + (m0 + i) * kTileRows + kLanes * (g0 + gg));
      if constexpr (A == 2) acc[gg][i][A - 1] = Isa::zero();
    }
  }
  for (int64_t b = b0; b < b1; ++b) {
    const int8_t* xb = xperm + (m0 * nblocks + b) * kPermBytes;
#pragma GCC unroll 4
    for (int gg = 0; gg < NG; ++gg) {
      const uint32_t* wb = wbuf + (b - cb0) * planes * kTileRows + kLanes * (g0 + gg);
      V E, O;  // two planes: the codes of the even / odd bits; binary: the word (twice)
      if constexpr (kTwo) {
        const V lo = Isa::load(wb), hi = Isa::load(wb + kTileRows), even = Isa::set1(0x55555555);
        E = Isa::select(lo, Isa::slli32(hi, 1), even);
        O = Isa::select(Isa::srli32(lo, 1), hi, even);
      } else {
        E = O = Isa::load(wb);
      }
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        // byte j of the code vector: the code at bit 8j + r
        const V cv = kTwo ? code_vec<true>(r % 2 ? O : E, 2 * (r / 2)) : code_vec<false>(E, r);
#pragma GCC unroll 8
        for (int i = 0; i < MT; ++i) {
          int32_t xd;
          std::memcpy(&xd, xb + i * nblocks * kPermBytes + 4 * r, 4);
          acc[gg][i][r % A] = Isa::dot(acc[gg][i][r % A], cv, Isa::set1(xd));
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int gg = 0; gg < NG; ++gg) {
#pragma GCC unroll 8
    for (int i = 0; i < MT; ++i) {
      V v = acc[gg][i][0];
      if constexpr (A == 2) v = Isa::add(v, acc[gg][i][A - 1]);
      Isa::store(accbuf + (m0 + i) * kTileRows + kLanes * (g0 + gg), v);
    }
  }
}

// Lane groups per call for MT rows of x: 4 for 1-2 rows, 2 for 3-4, else 1.
constexpr int groups_per_call(int mt) { return mt <= 2 ? 4 : (mt <= 4 ? 2 : 1); }

template <bool kTwo>
using AccumulateFn = void (*)(const uint32_t*, const int8_t*, int64_t, int64_t, int, int64_t, int64_t, int64_t, bool,
                              int32_t*);

template <bool kTwo, int... MT>
AccumulateFn<kTwo> accumulate_fn(int mt, std::integer_sequence<int, MT...>) {
  static constexpr AccumulateFn<kTwo> fns[] = {&accumulate<kTwo, MT + 1, groups_per_call(MT + 1)>...};
  return fns[mt - 1];
}

// Rows [m0, m0 + rows) of x (permuted, chunk-relative) against output rows [n0, n0 + kTileRows).
template <bool kTwo>
void row_tile(const A8Args& a, const int8_t* xperm, int64_t nblocks, int64_t m0, int64_t rows, int64_t n0,
              uint32_t* wbuf, int32_t* accbuf) {
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
      const AccumulateFn<kTwo> fn = accumulate_fn<kTwo>(mt, std::make_integer_sequence<int, kMaxMT>{});
      for (int g = 0; g < kGroups; g += groups_per_call(mt))
        fn(wbuf, xperm, nblocks, mt0, g, cb0, cb0, cb1, w0 == 0, accbuf);
    }
  }
  const int64_t nv = std::min<int64_t>(kTileRows, p.N - n0);
  for (int64_t m = 0; m < rows; ++m)
    std::memcpy(a.sums + (m0 + m) * p.N + n0, accbuf + m * kTileRows, nv * sizeof(int32_t));
}

// xperm (rows, nblocks, 32) of rows [m0, m0 + rows): byte 4r + j of block b = the input at bit 8j + r (0 past K);
// and their sums.
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

// A 64-byte aligned buffer (per thread).
struct AlignedInts {
  void* ptr;
  explicit AlignedInts(size_t n) : ptr(std::aligned_alloc(64, (n * sizeof(int32_t) + 63) / 64 * 64)) {
    if (ptr == nullptr) throw std::bad_alloc();
  }
  ~AlignedInts() { std::free(ptr); }
  AlignedInts(const AlignedInts&) = delete;
  AlignedInts& operator=(const AlignedInts&) = delete;
};

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
    // at least 2^18 products per task
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / (p.K * rows * kTileRows));
    at::parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) {
      AlignedInts wbuf(kChunkWords * kTileRows), accbuf(rows * kTileRows);
      for (int64_t t = t0; t < t1; ++t) {
        if (two)
          row_tile<true>(a, xperm.data(), nblocks, m0, rows, t * kTileRows, static_cast<uint32_t*>(wbuf.ptr),
                         static_cast<int32_t*>(accbuf.ptr));
        else
          row_tile<false>(a, xperm.data(), nblocks, m0, rows, t * kTileRows, static_cast<uint32_t*>(wbuf.ptr),
                          static_cast<int32_t*>(accbuf.ptr));
      }
    });
  }
}

}  // namespace row_lanes

// The sums of `a` (K <= kA8MaxK): row_major for M <= kRowMajorMaxM, else row_lanes.
template <int kRowMajorMaxM>
void a8_sums(const A8Args& a) {
  static_assert(kRowMajorMaxM <= row_major::kMaxM, "row_major is instantiated for M <= kMaxM");
  if (a.p->M <= kRowMajorMaxM)
    row_major::sums(a);
  else
    row_lanes::sums(a);
}

}  // namespace a8
