// grad_x = grad_y @ (v * scale + offset): the transposed add-only product.
//
// A warp owns a 2048-weight slice of K (64 weights = two 32-blocks per lane,
// one 16-byte (two-plane) or 8-byte (binary) load per row) and a range of
// rows n; for each row it forms g*s once per group (the only multiplication,
// plus g*u for the offset) and adds it into the per-lane accumulators of the
// bits that are set (2*g*s for the hi plane; two-plane values 2*hi + lo - 1
// also subtract g*s once per group).  The CTA's 4 warps (different rows, same
// slice) reduce in shared memory, in a fixed order.  Small M does not fill the
// GPU with (slice, m) CTAs, so N is split across `splits` CTAs per (slice, m).
//
// Default (fast) path: one atomicAdd per input per CTA into the zeroed fp32
// buffer `accum`.  With splits > 1 the order of those adds, and so the last
// bits, vary run to run (README, "Determinism").  With splits == 1 there is
// one add per element onto zero, which is exact and so already reproducible.
//
// Deterministic path (torch.use_deterministic_algorithms(True)), only where
// splits > 1: the same kernel stores each CTA's partial sums (plain stores, one
// writer per element) into scratch[split][m][k], and a second small kernel adds
// the splits in index order into accum.  Every sum then has a fixed order, so
// the result is bitwise reproducible on a given GPU (the split count depends on
// the SM count).  The scratch is splits * M * K floats, and splits > 1 only
// when slices * M < 2 * SMs, so it is below 4 * SMs * 2048 floats (4.3 MB on
// an H100).  It comes from cudaMallocAsync / cudaFreeAsync on the op's stream
// (stream-ordered, so no host sync, and legal inside CUDA-graph capture, where
// it becomes a graph memory node); if it fails the op raises (out of memory).
// On a device without memory pools the launcher uses splits = 1 instead: fewer
// CTAs (slower for small M), still reproducible.  (Simply always using splits = 1 would need
// no scratch, but leaves e.g. M = 1, K = 8192 with 4 CTAs for the whole GPU.)
// The fast path's kernel instance and launch are unchanged.  The generic kernel
// (other group sizes, float64) computes each output in one thread: deterministic.
#include <atomic>

#include "common.cuh"

namespace bitmm {
namespace cuda {

constexpr int kGradWarps = 4;
constexpr int kGradSlice = 32 * 64;  // K per warp (and per CTA)

cudaError_t launch_generic_grad_x(const GradXParams& p, cudaStream_t stream);

// DET = false: atomicAdd into accum (M, K).  DET = true: plain stores of this
// CTA's partials into accum = scratch (splits, M, K), at [blockIdx.y][m][k].
template <typename T, typename S, bool TWO, bool DET>
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
    if constexpr (DET) {
      accum[(static_cast<int64_t>(blockIdx.y) * p.M + m) * p.K + k] = v;  // the only writer of this element
    } else {
      atomicAdd(accum + m * p.K + k, v);
    }
  }
}

// accum[i] = parts[0][i] + parts[1][i] + ... + parts[splits-1][i], in that order.
__global__ void __launch_bounds__(256)
grad_x_sum_splits_kernel(const float* __restrict__ parts, const int64_t splits, const int64_t count,
                         float* __restrict__ accum) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    float v = parts[i];
    for (int64_t s = 1; s < splits; ++s) v += parts[s * count + i];
    accum[i] = v;
  }
}

// Stream-ordered scratch for the deterministic path.  Returns cudaSuccess with
// *out = nullptr where the device has no memory pools (the caller then uses
// splits = 1, on every call alike); a failed allocation is returned as the
// error (out of memory), not hidden by a fallback whose sums would differ in
// their last bits from those of the calls that got scratch.
static cudaError_t scratch_alloc(size_t bytes, cudaStream_t stream, float** out) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> pools_cache[kMaxDevices];  // 0 unknown, 1 supported, 2 not (queried once)
  *out = nullptr;
  int device = 0, pools = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess && device < kMaxDevices && pools_cache[device].load() != 0) {
    pools = pools_cache[device].load() == 1;
  } else if (err == cudaSuccess) {
    err = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device);
    if (err == cudaSuccess && device < kMaxDevices) pools_cache[device].store(pools ? 1 : 2);
  }
  if (err == cudaSuccess && pools) {
    void* ptr = nullptr;
    err = cudaMallocAsync(&ptr, bytes, stream);
    if (err == cudaSuccess) *out = static_cast<float*>(ptr);
  }
  if (err != cudaSuccess) (void)cudaGetLastError();  // not left behind for a later launch check
  return err;
}

cudaError_t launch_grad_x(const GradXParams& p, float* accum, int num_sms, bool deterministic, cudaStream_t stream) {
  if (p.group_size % BLOCK_K != 0 || p.x_dtype == DType::kDouble) return launch_generic_grad_x(p, stream);
  if (p.M == 0) return cudaSuccess;
  const int64_t slices = (padded_k(p.K) + kGradSlice - 1) / kGradSlice;
  // Split N so that slices * splits * M CTAs fill the GPU about twice.
  int64_t splits = imax64(1, (2 * num_sms + slices * p.M - 1) / (slices * p.M));
  splits = imin64(splits, (p.N + kGradWarps - 1) / kGradWarps);
  int64_t rows = (p.N + splits - 1) / splits;
  splits = (p.N + rows - 1) / rows;
  // Deterministic with splits > 1: per-split partials in scratch, summed in order
  // (header comment); without scratch, one split.  splits == 1 is exact as is.
  float* parts = nullptr;
  if (deterministic && splits > 1) {
    const cudaError_t err = scratch_alloc(sizeof(float) * static_cast<size_t>(splits * p.M * p.K), stream, &parts);
    if (err != cudaSuccess) return err;
    if (parts == nullptr) {  // no memory pools on this device
      splits = 1;
      rows = p.N;
    }
  }
  dim3 grid(static_cast<unsigned>(slices), static_cast<unsigned>(splits), static_cast<unsigned>(p.M));
  BITMM_X_DTYPE_SWITCH(p.x_dtype, T, [&] {
    BITMM_BOOL_SWITCH(p.two_planes != 0, TWO, [&] {
      if (parts != nullptr) {
        if (p.s_dtype == DType::kFloat) grad_x_kernel<T, float, TWO, true><<<grid, kGradWarps * 32, 0, stream>>>(p, parts, rows);
        else grad_x_kernel<T, T, TWO, true><<<grid, kGradWarps * 32, 0, stream>>>(p, parts, rows);
      } else {
        if (p.s_dtype == DType::kFloat) grad_x_kernel<T, float, TWO, false><<<grid, kGradWarps * 32, 0, stream>>>(p, accum, rows);
        else grad_x_kernel<T, T, TWO, false><<<grid, kGradWarps * 32, 0, stream>>>(p, accum, rows);
      }
    });
  });
  cudaError_t err = cudaGetLastError();
  if (parts != nullptr) {
    if (err == cudaSuccess) {
      const int64_t count = p.M * p.K;
      const int64_t blocks = imin64((count + 255) / 256, static_cast<int64_t>(num_sms) * 8);
      grad_x_sum_splits_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(parts, splits, count, accum);
      err = cudaGetLastError();
    }
    const cudaError_t free_err = cudaFreeAsync(parts, stream);  // after both kernels, in stream order
    if (err == cudaSuccess) err = free_err;
  }
  return err;
}

}  // namespace cuda
}  // namespace bitmm
