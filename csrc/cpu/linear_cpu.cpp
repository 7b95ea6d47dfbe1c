// CPU kernels for the bitmm linear ops: forward and grad w.r.t. x.
//
// Forward (fast path, AVX2): activations are permuted once per call into the
// packed bit order (bitmm_format.h) and turned into lookup tables of partial
// sums, built by additions only: for every 3 consecutive (permuted) inputs
// a, b, c the 8 subset sums {0, a, b, a+b, c, a+c, b+c, a+b+c}.  A packed
// word holds 32 weights of one row; 8 rows' words sit in one ymm register and
// `vpermps` picks, for all 8 rows at once, the subset sum selected by 3 bits,
// which is then added to the row's accumulator.  So per 3 weights and 8 rows:
// one shift, one permute, one add; the two planes of ternary / int2 weights
// index the same table.  Scale and offset are applied once per group (two
// multiplies per output per group), see bitmm_format.h for the math.
//
// Anything the fast path does not cover (no AVX2, group sizes that are not a
// multiple of 32) runs the portable generic kernel: a plain add/subtract loop.
//
// grad_x: grad_x[m,k] = sum_n g[m,n] * (s[n,g(k)] * w[n,k] + u[n,g(k)]).  The
// per-group scaled g*s is formed once per (m, n, group); then every weight bit
// adds it (masked add) into grad_x: the transposed add-only product.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BITMM_X86 1
#endif

#include "../bitmm_format.h"
#include "../checks.h"

