// BitNet's per-token absmax int8 quantization (bitmm.quant.absmax_int8) in one kernel: the ATen composite
// (linear_a8.cpp absmax_int8_aten) launches ~10 (a cast, abs, amax, clamp, reciprocal, two products, round, clamp,
// a cast), an estimated ~15-25 us per call at decode sizes (not measured); W2A8 layers quantize x on every call.  The same float32 operations as
// the composite, each rounded as it rounds (reciprocal and products correctly rounded, round half to even, NaN
// kept by the clamps), so the bits are the composite's on every device.
#include <type_traits>

#include "a8_fragments.h"
#include "common.cuh"
#include "launch_util.cuh"

namespace bitmm {
namespace cuda {

constexpr int kQuantThreads = 256;

// torch.amax propagates NaN; fmaxf would drop it
__device__ __forceinline__ float nan_max(float a, float b) { return (a != a || a > b) ? a : b; }

// nan_max over the CTA's kThreads threads (every thread gets it); part: kThreads / 32 floats of shared memory
template <int kThreads>
__device__ __forceinline__ float block_nan_max(float v, float* part) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nan_max(__shfl_xor_sync(0xffffffffu, v, o), v);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  v = part[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w) v = nan_max(part[w], v);
  return v;
}

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
  amax = block_nan_max<kQuantThreads>(amax, part);
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
// then each element's four digits, digit j to row 4 row + j of xd.  The kernel after it (a8_linear_kernel) waits for
// all of it (griddepcontrol.wait), so its latency is on the path of every call: with kVec (x's row 16-byte aligned,
// K % 8 == 0) each thread loads its first kDigitCache 8-element vectors at once (K <= 8192: the whole row in one
// round trip, kept in registers for the digits; a longer row's rest is read twice), digits stored 8 bytes at a time.
constexpr int kDigitThreads = 512;
constexpr int kDigitCache = 2;
// element i (0..7) of 8 fp16 / bf16 values in a uint4, as float (bit operations: taking the vector's address let the
// compiler split its 16-byte load into 16-bit ones)
template <typename T>
__device__ __forceinline__ float vec_elem(const uint4& v, int i) {
  const uint32_t w = i < 2 ? v.x : i < 4 ? v.y : i < 6 ? v.z : v.w;
  const unsigned short b = static_cast<unsigned short>((w >> (16 * (i & 1))) & 0xffffu);
  if constexpr (std::is_same_v<T, __half>) return to_float<T>(__ushort_as_half(b));
  else return to_float<T>(__ushort_as_bfloat16(b));
}
template <typename T>
__device__ __forceinline__ float vec_amax(const uint4& v, float amax) {
#pragma unroll
  for (int i = 0; i < 8; ++i) amax = nan_max(fabsf(vec_elem<T>(v, i)), amax);
  return amax;
}
// the 8 elements' digits, digit j of element i in byte i of out[j]
template <typename T>
__device__ __forceinline__ void vec_digits(const uint4& v, int e, uint2 (&out)[a8::kDigits]) {
  uint32_t lo[a8::kDigits] = {}, hi[a8::kDigits] = {};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t d = e == a8::kDigitsNonFinite ? 0u : a8::digits_of(vec_elem<T>(v, i), e);
#pragma unroll
    for (int j = 0; j < a8::kDigits; ++j) {
      const uint32_t b = (d >> (8 * j)) & 0xffu;
      if (i < 4) lo[j] |= b << (8 * i);
      else hi[j] |= b << (8 * (i - 4));
    }
  }
#pragma unroll
  for (int j = 0; j < a8::kDigits; ++j) out[j] = make_uint2(lo[j], hi[j]);
}

