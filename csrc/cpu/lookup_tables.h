// Shared by the AVX2 and AVX-512 CPU forward kernels (forward_avx2.cpp, forward_avx512.cpp):
// the lookup tables' entries, the K tiling constants and the per-thread buffers.  Both kernels
// take their table entries from nibble_entries, so they add the same values (their outputs are
// bitwise equal; tests/test_cpu_kernels.py).  x86 only; include after <immintrin.h>.
#pragma once
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../bitmm_format.h"
#include "../checks.h"
#include "cpu_kernels.h"

namespace bitmm {
namespace cpu {
namespace lookup {

constexpr int kNibbles = 8;                        // 4-weight slices per 32-weight block
constexpr int64_t kMaxTileBlocks = 64;             // K tile (weight-side buffer <= 32 KB for two planes)
constexpr int64_t kTableBudget = 256 * 1024;       // table bytes of one K tile, all activation rows
constexpr int kBlockTableBytes = kNibbles * 64;    // 8 tables of 16 fp32 per (activation row, block)
// Scale groups per K tile, at most: the tile is kMaxTileBlocks blocks or, where a group is
// longer, lcm(4 / planes, group blocks) <= 2 groups.
constexpr int64_t kMaxTileGroups = kMaxTileBlocks;
// The offsets of a K tile where a cpu_prepack_scales layout has no offset plane: [group][32 rows] of +0.
alignas(64) inline constexpr float kZeroScales[kMaxTileGroups * 32] = {};

// The 32 inputs of block b of row xr (K inputs) in packed bit order (bitmm_format.h: even
// inputs, then odd), zero past K.
inline void block_inputs(const float* xr, int64_t K, int64_t b, float v[BLOCK_K]) {
  if ((b + 1) * BLOCK_K <= K) {
    for (int p = 0; p < BLOCK_K / 2; ++p) {
      v[p] = xr[b * BLOCK_K + 2 * p];
      v[p + 16] = xr[b * BLOCK_K + 2 * p + 1];
    }
  } else {
    for (int p = 0; p < BLOCK_K; ++p) {
      const int64_t k = b * BLOCK_K + offset_of_bit(p);
      v[p] = k < K ? xr[k] : 0.f;
    }
  }
}

// The 16 subset sums of the 4 inputs q[0..3] = a, b, c, d (entry e: bit j of e selects q[j]):
// entries 0..7 = ([0,a,0,a,..] + [0,0,b,b,..]) + [0,0,0,0,c,c,c,c] in lo, entries 8..15 =
// entries 0..7 + d in hi, 8 lanes at a time: the additions of e[3] = a + b, e[7] = e[3] + c,
// e[8 + j] = e[j] + d (adding +0 changes nothing but the sign of a zero entry).  Returns the
// input sum ((a + b) + c) + d.
__attribute__((target("avx2"), always_inline)) inline float nibble_entries(const float* q, __m256& lo, __m256& hi) {
  const __m256 mask_a = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
  const __m256 mask_b = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, -1, -1, 0, 0, -1, -1));
  const __m256 mask_c = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1));
  lo = _mm256_add_ps(_mm256_add_ps(_mm256_and_ps(_mm256_broadcast_ss(q), mask_a),
                                   _mm256_and_ps(_mm256_broadcast_ss(q + 1), mask_b)),
                     _mm256_and_ps(_mm256_broadcast_ss(q + 2), mask_c));
  hi = _mm256_add_ps(lo, _mm256_broadcast_ss(q + 3));
  return ((q[0] + q[1]) + q[2]) + q[3];
}

// How both kernels cut K: they must cut it alike, since per tensor / per channel they apply the
// scale once per K tile (bitwise equality of their outputs depends on it).
struct KPlan {
  int64_t nblocks;     // blocks per padded row
  int64_t kblocks;     // blocks holding real inputs
  int64_t seg_blocks;  // blocks per scale group; 0 = per tensor / per channel
  int64_t unit;        // K tiles are multiples of this: whole 16-byte word loads, whole scale groups
};
inline KPlan k_plan(const LinearProblem& p) {
  KPlan k;
  k.nblocks = padded_k(p.K) / BLOCK_K;
  k.kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  k.seg_blocks = p.groups > 1 ? p.group_size / BLOCK_K : 0;
  k.unit = std::lcm<int64_t>(4 / planes_of(p.kind), k.seg_blocks ? k.seg_blocks : 1);
  return k;
}
// K tile in blocks for `rows` activation rows: as long as their tables fit kTableBudget, at most
// kMaxTileBlocks, a multiple of k.unit (so at most kMaxTileGroups scale groups).
inline int64_t tile_blocks(const KPlan& k, int64_t rows) {
  const int64_t tile = std::min<int64_t>(kMaxTileBlocks, kTableBudget / (rows * kBlockTableBytes));
  return std::max<int64_t>(k.unit, tile / k.unit * k.unit);
}

// A per-thread buffer of at least n elements, 64-byte aligned, kept between calls (no
// allocation, page faults or zeroing per call).
template <typename T>
T* reuse(std::vector<T>& v, size_t n) {
  if (v.size() < n + 64 / sizeof(T)) v.resize(n + 64 / sizeof(T));
  const uintptr_t a = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<T*>((a + 63) & ~uintptr_t(63));
}