namespace bitmm {
namespace {

constexpr int kGroupsPerWord = 11;  // 3-bit groups in a 32-bit word: 10 of 3 bits, 1 of 2 bits
constexpr int kTableFloats = kGroupsPerWord * 8;  // one block's tables: 11 x 8 subset sums

// Dense views of scale / offset in the accumulation type T (converted once per
// call: N*groups values).
template <typename T>
struct ScaleView {
  const T* ptr = nullptr;
  int64_t sn = 0, sg = 0;
  T at(int64_t n, int64_t g) const { return ptr ? ptr[n * sn + g * sg] : T(0); }
};
using ScaleF32 = ScaleView<float>;

template <typename T>
ScaleView<T> view_scale(const at::Tensor& t, const ScaleLayout& l, at::Tensor& keep) {
  ScaleView<T> v;
  if (!l.present) return v;
  keep = t.to(c10::CppTypeToScalarType<T>::value).contiguous();
  v.ptr = keep.data_ptr<T>();
  if (keep.dim() == 1) v.sn = 1;
  if (keep.dim() == 2) { v.sn = keep.size(1); v.sg = 1; }
  return v;
}

// x (M, K) fp32 contiguous -> xp (M, Kp) in packed bit order, zero padded.
void permute_x(const float* x, float* xp, int64_t M, int64_t K, int64_t Kp) {
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* xr = x + m * K;
      float* o = xp + m * Kp;
      for (int64_t b = 0; b < Kp / BLOCK_K; ++b) {
        for (int p = 0; p < BLOCK_K; ++p) {
          const int64_t k = b * BLOCK_K + offset_of_bit(p);
          o[b * BLOCK_K + p] = k < K ? xr[k] : 0.f;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Generic kernel: any group size, any CPU.  One add or subtract per weight.
// ---------------------------------------------------------------------------
template <typename T>
void forward_generic(const LinearProblem& p, const T* x, const uint32_t* w, int64_t wpr,
                     const ScaleView<T>& s, const ScaleView<T>& u, T* y) {
  const int planes = planes_of(p.kind);
  const int64_t G = p.group_size;
  at::parallel_for(0, p.N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const uint32_t* row = w + n * wpr;
      for (int64_t m = 0; m < p.M; ++m) {
        const T* xr = x + m * p.K;
        T out = 0;
        for (int64_t g = 0; g < p.groups; ++g) {
          T sel = 0, all = 0;  // sum of x weighted by the code's value; sum of x
          for (int64_t k = g * G; k < (g + 1) * G; ++k) {
            const int64_t b = k / BLOCK_K;
            const int bit = bit_of_offset(static_cast<int>(k % BLOCK_K));
            const T xv = xr[k];
            all += xv;
            const uint32_t lo = (row[b * planes] >> bit) & 1u;
            if (planes == 1) {
              if (lo) sel += xv;
            } else {
              const uint32_t hi = (row[b * planes + 1] >> bit) & 1u;
              // value = 2*hi + lo - 1 in {-1, 0, 1, 2}
              if (hi) { sel += xv; if (lo) sel += xv; }
              else if (!lo) sel -= xv;
            }
          }
          out += s.at(n, g) * sel + u.at(n, g) * all;
        }
        y[m * p.N + n] = out;
      }
    }
  });
}

#ifdef BITMM_X86
// ---------------------------------------------------------------------------
// AVX2 table kernel.
// ---------------------------------------------------------------------------
// Subset-sum tables of 3 inputs each (additions only) and per-block sums of x.
void build_tables(const float* xp, float* tab, float* xblk, int64_t rows, int64_t nblocks) {
  at::parallel_for(0, rows * nblocks, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* v = xp + i * BLOCK_K;
      float* t = tab + i * kTableFloats;
      float total = 0.f;
      for (int j = 0; j < kGroupsPerWord; ++j) {
        const float a = v[3 * j], b = v[3 * j + 1], c = j < 10 ? v[3 * j + 2] : 0.f;
        const float ab = a + b;
        float* e = t + j * 8;
        e[0] = 0.f; e[1] = a; e[2] = b; e[3] = ab;
        e[4] = c; e[5] = a + c; e[6] = b + c; e[7] = ab + c;
        total += e[7];
      }
      xblk[i] = total;
    }
  });
}

// Loads 16 bytes (4 words) of each of 8 rows and transposes them so that
// out[j] lane i = word j of row i.
__attribute__((target("avx2"))) inline void load_transpose_8x4(const uint32_t* const* rows, int64_t w0,
                                                                __m256i out[4]) {
  __m256i r[4];
  for (int i = 0; i < 4; ++i) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[i] + w0));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[i + 4] + w0));
    r[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
  }
  // lanes now: r[i] = [row i: w0..w3 | row i+4: w0..w3]; 4x4 transpose per 128-bit half.
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);  // r0w0 r1w0 r0w1 r1w1
  const __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);  // r0w2 r1w2 r0w3 r1w3
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
  const __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);  // r0w0 r1w0 r2w0 r3w0 | r4w0 .. r7w0
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}

// Accumulates one block (32 weights of 8 rows) for MC activation rows.
template <int MC, bool TWO_PLANES>
__attribute__((target("avx2,fma"), always_inline)) inline void accumulate_block(
    const float* tab, int64_t tab_stride_m, __m256i wlo, __m256i whi, __m256 (&acc_lo)[MC],
    __m256 (&acc_hi)[MC]) {
#pragma GCC unroll 11
  for (int j = 0; j < kGroupsPerWord; ++j) {
    const __m256i il = _mm256_srli_epi32(wlo, 3 * j);
    const __m256i ih = TWO_PLANES ? _mm256_srli_epi32(whi, 3 * j) : il;
#pragma GCC unroll 4
    for (int m = 0; m < MC; ++m) {
      const __m256 t = _mm256_loadu_ps(tab + m * tab_stride_m + j * 8);
      acc_lo[m] = _mm256_add_ps(acc_lo[m], _mm256_permutevar8x32_ps(t, il));
      if (TWO_PLANES) acc_hi[m] = _mm256_add_ps(acc_hi[m], _mm256_permutevar8x32_ps(t, ih));
    }
  }
}

