// W2A8 on the CPU: linear_a8 (its integer sums by a8_kernels.h where AVX2 / AVX-512 VNNI are present), and
// absmax_int8 / absmax_int8_fake in one pass per row.  Every result has the bits of the ATen definitions in
// linear_a8.cpp (a8_epilogue, absmax_int8_aten), which the generic path and the CUDA kernels share.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "../checks.h"
#include "../linear_a8.h"
#include "cpu_kernels.h"

namespace bitmm {
namespace {

// ---- linear_a8's epilogue, fused -------------------------------------------------------------------------------

// a8_epilogue's operations (linear_a8.cpp) element by element, in CT (float, or double for a float64 output), each
// rounded as the ATen op rounds it: v = float(sum - shift * row_sum); y = v * s; y = y + float(row_sum) * u (the
// product rounded first: no FMA, hence fp-contract off); y = y * x_scale; y = y + bias; one conversion to OutT.
// One pass over (M, N) instead of the ATen epilogue's six.
template <typename CT, typename OutT, bool kOffset, bool kBias>
__attribute__((optimize("fp-contract=off"))) void epilogue_rows(const int32_t* sums, const int32_t* row_sums,
                                                                 const CT* xs, const CT* s, int64_t sn, const CT* u,
                                                                 int64_t un, const CT* b, int shift, int64_t m0,
                                                                 int64_t m1, int64_t N, OutT* y) {
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t rs = row_sums[m];
    const CT X = static_cast<CT>(rs), x_scale = xs[m];
    const int32_t* sm = sums + m * N;
    OutT* ym = y + m * N;
    for (int64_t n = 0; n < N; ++n) {
      CT v = static_cast<CT>(sm[n] - rs * shift) * s[n * sn];
      if constexpr (kOffset) {
        const CT xu = X * u[n * un];
        v = v + xu;
      }
      v = v * x_scale;
      if constexpr (kBias) v = v + b[n];
      ym[n] = static_cast<OutT>(v);
    }
  }
}

template <typename CT, typename OutT>
void epilogue_typed(const A8Sums& r, const at::Tensor& x_scale2, const at::Tensor& scale,
                    const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, int shift,
                    at::Tensor& y) {
  const at::ScalarType ct = std::is_same_v<CT, double> ? at::kDouble : at::kFloat;
  const int64_t M = r.sums.size(0), N = r.sums.size(1);
  const at::Tensor xs = x_scale2.to(ct).contiguous(), s = scale.to(ct).reshape({-1}).contiguous();
  const at::Tensor u = offset.has_value() ? offset->to(ct).reshape({-1}).contiguous() : at::Tensor();
  const at::Tensor b = bias.has_value() ? bias->to(ct).contiguous() : at::Tensor();
  const int64_t sn = s.numel() == 1 ? 0 : 1, un = u.defined() && u.numel() > 1 ? 1 : 0;
  const int32_t* sums = r.sums.data_ptr<int32_t>();
  const int32_t* rows = r.row_sums.data_ptr<int32_t>();
  const CT* xsp = xs.data_ptr<CT>();
  const CT* sp = s.data_ptr<CT>();
  const CT* up = u.defined() ? u.data_ptr<CT>() : nullptr;
  const CT* bp = b.defined() ? b.data_ptr<CT>() : nullptr;
  OutT* yp = reinterpret_cast<OutT*>(y.data_ptr());
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(N, 1));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    if (up && bp)
      epilogue_rows<CT, OutT, true, true>(sums, rows, xsp, sp, sn, up, un, bp, shift, m0, m1, N, yp);
    else if (up)
      epilogue_rows<CT, OutT, true, false>(sums, rows, xsp, sp, sn, up, un, bp, shift, m0, m1, N, yp);
    else if (bp)
      epilogue_rows<CT, OutT, false, true>(sums, rows, xsp, sp, sn, up, un, bp, shift, m0, m1, N, yp);
    else
      epilogue_rows<CT, OutT, false, false>(sums, rows, xsp, sp, sn, up, un, bp, shift, m0, m1, N, yp);
  });
}

