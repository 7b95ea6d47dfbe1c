// grad_x = grad_y @ (v * scale + offset): the transposed add-only product.
//
// A warp owns a 2048-weight slice of K (64 weights = two 32-blocks per lane,
// one 16-byte (two-plane) or 8-byte (binary) load per row) and a range of
// rows n; for each row it forms g*s once per group (the only multiplication,
// plus g*u for the offset) and adds it into the per-lane accumulators of the
// bits that are set (2*g*s for the hi plane; two-plane values 2*hi + lo - 1
// also subtract g*s once per group).  The CTA's 4 warps (different rows, same
// slice) reduce in shared memory, then one atomicAdd per input per CTA into an
// fp32 buffer: the split over N makes the summation order, and so the last
// bits, run-to-run dependent (see README, determinism).
#include "common.cuh"

namespace bitmm {
namespace cuda {

constexpr int kGradWarps = 4;
constexpr int kGradSlice = 32 * 64;  // K per warp (and per CTA)

cudaError_t launch_generic_grad_x(const GradXParams& p, cudaStream_t stream);

template <typename T, typename S, bool TWO>
__global__ void __launch_bounds__(kGradWarps * 32)
grad_x_kernel(const GradXParams p, float* accum, const int64_t rows_per_cta) {
  __shared__ float red[kGradWarps][kGradSlice];  // 32 KB
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t k_lane = static_cast<int64_t>(blockIdx.x) * kGradSlice + lane * 64;  // first k of this lane
  const int64_t m = blockIdx.z;
  const int64_t Kp = padded_k(p.K);
  const int64_t n_begin = static_cast<int64_t>(blockIdx.y) * rows_per_cta;
  const int64_t n_end = min(p.N, n_begin + rows_per_cta);
  const int64_t gblocks = p.group_size / BLOCK_K;
  const T* gy = static_cast<const T*>(p.x) + m * p.N;
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);
  constexpr int PLANES = TWO ? 2 : 1;

  float acc[2][32];
  float corr[2] = {0.f, 0.f};
#pragma unroll
  for (int b = 0; b < 2; ++b)
#pragma unroll
    for (int j = 0; j < 32; ++j) acc[b][j] = 0.f;

  const bool active = k_lane < Kp;
  const int64_t kb0 = k_lane / BLOCK_K;  // first block of the lane
  const bool real[2] = {kb0 * BLOCK_K < p.K, (kb0 + 1) * BLOCK_K < p.K};
  const int64_t grp[2] = {kb0 / gblocks, (kb0 + 1) / gblocks};

  if (active) {
    for (int64_t n = n_begin + warp; n < n_end; n += kGradWarps) {
      const uint32_t* src = p.w + n * p.wpr + kb0 * PLANES;
      uint32_t words[4];
      if (TWO) {
        const uint4 v = load_weights_16B(src);
        words[0] = v.x; words[1] = v.y; words[2] = v.z; words[3] = v.w;
      } else {
        words[0] = __ldg(src);
        words[1] = __ldg(src + 1);
        words[2] = words[3] = 0u;
      }
      const float gv = to_float<T>(gy[n]);
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        // one multiply per (m, n, group): g*s, and g*u for the offset
        const float s = real[b] ? to_float<S>(scale[n * p.s_sn + grp[b] * p.s_sg]) : 0.f;
        const float u = (real[b] && offset) ? to_float<S>(offset[n * p.u_sn + grp[b] * p.u_sg]) : 0.f;
        const float gs = gv * s;
        const float gs2 = gs + gs;
        corr[b] += (TWO ? -gs : 0.f) + gv * u;
        const uint32_t lo = words[b * PLANES];
        const uint32_t hi = TWO ? words[b * PLANES + 1] : 0u;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          if ((lo >> j) & 1u) acc[b][j] += gs;           // add-only accumulation
          if (TWO && ((hi >> j) & 1u)) acc[b][j] += gs2;
        }
      }
    }
  }
  // Shared-memory reduction over the CTA's warps, in natural k order.
#pragma unroll
  for (int b = 0; b < 2; ++b)
#pragma unroll
    for (int j = 0; j < 32; ++j) red[warp][lane * 64 + b * 32 + offset_of_bit(j)] = acc[b][j] + corr[b];
  __syncthreads();
  for (int i = threadIdx.x; i < kGradSlice; i += blockDim.x) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * kGradSlice + i;
    if (k >= p.K) continue;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kGradWarps; ++w) v += red[w][i];
    atomicAdd(accum + m * p.K + k, v);
  }
}

cudaError_t launch_grad_x(const GradXParams& p, float* accum, int num_sms, bool deterministic, cudaStream_t stream) {
  if (p.group_size % BLOCK_K != 0 || p.x_dtype == DType::kDouble) return launch_generic_grad_x(p, stream);
  if (p.M == 0) return cudaSuccess;
  const int64_t slices = (padded_k(p.K) + kGradSlice - 1) / kGradSlice;
  // Split N so that slices * splits * M CTAs fill the GPU about twice.
  int64_t splits = imax64(1, (2 * num_sms + slices * p.M - 1) / (slices * p.M));
  splits = imin64(splits, (p.N + kGradWarps - 1) / kGradWarps);
  const int64_t rows = (p.N + splits - 1) / splits;
  splits = (p.N + rows - 1) / rows;
  dim3 grid(static_cast<unsigned>(slices), static_cast<unsigned>(splits), static_cast<unsigned>(p.M));
  BITMM_X_DTYPE_SWITCH(p.x_dtype, T, [&] {
    BITMM_BOOL_SWITCH(p.two_planes != 0, TWO, [&] {
      if (p.s_dtype == DType::kFloat) grad_x_kernel<T, float, TWO><<<grid, kGradWarps * 32, 0, stream>>>(p, accum, rows);
      else grad_x_kernel<T, T, TWO><<<grid, kGradWarps * 32, 0, stream>>>(p, accum, rows);
    });
  });
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace bitmm