struct FastArgs {
  const LinearProblem* p;
  const uint32_t* w;
  int64_t wpr;
  const float* tab;    // (rows, nblocks, 11, 8) for the current m-range
  const float* xblk;   // (rows, nblocks) per-block sums of x
  int64_t nblocks;     // blocks per (padded) row
  int64_t kblocks;     // blocks that hold real inputs: ceil(K / 32)
  int64_t seg_blocks;  // scale group length in blocks (grouped), else 0
  ScaleF32 s, u;
  float* y;            // (M, N) fp32 output rows for this m-range
};

// A scale segment [seg_start, b_end) of blocks ends: y += s * sum + u * X,
// once per group, then the accumulators restart.
template <int MC, bool TWO_PLANES>
__attribute__((target("avx2,fma"), always_inline)) inline void flush_segment(
    const FastArgs& a, const int64_t* rid, int64_t m0, int64_t seg_start, int64_t b_end,
    __m256 (&acc_lo)[MC], __m256 (&acc_hi)[MC], float* yacc) {
  const int64_t g = a.seg_blocks ? seg_start / a.seg_blocks : 0;
  alignas(32) float sv[8], uv[8];
  for (int i = 0; i < 8; ++i) { sv[i] = a.s.at(rid[i], g); uv[i] = a.u.at(rid[i], g); }
  const __m256 s8 = _mm256_load_ps(sv), u8 = _mm256_load_ps(uv);
  for (int m = 0; m < MC; ++m) {
    float X = 0.f;
    const float* xb = a.xblk + (m0 + m) * a.nblocks;
    for (int64_t b = seg_start; b < b_end; ++b) X += xb[b];
    const __m256 X8 = _mm256_set1_ps(X);
    // binary: sum = L; ternary / int2: sum = 2H + L - X  (additions only)
    const __m256 sum = TWO_PLANES
        ? _mm256_sub_ps(_mm256_add_ps(_mm256_add_ps(acc_hi[m], acc_hi[m]), acc_lo[m]), X8)
        : acc_lo[m];
    __m256 yv = _mm256_loadu_ps(yacc + m * 8);
    yv = _mm256_add_ps(yv, _mm256_add_ps(_mm256_mul_ps(s8, sum), _mm256_mul_ps(u8, X8)));
    _mm256_storeu_ps(yacc + m * 8, yv);
    acc_lo[m] = acc_hi[m] = _mm256_setzero_ps();
  }
}

template <int MC, bool TWO_PLANES>
__attribute__((target("avx2,fma"))) void run_rows(const FastArgs& a, int64_t n0, int64_t m0,
                                                  int64_t tb0, int64_t tb1, float* yacc /* MC x 8 */) {
  const LinearProblem& p = *a.p;
  const uint32_t* rows[8];
  int64_t rid[8];
  for (int i = 0; i < 8; ++i) {
    rid[i] = std::min<int64_t>(n0 + i, p.N - 1);  // tail rows repeat the last row; not stored
    rows[i] = a.w + rid[i] * a.wpr;
  }
  const int planes = TWO_PLANES ? 2 : 1;
  const int64_t tab_stride_m = a.nblocks * kTableFloats;
  __m256 acc_lo[MC], acc_hi[MC];
  for (int m = 0; m < MC; ++m) acc_lo[m] = acc_hi[m] = _mm256_setzero_ps();
  int64_t seg_start = tb0;
  // Blocks are loaded 4 words (16 bytes) per row at a time.
  const int blocks_per_load = 4 / planes;
  for (int64_t b = tb0; b < tb1; b += blocks_per_load) {
    __m256i wv[4];
    load_transpose_8x4(rows, b * planes, wv);
    for (int q = 0; q < blocks_per_load && b + q < tb1; ++q) {
      const int64_t bb = b + q;
      const float* tab = a.tab + (m0 * a.nblocks + bb) * kTableFloats;
      accumulate_block<MC, TWO_PLANES>(tab, tab_stride_m, wv[q * planes],
                                       TWO_PLANES ? wv[q * planes + 1] : wv[q * planes], acc_lo, acc_hi);
      if (a.seg_blocks && (bb + 1 - seg_start) == a.seg_blocks) {
        flush_segment<MC, TWO_PLANES>(a, rid, m0, seg_start, bb + 1, acc_lo, acc_hi, yacc);
        seg_start = bb + 1;
      }
    }
  }
  if (seg_start < tb1) flush_segment<MC, TWO_PLANES>(a, rid, m0, seg_start, tb1, acc_lo, acc_hi, yacc);
}