// The A8Epilogue for int32 sums (linear_a8.h's contract).
at::Tensor a8_epilogue_cpu(const A8Sums& r, const at::Tensor& x_scale2, const at::Tensor& scale,
                           const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, int shift,
                           at::ScalarType out_dtype) {
  if (r.sums.scalar_type() != at::kInt) return at::Tensor();  // the generic path's float sums: a8_epilogue
  at::Tensor y = at::empty(r.sums.sizes(), r.sums.options().dtype(out_dtype));
  switch (out_dtype) {
    case at::kFloat: epilogue_typed<float, float>(r, x_scale2, scale, offset, bias, shift, y); break;
    case at::kHalf: epilogue_typed<float, c10::Half>(r, x_scale2, scale, offset, bias, shift, y); break;
    case at::kBFloat16: epilogue_typed<float, c10::BFloat16>(r, x_scale2, scale, offset, bias, shift, y); break;
    case at::kDouble: epilogue_typed<double, double>(r, x_scale2, scale, offset, bias, shift, y); break;
    default: return at::Tensor();
  }
  return y;
}

at::Tensor linear_a8_cpu(const at::Tensor& xq, const at::Tensor& x_scale, const at::Tensor& packed_w,
                         const at::Tensor& s, const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b,
                         int64_t kind, at::ScalarType out_dtype) {
  const LinearProblem p = check_linear_a8(kind_from_int(kind), xq, x_scale, packed_w, s, u, b, out_dtype);
  const cpu::A8Kernel kernel = cpu::a8_kernel(p.K);
  if (p.M > 0 && kernel != cpu::A8Kernel::kGeneric) {
    // the same exact integer sums as linear_a8_forward's unpack + matmul, without the unpacked codes
    const bool avx512 = kernel == cpu::A8Kernel::kAvx512Vnni;
    RECORD_FUNCTION(avx512 ? "bitmm::cpu_a8_avx512" : "bitmm::cpu_a8_avx2", c10::ArrayRef<const c10::IValue>{});
    const at::Tensor xq2 = xq.reshape({p.M, p.K}).contiguous();
    const at::Tensor w = packed_w.contiguous();
    A8Sums sums;
    sums.sums = at::empty({p.M, p.N}, xq.options().dtype(at::kInt));
    sums.row_sums = at::empty({p.M}, xq.options().dtype(at::kInt));
    cpu::A8Args a{&p, xq2.data_ptr<int8_t>(), reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>()), w.size(1),
                  sums.sums.data_ptr<int32_t>(), sums.row_sums.data_ptr<int32_t>()};
    if (avx512)
      cpu::a8_sums_avx512(a);
    else
      cpu::a8_sums_avx2(a);
    std::vector<int64_t> out_shape(xq.sizes().begin(), xq.sizes().end());
    out_shape.back() = p.N;
    return a8_epilogue_cpu(sums, x_scale.reshape({p.M, 1}), s, u, b, a8_code_shift(p.kind), out_dtype)
        .reshape(out_shape);
  }
  RECORD_FUNCTION("bitmm::cpu_a8_generic", c10::ArrayRef<const c10::IValue>{});
  return linear_a8_forward(p, xq, x_scale, packed_w, s, u, b, out_dtype, &a8_epilogue_cpu);
}

// ---- absmax_int8, one pass per row -----------------------------------------------------------------------------

