// Generic CUDA kernels: any group size and float64 (the exact path used by
// gradcheck), plus packing / unpacking.  One output element per thread, one
// add or subtract per weight: simple and slow; the fast paths are
// addsub_linear.cuh and grad_x.cu.
#include "common.cuh"

namespace bitmm {
namespace cuda {

cudaError_t launch_addsub_linear_f32(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_addsub_linear_f16(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_addsub_linear_bf16(const LinearParams& p, int num_sms, cudaStream_t stream);

cudaError_t launch_addsub_linear(const LinearParams& p, int num_sms, cudaStream_t stream) {
  switch (p.x_dtype) {
    case DType::kHalf: return launch_addsub_linear_f16(p, num_sms, stream);
    case DType::kBFloat16: return launch_addsub_linear_bf16(p, num_sms, stream);
    case DType::kFloat: return launch_addsub_linear_f32(p, num_sms, stream);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T> __device__ __forceinline__ double to_double(T v) { return static_cast<double>(to_float<T>(v)); }
template <> __device__ __forceinline__ double to_double<double>(double v) { return v; }

// value of the code at input k of a packed row: binary b, two-plane 2*hi + lo - 1
__device__ __forceinline__ int weight_value(const uint32_t* row, int64_t k, int two_planes) {
  const int64_t b = k / BLOCK_K;
  const int bit = bit_of_offset(static_cast<int>(k % BLOCK_K));
  if (!two_planes) return (row[b] >> bit) & 1u;
  const int lo = (row[2 * b] >> bit) & 1u, hi = (row[2 * b + 1] >> bit) & 1u;
  return 2 * hi + lo - 1;
}

template <typename T, typename S, typename ACC>
__global__ void generic_linear_kernel(const LinearParams p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.M * p.N) return;
  const int64_t m = idx / p.N, n = idx % p.N;
  const T* x = static_cast<const T*>(p.x) + m * p.K;
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);
  const uint32_t* row = p.w + n * p.wpr;
  ACC out = 0;
  for (int64_t g0 = 0; g0 < p.K; g0 += p.group_size) {
    const int64_t g = g0 / p.group_size;
    ACC sel = 0, all = 0;
    for (int64_t k = g0; k < min(p.K, g0 + p.group_size); ++k) {
      const ACC xv = static_cast<ACC>(to_double<T>(x[k]));
      all += xv;
      const int v = weight_value(row, k, p.two_planes);
      if (v >= 1) sel += xv;
      if (v == 2) sel += xv;
      if (v == -1) sel -= xv;
    }
    const ACC s = static_cast<ACC>(to_double<S>(scale[n * p.s_sn + g * p.s_sg]));
    const ACC u = offset ? static_cast<ACC>(to_double<S>(offset[n * p.u_sn + g * p.u_sg])) : ACC(0);
    out += s * sel + u * all;
  }
  if (p.bias) out += static_cast<ACC>(to_double<S>(static_cast<const S*>(p.bias)[n]));
  T* y = static_cast<T*>(p.y);
  if constexpr (std::is_same_v<T, double>) y[m * p.N + n] = out;
  else y[m * p.N + n] = from_float<T>(static_cast<float>(out));
}

// grad_x[m, k] = sum_n g[m, n] * (v[n, k] * s[n, g(k)] + u[n, g(k)])
template <typename T, typename S, typename ACC>
__global__ void generic_grad_x_kernel(const GradXParams p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.M * p.K) return;
  const int64_t m = idx / p.K, k = idx % p.K, g = k / p.group_size;
  const T* gy = static_cast<const T*>(p.x) + m * p.N;
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);
  ACC acc = 0;
  for (int64_t n = 0; n < p.N; ++n) {
    const ACC gv = static_cast<ACC>(to_double<T>(gy[n]));
    const ACC gs = gv * static_cast<ACC>(to_double<S>(scale[n * p.s_sn + g * p.s_sg]));
    const int v = weight_value(p.w + n * p.wpr, k, p.two_planes);
    if (v >= 1) acc += gs;
    if (v == 2) acc += gs;
    if (v == -1) acc -= gs;
    if (offset) acc += gv * static_cast<ACC>(to_double<S>(offset[n * p.u_sn + g * p.u_sg]));
  }
  T* out = static_cast<T*>(p.y);
  if constexpr (std::is_same_v<T, double>) out[m * p.K + k] = acc;
  else out[m * p.K + k] = from_float<T>(static_cast<float>(acc));
}


#define BITMM_GENERIC_DISPATCH(KERNEL, P, TOTAL, STREAM)                                          \
  [&]() -> cudaError_t {                                                                         \
    const unsigned blocks = static_cast<unsigned>(((TOTAL) + 255) / 256);                        \
    if ((TOTAL) == 0) return cudaSuccess;                                                        \
    switch ((P).x_dtype) {                                                                       \
      case DType::kDouble:                                                                       \
        if ((P).s_dtype == DType::kDouble) KERNEL<double, double, double><<<blocks, 256, 0, STREAM>>>(P); \
        else KERNEL<double, float, double><<<blocks, 256, 0, STREAM>>>(P);                      \
        break;                                                                                   \
      case DType::kHalf:                                                                         \
        if ((P).s_dtype == DType::kHalf) KERNEL<__half, __half, float><<<blocks, 256, 0, STREAM>>>(P); \
        else KERNEL<__half, float, float><<<blocks, 256, 0, STREAM>>>(P);                       \
        break;                                                                                   \
      case DType::kBFloat16:                                                                     \
        if ((P).s_dtype == DType::kBFloat16) KERNEL<__nv_bfloat16, __nv_bfloat16, float><<<blocks, 256, 0, STREAM>>>(P); \
        else KERNEL<__nv_bfloat16, float, float><<<blocks, 256, 0, STREAM>>>(P);                \
        break;                                                                                   \
      default: KERNEL<float, float, float><<<blocks, 256, 0, STREAM>>>(P); break;                \
    }                                                                                            \
    return cudaGetLastError();                                                                   \
  }()

cudaError_t launch_generic_linear(const LinearParams& p, cudaStream_t stream) {
  return BITMM_GENERIC_DISPATCH(generic_linear_kernel, p, p.M * p.N, stream);
}

cudaError_t launch_generic_grad_x(const GradXParams& p, cudaStream_t stream) {
  return BITMM_GENERIC_DISPATCH(generic_grad_x_kernel, p, p.M * p.K, stream);
}

// ---------------------------------------------------------------------------
// Packing: one thread per (row, 32-block) builds the block's plane words.
// ---------------------------------------------------------------------------
__global__ void pack_kernel(const int8_t* codes, int64_t N, int64_t K, int two_planes, int zero_code,
                            uint32_t* out, int64_t wpr) {
  const int64_t nblocks = wpr / (two_planes ? 2 : 1);
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * nblocks) return;
  const int64_t n = idx / nblocks, b = idx % nblocks;
  uint32_t lo = 0, hi = 0;
  for (int j = 0; j < BLOCK_K; ++j) {
    const int64_t k = b * BLOCK_K + j;
    const uint32_t code = k < K ? static_cast<uint32_t>(codes[n * K + k]) : static_cast<uint32_t>(zero_code);
    lo |= (code & 1u) << bit_of_offset(j);
    hi |= ((code >> 1) & 1u) << bit_of_offset(j);
  }
  if (two_planes) {
    out[n * wpr + 2 * b] = lo;
    out[n * wpr + 2 * b + 1] = hi;
  } else {
    out[n * wpr + b] = lo;
  }
}

// Unpacking: one thread per 32-weight block of a row (its 1 or 2 plane words -> 32 int8 codes in weight order),
// rows along grid.y (a thread steps through rows past 65535); two 16-byte stores per block where rows are 16-byte
// aligned (K % 16 == 0), else byte stores up to K.  (The first version ran one thread per weight with a 64-bit
// division and a 1-byte store each: instruction-bound, and linear_a8 unpacks W on every call.)
__global__ void unpack_kernel(const uint32_t* packed, int64_t N, int64_t K, int two_planes, int64_t wpr,
                              int8_t* out, bool vec) {
  const int64_t nblocks = (K + BLOCK_K - 1) / BLOCK_K;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= nblocks) return;
  for (int64_t n = blockIdx.y; n < N; n += gridDim.y) {
    const uint32_t* row = packed + n * wpr;
    const uint32_t lo = two_planes ? row[2 * b] : row[b];
    const uint32_t hi = two_planes ? row[2 * b + 1] : 0u;
    union { uint8_t c[BLOCK_K]; uint4 q[BLOCK_K / 16]; } w;
#pragma unroll
    for (int j = 0; j < BLOCK_K; ++j) {  // weight j of the block is at bit bit_of_offset(j) of each plane
      const int bit = bit_of_offset(j);
      w.c[j] = static_cast<uint8_t>(((lo >> bit) & 1u) | (((hi >> bit) & 1u) << 1));
    }
    int8_t* dst = out + n * K + b * BLOCK_K;
    if (vec && (b + 1) * BLOCK_K <= K) {
      reinterpret_cast<uint4*>(dst)[0] = w.q[0];
      reinterpret_cast<uint4*>(dst)[1] = w.q[1];
    } else {
#pragma unroll
      for (int j = 0; j < BLOCK_K; ++j)
        if (b * BLOCK_K + j < K) dst[j] = static_cast<int8_t>(w.c[j]);
    }
  }
}

cudaError_t launch_pack(const int8_t* codes, int64_t N, int64_t K, int two_planes, int zero_code,
                        uint32_t* out, int64_t wpr, cudaStream_t stream) {
  const int64_t total = N * (wpr / (two_planes ? 2 : 1));
  if (total == 0) return cudaSuccess;
  pack_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, stream>>>(codes, N, K, two_planes, zero_code,
                                                                            out, wpr);
  return cudaGetLastError();
}

cudaError_t launch_unpack(const uint32_t* packed, int64_t N, int64_t K, int two_planes, int64_t wpr, int8_t* out,
                          cudaStream_t stream) {
  if (N * K == 0) return cudaSuccess;
  const int64_t nblocks = (K + BLOCK_K - 1) / BLOCK_K;
  const bool vec = K % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const dim3 grid(static_cast<unsigned>((nblocks + 255) / 256), static_cast<unsigned>(std::min<int64_t>(N, 65535)));
  unpack_kernel<<<grid, 256, 0, stream>>>(packed, N, K, two_planes, wpr, out, vec);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace bitmm