// Rows blocks [rb0, rb1) of 8 outputs, all activation rows, tile by tile along K.
template <bool TWO_PLANES>
__attribute__((target("avx2,fma"))) void forward_fast_range(const FastArgs& a, int64_t mrows, int64_t tile_blocks,
                                                            int64_t rb0, int64_t rb1) {
  const LinearProblem& p = *a.p;
  float yacc[4 * 8];
  for (int64_t tb0 = 0; tb0 < a.kblocks; tb0 += tile_blocks) {
    const int64_t tb1 = std::min(a.kblocks, tb0 + tile_blocks);
    for (int64_t rb = rb0; rb < rb1; ++rb) {
      const int64_t n0 = rb * 8;
      for (int64_t m0 = 0; m0 < mrows; m0 += 4) {
        const int mc = static_cast<int>(std::min<int64_t>(4, mrows - m0));
        // Read the running outputs of these rows (tiles after the first add to them).
        for (int m = 0; m < mc; ++m)
          for (int i = 0; i < 8; ++i)
            yacc[m * 8 + i] = (tb0 == 0 || n0 + i >= p.N) ? 0.f : a.y[(m0 + m) * p.N + n0 + i];
        switch (mc) {
          case 4: run_rows<4, TWO_PLANES>(a, n0, m0, tb0, tb1, yacc); break;
          case 3: run_rows<3, TWO_PLANES>(a, n0, m0, tb0, tb1, yacc); break;
          case 2: run_rows<2, TWO_PLANES>(a, n0, m0, tb0, tb1, yacc); break;
          default: run_rows<1, TWO_PLANES>(a, n0, m0, tb0, tb1, yacc); break;
        }
        for (int m = 0; m < mc; ++m)
          for (int i = 0; i < 8 && n0 + i < p.N; ++i) a.y[(m0 + m) * p.N + n0 + i] = yacc[m * 8 + i];
      }
    }
  }
}

template <bool TWO_PLANES>
void forward_fast(const FastArgs& a, int64_t mrows, int64_t tile_blocks) {
  const int64_t nrb = (a.p->N + 7) / 8;
  at::parallel_for(0, nrb, 1, [&](int64_t rb0, int64_t rb1) {
    forward_fast_range<TWO_PLANES>(a, mrows, tile_blocks, rb0, rb1);
  });
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif  // BITMM_X86

// Runs the forward pass in accumulation type T (float, or double for float64 x).
template <typename T>
void linear_cpu_run(const LinearProblem& p, const at::Tensor& x, const at::Tensor& packed_w,
                    const at::Tensor& scale, const std::optional<at::Tensor>& offset, at::Tensor& y) {
  const at::Tensor xf = x.reshape({p.M, p.K}).to(y.scalar_type()).contiguous();
  const at::Tensor w = packed_w.contiguous();
  at::Tensor s_keep, u_keep;
  const ScaleView<T> s = view_scale<T>(scale, p.scale, s_keep);
  const ScaleView<T> u = offset.has_value() ? view_scale<T>(*offset, p.offset, u_keep) : ScaleView<T>{};
  const uint32_t* wp = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  const int64_t wpr = w.size(1);
#ifdef BITMM_X86
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx2() && (p.groups == 1 || p.group_size % BLOCK_K == 0)) {
      const int64_t Kp = padded_k(p.K);
      const int64_t nblocks = Kp / BLOCK_K;
      FastArgs a;
      a.p = &p;
      a.w = wp;
      a.wpr = wpr;
      a.nblocks = nblocks;
      a.kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
      a.seg_blocks = p.groups > 1 ? p.group_size / BLOCK_K : 0;
      a.s = s;
      a.u = u;
      // Activation rows are processed in chunks whose tables stay in L2.
      const int64_t mchunk = 64;
      const int64_t rows_max = std::min(p.M, mchunk);
      at::Tensor xp = at::empty({rows_max, Kp}, xf.options());
      at::Tensor tab = at::empty({rows_max, nblocks, kTableFloats}, xf.options());
      at::Tensor xblk = at::empty({rows_max, nblocks}, xf.options());
      for (int64_t mb = 0; mb < p.M; mb += mchunk) {
        const int64_t rows = std::min(mchunk, p.M - mb);
        permute_x(xf.data_ptr<float>() + mb * p.K, xp.data_ptr<float>(), rows, p.K, Kp);
        build_tables(xp.data_ptr<float>(), tab.data_ptr<float>(), xblk.data_ptr<float>(), rows, nblocks);
        a.tab = tab.data_ptr<float>();
        a.xblk = xblk.data_ptr<float>();
        a.y = y.data_ptr<float>() + mb * p.N;
        // K tile: the tables of `rows` activation rows over a tile fit in ~160 KB;
        // tiles hold whole scale groups and whole 16-byte loads (4 blocks).
        const int64_t unit = a.seg_blocks ? std::lcm<int64_t>(a.seg_blocks, 4) : 4;
        int64_t tile = (160 * 1024) / (rows * kTableFloats * 4);
        tile = std::max<int64_t>(unit, tile / unit * unit);
        if (p.kind == Kind::kBinary) forward_fast<false>(a, rows, tile);
        else forward_fast<true>(a, rows, tile);
      }
      return;
    }
  }
