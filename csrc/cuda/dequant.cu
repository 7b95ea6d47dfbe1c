// Dense dequantization for the large-M path: W = v * s + u in x's dtype,
// computed in fp32 and rounded once (as F.linear on a dequantized weight), for
// rows [n0, n0 + nn) into a contiguous (nn, K) buffer that cuBLAS then
// multiplies.  At large M the product is compute-bound and this pass (one
// write of the slice, kept small enough to stay in L2) is a few percent of it;
// see linear_cuda.cpp for when it is used.
#include "common.cuh"

namespace bitmm {
namespace cuda {

// One thread per 8 consecutive weights of a row: adjacent threads write
// adjacent 16 bytes (fp16 / bf16; 32 bytes for fp32), so stores coalesce; the
// packed words are re-read by the 4 threads of a block from L1.
template <typename T, typename S>
__global__ void dequant_kernel(const LinearParams p, T* out, const int64_t n0, const int64_t nn, const bool vec) {
  const int64_t octs = (p.K + 7) / 8;  // 8-weight pieces per row
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= nn * octs) return;
  const int64_t nl = idx / octs, o = idx % octs, n = n0 + nl;
  const int64_t k0 = o * 8, b = k0 / BLOCK_K;
  const uint32_t* row = p.w + n * p.wpr;
  const uint32_t lo = p.two_planes ? __ldg(row + 2 * b) : __ldg(row + b);
  const uint32_t hi = p.two_planes ? __ldg(row + 2 * b + 1) : 0u;
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);
  const int64_t g = k0 / p.group_size;  // group_size % 32 == 0 here: 8 weights are in one group
  const float s = to_float<S>(scale[n * p.s_sn + g * p.s_sg]);
  const float u = offset ? to_float<S>(offset[n * p.u_sn + g * p.u_sg]) : 0.f;
  union { T v[8]; uint4 q[sizeof(T) * 8 / 16]; } w;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int bit = bit_of_offset(static_cast<int>(k0 % BLOCK_K) + j);
    const int l = (lo >> bit) & 1u, h = (hi >> bit) & 1u;
    const float v = p.two_planes ? static_cast<float>(2 * h + l - 1) : static_cast<float>(l);
    w.v[j] = from_float<T>(fmaf(v, s, u));
  }
  T* dst = out + nl * p.K + k0;
  if (vec && k0 + 8 <= p.K) {
#pragma unroll
    for (int i = 0; i < static_cast<int>(sizeof(T) * 8 / 16); ++i) reinterpret_cast<uint4*>(dst)[i] = w.q[i];
  } else {
    for (int j = 0; j < 8 && k0 + j < p.K; ++j) dst[j] = w.v[j];
  }
}

cudaError_t launch_dequant(const LinearParams& p, void* out, int64_t n0, int64_t nn, cudaStream_t stream) {
  if (nn <= 0) return cudaSuccess;
  if (p.group_size % BLOCK_K != 0 || p.x_dtype == DType::kDouble) return cudaErrorNotSupported;
  const int64_t total = nn * ((p.K + 7) / 8);
  // 16-byte stores when every row starts 16-byte aligned
  const bool vec = p.K % 8 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int threads = 256;
  const int64_t grid = (total + threads - 1) / threads;
  BITMM_X_DTYPE_SWITCH(p.x_dtype, T, [&] {
    if (p.s_dtype == DType::kFloat) dequant_kernel<T, float><<<grid, threads, 0, stream>>>(p, static_cast<T*>(out), n0, nn, vec);
    else dequant_kernel<T, T><<<grid, threads, 0, stream>>>(p, static_cast<T*>(out), n0, nn, vec);
  });
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace bitmm
