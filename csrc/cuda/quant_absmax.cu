// BitNet's per-token absmax int8 quantization (bitmm.quant.absmax_int8) in one kernel: the ATen composite
// (linear_a8.cpp absmax_int8_aten) launches ~10 (a cast, abs, amax, clamp, reciprocal, two products, round, clamp,
// a cast), an estimated ~15-25 us per call at decode sizes (not measured); W2A8 layers quantize x on every call.  The same float32 operations as
// the composite, each rounded as it rounds (reciprocal and products correctly rounded, round half to even, NaN
// kept by the clamps), so the bits are the composite's on every device.
#include "a8_fragments.h"
#include "common.cuh"
#include "launch_util.cuh"

namespace bitmm {
namespace cuda {

constexpr int kQuantThreads = 256;

// torch.amax propagates NaN; fmaxf would drop it
__device__ __forceinline__ float nan_max(float a, float b) { return (a != a || a > b) ? a : b; }

// One CTA per row of K elements.  kFake: write xq * x_scale in T (absmax_int8_fake) instead of xq and x_scale.
template <typename T, bool kFake>
__global__ void __launch_bounds__(kQuantThreads)
absmax_int8_kernel(const T* __restrict__ x, const int64_t K, int8_t* __restrict__ xq, float* __restrict__ scale,
                   T* __restrict__ fake) {
  __shared__ float part[kQuantThreads / 32];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Programmatic dependent launch (the launcher sets it on sm_90+): x may be the previous kernel's output, so wait
  // for it; then let the next kernel (typically linear_a8's, which prefetches its weights and waits in turn) launch.
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  const int64_t row = blockIdx.x;
  const T* xr = x + row * K;
  float amax = 0.f;  // |x| >= 0, and K >= 1
  // (unrolled: several loads in flight per thread; at M = 1 this one CTA is the whole kernel)
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < K; k += kQuantThreads) amax = nan_max(fabsf(to_float<T>(xr[k])), amax);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = nan_max(__shfl_xor_sync(0xffffffffu, amax, o), amax);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = amax;
  __syncthreads();
  amax = part[0];
#pragma unroll
  for (int w = 1; w < kQuantThreads / 32; ++w) amax = nan_max(part[w], amax);
  const float a = (amax != amax || amax >= 1e-5f) ? amax : 1e-5f;  // clamp(min=1e-5), NaN kept
  const float s = __fmul_rn(__frcp_rn(a), 127.0f);                  // Python's 127.0 / a: a.reciprocal() * 127
  const float inv = __frcp_rn(s);                                   // x_scale = 1.0 / s = s.reciprocal()
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < K; k += kQuantThreads) {
    float q = rintf(__fmul_rn(to_float<T>(xr[k]), s));
    q = q != q ? q : fminf(fmaxf(q, -128.f), 127.f);
    const int8_t qi = q != q ? int8_t{0} : static_cast<int8_t>(q);  // (NaN: torch's cast gives 0 as well)
    if constexpr (kFake)
      fake[row * K + k] = from_float<T>(__fmul_rn(static_cast<float>(qi), inv));
    else
      xq[row * K + k] = qi;
  }
  if constexpr (!kFake)
    if (threadIdx.x == 0) scale[row] = inv;
}

// The digits backend's x (a8_fragments.h kDigits): one CTA per row; the row's max |x| (NaN / Inf kept), its exponent,
// then each element's four digits, digit j to row 4 row + j of xd.
template <typename T>
__global__ void __launch_bounds__(kQuantThreads)
x_digits_kernel(const T* __restrict__ x, const int64_t K, int8_t* __restrict__ xd, int* __restrict__ e_out) {
  __shared__ float part[kQuantThreads / 32];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");  // (as absmax_int8_kernel)
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  const int64_t row = blockIdx.x;
  const T* xr = x + row * K;
  float amax = 0.f;
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < K; k += kQuantThreads) amax = nan_max(fabsf(to_float<T>(xr[k])), amax);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = nan_max(__shfl_xor_sync(0xffffffffu, amax, o), amax);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = amax;
  __syncthreads();
  amax = part[0];
#pragma unroll
  for (int w = 1; w < kQuantThreads / 32; ++w) amax = nan_max(part[w], amax);
  const int e = a8::digits_exponent(amax);
  int8_t* d = xd + a8::kDigits * row * K;
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < K; k += kQuantThreads) {
    const uint32_t v = e == a8::kDigitsNonFinite ? 0u : a8::digits_of(to_float<T>(xr[k]), e);
#pragma unroll
    for (int j = 0; j < a8::kDigits; ++j) d[j * K + k] = static_cast<int8_t>((v >> (8 * j)) & 0xffu);
  }
  if (threadIdx.x == 0) e_out[row] = e;
}

cudaError_t launch_x_digits(const void* x, DType dt, int64_t rows, int64_t K, int8_t* xd, int* e, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows > 0x7fffffff || (dt != DType::kHalf && dt != DType::kBFloat16)) return cudaErrorNotSupported;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  auto go = [&](auto kernel, auto* typed_x) {
    int ptx = 0;
    const cudaError_t r = prepare_kernel(reinterpret_cast<const void*>(kernel), device, 0, &ptx);
    if (r != cudaSuccess) return r;
    return launch_maybe_pdl(kernel, dim3(static_cast<unsigned>(rows)), dim3(kQuantThreads), 0, stream, ptx, typed_x, K,
                            xd, e);
  };
  return dt == DType::kHalf ? go(x_digits_kernel<__half>, static_cast<const __half*>(x))
                            : go(x_digits_kernel<__nv_bfloat16>, static_cast<const __nv_bfloat16*>(x));
}

cudaError_t launch_absmax_int8(const void* x, DType dt, int64_t rows, int64_t K, int8_t* xq, float* scale, void* fake,
                               cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows > 0x7fffffff) return cudaErrorNotSupported;
  const dim3 grid(static_cast<unsigned>(rows));
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  auto go = [&](auto tag) {
    using T = decltype(tag);
    auto launch = [&](auto kernel, int8_t* q, float* sc, T* f) {
      int ptx = 0;
      const cudaError_t e = prepare_kernel(reinterpret_cast<const void*>(kernel), device, 0, &ptx);
      if (e != cudaSuccess) return e;
      return launch_maybe_pdl(kernel, grid, dim3(kQuantThreads), 0, stream, ptx, static_cast<const T*>(x), K, q, sc, f);
    };
    return fake != nullptr ? launch(absmax_int8_kernel<T, true>, nullptr, nullptr, static_cast<T*>(fake))
                           : launch(absmax_int8_kernel<T, false>, xq, scale, nullptr);
  };
  switch (dt) {
    case DType::kHalf: return go(__half{});
    case DType::kBFloat16: return go(__nv_bfloat16{});
    case DType::kDouble: return go(double{});
    default: return go(float{});
  }
}

}  // namespace cuda
}  // namespace bitmm
