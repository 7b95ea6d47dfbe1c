// Dense dequantization for the large-M path: W = v * s + u in x's dtype,
// computed in fp32 and rounded once (as F.linear on a dequantized weight), for
// rows [n0, n0 + nn) into a contiguous (nn, K) buffer that cuBLAS then
// multiplies.  At large M the product is compute-bound and this pass (one
// write of the slice, kept small enough to stay in L2) is a few percent of it;
// see linear_cuda.cpp for when it is used.
#include <climits>

#include "common.cuh"
#include "env_knobs.h"

namespace bitmm {
namespace cuda {

// One thread per 8 consecutive weights of a row (a quarter of a 32-weight block): adjacent
// threads write adjacent 16 bytes (fp16 / bf16; 32 bytes for fp32), so stores coalesce; the
// packed words are re-read by the 4 threads of a block from L1.  Grid: x over a row's 8-weight
// pieces, y over rows (each thread steps through rows by gridDim.y), so a thread's block, group
// and bit offsets are computed once (32-bit arithmetic but for the group's division).  (The first
// version derived the row and piece from one flat 64-bit index per 8 weights, two 64-bit
// divisions, plus the group by a third and the interleave per weight: ~250 instructions per 8
// weights, instruction-bound.  H200, session 18, A/B: the dense path at M = 4096 40-100 us faster
// on the 235 M-weight shapes, bench/results/h200_s18_call4_ab_8ac0803.txt.)
// GDIV: how a piece's group is found: 0: one group per row (per tensor / channel), 1: a shift
// (power-of-two group size), 2: a division (64-bit, once per thread).
template <typename T, typename S, bool TWO, int GDIV>
__global__ void dequant_kernel(const LinearParams p, T* out, const int64_t n0, const int64_t nn, const bool vec,
                               const int gshift) {
  const int octs = static_cast<int>((p.K + 7) / 8);  // 8-weight pieces per row (fits an int: checked by the host)
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= octs) return;
  const int64_t k0 = 8 * static_cast<int64_t>(o);
  const int b = o >> 2;
  // Weight j of the piece sits at bit bit_of_offset(8 (o & 3) + j) = 4 (o & 3) + (j >> 1) + 16 (j & 1)
  // of its block's word(s) (bitmm_format.h): shifted down by 4 (o & 3), at j / 2 + 16 (j & 1).
  const int sh = 4 * (o & 3);
  const int64_t g = GDIV == 0 ? 0 : GDIV == 1 ? (k0 >> gshift) : k0 / p.group_size;  // once per thread
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);
  const bool full = vec && k0 + 8 <= p.K;
  for (int64_t nl = blockIdx.y; nl < nn; nl += gridDim.y) {
    const int64_t n = n0 + nl;
    const uint32_t* row = p.w + n * p.wpr;
    const uint32_t lo = (TWO ? __ldg(row + 2 * b) : __ldg(row + b)) >> sh;
    const uint32_t hi = TWO ? __ldg(row + 2 * b + 1) >> sh : 0u;
    const float s = to_float<S>(scale[n * p.s_sn + g * p.s_sg]);
    const float u = offset ? to_float<S>(offset[n * p.u_sn + g * p.u_sg]) : 0.f;
    union { T v[8]; uint4 q[sizeof(T) * 8 / 16]; } w;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int bit = (j >> 1) + 16 * (j & 1);
      const int l = (lo >> bit) & 1u;
      // -1,0,1,2 <- (h, l) = (0,0),(0,1),(1,0),(1,1) (int2 / ternary); 0,1 <- l (binary)
      const float v = TWO ? static_cast<float>(2 * static_cast<int>((hi >> bit) & 1u) + l - 1) : static_cast<float>(l);
      w.v[j] = from_float<T>(fmaf(v, s, u));
    }
    T* dst = out + nl * p.K + k0;
    if (full) {
#pragma unroll
      for (int i = 0; i < static_cast<int>(sizeof(T) * 8 / 16); ++i) reinterpret_cast<uint4*>(dst)[i] = w.q[i];
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)  // (unrolled: a runtime index would put w in local memory)
        if (k0 + j < p.K) dst[j] = w.v[j];
    }
  }
}

cudaError_t launch_dequant(const LinearParams& p, void* out, int64_t n0, int64_t nn, cudaStream_t stream) {
  if (nn <= 0) return cudaSuccess;
  // (a row's 8-weight pieces must fit an int, grid.x's rounding included)
  if (p.group_size % BLOCK_K != 0 || p.x_dtype == DType::kDouble || p.K > 8 * (int64_t{INT_MAX} - 255))
    return cudaErrorNotSupported;
  const int octs = static_cast<int>((p.K + 7) / 8);
  // 16-byte stores when every row starts 16-byte aligned
  const bool vec = p.K % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int threads = 256;
  // grid.y: one row each up to 65535 rows (its limit); past that each thread steps through rows.
  // BITMM_DEQUANT_GRID_Y=n (probe knob, read once): at most n rows at once, each CTA then walking
  // nn / n rows (is one CTA per 4 KB of output what holds the pass at ~1.8 TB/s? bench/NOTES.md).
  static const int64_t y_cap = [] {
    const int v = env_int("BITMM_DEQUANT_GRID_Y");
    return v > 0 && v < 65535 ? static_cast<int64_t>(v) : int64_t{65535};
  }();
  const dim3 grid((octs + threads - 1) / threads, static_cast<unsigned>(std::min<int64_t>(nn, y_cap)));
  const bool one_group = p.group_size >= p.K;
  const bool pow2 = (p.group_size & (p.group_size - 1)) == 0;
  const int gshift = pow2 ? __builtin_ctzll(static_cast<unsigned long long>(p.group_size)) : -1;
  const int gdiv = one_group ? 0 : pow2 ? 1 : 2;
  BITMM_X_DTYPE_SWITCH(p.x_dtype, T, [&] {
    BITMM_BOOL_SWITCH(p.two_planes != 0, TWO, [&] {
      auto go = [&](auto gd) {
        constexpr int GD = decltype(gd)::value;
        if (p.s_dtype == DType::kFloat)
          dequant_kernel<T, float, TWO, GD><<<grid, threads, 0, stream>>>(p, static_cast<T*>(out), n0, nn, vec, gshift);
        else
          dequant_kernel<T, T, TWO, GD><<<grid, threads, 0, stream>>>(p, static_cast<T*>(out), n0, nn, vec, gshift);
      };
      if (gdiv == 0) go(std::integral_constant<int, 0>{});
      else if (gdiv == 1) go(std::integral_constant<int, 1>{});
      else go(std::integral_constant<int, 2>{});
    });
  });
  return cudaGetLastError();
}
}  // namespace cuda
}  // namespace bitmm
