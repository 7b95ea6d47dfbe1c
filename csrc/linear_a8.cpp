#include "linear_a8.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace bitmm {

A8Sums a8_sums(const at::Tensor& xq2, const at::Tensor& codes) {
  const int64_t M = xq2.size(0), K = xq2.size(1), N = codes.size(0);
  A8Sums r;
  r.row_sums = xq2.sum(1, /*keepdim=*/false, at::kInt);  // |sum| <= 128 K
  if (xq2.is_cuda() && K % 8 == 0 && N % 8 == 0) {
    // torch's int8 GEMM (cuBLASLt on int8 tensor cores, int32 sums), which takes more than 16 rows: fewer are
    // padded with zero rows.  (A view with a storage offset is copied: cuBLASLt is given no alignment hints.)
    if (M > 16) {
      r.sums = at::_int_mm(reinterpret_cast<uintptr_t>(xq2.data_ptr()) % 16 == 0 ? xq2 : xq2.clone(), codes.t());
    } else {
      at::Tensor padded = at::zeros({32, K}, xq2.options());
      padded.narrow(0, 0, M).copy_(xq2);
      r.sums = at::_int_mm(padded, codes.t()).narrow(0, 0, M);
    }
    return r;
  }
  // A floating matmul of the same integers: exact in float32 while every partial sum stays below 2^24 (|xq| <= 128,
  // codes <= 3; int8 values and codes are exact in TF32 as well).  Longer rows go in chunks of kExactK inputs,
  // each exact in float32, added up in float64 (exact), so no float64 copy of W is made.
  constexpr int64_t kExactK = ((int64_t{1} << 24) - 1) / (128 * 3);
  if (K <= kExactK) {
    r.sums = at::matmul(xq2.to(at::kFloat), codes.to(at::kFloat).t());
    return r;
  }
  for (int64_t k0 = 0; k0 < K; k0 += kExactK) {
    const int64_t kc = std::min(kExactK, K - k0);
    const at::Tensor part = at::matmul(xq2.narrow(1, k0, kc).to(at::kFloat), codes.narrow(1, k0, kc).to(at::kFloat).t())
                                .to(at::kDouble);
    r.sums = k0 == 0 ? part : r.sums + part;
  }
  return r;
}

at::Tensor a8_codes(const at::Tensor& packed_w, Kind kind, int64_t K) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("bitmm::unpack", "")
                             .typed<at::Tensor(const at::Tensor&, int64_t, c10::SymInt)>();
  return op.call(packed_w, static_cast<int64_t>(kind), c10::SymInt(K));
}

at::Tensor a8_epilogue(const A8Sums& s, const at::Tensor& x_scale2, const at::Tensor& scale,
                       const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, int shift,
                       at::ScalarType out_dtype) {
  const at::ScalarType ct = out_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor X = s.row_sums.to(ct).unsqueeze(1);  // (M, 1)
  // sum_k xq * (code - shift), subtracted in the sums' own (exact) type and rounded once, as the CUDA epilogue does
  const at::Tensor v = (shift != 0 ? s.sums - s.row_sums.to(s.sums.scalar_type()).unsqueeze(1) * shift : s.sums).to(ct);
  at::Tensor y = v * scale.to(ct).reshape({-1});              // () -> (1,), (N,) / (N, 1) -> (N,)
  if (offset.has_value()) y = y + X * offset->to(ct).reshape({-1});
  y = y * x_scale2.to(ct);
  if (bias.has_value()) y = y + bias->to(ct);
  return y.to(out_dtype);
}

at::Tensor linear_a8_forward(const LinearProblem& p, const at::Tensor& xq, const at::Tensor& x_scale,
                             const at::Tensor& packed_w, const at::Tensor& scale,
                             const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                             at::ScalarType out_dtype, A8Epilogue epilogue) {
  std::vector<int64_t> out_shape(xq.sizes().begin(), xq.sizes().end());
  out_shape.back() = p.N;
  if (p.M == 0) return at::empty(out_shape, xq.options().dtype(out_dtype));
  const at::Tensor codes = a8_codes(packed_w, p.kind, p.K);
  const A8Sums s = a8_sums(xq.reshape({p.M, p.K}).contiguous(), codes);
  const at::Tensor xs2 = x_scale.reshape({p.M, 1});
  const int shift = a8_code_shift(p.kind);
  at::Tensor y;
  if (epilogue != nullptr) y = epilogue(s, xs2, scale, offset, bias, shift, out_dtype);
  if (!y.defined()) y = a8_epilogue(s, xs2, scale, offset, bias, shift, out_dtype);
  return y.reshape(out_shape);
}

std::tuple<at::Tensor, at::Tensor> absmax_int8_aten(const at::Tensor& x) {
  const at::Tensor x32 = x.contiguous().to(at::kFloat);  // (contiguous outputs, as the fake kernel says)
  // 127 / amax as Python evaluates `127.0 / t` (Tensor.__rdiv__: t.reciprocal() * 127), and 1 / s likewise
  const at::Tensor s = x32.abs().amax(-1, /*keepdim=*/true).clamp_min(1e-5).reciprocal() * 127.0;
  const at::Tensor xq = (x32 * s).round().clamp(-128, 127).to(at::kChar);
  return {xq, s.reciprocal()};
}

at::Tensor absmax_int8_fake_aten(const at::Tensor& x) {
  const auto [xq, scale] = absmax_int8_aten(x);
  return (xq.to(at::kFloat) * scale).to(x.scalar_type());
}

}  // namespace bitmm