#endif
  forward_generic<T>(p, xf.data_ptr<T>(), wp, wpr, s, u, y.data_ptr<T>());
}

at::Tensor linear_cpu_impl(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           const std::optional<at::Tensor>& bias) {
  const LinearProblem p = check_linear(kind, x, packed_w, scale, offset, bias);
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = p.N;
  const bool f64 = x.scalar_type() == at::kDouble;
  at::Tensor y = at::empty({p.M, p.N}, x.options().dtype(f64 ? at::kDouble : at::kFloat));
  if (p.M > 0) {
    if (f64) linear_cpu_run<double>(p, x, packed_w, scale, offset, y);
    else linear_cpu_run<float>(p, x, packed_w, scale, offset, y);
    if (bias.has_value()) y.add_(bias->to(y.scalar_type()));
  }
  return y.to(x.scalar_type()).reshape(out_shape);
}

// ---------------------------------------------------------------------------
// grad_x = grad_y @ (W_q * s + u): masked adds of g*s into grad_x.
// ---------------------------------------------------------------------------
template <typename T>
void grad_x_generic(const LinearProblem& p, const T* g, const uint32_t* w, int64_t wpr,
                    const ScaleView<T>& s, const ScaleView<T>& u, T* gx) {
  const int planes = planes_of(p.kind);
  const int64_t G = p.group_size;
  at::parallel_for(0, p.K, 64, [&](int64_t k0, int64_t k1) {
    for (int64_t m = 0; m < p.M; ++m) {
      const T* gr = g + m * p.N;
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t b = k / BLOCK_K, grp = k / G;
        const int bit = bit_of_offset(static_cast<int>(k % BLOCK_K));
        T acc = 0, off = 0;
        for (int64_t n = 0; n < p.N; ++n) {
          const uint32_t* row = w + n * wpr;
          const T gs = gr[n] * s.at(n, grp);  // one multiply per (m, n, group)
          off += gr[n] * u.at(n, grp);
          const uint32_t lo = (row[b * planes] >> bit) & 1u;
          if (planes == 1) {
            if (lo) acc += gs;
          } else {
            const uint32_t hi = (row[b * planes + 1] >> bit) & 1u;
            if (hi) { acc += gs; if (lo) acc += gs; }
            else if (!lo) acc -= gs;
          }
        }
        gx[m * p.K + k] = acc + off;
      }
    }
  });
}

