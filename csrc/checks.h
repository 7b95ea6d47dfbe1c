// Input validation shared by every backend: one helper, so every device gives
// the same error text.  Messages name the argument, M, N, K and the format.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>

#include "bitmm_format.h"

namespace bitmm {

// Error messages are built here without iostreams: on one machine, a copy of
// libstdc++'s integer formatting that the build left in this library crashed
// the process whenever a message printed a number.  Numbers go through
// std::to_string, tensors' dtypes / devices / shapes through their own strings.
namespace detail {
inline void append(std::string& s, const char* v) { s += v; }
inline void append(std::string& s, const std::string& v) { s += v; }
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
inline void append(std::string& s, T v) { s += std::to_string(v); }
// floating values: nan / inf / -inf by name, else std::to_string's fixed notation (a double would otherwise convert
// to the IntArrayRef overload below)
template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
inline void append(std::string& s, T v) {
  s += v != v ? "nan" : v == static_cast<T>(INFINITY) ? "inf" : v == -static_cast<T>(INFINITY) ? "-inf" : std::to_string(v);
}
inline void append(std::string& s, c10::ScalarType t) { s += c10::toString(t); }
inline void append(std::string& s, const c10::Device& d) { s += d.str(); }
inline void append(std::string& s, at::IntArrayRef a) {
  s += "(";
  for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i]);
  s += a.size() == 1 ? ",)" : ")";
}
}  // namespace detail

template <typename... A>
std::string msg(const A&... a) {
  std::string s;
  (detail::append(s, a), ...);
  return s;
}

}  // namespace bitmm

// TORCH_CHECK variants whose message is formatted by bitmm::msg (ValueError, TypeError, RuntimeError).
#define BITMM_CHECK_VALUE(cond, ...) TORCH_CHECK_VALUE(cond, ::bitmm::msg(__VA_ARGS__))
#define BITMM_CHECK_TYPE(cond, ...) TORCH_CHECK_TYPE(cond, ::bitmm::msg(__VA_ARGS__))
#define BITMM_CHECK(cond, ...) TORCH_CHECK(cond, ::bitmm::msg(__VA_ARGS__))

namespace bitmm {

Kind kind_from_int(int64_t kind);

// A required tensor argument passed as None reaches the kernels as an undefined tensor (its dtype read as
// UNKNOWN_SCALAR, its device as an error): named here first.
inline void check_defined(const char* op, const char* name, const at::Tensor& t) {
  BITMM_CHECK_TYPE(t.defined(), op, ": ", name, " must be a tensor, got None");
}

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
// Values are checked only where that needs no host sync: CPU scale / offset with
// a NaN or Inf are a ValueError; on CUDA they propagate to the outputs that use
// them (README, "Determinism").  Bias values are never checked (as in F.linear).
// defer_finite: skip the CPU NaN / Inf scan of scale and offset, because the caller's kernel
// tests every value it reads and calls check_scales_finite (which throws the same error) on a
// hit, or calls it up front where its kernel does not (the scan is a second pass over group-wise
// scales: ~1/4 of the CPU forward's time at M = 1, bench/NOTES.md "CPU forward", v5).
LinearProblem check_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           const std::optional<at::Tensor>& bias, bool defer_finite = false);
LinearProblem check_grad_x(Kind kind, const at::Tensor& grad_y, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           int64_t K);
// cpu_prepacked_linear(x, packed_w, prepacked, ...): check_linear's checks (with the
// op's own name) plus the prepacked blob's dtype, device, size and header against
// (kind, K of x, N of packed_w) (cpu_prepack_format.h).
// prepacked_scales (optional): a cpu_prepack_scales layout's dtype, device, contiguity and shape
// against (N, the problem's scale groups).
LinearProblem check_prepacked_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                                     const at::Tensor& prepacked, const at::Tensor& scale,
                                     const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                                     bool defer_finite = false,
                                     const std::optional<at::Tensor>& prepacked_scales = std::nullopt);
// cpu_prepack_scales(scale, offset, N, K): scale / offset as a linear op over (N, K) takes them (CPU,
// float dtypes, (), (N,) or (N, K/G), one group size); values not checked (the linear op checks the
// ones it reads).  Returns the problem's scale layout (M = 0).
LinearProblem check_cpu_prepack_scales(const at::Tensor& scale, const std::optional<at::Tensor>& offset, int64_t N,
                                       int64_t K);
// The CPU NaN / Inf scan that check_linear / check_prepacked_linear (prepacked: which of the two
// named the op) skipped with defer_finite: throws their ValueError naming the first non-finite
// element of scale, then of offset; returns if there is none.  CPU tensors only.
void check_scales_finite(Kind kind, bool prepacked, const at::Tensor& scale, const std::optional<at::Tensor>& offset);
// cpu_prepack(packed_w, kind, K): packed_w an int32 CPU (N, words_per_row(kind, K)) tensor.
void check_cpu_prepack(Kind kind, const at::Tensor& packed_w, int64_t K);
// linear_a8(xq, x_scale, packed_w, scale, offset, bias, kind, out_dtype): xq int8 (..., K), x_scale floating
// (..., 1) on xq's device, packed_w / bias as for the linear ops, scale / offset per tensor or per channel (the
// integer sums run over all of K), out_dtype floating.
// absmax_int8 / absmax_int8_fake (op: the op's name): x float16 / bfloat16 / float32 / float64 with K >= 1.
void check_absmax_int8(const char* op, const at::Tensor& x);
LinearProblem check_linear_a8(Kind kind, const at::Tensor& xq, const at::Tensor& x_scale, const at::Tensor& packed_w,
                              const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                              const std::optional<at::Tensor>& bias, at::ScalarType out_dtype);
void check_pack_codes(Kind kind, const at::Tensor& codes);
void check_unpack(Kind kind, const at::Tensor& packed, int64_t K);

}  // namespace bitmm