// absmax_int8_aten's operations per row, each as the ATen op rounds it: x32 = float(x); a = max |x32|;
// s = (1 / max(a, 1e-5f)) * 127; xq = clamp(round_half_even(x32 * s), -128, 127); x_scale = 1 / s; and for kFake,
// instead of xq, fake = T(float(xq) * x_scale) (absmax_int8_fake_aten).  False (and that row left unwritten) where the
// row holds a NaN or an Inf: the caller then runs the ATen definition, whose NaN / Inf results (a NaN cast to int8)
// this does not imitate.
template <typename T, bool kFake>
__attribute__((optimize("fp-contract=off"))) bool absmax_rows(const T* x, int64_t K, int64_t m0, int64_t m1,
                                                               int8_t* xq, float* x_scale, T* fake) {
  for (int64_t m = m0; m < m1; ++m) {
    const T* xr = x + m * K;
    // max |x| as the largest of the magnitudes' bit patterns (they order as unsigned integers, NaN and Inf above
    // every finite value): one integer max that the compiler vectorizes, and the finiteness test with it
    uint32_t max_bits = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float v = static_cast<float>(xr[k]);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      bits &= 0x7fffffffu;
      max_bits = bits > max_bits ? bits : max_bits;
    }
    if (max_bits >= 0x7f800000u) return false;
    float a;
    std::memcpy(&a, &max_bits, 4);
    const float s = (1.0f / std::max(a, 1e-5f)) * 127.0f, xs = 1.0f / s;
    // round half to even as std::nearbyint, without its libm call (no SSE4.1 roundss in the baseline x86-64 target):
    // |x * s| <= 127 (plus an ulp or so), and adding then subtracting 1.5 * 2^23 rounds any |v| <= 2^22 to an
    // integer, ties to even, exactly
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
    for (int64_t k = 0; k < K; ++k) {
      const float v = static_cast<float>(xr[k]) * s;
      const float q = std::min(std::max((v + kRound) - kRound, -128.0f), 127.0f);
      if constexpr (kFake)
        fake[m * K + k] = static_cast<T>(q * xs);
      else
        xq[m * K + k] = static_cast<int8_t>(q);
    }
    if (x_scale != nullptr) x_scale[m] = xs;
  }
  return true;
}

// absmax_int8 (xq, x_scale) of x, or, for kFake, absmax_int8_fake (fake, undefined); undefined tensors where some
// row is not finite.
template <bool kFake>
std::tuple<at::Tensor, at::Tensor> absmax_int8_fused(const at::Tensor& x) {
  const at::Tensor xc = x.contiguous();
  const int64_t K = xc.size(-1), M = xc.numel() / K;
  at::Tensor out = at::empty(xc.sizes(), xc.options().dtype(kFake ? xc.scalar_type() : at::kChar));
  at::Tensor xs;
  if constexpr (!kFake) {
    std::vector<int64_t> sshape(xc.sizes().begin(), xc.sizes().end());
    sshape.back() = 1;
    xs = at::empty(sshape, xc.options().dtype(at::kFloat));
  }
  std::atomic<bool> finite{true};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xc.scalar_type(), "bitmm_absmax_int8", [&] {
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    int8_t* q = kFake ? nullptr : out.data_ptr<int8_t>();
    scalar_t* f = kFake ? out.data_ptr<scalar_t>() : nullptr;
    float* sp = kFake ? nullptr : xs.data_ptr<float>();
    at::parallel_for(0, M, std::max<int64_t>(1, 32768 / K), [&](int64_t m0, int64_t m1) {
      if (!absmax_rows<scalar_t, kFake>(xp, K, m0, m1, q, sp, f)) finite = false;
    });
  });
  if (!finite) return {at::Tensor(), at::Tensor()};
  return {out, xs};
}

std::tuple<at::Tensor, at::Tensor> absmax_int8_cpu(const at::Tensor& x) {
  check_absmax_int8("bitmm.quant.absmax_int8", x);
  auto [xq, xs] = absmax_int8_fused<false>(x);
  if (!xq.defined()) return absmax_int8_aten(x);
  return {xq, xs};
}

at::Tensor absmax_int8_fake_cpu(const at::Tensor& x) {
  check_absmax_int8("bitmm.quant.absmax_int8_fake", x);
  auto [fake, unused] = absmax_int8_fused<true>(x);
  if (!fake.defined()) return absmax_int8_fake_aten(x);
  return fake;
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, CPU, m) {
  m.impl("linear_a8", &linear_a8_cpu);
  m.impl("absmax_int8", &absmax_int8_cpu);
  m.impl("absmax_int8_fake", &absmax_int8_fake_cpu);
}

}  // namespace bitmm