#ifdef BITMM_X86
// lut[byte] = 8 lanes of all-ones / zero masks for the byte's 8 bits.
struct MaskLut {
  alignas(32) uint32_t m[256][8];
  MaskLut() {
    for (int v = 0; v < 256; ++v)
      for (int i = 0; i < 8; ++i) m[v][i] = ((v >> i) & 1) ? 0xFFFFFFFFu : 0u;
  }
};
const MaskLut& mask_lut() {
  static const MaskLut lut;
  return lut;
}

// grad_x in packed (permuted) order: gxp[m, b*32 + bit] = sum_n (g*s)[m,n,grp] * value bits.
// Masked adds of g*s (2*g*s for the hi plane), parallel over blocks of K.
template <bool TWO_PLANES>
__attribute__((target("avx2,fma"))) void grad_x_fast_range(const LinearProblem& p, const float* g,
                                                           const uint32_t* w, int64_t wpr, const ScaleF32& s,
                                                           float* gxp, int64_t Kp, int64_t b0, int64_t b1) {
  const MaskLut& lut = mask_lut();
  const int64_t kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  const int64_t gblocks = p.groups > 1 ? p.group_size / BLOCK_K : kblocks;
  const int planes = TWO_PLANES ? 2 : 1;
  {
    for (int64_t m = 0; m < p.M; ++m) {
      float* acc = gxp + m * Kp;
      const float* gr = g + m * p.N;
      for (int64_t n = 0; n < p.N; ++n) {
        const uint32_t* row = w + n * wpr;
        int64_t cur_g = -1;
        __m256 v = _mm256_setzero_ps(), v2 = v;
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t grp = b / gblocks;
          if (grp != cur_g) {  // one multiply per (m, n, group)
            cur_g = grp;
            const float gs = gr[n] * s.at(n, p.groups > 1 ? grp : 0);
            v = _mm256_set1_ps(gs);
            v2 = _mm256_add_ps(v, v);
          }
          const uint32_t lo = row[b * planes];
          const uint32_t hi = TWO_PLANES ? row[b * planes + 1] : 0u;
          float* a = acc + b * BLOCK_K;
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            const __m256 ml = _mm256_load_ps(reinterpret_cast<const float*>(lut.m[(lo >> (8 * q)) & 0xFF]));
            __m256 add = _mm256_and_ps(v, ml);
            if (TWO_PLANES) {
              const __m256 mh = _mm256_load_ps(reinterpret_cast<const float*>(lut.m[(hi >> (8 * q)) & 0xFF]));
              add = _mm256_add_ps(add, _mm256_and_ps(v2, mh));
            }
            _mm256_storeu_ps(a + 8 * q, _mm256_add_ps(_mm256_loadu_ps(a + 8 * q), add));
          }
        }
      }
    }
  }
}

template <bool TWO_PLANES>
void grad_x_fast(const LinearProblem& p, const float* g, const uint32_t* w, int64_t wpr, const ScaleF32& s,
                 float* gxp, int64_t Kp) {
  const int64_t kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  at::parallel_for(0, kblocks, 4, [&](int64_t b0, int64_t b1) {
    grad_x_fast_range<TWO_PLANES>(p, g, w, wpr, s, gxp, Kp, b0, b1);
  });
}
#endif

