// bitmm::lora_linear, CUDA: the base op (the add/subtract kernels, in x's
// dtype) then the low-rank term as an epilogue of at:: GEMMs on the current
// stream, no host synchronisation (CUDA-graph capturable):
//   xa = x @ lora_a^T (M x r, float32; float64 for float64 x; for fp16 / bf16 x
//   with M <= 16, bitmm's lora_xa kernel, one launch),
//   y += lora_scale * xa @ lora_b^T  (float32 GEMM, added into y in float32,
//   one rounding to x's dtype).
// fp16 / bf16 x on the tensor-core kernel: the xa @ lora_b^T term is fused
// into that kernel's epilogue (fp32, one rounding; no second pass over y);
// elsewhere (float32 / float64 x, the add/subtract or dense paths, and the
// digits backend where it applies) the composition above.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../lora_checks.h"
#include "kernels.h"
#include "linear_cuda.h"

namespace bitmm {
namespace {

// Largest M for which xa = x @ lora_a^T runs in bitmm's own kernel (one CTA per
// (j, m) pair); beyond, cuBLAS in float32.
constexpr int64_t kLoraXaKernelMaxM = 16;

at::Tensor lora_linear_cuda(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                            const at::Tensor& lora_a, const at::Tensor& lora_b, int64_t kind_i, double lora_scale) {
  const Kind kind = kind_from_int(kind_i);
  const LinearProblem p = check_lora(kind, x, packed_w, scale, offset, bias, lora_a, lora_b, lora_scale);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // xa = x @ lora_a^T once, for the fused epilogue or the composition below.
  // Decode sizes (fp16 / bf16 x, M <= 16): one small kernel reads x and lora_a
  // in their own dtypes (no float32 copies, one launch instead of three).
  at::Tensor xa;  // (M, r), float32 (float64 for float64 x)
  const bool half_x = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  if (p.M > 0 && p.M <= kLoraXaKernelMaxM && half_x) {
    const at::Tensor x2 = x.reshape({p.M, p.K}).contiguous(), a2 = lora_a.contiguous();
    xa = at::empty({p.M, lora_a.size(0)}, x.options().dtype(at::kFloat));
    const cuda::DType xd = x.scalar_type() == at::kHalf ? cuda::DType::kHalf : cuda::DType::kBFloat16;
    const cudaError_t err = cuda::launch_lora_xa(x2.data_ptr(), xd, a2.data_ptr(), a2.scalar_type() == at::kFloat,
                                                 xa.data_ptr<float>(), p.M, p.K, lora_a.size(0),
                                                 at::cuda::getCurrentCUDAStream());
    BITMM_CHECK(err == cudaSuccess, "bitmm CUDA lora_linear (x @ lora_a^T) failed for ", name_of(kind), " M=", p.M,
                " N=", p.N, " K=", p.K, ": ", cudaGetErrorString(err));
  } else if (p.M > 0) {
    xa = at::mm(x.reshape({p.M, p.K}).to(acc), lora_a.to(acc).t());
  }
  if (p.M > 0 && acc == at::kFloat) {
    at::Tensor fused = linear_cuda_fused_lora(kind, x, packed_w, scale, offset, bias, xa, lora_b, lora_scale);
    if (fused.defined()) return fused;
  }
  at::Tensor y = call_base_linear(kind, x, packed_w, scale, offset, bias);  // (..., N), x's dtype, contiguous
  if (p.M == 0) return y;
  const at::Tensor bt = lora_b.to(acc).t();
  if (!y.is_contiguous()) y = y.contiguous();
  at::Tensor y2 = y.view({p.M, p.N});
  if (y.scalar_type() == acc) {
    y2.addmm_(xa, bt, /*beta=*/1, /*alpha=*/lora_scale);
  } else {
    y2.add_(at::mm(xa, bt), lora_scale);  // computed in float32, stored in x's dtype
  }
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, CUDA, m) {
  m.impl("lora_linear", &lora_linear_cuda);
}

}  // namespace bitmm
