// bitmm::lora_linear, CPU: y = x @ (W_q * s)^T + (x @ 1^T) * u + bias
//                              + lora_scale * (x @ lora_a^T) @ lora_b^T
// on a frozen packed base.  Also the shared checks (lora_checks.h).
//
// The low-rank term is an epilogue after the base kernel: the base op runs on
// x in the accumulation type (float32, or float64 for float64 x; the CPU base
// kernels convert x to it anyway, so this costs nothing extra) and returns a
// float32 y; xa = x @ lora_a^T (M x r) is one float32 GEMM and
// y += lora_scale * xa @ lora_b^T one more, accumulated into y (addmm_) before
// the single rounding to x's dtype.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../lora_checks.h"

namespace bitmm {

namespace {
bool is_float_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}
}  // namespace

LinearProblem check_lora(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                         const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                         const at::Tensor& lora_a, const at::Tensor& lora_b, double lora_scale) {
  const LinearProblem p = check_linear(kind, x, packed_w, scale, offset, bias, /*defer_finite=*/true);
  const std::string opname = std::string("bitmm.lora_linear(") + name_of(kind) + ")";
  const char* op = opname.c_str();
  BITMM_CHECK_VALUE(std::isfinite(lora_scale), op, ": lora_scale must be finite, got ", lora_scale);
  // (as the Python wrapper: the adapter product accumulates in float32 for every x but float64, where addmm_'s alpha
  // past float32's range failed with a message that did not name it)
  BITMM_CHECK_VALUE(std::fabs(lora_scale) <= std::numeric_limits<float>::max(), op,
                    ": lora_scale is past float32's range; lora_scale must be a finite float within float32's range");
  // dtype first: an integer adapter of the right shape should say "dtype".
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"lora_a", &lora_a},
                                std::pair<const char*, const at::Tensor*>{"lora_b", &lora_b}}) {
    check_defined(op, name, *t);
    BITMM_CHECK_TYPE(is_float_dtype(t->scalar_type()) &&
                         (t->scalar_type() == x.scalar_type() || t->scalar_type() == at::kFloat),
                     op, ": ", name, " must have x's dtype (", x.scalar_type(), ") or float32, got ",
                     t->scalar_type());
    BITMM_CHECK(t->device() == x.device(), op, ": ", name, " is on ", t->device(), " but x is on ", x.device(),
                "; move all arguments to one device");
  }
  BITMM_CHECK_TYPE(lora_a.scalar_type() == lora_b.scalar_type(), op, ": lora_a is ", lora_a.scalar_type(),
                   " but lora_b is ", lora_b.scalar_type(), "; both adapters must have one dtype");
  BITMM_CHECK_VALUE(lora_a.dim() == 2 && lora_a.size(0) >= 1 && lora_a.size(1) == p.K, op,
                    ": lora_a must have shape (r, K) with r >= 1 and K=", p.K, ", got ", lora_a.sizes());
  const int64_t r = lora_a.size(0);
  BITMM_CHECK_VALUE(lora_b.dim() == 2 && lora_b.size(0) == p.N && lora_b.size(1) == r, op,
                    ": lora_b must have shape (N, r)=(", p.N, ", ", r, ") (N from packed_w, r from lora_a), got ",
                    lora_b.sizes());
  return p;
}

at::Tensor call_base_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias) {
  using Sig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                         const std::optional<at::Tensor>&);
  // Looked up on first use (the schemas are registered by then), one handle per kind.
  static const auto ops = [] {
    auto find = [](const char* name) {
      return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
    };
    return std::array<c10::TypedOperatorHandle<Sig>, 3>{find("bitmm::binary_linear"), find("bitmm::ternary_linear"),
                                                        find("bitmm::int2_linear")};
  }();
  return ops[static_cast<int>(kind) - 1].call(x, packed_w, scale, offset, bias);
}

namespace {

at::Tensor lora_linear_cpu(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                           const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                           const at::Tensor& lora_a, const at::Tensor& lora_b, int64_t kind_i, double lora_scale) {
  const Kind kind = kind_from_int(kind_i);
  const LinearProblem p = check_lora(kind, x, packed_w, scale, offset, bias, lora_a, lora_b, lora_scale);
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = p.N;
  if (p.M == 0) {
    check_scales_finite(kind, /*prepacked=*/false, scale, offset);  // (check_lora left it to the base op)
    return at::empty(out_shape, x.options());
  }
  const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor x2 = x.reshape({p.M, p.K}).to(acc);
  at::Tensor y = call_base_linear(kind, x2, packed_w, scale, offset, bias);  // (M, N), acc dtype
  const at::Tensor xa = at::mm(x2, lora_a.to(acc).t());                       // (M, r)
  y.addmm_(xa, lora_b.to(acc).t(), /*beta=*/1, /*alpha=*/lora_scale);
  return y.to(x.scalar_type()).reshape(out_shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, CPU, m) {
  m.impl("lora_linear", &lora_linear_cpu);
}

}  // namespace bitmm