// grad_x for float: the AVX2 masked-add kernel when it applies, else generic.
void grad_x_cpu_float(const LinearProblem& p, const float* g, const uint32_t* w, int64_t wpr,
                      const ScaleF32& s, const ScaleF32& u, float* gx) {
#ifdef BITMM_X86
  if (cpu_has_avx2() && (p.groups == 1 || p.group_size % BLOCK_K == 0)) {
    const int64_t Kp = padded_k(p.K);
    at::Tensor gxp_t = at::zeros({p.M, Kp}, at::kFloat);
    float* gxp = gxp_t.data_ptr<float>();
    if (p.kind == Kind::kBinary) grad_x_fast<false>(p, g, w, wpr, s, gxp, Kp);
    else grad_x_fast<true>(p, g, w, wpr, s, gxp, Kp);
    // Per (m, group) corrections, one multiply per (m, n, group):
    //   two-plane: sum_n g*s*(2hi + lo - 1) = acc - sum_n g*s;  offset: + sum_n g*u.
    const bool two = p.kind != Kind::kBinary;
    at::parallel_for(0, p.M, 1, [&](int64_t m0, int64_t m1) {
      std::vector<float> corr(p.groups);
      for (int64_t m = m0; m < m1; ++m) {
        const float* gr = g + m * p.N;
        for (int64_t grp = 0; grp < p.groups; ++grp) {
          float c = 0.f;
          for (int64_t n = 0; n < p.N; ++n) {
            if (two) c -= gr[n] * s.at(n, grp);
            c += gr[n] * u.at(n, grp);
          }
          corr[grp] = c;
        }
        for (int64_t k = 0; k < p.K; ++k) {
          const int64_t b = k / BLOCK_K;
          gx[m * p.K + k] = gxp[m * Kp + b * BLOCK_K + bit_of_offset(static_cast<int>(k % BLOCK_K))] +
                            corr[k / p.group_size];
        }
      }
    });
    return;
  }
#endif
  grad_x_generic<float>(p, g, w, wpr, s, u, gx);
}

at::Tensor grad_x_cpu(const at::Tensor& grad_y, const at::Tensor& packed_w, const at::Tensor& scale,
                      const std::optional<at::Tensor>& offset, int64_t kind_i, int64_t K) {
  const Kind kind = kind_from_int(kind_i);
  const LinearProblem p = check_grad_x(kind, grad_y, packed_w, scale, offset, K);
  std::vector<int64_t> out_shape(grad_y.sizes().begin(), grad_y.sizes().end());
  out_shape.back() = K;
  const bool f64 = grad_y.scalar_type() == at::kDouble;
  at::Tensor gx = at::empty({p.M, K}, grad_y.options().dtype(f64 ? at::kDouble : at::kFloat));
  if (p.M > 0) {
    const at::Tensor gf = grad_y.reshape({p.M, p.N}).to(gx.scalar_type()).contiguous();
    const at::Tensor w = packed_w.contiguous();
    const uint32_t* wp = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
    at::Tensor s_keep, u_keep;
    if (f64) {
      const auto s = view_scale<double>(scale, p.scale, s_keep);
      const auto u = offset.has_value() ? view_scale<double>(*offset, p.offset, u_keep) : ScaleView<double>{};
      grad_x_generic<double>(p, gf.data_ptr<double>(), wp, w.size(1), s, u, gx.data_ptr<double>());
    } else {
      const auto s = view_scale<float>(scale, p.scale, s_keep);
      const auto u = offset.has_value() ? view_scale<float>(*offset, p.offset, u_keep) : ScaleView<float>{};
      grad_x_cpu_float(p, gf.data_ptr<float>(), wp, w.size(1), s, u, gx.data_ptr<float>());
    }
  }
  return gx.to(grad_y.scalar_type()).reshape(out_shape);
}

at::Tensor ternary_linear_cpu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& s,
                              const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b) {
  return linear_cpu_impl(Kind::kTernary, x, w, s, u, b);
}
at::Tensor binary_linear_cpu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& s,
                             const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b) {
  return linear_cpu_impl(Kind::kBinary, x, w, s, u, b);
}
at::Tensor int2_linear_cpu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& s,
                           const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b) {
  return linear_cpu_impl(Kind::kInt2, x, w, s, u, b);
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, CPU, m) {
  m.impl("ternary_linear", &ternary_linear_cpu);
  m.impl("binary_linear", &binary_linear_cpu);
  m.impl("int2_linear", &int2_linear_cpu);
  m.impl("linear_grad_x", &grad_x_cpu);
}

}  // namespace bitmm
