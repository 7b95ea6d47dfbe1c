// Entry points of the CUDA linear glue used by other torch glue files.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "../bitmm_format.h"

namespace bitmm {

// The base linear op with the LoRA term lora_scale * xa @ lora_b^T fused into
// the tensor-core kernel's epilogue (xa = x @ lora_a^T, (M, r)).  Returns an
// undefined tensor, having launched nothing, where that kernel does not run
// (float32 x, the dense or add/subtract paths): the caller then composes.
at::Tensor linear_cuda_fused_lora(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                                  const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                                  const at::Tensor& xa, const at::Tensor& lora_b, double lora_scale);

}  // namespace bitmm
