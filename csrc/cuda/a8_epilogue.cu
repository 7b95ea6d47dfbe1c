// linear_a8's epilogue on CUDA (W2A8, csrc/linear_a8.h): one pass over torch's int8 GEMM's int32 sums,
//   y[m, n] = T(x_scale[m] * (s[n] * (sums[m, n] - shift * X[m]) + u[n] * X[m]) + b[n]),
// where the ATen epilogue (linear_a8.cpp, the CPU's and the fallback) takes five elementwise passes over the
// (M, N) sums.  The same float32 operations in the same order, each rounded (no contraction into an FMA), so both
// epilogues give the same bits (a8::epilogue in a8_fragments.h, which the fused kernel a8_linear.cu shares).
#include "a8_fragments.h"
#include "common.cuh"

namespace bitmm {
namespace cuda {

template <typename T>
__global__ void __launch_bounds__(256)
a8_epilogue_kernel(const int4* __restrict__ sums,  // (M, N) int32, 4 per int4 (N % 4 == 0)
                   const int32_t* __restrict__ X,  // (M,) row sums of xq
                   const float* __restrict__ xs,   // (M,) x_scale
                   const float* __restrict__ s,    // (N,) scale (a per tensor scale expanded)
                   const float* __restrict__ u,    // (N,) offset, or nullptr
                   const float* __restrict__ b,    // (N,) bias, or nullptr
                   const int shift, const int64_t M, const int64_t N, T* __restrict__ y) {
  const int64_t quads = M * (N / 4);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < quads; q += stride) {
    const int64_t i = 4 * q, m = i / N, n = i - m * N;
    const int4 v = sums[q];
    const int c[4] = {v.x, v.y, v.z, v.w};
    const int xm = X[m];
    const float xsm = xs[m];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      y[i + j] = from_float<T>(a8::epilogue(c[j], xm, shift, xsm, s[n + j], u != nullptr, u != nullptr ? u[n + j] : 0.f,
                                            b != nullptr, b != nullptr ? b[n + j] : 0.f));
  }
}

cudaError_t launch_a8_epilogue(const int32_t* sums, const int32_t* X, const float* xs, const float* s, const float* u,
                               const float* b, int shift, int64_t M, int64_t N, DType out, void* y, int num_sms,
                               cudaStream_t stream) {
  if (N % 4 != 0 || reinterpret_cast<uintptr_t>(sums) % 16 != 0 || out == DType::kDouble) return cudaErrorNotSupported;
  if (M == 0) return cudaSuccess;
  const int64_t quads = M * (N / 4);
  const unsigned blocks = static_cast<unsigned>(imin64((quads + 255) / 256, static_cast<int64_t>(num_sms) * 16));
  const int4* s4 = reinterpret_cast<const int4*>(sums);
  switch (out) {
    case DType::kHalf:
      a8_epilogue_kernel<__half><<<blocks, 256, 0, stream>>>(s4, X, xs, s, u, b, shift, M, N, static_cast<__half*>(y));
      break;
    case DType::kBFloat16:
      a8_epilogue_kernel<__nv_bfloat16><<<blocks, 256, 0, stream>>>(s4, X, xs, s, u, b, shift, M, N,
                                                                    static_cast<__nv_bfloat16*>(y));
      break;
    default:
      a8_epilogue_kernel<float><<<blocks, 256, 0, stream>>>(s4, X, xs, s, u, b, shift, M, N, static_cast<float*>(y));
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace bitmm