template <typename T, bool kVec>
__global__ void __launch_bounds__(kDigitThreads)
x_digits_kernel(const T* __restrict__ x, const int64_t K, int8_t* __restrict__ xd, int* __restrict__ e_out) {
  __shared__ float part[kDigitThreads / 32];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");  // (as absmax_int8_kernel)
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  const int64_t row = blockIdx.x;
  const T* xr = x + row * K;
  int8_t* d = xd + a8::kDigits * row * K;
  float amax = 0.f;
  const int64_t nvec = K / 8;
  uint4 cache[kDigitCache];
  if constexpr (kVec) {
    const uint4* xv = reinterpret_cast<const uint4*>(xr);
#pragma unroll
    for (int c = 0; c < kDigitCache; ++c) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(c) * kDigitThreads;
      if (i < nvec) cache[c] = xv[i];
    }
#pragma unroll
    for (int c = 0; c < kDigitCache; ++c)
      if (threadIdx.x + static_cast<int64_t>(c) * kDigitThreads < nvec) amax = vec_amax<T>(cache[c], amax);
    for (int64_t i = threadIdx.x + kDigitCache * kDigitThreads; i < nvec; i += kDigitThreads)
      amax = vec_amax<T>(__ldg(xv + i), amax);
  } else {
#pragma unroll 4
    for (int64_t k = threadIdx.x; k < K; k += kDigitThreads) amax = nan_max(fabsf(to_float<T>(xr[k])), amax);
  }
  amax = block_nan_max<kDigitThreads>(amax, part);
  const int e = a8::digits_exponent(amax);
  if constexpr (kVec) {
    auto store = [&](int64_t i, const uint4& v) {
      uint2 out[a8::kDigits];
      vec_digits<T>(v, e, out);
#pragma unroll
      for (int j = 0; j < a8::kDigits; ++j) *reinterpret_cast<uint2*>(d + j * K + 8 * i) = out[j];
    };
#pragma unroll
    for (int c = 0; c < kDigitCache; ++c) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(c) * kDigitThreads;
      if (i < nvec) store(i, cache[c]);
    }
    const uint4* xv = reinterpret_cast<const uint4*>(xr);
    for (int64_t i = threadIdx.x + kDigitCache * kDigitThreads; i < nvec; i += kDigitThreads) store(i, __ldg(xv + i));
  } else {
#pragma unroll 4
    for (int64_t k = threadIdx.x; k < K; k += kDigitThreads) {
      const uint32_t v = e == a8::kDigitsNonFinite ? 0u : a8::digits_of(to_float<T>(xr[k]), e);
#pragma unroll
      for (int j = 0; j < a8::kDigits; ++j) d[j * K + k] = static_cast<int8_t>((v >> (8 * j)) & 0xffu);
    }
  }
  if (threadIdx.x == 0) e_out[row] = e;
}

cudaError_t launch_x_digits(const void* x, DType dt, int64_t rows, int64_t K, int8_t* xd, int* e, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows > 0x7fffffff || (dt != DType::kHalf && dt != DType::kBFloat16)) return cudaErrorNotSupported;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  // 16-byte vectors: every row 16-byte aligned (x and K * 2 bytes), and 8-byte digit stores (xd, K)
  const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(xd) % 8 == 0;
  auto go = [&](auto kernel, auto* typed_x) {
    int ptx = 0;
    const cudaError_t r = prepare_kernel(reinterpret_cast<const void*>(kernel), device, 0, &ptx);
    if (r != cudaSuccess) return r;
    return launch_maybe_pdl(kernel, dim3(static_cast<unsigned>(rows)), dim3(kDigitThreads), 0, stream, ptx, typed_x, K,
                            xd, e);
  };
  const __half* xh = static_cast<const __half*>(x);
  const __nv_bfloat16* xb = static_cast<const __nv_bfloat16*>(x);
  if (dt == DType::kHalf) return vec ? go(x_digits_kernel<__half, true>, xh) : go(x_digits_kernel<__half, false>, xh);
  return vec ? go(x_digits_kernel<__nv_bfloat16, true>, xb) : go(x_digits_kernel<__nv_bfloat16, false>, xb);
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
