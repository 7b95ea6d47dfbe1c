// Interface between the torch glue (linear_cuda.cpp) and the plain CUDA kernels
// (*.cu, which never include torch headers so they compile fast).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "../bitmm_format.h"  // padded_k

namespace bitmm {
namespace cuda {

enum class DType : int { kFloat = 0, kHalf = 1, kBFloat16 = 2, kDouble = 3 };

// y (M, N) = x (M, K) @ (v * scale + offset)^T + bias, v from the packed planes.
struct LinearParams {
  const void* x;          // (M, K) contiguous, dtype x_dtype
  const uint32_t* w;      // (N, wpr) packed words (bitmm_format.h)
  const void* scale;      // scale[n * s_sn + g * s_sg], dtype s_dtype
  const void* offset;     // same layout rules (u_sn, u_sg); nullptr = no offset
  const void* bias;       // (N,) dtype s_dtype, or nullptr
  void* y;                // (M, N) contiguous, dtype x_dtype
  int64_t s_sn, s_sg, u_sn, u_sg;
  int64_t M, N, K;
  int64_t wpr;            // int32 words per packed row
  int64_t group_size;     // K for per-tensor / per-channel
  int two_planes;         // 1 for ternary / int2, 0 for binary
  int kind;               // 1 binary, 2 ternary, 3 int2 (bitmm::Kind)
  DType x_dtype;
  DType s_dtype;          // float, or the same as x_dtype (scale, offset and bias)
  // Fused LoRA epilogue (tensor-core kernel only): y += lora_scale * lora_xa @ lora_b^T.
  const float* lora_xa;   // (M, lora_r) float32, contiguous (x @ lora_a^T); nullptr = none
  const void* lora_b;     // (N, lora_r) contiguous, float32 if lora_b_f32 else x_dtype
  int64_t lora_r;
  float lora_scale;
  int lora_b_f32;
  // Hopper wgmma kernel's plan (wg_plan.h), set by the glue; wg_bm == 0: the launcher plans
  // itself without K splits.  wg_splits > 1 needs wg_ws: splits x M x N floats (fp32 partials; grad_x's wgmma kernel,
  // wg_grad_x.cuh, splits the reduction over N instead: splits x M x K).
  int wg_bm;
  int wg_splits;
  float* wg_ws;
  int wg_pair;            // 1: two CTAs per SM on this plan's K splits (wg_plan.h wg_pair_split, set by the glue)
};

// grad_x (M, K) = grad_y (M, N) @ (v * scale + offset).  Same field meanings;
// x is grad_y (M, N) and y is grad_x (M, K); bias unused.
using GradXParams = LinearParams;

// One scale for the whole weight and no offset: the sums of exact values times s, applied once, are then the
// product; otherwise v * s + u is folded per weight (the wgmma grad_x kernel's `fold`, wg_grad_x.cuh, and auto's
// M range for that kernel, linear_cuda.cpp use_wg_grad_x; constexpr, so device code calls it too).
constexpr inline bool one_scale_no_offset(const LinearParams& p) {
  return p.offset == nullptr && p.s_sn == 0 && p.s_sg == 0 && p.group_size >= padded_k(p.K);
}

// Returns a CUDA error code (cudaSuccess when launched).
cudaError_t launch_addsub_linear(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_generic_linear(const LinearParams& p, cudaStream_t stream);
// grad_x: `accum` is an fp32 (M, K) scratch buffer the kernel may use; see grad_x.cu.
// deterministic: torch.use_deterministic_algorithms(True) is on; the result must then be
// bitwise reproducible run to run (no order-dependent atomics).
cudaError_t launch_grad_x(const GradXParams& p, float* accum, int num_sms, bool deterministic, cudaStream_t stream);
cudaError_t launch_generic_grad_x(const GradXParams& p, cudaStream_t stream);  // writes p.y directly
// Dense W = v * scale + offset (x's dtype) of rows [n0, n0 + nn) into `out` (nn, K) contiguous;
// cudaErrorNotSupported for float64 or groups that are not a multiple of 32.
cudaError_t launch_dequant(const LinearParams& p, void* out, int64_t n0, int64_t nn, cudaStream_t stream);
// xa (M, r) float32 = x (M, K) @ a (r, K)^T for the fused LoRA path; x fp16 / bf16 contiguous, a of x's dtype
// (a_f32 = false) or float32, contiguous.  cudaErrorNotSupported for other dtypes or M > 65535.
cudaError_t launch_lora_xa(const void* x, DType x_dtype, const void* a, bool a_f32, float* xa, int64_t M, int64_t K,
                           int64_t r, cudaStream_t stream);
// linear_a8's epilogue (a8_epilogue.cu): y (M, N) of `out` (float32 / float16 / bfloat16) from torch's int8 GEMM's
// int32 sums (16-byte aligned, N % 4 == 0), the row sums X (M,), x_scale (M,) and float32 s (N,), u / b (N,) or
// nullptr.  cudaErrorNotSupported otherwise (the caller then runs the ATen epilogue).
cudaError_t launch_a8_epilogue(const int32_t* sums, const int32_t* X, const float* xs, const float* s, const float* u,
                               const float* b, int shift, int64_t M, int64_t N, DType out, void* y, int num_sms,
                               cudaStream_t stream);
// The digits backend's first kernel (quant_absmax.cu): x (rows, K) contiguous fp16 / bf16 -> xd (4 rows, K) int8, the
// four digits of each row (a8_fragments.h digits_of), and e (rows,) its exponent (digits_exponent).  One CTA per row.
cudaError_t launch_x_digits(const void* x, DType dt, int64_t rows, int64_t K, int8_t* xd, int* e, cudaStream_t stream);
// linear_a8 fused for few rows (a8_linear.cu; M <= kA8MaxM):
//   y (M, N) = T(xs[m] * (s[n] * (sum_k xq[m,k] * code[n,k] - shift * X[m]) + u[n] * X[m]) + b[n])
// with X[m] = sum_k xq[m, k], on the int8 tensor cores with the codes unpacked in registers;
// the same bits as linear_a8's unfused path.  cudaErrorNotSupported (nothing launched) for M > kA8MaxM, a float64
// output, K past the int32 bound (a8_fragments.h) or x rows beyond the device's shared memory.
// (x rows in chunks of up to 16, a8_fragments.h cta_position; where torch's int8 GEMM on unpacked codes overtakes
// the fused kernel is not yet measured: next_a8_fused.sh probes M up to 256)
constexpr int kA8MaxM = 256;
struct A8Params {
  const int8_t* xq;       // (M, K) int8, contiguous
  const float* xs;        // (M,) x_scale (unused with xe)
  const int* xe;          // digits backend (a8_fragments.h kDigits): (M / 4,) row exponents, x rows 4 m .. 4 m + 3 the
                          // digits of row m, y (M / 4, N); nullptr for linear_a8
  const uint32_t* w;      // (N, wpr) packed words (bitmm_format.h)
  const void* s;          // scale of output n: s[n * s_stride] (s_stride 0: per tensor), dtype s_dt
  const void* u;          // offset u[n * u_stride] of u_dt, or nullptr
  const void* b;          // (N,) bias of b_dt, or nullptr
  DType s_dt, u_dt, b_dt; // each converted to float32 as it is read (exact: as ATen's .to(float) before the math)
  void* y;                // (M, N) contiguous, dtype `out`
  int64_t s_stride, u_stride;
  int64_t M, N, K, wpr;
  int planes;             // 2 (ternary / int2) or 1 (binary)
  int shift;              // the value of a stored code is code - shift
  int x_vec;              // xq 16-byte aligned and K % 16 == 0: x staged by 16-byte loads
  int chunk_rows;         // x rows per CTA (set by launch_a8_linear: 16, or fewer where the shared memory is short)
  DType out;              // kFloat, kHalf or kBFloat16
};
cudaError_t launch_a8_linear(const A8Params& p, cudaStream_t stream);
// Whether launch_a8_linear would take p (its M, N, K, planes, out; digits: p's rows are digit rows, in fours) on the
// current device, without launching anything (the digits backend asks before it makes the digits).
bool a8_linear_supported(const A8Params& p, bool digits);
// The fused kernel's CTA: `warps` warps, `ks` of them splitting each 16-row tile's K (warps / ks tiles per CTA);
// chosen with the x rows per CTA by a8::pick_config (BITMM_A8_CFG=1 / 2 / 3 forces {4, 4} / {8, 2} / {8, 1}).
struct A8Config {
  int warps, ks;
};
// absmax_int8 (quant_absmax.cu): x (rows, K) contiguous of dtype dt -> xq (rows, K) int8 and scale (rows,) float32, or,
// with `fake` non-null, xq * scale into fake (rows, K) of dt (xq / scale unused).  One CTA per row.
cudaError_t launch_absmax_int8(const void* x, DType dt, int64_t rows, int64_t K, int8_t* xq, float* scale, void* fake,
                               cudaStream_t stream);
cudaError_t launch_pack(const int8_t* codes, int64_t N, int64_t K, int two_planes, int zero_code,
                        uint32_t* out, int64_t wpr, cudaStream_t stream);
cudaError_t launch_unpack(const uint32_t* packed, int64_t N, int64_t K, int two_planes, int64_t wpr,
                          int8_t* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace bitmm
