// xa (M, r) = x (M, K) @ lora_a (r, K)^T in float32, for the fused LoRA path at
// small M (decode).  It replaces three launches (x and lora_a converted to
// float32, then an fp32 GEMM) by one: a CTA per (adapter row j, row m of x)
// dots two K-vectors with 16-byte loads, fp32 products and sums, and a fixed
// reduction order (deterministic).
#include "common.cuh"

namespace bitmm {
namespace cuda {
namespace {

constexpr int kXaThreads = 256;

__device__ __forceinline__ float2 pair_to_float2(const __half2& h) { return __half22float2(h); }
__device__ __forceinline__ float2 pair_to_float2(const __nv_bfloat162& h) { return __bfloat1622float2(h); }
template <typename T> struct Pair2;  // the two-element vector type of a 16-bit T
template <> struct Pair2<__half> { using type = __half2; };
template <> struct Pair2<__nv_bfloat16> { using type = __nv_bfloat162; };

// 8 elements of T as float, from one 16-byte load (16-bit T) or two (float).
template <typename T> struct Vec8 {
  static __device__ __forceinline__ void load(const T* p, float (&v)[8]) {
    const uint4 q = __ldg(reinterpret_cast<const uint4*>(p));
    const auto* h = reinterpret_cast<const typename Pair2<T>::type*>(&q);
#pragma unroll
    for (int i = 0; i < 4; ++i) { const float2 f = pair_to_float2(h[i]); v[2 * i] = f.x; v[2 * i + 1] = f.y; }
  }
};
template <> struct Vec8<float> {
  static __device__ __forceinline__ void load(const float* p, float (&v)[8]) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  }
};

template <typename T,    // x dtype: __half or __nv_bfloat16
          typename TA>   // lora_a dtype: T or float
__global__ void __launch_bounds__(kXaThreads)
lora_xa_kernel(const T* __restrict__ x, const TA* __restrict__ a, float* __restrict__ xa,
               const int64_t K, const int64_t r, const bool vec) {
  const int64_t j = blockIdx.x, m = blockIdx.y;
  const T* xm = x + m * K;
  const TA* aj = a + j * K;
  float s = 0.f;
  if (vec) {  // K % 8 == 0 and 16-byte aligned rows
#pragma unroll 4
    for (int64_t k = 8 * static_cast<int64_t>(threadIdx.x); k < K; k += 8 * kXaThreads) {
      float xv[8], av[8];
      Vec8<T>::load(xm + k, xv);
      Vec8<TA>::load(aj + k, av);
#pragma unroll
      for (int i = 0; i < 8; ++i) s = fmaf(xv[i], av[i], s);
    }
  } else {
#pragma unroll 4
    for (int64_t k = threadIdx.x; k < K; k += kXaThreads) s = fmaf(to_float<T>(xm[k]), to_float<TA>(aj[k]), s);
  }
  __shared__ float part[kXaThreads / 32];
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < kXaThreads / 32; ++w) t += part[w];
    xa[m * r + j] = t;
  }
}

}  // namespace

cudaError_t launch_lora_xa(const void* x, DType x_dtype, const void* a, bool a_f32, float* xa, int64_t M, int64_t K,
                           int64_t r, cudaStream_t stream) {
  if (M <= 0 || r <= 0) return cudaSuccess;
  if (M > 65535 || r > 0x7fffffff || (x_dtype != DType::kHalf && x_dtype != DType::kBFloat16))
    return cudaErrorNotSupported;
  const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  const dim3 grid(static_cast<unsigned>(r), static_cast<unsigned>(M));
  return BITMM_X_DTYPE_SWITCH(x_dtype, T, [&] {
    if (a_f32) {
      lora_xa_kernel<T, float><<<grid, kXaThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<const float*>(a),
                                                                 xa, K, r, vec);
    } else {
      lora_xa_kernel<T, T><<<grid, kXaThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(a), xa, K,
                                                             r, vec);
    }
    return cudaGetLastError();
  });
}

}  // namespace cuda
}  // namespace bitmm
