// linear_a8 (W2A8: int8 activations) helpers shared by the CPU and CUDA backends: the op's integer part and a
// plain-ATen epilogue.  Each backend registers its own kernel (cpu/linear_cpu.cpp, cuda/linear_cuda.cpp).
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "checks.h"

namespace bitmm {

// sums[m, n] = sum_k xq[m, k] * code[n, k] over the STORED codes (exact: int32 from torch's int8 GEMM, or float32 /
// float64 from a floating matmul of the same integers), and row_sums[m] = sum_k xq[m, k] (int32).  The value a
// code stands for is code - shift (code_shift), so sum_k xq * v = sums - shift * row_sums.
struct A8Sums {
  at::Tensor sums;      // (M, N)
  at::Tensor row_sums;  // (M,) int32
};
A8Sums a8_sums(const at::Tensor& xq2, const at::Tensor& codes);

// The stored codes of packed_w, (N, K) int8, through the unpack op of packed_w's device.
at::Tensor a8_codes(const at::Tensor& packed_w, Kind kind, int64_t K);

// The value of a stored code is code - a8_code_shift(kind): ternary / int2 1, binary 0 (bitmm_format.h).
inline int a8_code_shift(Kind kind) { return kind == Kind::kBinary ? 0 : 1; }

// y = x_scale * (scale * (sums - shift * row_sums) + offset * row_sums) + bias, in float32 (float64 for a float64
// out_dtype) with ATen ops, rounded once to out_dtype; x_scale2 (M, 1).
at::Tensor a8_epilogue(const A8Sums& s, const at::Tensor& x_scale2, const at::Tensor& scale,
                       const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, int shift,
                       at::ScalarType out_dtype);

// A backend's own epilogue (same contract as a8_epilogue); returns an undefined tensor where it does not apply.
using A8Epilogue = at::Tensor (*)(const A8Sums& s, const at::Tensor& x_scale2, const at::Tensor& scale,
                                  const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                                  int shift, at::ScalarType out_dtype);

// The op after check_linear_a8 (p): codes, sums, then `epilogue` (if given and it applies) or a8_epilogue.
at::Tensor linear_a8_forward(const LinearProblem& p, const at::Tensor& xq, const at::Tensor& x_scale,
                             const at::Tensor& packed_w, const at::Tensor& scale,
                             const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                             at::ScalarType out_dtype, A8Epilogue epilogue = nullptr);

// absmax_int8 as ATen operations: the definition the CPU pass (cpu/a8_cpu.cpp, which falls back to it for rows holding
// NaN / Inf) and the CUDA kernel match bit for bit
// (bitmm/reference.py absmax_int8 spells the same in Python): (xq, x_scale); absmax_int8_fake_aten: xq * x_scale in
// x's dtype.
std::tuple<at::Tensor, at::Tensor> absmax_int8_aten(const at::Tensor& x);
at::Tensor absmax_int8_fake_aten(const at::Tensor& x);

}  // namespace bitmm
