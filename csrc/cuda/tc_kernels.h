// Tensor-core linear kernels (tc_linear.cuh): declarations for the torch glue.
#pragma once
#include <cstdint>

#include "kernels.h"
#include "tc_launch_rules.h"

namespace bitmm {
namespace cuda {

constexpr int kMaxTcDevices = 64;

// One entry point per (x dtype, kind) instantiation file, so they compile in parallel.
cudaError_t launch_tc_linear_f16_binary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_linear_f16_ternary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_linear_f16_int2(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_linear_bf16_binary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_linear_bf16_ternary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_linear_bf16_int2(const LinearParams& p, int num_sms, cudaStream_t stream);

// Tensor-core grad_x (tc_grad_x.cuh): accum (M, K) fp32, zeroed; atomics across row splits, so
// not bitwise reproducible (the deterministic mode keeps the add/subtract kernel).
// cudaErrorNotSupported where it does not apply (groups not a multiple of 32, huge grids).
cudaError_t launch_tc_grad_x_f16(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream);
cudaError_t launch_tc_grad_x_bf16(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream);

// Hopper wgmma kernel (wg_linear.cuh), sm_90a builds only (BITMM_WGMMA): cudaErrorNotSupported where
// it does not apply (K % 8 != 0, misaligned x or y, fused LoRA, groups not a multiple of 32).
cudaError_t launch_wg_linear_f16_binary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_wg_linear_f16_ternary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_wg_linear_f16_int2(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_wg_linear_bf16_binary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_wg_linear_bf16_ternary(const LinearParams& p, int num_sms, cudaStream_t stream);
cudaError_t launch_wg_linear_bf16_int2(const LinearParams& p, int num_sms, cudaStream_t stream);

// Hopper wgmma grad_x (wg_grad_x.cuh), sm_90a builds only: grad_x (M, K) = grad_y (M, N) @ W written
// straight into p.y in grad_y's dtype (no atomics, bitwise reproducible).  cudaErrorNotSupported where it does
// not apply (N % 8 != 0, misaligned grad_y or grad_x, groups not a multiple of 32).  Auto's grad_x since session 49,
// from M = 25 since session 50, on small weights from M = 8 / 12 (plain / fold) since session 51 (linear_cuda.cpp
// use_wg_grad_x; BITMM_GX_WGMMA=0 turns it off).
cudaError_t launch_wg_grad_x_f16(const GradXParams& p, cudaStream_t stream);
cudaError_t launch_wg_grad_x_bf16(const GradXParams& p, cudaStream_t stream);

inline cudaError_t launch_wg_linear(const LinearParams& p, int num_sms, cudaStream_t stream) {
  const bool half = p.x_dtype == DType::kHalf;
  switch (p.kind) {
    case 1: return half ? launch_wg_linear_f16_binary(p, num_sms, stream) : launch_wg_linear_bf16_binary(p, num_sms, stream);
    case 2: return half ? launch_wg_linear_f16_ternary(p, num_sms, stream) : launch_wg_linear_bf16_ternary(p, num_sms, stream);
    default: return half ? launch_wg_linear_f16_int2(p, num_sms, stream) : launch_wg_linear_bf16_int2(p, num_sms, stream);
  }
}

// Whether the tensor-core kernel handles this problem: fp16 / bf16 x, and
// per tensor / per channel scales or groups that are a multiple of 32 inputs.
inline bool tc_supports(const LinearParams& p) {
  const bool dtype_ok = p.x_dtype == DType::kHalf || p.x_dtype == DType::kBFloat16;
  return dtype_ok && p.group_size % 32 == 0;
}

// Whether the wgmma kernel takes this problem (beyond tc_supports): no fused LoRA, K % 8 == 0
// (x's rows through the TMA unit need a 16-byte pitch), x and y 16-byte aligned.  The glue asks
// before it plans and allocates the K-split workspace; the launcher checks the same.
inline bool wg_supports(const LinearParams& p) {
  return tc_supports(p) && p.lora_xa == nullptr && p.K % 8 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(p.y) % 16 == 0;
}

// The block-diagonal decode path (group-wise scales) at M = 1 puts all 4 warps of a CTA along N
// (64-row tiles, no K split) when that still gives this many CTAs per SM (tc_linear.cuh's launch
// rule, two-plane kinds): each warp then reuses a 32-byte sector of s and u for 4 consecutive steps.
// It beat the add/subtract kernel at M = 1 only then before tc14 (H200, bench/NOTES.md tc12: 8192 x
// 28672 int2 g64 63.9 vs 69.8 us), so auto's M = 1 rule asks the same question (and, since tc14, a
// second one for narrower N with fp16 x: linear_cuda.cpp, use_tensor_core).
constexpr int kTcBdWideMinCtasPerSm = 3;
// N gives that many 64-row tiles per SM (any kind: auto's M = 1 rule asks it of binary too).
inline bool tc_bd_wide_n(const LinearParams& p, int num_sms) {
  return (p.N + 63) / 64 >= static_cast<int64_t>(kTcBdWideMinCtasPerSm) * num_sms;
}
inline bool tc_bd_wide(const LinearParams& p, int num_sms) { return p.two_planes && tc_bd_wide_n(p, num_sms); }

inline cudaError_t launch_tc_linear(const LinearParams& p, int num_sms, cudaStream_t stream) {
  const bool half = p.x_dtype == DType::kHalf;
  switch (p.kind) {
    case 1: return half ? launch_tc_linear_f16_binary(p, num_sms, stream) : launch_tc_linear_bf16_binary(p, num_sms, stream);
    case 2: return half ? launch_tc_linear_f16_ternary(p, num_sms, stream) : launch_tc_linear_bf16_ternary(p, num_sms, stream);
    default: return half ? launch_tc_linear_f16_int2(p, num_sms, stream) : launch_tc_linear_bf16_int2(p, num_sms, stream);
  }
}

}  // namespace cuda
}  // namespace bitmm
