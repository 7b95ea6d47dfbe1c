// Small device helpers shared by the CUDA kernels (no torch headers).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "../bitmm_format.h"
#include "kernels.h"

namespace bitmm {
namespace cuda {

template <typename T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_float<double>(double v) { return __double2float_rn(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ double from_float<double>(float v) { return static_cast<double>(v); }

// 16-byte streaming load of packed weights: read once, so keep them out of L1.
__device__ __forceinline__ uint4 load_weights_16B(const uint32_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// A request to bring a line into L2 (no register written: safe before a programmatic-dependent-launch wait).
__device__ __forceinline__ void prefetch_l2(const void* gmem) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(__cvta_generic_to_global(gmem)));
}

__host__ __device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Dispatch a runtime DType to a C++ type (FlashAttention's static_switch idiom).
#define BITMM_X_DTYPE_SWITCH(DT, T, ...)                       \
  [&] {                                                        \
    switch (DT) {                                              \
      case ::bitmm::cuda::DType::kHalf: { using T = __half; return __VA_ARGS__(); }           \
      case ::bitmm::cuda::DType::kBFloat16: { using T = __nv_bfloat16; return __VA_ARGS__(); } \
      default: { using T = float; return __VA_ARGS__(); }      \
    }                                                          \
  }()

#define BITMM_BOOL_SWITCH(COND, NAME, ...) \
  [&] {                                    \
    if (COND) { constexpr bool NAME = true; return __VA_ARGS__(); }  \
    else { constexpr bool NAME = false; return __VA_ARGS__(); }      \
  }()

}  // namespace cuda
}  // namespace bitmm
