// LoRA on a packed base (bitmm::lora_linear): the checks and the base-op call
// shared by the CPU and CUDA glue.  Defined in cpu/lora_cpu.cpp (compiled in
// every build).
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

#include "checks.h"

namespace bitmm {

// check_linear(kind, x, packed_w, scale, offset, bias) for the base, then the
// adapters: lora_a (r, K), lora_b (N, r), r >= 1, both of x's dtype or both
// float32, on x's device; lora_scale finite (a NaN / Inf would poison every output).  Errors name the argument and
// the expected shape.
// The CPU NaN / Inf test of scale and offset is left to the base op
// (call_base_linear: one pass, or none with its AVX2 kernel); a caller that
// returns without calling it (M = 0) calls check_scales_finite itself.
LinearProblem check_lora(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                         const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                         const at::Tensor& lora_a, const at::Tensor& lora_b, double lora_scale);

// Calls the registered bitmm::<kind>_linear op through the dispatcher (below
// autograd when reached from the lora_linear kernels).
at::Tensor call_base_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias);

}  // namespace bitmm
