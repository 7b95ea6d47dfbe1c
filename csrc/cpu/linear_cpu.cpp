// CPU backend of the bitmm linear ops: glue, the generic kernels (any group
// size, float64), and grad_x.  The fast forwards live in forward_avx2.cpp and
// forward_avx512.cpp (the same math, bitwise).
//
// grad_x: grad_x[m,k] = sum_n g[m,n] * (s[n,g(k)] * w[n,k] + u[n,g(k)]).  The
// per-group scaled g*s is formed once per (m, n, group); then every weight bit
// adds it (masked add) into grad_x: the transposed add-only product.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
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
#include "../cpu_prepack_format.h"
#include "cpu_kernels.h"

namespace bitmm {
namespace {

using cpu::ScaleView;
using ScaleF32 = ScaleView<float>;

template <typename T>
ScaleView<T> view_scale(const at::Tensor& t, const ScaleLayout& l, at::Tensor& keep) {
  ScaleView<T> v;
  if (!l.present) return v;
  keep = t.to(c10::CppTypeToScalarType<T>::value).contiguous();
  v.ptr = keep.data_ptr<T>();
  if (keep.dim() == 1) v.sn = 1;
  // (N, 1) is per channel: another argument may be group-wise, so g can exceed 0.
  if (keep.dim() == 2) { v.sn = keep.size(1); v.sg = keep.size(1) > 1 ? 1 : 0; }
  return v;
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

// Runs the forward pass in accumulation type T (float, or double for float64 x).
// prep: payload of a checked cpu_prepack blob of packed_w (cpu_prepack_format.h), or nullptr.
// Returns false when the AVX2 / AVX-512 kernel found a NaN / Inf in scale or offset (they test
// every value they read; the generic kernel does not test and returns true).
// sprep: with prep, the float32 payload of a checked cpu_prepack_scales layout of scale / offset, or
// nullptr (the AVX2 / AVX-512 kernels then read it instead of scale and offset, which are not converted).
template <typename T>
bool linear_cpu_run(const LinearProblem& p, const at::Tensor& x, const at::Tensor& packed_w,
                    const at::Tensor& scale, const std::optional<at::Tensor>& offset, at::Tensor& y,
                    const uint8_t* prep, const float* sprep = nullptr) {
  const at::Tensor xf = x.reshape({p.M, p.K}).to(y.scalar_type()).contiguous();
  const at::Tensor w = packed_w.contiguous();
  const uint32_t* wp = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  const int64_t wpr = w.size(1);
  const bool fast = std::is_same_v<T, float> && (cpu::avx512_forward_applies(p) || cpu::avx2_forward_applies(p));
  // (scale / offset as float32 views: a copy for other dtypes, skipped where the kernel reads sprep)
  at::Tensor s_keep, u_keep;
  ScaleView<T> s, u;
  if (!(fast && prep && sprep)) {
    s = view_scale<T>(scale, p.scale, s_keep);
    if (offset.has_value()) u = view_scale<T>(*offset, p.offset, u_keep);
  }
  if constexpr (std::is_same_v<T, float>) {
    const int64_t plane = cpu_prepack::num_tiles(p.N) * p.groups * cpu_prepack::kTileRows;  // floats per plane
    cpu::ForwardArgs a{&p, wp, wpr, xf.data_ptr<float>(), y.data_ptr<float>(), s, u, prep, prep ? sprep : nullptr,
                       prep && sprep && offset.has_value() ? sprep + plane : nullptr};
    // The AVX-512 kernel where it applies, reading the cpu_prepack blob in place when there is one
    // (Zen 4, session 38: 0.70-0.90 of the time of the AVX2 kernel on the blob at M = 1, 0.81-1.03
    // of its own transposing path's at M = 2-64; bench/NOTES.md "CPU forward" v9).  Each kernel
    // runs in a named profiler scope (tests assert which one ran).
    if (cpu::avx512_forward_applies(p)) {
      RECORD_FUNCTION(prep ? "bitmm::cpu_forward_avx512_prepacked" : "bitmm::cpu_forward_avx512",
                      c10::ArrayRef<const c10::IValue>{});
      return cpu::forward_avx512(a);
    }
    if (cpu::avx2_forward_applies(p)) {
      RECORD_FUNCTION(prep ? "bitmm::cpu_forward_avx2_prepacked" : "bitmm::cpu_forward_avx2",
                      c10::ArrayRef<const c10::IValue>{});
      return cpu::forward_avx2(a);
    }
  }
  RECORD_FUNCTION("bitmm::cpu_forward_generic", c10::ArrayRef<const c10::IValue>{});
  forward_generic<T>(p, xf.data_ptr<T>(), wp, wpr, s, u, y.data_ptr<T>());
  return true;
}

// prepacked: a cpu_prepack blob of packed_w (cpu_prepacked_linear), or nullptr.  It only
// replaces the AVX2 / AVX-512 kernels' per-call transpose: the generic kernel (float64, group
// sizes that are not a multiple of 32, no AVX2) reads packed_w, with the same results.
at::Tensor linear_cpu_impl(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           const std::optional<at::Tensor>& bias, const at::Tensor* prepacked = nullptr,
                           const std::optional<at::Tensor>& prepacked_scales = std::nullopt) {
  // The NaN / Inf check of scale and offset is deferred to the AVX2 / AVX-512 kernel where it runs (it reads
  // every value anyway; a separate scan re-read group-wise scales from memory: bench/NOTES.md,
  // "CPU forward" v5), and made up front everywhere else.  Not for float64 scales: the kernel sees
  // them rounded to float32, where a finite 1e300 would read as Inf.
  const LinearProblem p = prepacked ? check_prepacked_linear(kind, x, packed_w, *prepacked, scale, offset, bias,
                                                             /*defer_finite=*/true, prepacked_scales)
                                    : check_linear(kind, x, packed_w, scale, offset, bias, /*defer_finite=*/true);
  const bool f64 = x.scalar_type() == at::kDouble;
  // (Exactly when linear_cpu_run takes one of the two fast kernels, both of which test.)
  const bool kernel_checks = !f64 && p.M > 0 && (cpu::avx512_forward_applies(p) || cpu::avx2_forward_applies(p)) &&
                             scale.scalar_type() != at::kDouble &&
                             !(offset.has_value() && offset->scalar_type() == at::kDouble);
  if (!kernel_checks) check_scales_finite(kind, prepacked != nullptr, scale, offset);
  const uint8_t* prep =
      prepacked ? static_cast<const uint8_t*>(prepacked->const_data_ptr()) + cpu_prepack::kHeaderBytes : nullptr;
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = p.N;
  at::Tensor y = at::empty({p.M, p.N}, x.options().dtype(f64 ? at::kDouble : at::kFloat));
  if (p.M > 0) {
    const bool finite = f64 ? linear_cpu_run<double>(p, x, packed_w, scale, offset, y, nullptr)
                            : linear_cpu_run<float>(p, x, packed_w, scale, offset, y, prep,
                                                    prepacked && prepacked_scales.has_value()
                                                        ? prepacked_scales->const_data_ptr<float>()
                                                        : nullptr);
    if (!finite) {
      // The kernel saw a NaN / Inf.  Where the scan above ran (float64 scale or offset), the flag may come from the
      // float32 rounding of a finite value (1e300: Inf, as without the layout), except that a layout's values must
      // be those float32 roundings: if they are all finite, the layout was made from other values.
      const bool layout = !f64 && prepacked && prepacked_scales.has_value();
      if (kernel_checks) check_scales_finite(kind, prepacked != nullptr, scale, offset);  // throws, naming the element
      const auto f32_finite = [](const at::Tensor& t) { return at::isfinite(t.to(at::kFloat)).all().item<bool>(); };
      BITMM_CHECK_VALUE(!layout || (!kernel_checks && !(f32_finite(scale) && (!offset.has_value() ||
                                                                              f32_finite(*offset)))),
                        "bitmm.cpu_prepacked_linear(", name_of(kind),
                        "): prepacked_scales holds a NaN or Inf that scale and offset do not: it was made from other "
                        "values (stale); remake it with torch.ops.bitmm.cpu_prepack_scales(scale, offset, N, K)");
      BITMM_CHECK(!kernel_checks, "bitmm: internal error: the CPU kernel saw a non-finite scale or offset that the "
                                  "scan did not find (M=", p.M, ", N=", p.N, ", K=", p.K, ", ", name_of(kind), ")");
    }
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

// g[m, n] * s[n, grp] (the group index ignored for per-tensor / per-channel scales): the one
// multiply per (m, n, group) of both masked-add kernels, the same rounding in both.
inline float grad_times_scale(const LinearProblem& p, const float* gr, const ScaleF32& s, int64_t n, int64_t grp) {
  return gr[n] * s.at(n, p.groups > 1 ? grp : 0);
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
            v = _mm256_set1_ps(grad_times_scale(p, gr, s, n, grp));
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

// The same sums on AVX-512F: a word's bits are the k-masks of its 32 lanes (low / high 16 bits), no
// mask-table loads, and the lanes of C blocks stay in 2 x C zmm across the whole n loop instead of a
// load / add / store per (n, block).  Per lane the AVX2 kernel's operations in its order:
// t = (lo ? gs : +0) (+ (hi ? 2gs : +0) for two planes), acc += t, n ascending: bitwise its output
// (tests/test_cpu_kernels.py compares the two).  A masked add where the AVX2 kernel adds a masked +0
// is the same: acc starts at +0 and a round-to-nearest sum is -0 only for -0 + -0.
// A register tile is MT activation rows x C blocks (2 x MT x C accumulators + 2 x MT broadcasts <= 32
// zmm); MT = 2 shares each word's loads and k-masks between two rows of g.
template <bool TWO_PLANES, int MT, int C>
__attribute__((target("avx512f"), always_inline)) inline void grad_x_avx512_tile(
    const LinearProblem& p, const float* g, const uint32_t* w, int64_t wpr, const ScaleF32& s, float* gxp,
    int64_t Kp, int64_t c0, int nb, int64_t m0, int64_t gblocks) {
  const int planes = TWO_PLANES ? 2 : 1;
  __m512 acc[MT][2 * C];
  for (int r = 0; r < MT; ++r)
    for (int i = 0; i < 2 * C; ++i) acc[r][i] = _mm512_setzero_ps();
  for (int64_t n = 0; n < p.N; ++n) {
    const uint32_t* row = w + n * wpr + c0 * planes;
    int64_t cur_g = -1;  // (block c0 sets v, v2 first)
    __m512 v[MT], v2[MT];
    for (int r = 0; r < MT; ++r) v[r] = v2[r] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      if (j >= nb) break;
      const int64_t grp = (c0 + j) / gblocks;
      if (grp != cur_g) {  // one multiply per (m, n, group), as the AVX2 kernel
        cur_g = grp;
        for (int r = 0; r < MT; ++r) {
          v[r] = _mm512_set1_ps(grad_times_scale(p, g + (m0 + r) * p.N, s, n, grp));
          v2[r] = _mm512_add_ps(v[r], v[r]);
        }
      }
      const uint32_t lo = row[j * planes];
      const uint32_t hi = TWO_PLANES ? row[j * planes + 1] : 0u;
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __mmask16 ml = _cvtu32_mask16(lo >> (16 * h));
        const __mmask16 mh = _cvtu32_mask16(hi >> (16 * h));
        for (int r = 0; r < MT; ++r) {
          if (TWO_PLANES) {
            __m512 t = _mm512_maskz_mov_ps(ml, v[r]);
            t = _mm512_mask_add_ps(t, mh, t, v2[r]);
            acc[r][2 * j + h] = _mm512_add_ps(acc[r][2 * j + h], t);
          } else {
            acc[r][2 * j + h] = _mm512_mask_add_ps(acc[r][2 * j + h], ml, acc[r][2 * j + h], v[r]);
          }
        }
      }
    }
  }
  for (int r = 0; r < MT; ++r) {
    float* out = gxp + (m0 + r) * Kp + c0 * BLOCK_K;
    for (int j = 0; j < nb; ++j) {
      _mm512_storeu_ps(out + BLOCK_K * j, acc[r][2 * j]);
      _mm512_storeu_ps(out + BLOCK_K * j + 16, acc[r][2 * j + 1]);
    }
  }
}

// Blocks [b0, b1) for every activation row: C-block chunks, rows two at a time (the last one alone).
template <bool TWO_PLANES, int C>
__attribute__((target("avx512f"))) void grad_x_avx512_range(const LinearProblem& p, const float* g,
                                                            const uint32_t* w, int64_t wpr, const ScaleF32& s,
                                                            float* gxp, int64_t Kp, int64_t b0, int64_t b1) {
  const int64_t kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  const int64_t gblocks = p.groups > 1 ? p.group_size / BLOCK_K : kblocks;
  for (int64_t c0 = b0; c0 < b1; c0 += C) {
    const int nb = static_cast<int>(std::min<int64_t>(C, b1 - c0));
    int64_t m = 0;
    for (; m + 2 <= p.M; m += 2) grad_x_avx512_tile<TWO_PLANES, 2, C>(p, g, w, wpr, s, gxp, Kp, c0, nb, m, gblocks);
    if (m < p.M) grad_x_avx512_tile<TWO_PLANES, 1, C>(p, g, w, wpr, s, gxp, Kp, c0, nb, m, gblocks);
  }
}

// Where grad_x_fast takes the AVX-512 kernel (within grad_x_cpu_float's AVX2 condition).
inline bool grad_x_avx512_applies() { return cpu::avx512_enabled() && cpu::has_avx512(); }

template <bool TWO_PLANES>
void grad_x_fast(const LinearProblem& p, const float* g, const uint32_t* w, int64_t wpr, const ScaleF32& s,
                 float* gxp, int64_t Kp) {
  const int64_t kblocks = (p.K + BLOCK_K - 1) / BLOCK_K;
  if (grad_x_avx512_applies()) {
    RECORD_FUNCTION("bitmm::cpu_grad_x_avx512", c10::ArrayRef<const c10::IValue>{});
    // 8 blocks per tile for one row of g (16 accumulators), 6 where rows go in pairs (24 + 4 broadcasts)
    if (p.M == 1) {
      at::parallel_for(0, kblocks, 8, [&](int64_t b0, int64_t b1) {
        grad_x_avx512_range<TWO_PLANES, 8>(p, g, w, wpr, s, gxp, Kp, b0, b1);
      });
    } else {
      at::parallel_for(0, kblocks, 6, [&](int64_t b0, int64_t b1) {
        grad_x_avx512_range<TWO_PLANES, 6>(p, g, w, wpr, s, gxp, Kp, b0, b1);
      });
    }
    return;
  }
  RECORD_FUNCTION("bitmm::cpu_grad_x_avx2", c10::ArrayRef<const c10::IValue>{});
  at::parallel_for(0, kblocks, 4, [&](int64_t b0, int64_t b1) {
    grad_x_fast_range<TWO_PLANES>(p, g, w, wpr, s, gxp, Kp, b0, b1);
  });
}
#endif

// grad_x for float: the AVX-512 / AVX2 masked-add kernel when it applies, else generic.
void grad_x_cpu_float(const LinearProblem& p, const float* g, const uint32_t* w, int64_t wpr,
                      const ScaleF32& s, const ScaleF32& u, float* gx) {
#ifdef BITMM_X86
  if (cpu::avx2_forward_applies(p)) {
    const int64_t Kp = padded_k(p.K);
    // the AVX2 kernel accumulates into gxp; the AVX-512 one stores every lane of blocks [0, kblocks), all that is read
    const bool accumulates = !grad_x_avx512_applies();
    at::Tensor gxp_t = accumulates ? at::zeros({p.M, Kp}, at::kFloat) : at::empty({p.M, Kp}, at::kFloat);
    float* gxp = gxp_t.data_ptr<float>();
    if (p.kind == Kind::kBinary) grad_x_fast<false>(p, g, w, wpr, s, gxp, Kp);
    else grad_x_fast<true>(p, g, w, wpr, s, gxp, Kp);
    // Per (m, group) corrections, one multiply per (m, n, group):
    //   two-plane: sum_n g*s*(2hi + lo - 1) = acc - sum_n g*s;  offset: + sum_n g*u.
    const bool two = p.kind != Kind::kBinary;
    // Group-wise s / u stored (N, groups) row by row (the usual layout): n outer, the groups inner, so s and u
    // stream once, contiguously (a group at a time walked them with a stride of `groups` floats, 16 groups
    // per cache line re-read 16 times: ~0.75 ms of 1.6 at 4096^2 g64 M = 1, session 40); each corr[grp]
    // still sums over n in order with the same operations, so the same bits.  Other layouts: a group at a time.
    const bool rows = s.sg == 1 && (u.ptr == nullptr || u.sg == 1);
    // (no offset: a row of zeros, as u.at() gives: g * 0 is added all the same, so an inf / NaN gradient stays NaN)
    const std::vector<float> no_offset(rows && u.ptr == nullptr ? p.groups : 0, 0.f);
    at::parallel_for(0, p.M, 1, [&](int64_t m0, int64_t m1) {
      std::vector<float> corr(p.groups);
      for (int64_t m = m0; m < m1; ++m) {
        const float* gr = g + m * p.N;
        if (rows) {
          std::fill(corr.begin(), corr.end(), 0.f);
          float* c = corr.data();
          for (int64_t n = 0; n < p.N; ++n) {
            const float gv = gr[n];
            const float* sr = s.ptr + n * s.sn;
            const float* ur = u.ptr != nullptr ? u.ptr + n * u.sn : no_offset.data();
            for (int64_t grp = 0; grp < p.groups; ++grp) {
              if (two) c[grp] -= gv * sr[grp];
              c[grp] += gv * ur[grp];
            }
          }
        } else {
          for (int64_t grp = 0; grp < p.groups; ++grp) {
            float c = 0.f;
            for (int64_t n = 0; n < p.N; ++n) {
              if (two) c -= gr[n] * s.at(n, grp);
              c += gr[n] * u.at(n, grp);
            }
            corr[grp] = c;
          }
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
  RECORD_FUNCTION("bitmm::cpu_grad_x_generic", c10::ArrayRef<const c10::IValue>{});
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
      RECORD_FUNCTION("bitmm::cpu_grad_x_generic", c10::ArrayRef<const c10::IValue>{});
      grad_x_generic<double>(p, gf.data_ptr<double>(), wp, w.size(1), s, u, gx.data_ptr<double>());
    } else {
      const auto s = view_scale<float>(scale, p.scale, s_keep);
      const auto u = offset.has_value() ? view_scale<float>(*offset, p.offset, u_keep) : ScaleView<float>{};
      grad_x_cpu_float(p, gf.data_ptr<float>(), wp, w.size(1), s, u, gx.data_ptr<float>());
    }
  }
  return gx.to(grad_y.scalar_type()).reshape(out_shape);
}

// One registered function per kind, all the same impl.
template <Kind kind>
at::Tensor linear_cpu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& s,
                       const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b) {
  return linear_cpu_impl(kind, x, w, s, u, b);
}

at::Tensor prepacked_linear_cpu(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& prepacked,
                                const at::Tensor& s, const std::optional<at::Tensor>& u,
                                const std::optional<at::Tensor>& b, int64_t kind,
                                const std::optional<at::Tensor>& prepacked_scales) {
  return linear_cpu_impl(kind_from_int(kind), x, packed_w, s, u, b, &prepacked, prepacked_scales);
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, CPU, m) {
  m.impl("cpu_prepacked_linear", &prepacked_linear_cpu);
  m.impl("ternary_linear", &linear_cpu<Kind::kTernary>);
  m.impl("binary_linear", &linear_cpu<Kind::kBinary>);
  m.impl("int2_linear", &linear_cpu<Kind::kInt2>);
  m.impl("linear_grad_x", &grad_x_cpu);
}

}  // namespace bitmm