// The packed rows of output rows n0 .. n0 + R - 1 and their indices; tail rows (>= N) repeat
// row N - 1 (computed, never stored).
template <int R>
inline void tile_rows(const ForwardArgs& a, int64_t n0, const uint32_t* rows[R], int64_t rid[R]) {
  for (int i = 0; i < R; ++i) {
    rid[i] = std::min<int64_t>(n0 + i, a.p->N - 1);
    rows[i] = a.w + rid[i] * a.wpr;
  }
}

// Scales and offsets of groups g0 .. g0 + ng - 1 for the R rows rid: sbuf[j * R + i] = s(rid[i],
// g0 + j) (u = 0 when absent).  Gathered once per K tile for all activation rows (per row and
// group they were R strided scalar loads each: ~1/4 of the time at M = 16, g64).
// Row by row: each row's groups are contiguous in a (N, groups) scale (sg = 1), so the loads run
// along it (whole lines from memory, no multiply per value); the stores go across sbuf, which
// stays in L1.  Group by group (the old order) the gather took 37% of the AVX-512 kernel's time at
// M = 1, g64 (perf, one thread, hot).
template <int R>
inline void gather_scales_into(const ScaleView<float>& v, const int64_t rid[R], int64_t g0, int64_t ng,
                               float* buf) {
  if (v.ptr == nullptr) {
    std::fill(buf, buf + ng * R, 0.f);
    return;
  }
  for (int i = 0; i < R; ++i) {
    const float* src = v.ptr + rid[i] * v.sn + g0 * v.sg;
    for (int64_t j = 0; j < ng; ++j) buf[j * R + i] = src[j * v.sg];
  }
}
template <int R>
inline void gather_scales(const ForwardArgs& a, const int64_t rid[R], int64_t g0, int64_t ng, float* sbuf,
                          float* ubuf) {
  gather_scales_into<R>(a.s, rid, g0, ng, sbuf);
  gather_scales_into<R>(a.u, rid, g0, ng, ubuf);
}

// One activation-row chunk's tables and the K plan, as the row tiles read them.  TabT: the table
// element (AVX2: byte planes, uint8_t; AVX-512: float).
template <typename TabT>
struct Prepared {
  const TabT* tab;      // (rows, nblocks, 8 tables)
  const float* xblk;    // (rows, nblocks): input sums per block
  int64_t rows;         // activation rows in this chunk
  int64_t m0;           // first activation row of the chunk
  int64_t nblocks;      // blocks per padded row
  int64_t kblocks;      // blocks holding real inputs
  int64_t seg_blocks;   // blocks per scale group; 0 = per tensor / per channel
  int64_t tile_blocks;  // K tile
};

// Both kernels' outline: x (fp32, (M, K)) in chunks of <= 64 activation rows; per chunk
// build(x_chunk, rows, nblocks, tab, xblk) fills the tables (tab_per_block TabT per row and block),
// then the row tiles of tile_rows output rows run in parallel, tiles(pr, t0, t1, work) for tiles
// [t0, t1) with a per-thread buffer of work_per_word WorkT per packed word of the K tile, returning
// true when they read a NaN / Inf scale or offset.  Returns false then (ForwardArgs' contract).
template <typename TabT, typename WorkT, typename Build, typename Tiles>
bool run_chunks(const LinearProblem& p, const float* x, int64_t tab_per_block, int64_t tile_rows,
                int64_t work_per_word, Build&& build, Tiles&& tiles) {
  const int planes = planes_of(p.kind);
  const KPlan kp = k_plan(p);
  Prepared<TabT> pr;
  pr.nblocks = kp.nblocks;
  pr.kblocks = kp.kblocks;
  pr.seg_blocks = kp.seg_blocks;
  const int64_t mchunk = std::min<int64_t>(p.M, 64);
  std::atomic<bool> bad{false};
  // The calling thread's buffers (every element is written by build).
  static thread_local std::vector<TabT> tab_store;
  static thread_local std::vector<float> xblk_store;
  TabT* tab = reuse(tab_store, static_cast<size_t>(mchunk * pr.nblocks * tab_per_block));
  float* xblk = reuse(xblk_store, static_cast<size_t>(mchunk * pr.nblocks));
  for (int64_t m0 = 0; m0 < p.M; m0 += mchunk) {
    pr.rows = std::min(mchunk, p.M - m0);
    pr.m0 = m0;
    pr.tile_blocks = tile_blocks(kp, pr.rows);
    TORCH_INTERNAL_ASSERT(pr.tile_blocks / (pr.seg_blocks ? pr.seg_blocks : pr.tile_blocks) <= kMaxTileGroups);
    build(x + m0 * p.K, pr.rows, pr.nblocks, tab, xblk);
    pr.tab = tab;
    pr.xblk = xblk;
    const int64_t ntiles = (p.N + tile_rows - 1) / tile_rows;
    at::parallel_for(0, ntiles, 1, [&](int64_t t0, int64_t t1) {
      static thread_local std::vector<WorkT> work_store;
      WorkT* work = reuse(work_store, static_cast<size_t>(pr.tile_blocks * planes * work_per_word));
      if (tiles(pr, t0, t1, work)) bad.store(true, std::memory_order_relaxed);
    });
  }
  return !bad.load();
}

}  // namespace lookup
}  // namespace cpu
}  // namespace bitmm
