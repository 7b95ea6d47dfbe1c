// Input validation shared by every backend: one helper, so every device gives
// the same error text.  Messages name the argument, M, N, K and the format.
#pragma once
#include <ATen/core/Tensor.h>
#include <optional>
#include "bitmm_format.h"

namespace bitmm {

Kind kind_from_int(int64_t kind);

// How a scale or offset tensor maps onto (n, group): value = ptr[n*stride_n + g*stride_g].
struct ScaleLayout {
  bool present = false;
  int64_t stride_n = 0;
  int64_t stride_g = 0;
  int64_t groups = 1;  // 1 for per-tensor / per-channel
};

struct LinearProblem {
  Kind kind;
  int64_t M, N, K;
  int64_t group_size;  // K unless scale or offset is group-wise
  int64_t groups;      // K / group_size
  ScaleLayout scale, offset;
};

// Checks x (..., K) or grad_y (..., N), packed_w, scale, offset, bias; throws
// c10::Error (RuntimeError / ValueError / TypeError in Python) naming the argument.
LinearProblem check_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           const std::optional<at::Tensor>& bias);
LinearProblem check_grad_x(Kind kind, const at::Tensor& grad_y, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           int64_t K);
void check_pack_codes(Kind kind, const at::Tensor& codes);
void check_unpack(Kind kind, const at::Tensor& packed, int64_t K);

}  // namespace bitmm
