// Autograd kernels of the bitmm linear ops (ternary / binary / int2_linear and
// lora_linear), in C++ so that an eager call never runs Python between the op
// call and the backend kernel: a Python autograd kernel (torch.library.register_autograd)
// ran on every call, under torch.no_grad() too, and was 32-39% of an eager op
// call's host instructions (bench/NOTES.md, "Host overhead (eager)").  Without a
// gradient to record, these kernels go straight to the backend kernel.
//
// Device-agnostic (no CUDA header): the forward redispatches below autograd to
// whatever backend kernel the inputs select, and the backward calls other bitmm
// ops and ATen ops through the dispatcher, so the same file serves the CPU-only
// and the CUDA builds, and torch.compile traces through it (the fake kernels stay
// in Python, bitmm/ops.py).
//
// Gradients, as the Python formulas they replace:
//   <kind>_linear:  grad_x    = linear_grad_x(grad, packed_w, scale, offset, kind, K)
//                   grad_bias = grad summed over all leading dims, in bias's dtype
//   lora_linear:    with g = grad (M, N), x (M, K), s = lora_scale, gB = g @ lora_b (M, r),
//                   accumulated in float32 (float64 for float64 x):
//                   grad_x      = linear_grad_x(g) + s * gB @ lora_a
//                   grad_lora_a = s * gB^T @ x
//                   grad_lora_b = s * g^T @ (x @ lora_a^T)
//                   grad_bias   = sum_m g
//   cpu_prepacked_linear: as <kind>_linear (grad_x through linear_grad_x on packed_w;
//                   prepacked is a derived copy of packed_w and gets no gradient)
//   linear_a8:      grad_bias = grad summed over all leading dims (xq is int8; x_scale, scale, offset constants)
//   linear_grad_x:  grad_grad_y = <kind>_linear(grad, packed_w, scale, offset)  (it is
//                   linear in grad_y), so double and higher backward work: the
//                   backward formulas above are differentiable ops.
//   scale, offset (<kind>_linear, cpu_prepacked_linear, lora_linear; only where they require grad):
//                   with P = grad^T x (N, K) and v the code values, grad_scale = the sum of P * v over each
//                   element's range of K, grad_offset = that of P (scale_offset_grads).
// packed_w (integer) gets no gradient; linear_a8's scale / offset / x_scale neither (constants there).
//   linear_grad_x's scale / offset (only where they require grad): scale_offset_grads with grad = grad_y and x = grad
//                   (grad_x is W^T applied to grad_y: the same bilinear form).
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <optional>

#include "bitmm_format.h"

namespace bitmm {
namespace autograd_impl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = std::optional<at::Tensor>;

// The backward formulas run with autocast excluded, as the ops' forward does (csrc/autocast.cpp): on CPU the
// engine runs them on the caller's thread, so a backward called inside an autocast region would otherwise take
// its matmuls in bfloat16.
struct NoAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{c10::autocast_dispatch_keyset};
};

using LinearSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                             const OptTensor&);
using GradXSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&, int64_t,
                            c10::SymInt);
using LoraSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                           const OptTensor&, const at::Tensor&, const at::Tensor&, int64_t, double);

using PrepackedSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                const OptTensor&, const OptTensor&, int64_t, const OptTensor&);

// Operator handles, looked up once (the schemas are defined by csrc/ops.cpp, which
// has registered them before any kernel of this file can run).
template <Kind kind>
const c10::TypedOperatorHandle<LinearSig>& linear_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(kind == Kind::kTernary  ? "bitmm::ternary_linear"
                                                : kind == Kind::kBinary ? "bitmm::binary_linear"
                                                                        : "bitmm::int2_linear",
                                                "")
                             .typed<LinearSig>();
  return op;
}
const c10::TypedOperatorHandle<GradXSig>& grad_x_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("bitmm::linear_grad_x", "").typed<GradXSig>();
  return op;
}
const c10::TypedOperatorHandle<PrepackedSig>& prepacked_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("bitmm::cpu_prepacked_linear", "").typed<PrepackedSig>();
  return op;
}
const c10::TypedOperatorHandle<LoraSig>& lora_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("bitmm::lora_linear", "").typed<LoraSig>();
  return op;
}

using UnpackSig = at::Tensor(const at::Tensor&, int64_t, c10::SymInt);
const c10::TypedOperatorHandle<UnpackSig>& unpack_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("bitmm::unpack", "").typed<UnpackSig>();
  return op;
}

inline bool requires_grad(const OptTensor& t) { return t.has_value() && t->defined() && t->requires_grad(); }
inline bool present(const OptTensor& t) { return t.has_value() && t->defined(); }
inline OptTensor optional_of(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

// needs_input_grad() counts autograd edges, one per tensor argument that is
// present: an absent optional tensor (offset=None, bias=None) has none, so the
// edges after it shift down.  Edge of argument `arg`, given which optionals before
// it are present.
inline size_t edge(size_t arg, bool has_offset, bool has_bias, size_t offset_arg, size_t bias_arg) {
  size_t e = arg;
  if (arg > offset_arg && !has_offset) --e;
  if (arg > bias_arg && !has_bias) --e;
  return e;
}

// Sum of grad over all leading dims, (N,), cast to the bias dtype.
inline at::Tensor bias_grad(const at::Tensor& grad, const c10::IValue& bias_dtype) {
  const int64_t dim0[] = {0};
  return grad.reshape_symint({c10::SymInt(-1), grad.sym_size(-1)})
      .sum(at::IntArrayRef(dim0))
      .to(bias_dtype.toScalarType());
}

// ---------------------------------------------------------------------------
// ternary / binary / int2 _linear(x, packed_w, scale, offset?, bias?)
// ---------------------------------------------------------------------------
// What the linear functions save for their backward: the operands of linear_grad_x, K,
// and which optional inputs were given.
inline void save_for_grad_x(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& packed_w,
                            const at::Tensor& scale, const OptTensor& offset, const OptTensor& bias) {
  // (x only where scale or offset wants a gradient: scale_offset_grads)
  const bool quant_grad = scale.requires_grad() || requires_grad(offset);
  ctx->save_for_backward({packed_w, scale, present(offset) ? *offset : at::Tensor(), quant_grad ? x : at::Tensor()});
  ctx->saved_data["K"] = x.sym_size(-1);
  ctx->saved_data["has_offset"] = present(offset);
  ctx->saved_data["bias_dtype"] = present(bias) ? c10::IValue(bias->scalar_type()) : c10::IValue();
}

// Gradients of scale and offset, for fine-tuning the quantization parameters with the codes frozen (PEQA-style
// scale tuning): W = v * s + u over each scale / offset element's range of K, so with P = grad^T x (N, K), summed
// over all leading dims, grad_s = the sum of P * v over each element's range and grad_u = that of P.  A dense (N, K)
// product in float32 (float64 for float64 x), taken only where scale / offset requires grad (frozen quantization
// parameters, the common case, cost nothing).
struct ScaleOffsetGrads {
  at::Tensor scale, offset;
};
inline ScaleOffsetGrads scale_offset_grads(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& packed_w,
                                           const at::Tensor& scale, const OptTensor& offset, int64_t kind, bool want_s,
                                           bool want_u) {
  ScaleOffsetGrads r;
  if (!want_s && !want_u) return r;
  const c10::SymInt K = x.sym_size(-1), N = grad.sym_size(-1);
  const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor P = grad.reshape_symint({c10::SymInt(-1), N}).to(acc).t().matmul(
      x.reshape_symint({c10::SymInt(-1), K}).to(acc));
  auto per_element = [&](const at::Tensor& Q, const at::Tensor& like) {  // Q (N, K) summed to like's layout
    if (like.dim() == 0) return Q.sum().to(like.scalar_type());
    if (like.dim() == 1) return at::sum(Q, {1}).to(like.scalar_type());
    const c10::SymInt g = like.sym_size(1);  // (N, g): g groups along K ((N, 1): per channel)
    return at::sum(Q.view_symint({N, g, K / g}), {2}).to(like.scalar_type());
  };
  if (want_s) {
    // the values of the stored codes: binary b, ternary t (stored t + 1), int2 q - 1 (stored q)
    const int64_t shift = kind == static_cast<int64_t>(Kind::kBinary) ? 0 : 1;
    const at::Tensor v = unpack_op().call(packed_w, kind, K).to(acc).sub(shift);
    r.scale = per_element(P.mul(v), scale);
  }
  if (want_u) r.offset = per_element(P, *offset);
  return r;
}

// Their backward: grad_x = linear_grad_x(grad_y, packed_w, scale, offset), the bias gradient, and scale / offset
// gradients where asked (scale_offset_grads).  scale_arg / offset_arg / bias_arg: their positions among the
// forward's inputs.
struct LinearGrads {
  at::Tensor x, scale, offset, bias;
};
inline LinearGrads linear_grads(AutogradContext* ctx, const variable_list& grads, int64_t kind, size_t scale_arg,
                                size_t offset_arg, size_t bias_arg) {
  const variable_list saved = ctx->get_saved_variables();  // packed_w, scale, offset, x (or undefined)
  const at::Tensor& grad = grads[0];
  const bool has_offset = ctx->saved_data["has_offset"].toBool();
  const c10::IValue& bias_dtype = ctx->saved_data["bias_dtype"];
  const bool has_bias = !bias_dtype.isNone();
  LinearGrads r;
  if (ctx->needs_input_grad(0)) {
    r.x = grad_x_op().call(grad, saved[0], saved[1], optional_of(saved[2]), kind, ctx->saved_data["K"].toSymInt());
  }
  if (has_bias && ctx->needs_input_grad(edge(bias_arg, has_offset, has_bias, offset_arg, bias_arg))) {
    r.bias = bias_grad(grad, bias_dtype);
  }
  if (saved[3].defined()) {
    const bool want_s = ctx->needs_input_grad(scale_arg);  // (no optional argument before scale)
    const bool want_u = has_offset && ctx->needs_input_grad(offset_arg);
    const ScaleOffsetGrads q =
        scale_offset_grads(grad, saved[3], saved[0], saved[1], optional_of(saved[2]), kind, want_s, want_u);
    r.scale = q.scale;
    r.offset = q.offset;
  }
  return r;
}

// A required tensor passed as None (undefined) skips the autograd function: the op's own checks then name it
// (torch::autograd::Function's apply failed on it with "tensor does not have a device").
template <class... T>
inline bool all_defined(const T&... t) {
  return (t.defined() && ...);
}

template <class Derived, Kind kind>
struct LinearFunction : torch::autograd::Function<Derived> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& packed_w,
                            const at::Tensor& scale, const OptTensor& offset, const OptTensor& bias) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = linear_op<kind>().call(x, packed_w, scale, offset, bias);  // checks the arguments
    }
    save_for_grad_x(ctx, x, packed_w, scale, offset, bias);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NoAutocast no_autocast;  // (csrc/autocast.cpp: the formulas in the forward's dtypes)
    const LinearGrads g = linear_grads(ctx, grads, static_cast<int64_t>(kind), 2, 3, 4);
    return {g.x, at::Tensor(), g.scale, g.offset, g.bias};
  }
};

// One named class per op: the autograd node's name (y.grad_fn.name()) names the op.
struct TernaryLinearBackward : LinearFunction<TernaryLinearBackward, Kind::kTernary> {};
struct BinaryLinearBackward : LinearFunction<BinaryLinearBackward, Kind::kBinary> {};
struct Int2LinearBackward : LinearFunction<Int2LinearBackward, Kind::kInt2> {};

// The Autograd kernel.  Without a gradient to record (grad mode off, or no input
// requiring grad) it goes straight to the backend kernel: no autograd node.
template <class F, Kind kind>
at::Tensor linear_autograd(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                           const OptTensor& offset, const OptTensor& bias) {
  if (at::GradMode::is_enabled() && all_defined(x, packed_w, scale) &&
      (x.requires_grad() || packed_w.requires_grad() || scale.requires_grad() ||
                                     requires_grad(offset) || requires_grad(bias))) {
    return F::apply(x, packed_w, scale, offset, bias);
  }
  at::AutoDispatchBelowADInplaceOrView below;
  return linear_op<kind>().call(x, packed_w, scale, offset, bias);
}

// ---------------------------------------------------------------------------
// cpu_prepacked_linear(x, packed_w, prepacked, scale, offset?, bias?, kind, prepacked_scales?): the
// same function of x as <kind>_linear(x, packed_w, scale, offset, bias), so the same gradients (none
// for the two derived layouts).
// ---------------------------------------------------------------------------
struct CpuPrepackedLinearBackward : torch::autograd::Function<CpuPrepackedLinearBackward> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& packed_w,
                            const at::Tensor& prepacked, const at::Tensor& scale, const OptTensor& offset,
                            const OptTensor& bias, int64_t kind, const OptTensor& prepacked_scales) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = prepacked_op().call(x, packed_w, prepacked, scale, offset, bias, kind, prepacked_scales);  // checks them
    }
    save_for_grad_x(ctx, x, packed_w, scale, offset, bias);
    ctx->saved_data["kind"] = kind;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NoAutocast no_autocast;  // (csrc/autocast.cpp: the formulas in the forward's dtypes)
    const LinearGrads g = linear_grads(ctx, grads, ctx->saved_data["kind"].toInt(), 3, 4, 5);
    return {g.x, at::Tensor(), at::Tensor(), g.scale, g.offset, g.bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor prepacked_autograd(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& prepacked,
                              const at::Tensor& scale, const OptTensor& offset, const OptTensor& bias, int64_t kind,
                              const OptTensor& prepacked_scales) {
  if (at::GradMode::is_enabled() && all_defined(x, packed_w, prepacked, scale) &&
      (x.requires_grad() || packed_w.requires_grad() || prepacked.requires_grad() ||
                                     scale.requires_grad() || requires_grad(offset) || requires_grad(bias) ||
                                     requires_grad(prepacked_scales))) {
    return CpuPrepackedLinearBackward::apply(x, packed_w, prepacked, scale, offset, bias, kind, prepacked_scales);
  }
  at::AutoDispatchBelowADInplaceOrView below;
  return prepacked_op().call(x, packed_w, prepacked, scale, offset, bias, kind, prepacked_scales);
}

// ---------------------------------------------------------------------------
// linear_grad_x(grad_y, packed_w, scale, offset?, kind, K) = grad_y @ W, W = v * scale
// + offset (N, K): linear in grad_y, so its own gradient is h @ W^T, the forward op
// of `kind` on h.  This makes double (and higher) backward of every op here work.
// ---------------------------------------------------------------------------
at::Tensor call_linear(int64_t kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                       const OptTensor& offset) {
  switch (kind) {
    case static_cast<int64_t>(Kind::kTernary): return linear_op<Kind::kTernary>().call(x, packed_w, scale, offset, {});
    case static_cast<int64_t>(Kind::kBinary): return linear_op<Kind::kBinary>().call(x, packed_w, scale, offset, {});
    default: return linear_op<Kind::kInt2>().call(x, packed_w, scale, offset, {});
  }
}

struct LinearGradXBackward : torch::autograd::Function<LinearGradXBackward> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_y, const at::Tensor& packed_w,
                            const at::Tensor& scale, const OptTensor& offset, int64_t kind, c10::SymInt K) {
    at::Tensor gx;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      gx = grad_x_op().call(grad_y, packed_w, scale, offset, kind, std::move(K));  // checks kind and the rest
    }
    // (grad_y only where scale or offset wants a gradient: a gradient penalty on grad_x with trainable scales)
    const bool quant_grad = scale.requires_grad() || requires_grad(offset);
    ctx->save_for_backward({packed_w, scale, present(offset) ? *offset : at::Tensor(),
                            quant_grad ? grad_y : at::Tensor()});
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["has_offset"] = present(offset);
    return gx;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NoAutocast no_autocast;  // (csrc/autocast.cpp: the formulas in the forward's dtypes)
    const variable_list saved = ctx->get_saved_variables();  // packed_w, scale, offset, grad_y (or undefined)
    const int64_t kind = ctx->saved_data["kind"].toInt();
    at::Tensor grad_grad_y;
    if (ctx->needs_input_grad(0)) {
      grad_grad_y = call_linear(kind, grads[0], saved[0], saved[1], optional_of(saved[2]));
    }
    // grad_x[m, k] = sum_n grad_y[m, n] (v[n, k] s[n, g(k)] + u[n, g(k)]): for an upstream h (M, K) its scale /
    // offset gradients are the forward op's with x = h and grad = grad_y (scale_offset_grads(grad_y, h, ...))
    at::Tensor grad_scale, grad_offset;
    if (saved[3].defined()) {
      const bool want_s = ctx->needs_input_grad(2);
      const bool want_u = ctx->saved_data["has_offset"].toBool() && ctx->needs_input_grad(3);
      const ScaleOffsetGrads q =
          scale_offset_grads(saved[3], grads[0], saved[0], saved[1], optional_of(saved[2]), kind, want_s, want_u);
      grad_scale = q.scale;
      grad_offset = q.offset;
    }
    return {grad_grad_y, at::Tensor(), grad_scale, grad_offset, at::Tensor(), at::Tensor()};
  }
};

at::Tensor grad_x_autograd(const at::Tensor& grad_y, const at::Tensor& packed_w, const at::Tensor& scale,
                           const OptTensor& offset, int64_t kind, c10::SymInt K) {
  if (at::GradMode::is_enabled() && all_defined(grad_y, packed_w, scale) &&
      (grad_y.requires_grad() || packed_w.requires_grad() || scale.requires_grad() || requires_grad(offset))) {
    return LinearGradXBackward::apply(grad_y, packed_w, scale, offset, kind, std::move(K));
  }
  at::AutoDispatchBelowADInplaceOrView below;
  return grad_x_op().call(grad_y, packed_w, scale, offset, kind, std::move(K));
}

// ---------------------------------------------------------------------------
// lora_linear(x, packed_w, scale, offset?, bias?, lora_a, lora_b, kind, lora_scale)
// ---------------------------------------------------------------------------
struct LoraLinearBackward : torch::autograd::Function<LoraLinearBackward> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& packed_w,
                            const at::Tensor& scale, const OptTensor& offset, const OptTensor& bias,
                            const at::Tensor& lora_a, const at::Tensor& lora_b, int64_t kind, double lora_scale) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = lora_op().call(x, packed_w, scale, offset, bias, lora_a, lora_b, kind, lora_scale);
    }
    ctx->save_for_backward({x, packed_w, scale, present(offset) ? *offset : at::Tensor(), lora_a, lora_b});
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["lora_scale"] = lora_scale;
    ctx->saved_data["has_offset"] = present(offset);
    ctx->saved_data["bias_dtype"] = present(bias) ? c10::IValue(bias->scalar_type()) : c10::IValue();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NoAutocast no_autocast;  // (csrc/autocast.cpp: the formulas in the forward's dtypes)
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &packed_w = saved[1], &scale = saved[2], &lora_a = saved[4],
                     &lora_b = saved[5];
    const OptTensor offset = optional_of(saved[3]);
    const at::Tensor& grad = grads[0];
    const double s = ctx->saved_data["lora_scale"].toDouble();
    const bool has_offset = ctx->saved_data["has_offset"].toBool();
    const c10::IValue& bias_dtype = ctx->saved_data["bias_dtype"];
    const bool has_bias = !bias_dtype.isNone();
    auto needs = [&](size_t arg) { return ctx->needs_input_grad(edge(arg, has_offset, has_bias, 3, 4)); };
    const bool need_x = needs(0), need_bias = has_bias && needs(4), need_a = needs(5), need_b = needs(6);
    const ScaleOffsetGrads q = scale_offset_grads(grad, x, packed_w, scale, offset, ctx->saved_data["kind"].toInt(),
                                                  needs(2), has_offset && needs(3));

    const c10::SymInt K = x.sym_size(-1), N = grad.sym_size(-1);
    const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor g2 = grad.reshape_symint({c10::SymInt(-1), N}).to(acc);
    const at::Tensor a = lora_a.to(acc);
    at::Tensor gb;  // (M, r)
    if (need_x || need_a) gb = g2.matmul(lora_b.to(acc));
    at::Tensor grad_x, grad_bias, grad_a, grad_b;
    if (need_x) {
      grad_x = grad_x_op().call(grad, packed_w, scale, offset, ctx->saved_data["kind"].toInt(), K);
      grad_x = grad_x.reshape_symint({c10::SymInt(-1), K}).to(acc).add(gb.matmul(a).mul(s))
                   .to(x.scalar_type())
                   .reshape_symint(x.sym_sizes());
    }
    if (need_a || need_b) {
      const at::Tensor x2 = x.reshape_symint({c10::SymInt(-1), K}).to(acc);
      if (need_a) grad_a = gb.t().matmul(x2).mul(s).to(lora_a.scalar_type());
      if (need_b) grad_b = g2.t().matmul(x2.matmul(a.t())).mul(s).to(lora_b.scalar_type());
    }
    if (need_bias) grad_bias = bias_grad(grad, bias_dtype);
    return {grad_x, at::Tensor(), q.scale, q.offset, grad_bias, grad_a, grad_b, at::Tensor(), at::Tensor()};
  }
};

at::Tensor lora_autograd(const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                         const OptTensor& offset, const OptTensor& bias, const at::Tensor& lora_a,
                         const at::Tensor& lora_b, int64_t kind, double lora_scale) {
  if (at::GradMode::is_enabled() && all_defined(x, packed_w, scale, lora_a, lora_b) &&
      (x.requires_grad() || packed_w.requires_grad() || scale.requires_grad() || requires_grad(offset) ||
       requires_grad(bias) || lora_a.requires_grad() || lora_b.requires_grad())) {
    return LoraLinearBackward::apply(x, packed_w, scale, offset, bias, lora_a, lora_b, kind, lora_scale);
  }
  at::AutoDispatchBelowADInplaceOrView below;
  return lora_op().call(x, packed_w, scale, offset, bias, lora_a, lora_b, kind, lora_scale);
}

// ---------------------------------------------------------------------------
// linear_a8(xq, x_scale, packed_w, scale, offset?, bias?, kind, out_dtype): W2A8.  xq is int8 (no gradient);
// x_scale, scale and offset are quantization parameters, constants as scale / offset are for the other ops; bias
// gets grad summed over the rows.  (Without this kernel the CPU's ATen epilogue would record a graph for them and
// the CUDA kernel none: device-dependent gradients.)
// ---------------------------------------------------------------------------
using A8Sig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                         const OptTensor&, int64_t, at::ScalarType);
const c10::TypedOperatorHandle<A8Sig>& a8_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("bitmm::linear_a8", "").typed<A8Sig>();
  return op;
}

struct LinearA8Backward : torch::autograd::Function<LinearA8Backward> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& xq, const at::Tensor& x_scale,
                            const at::Tensor& packed_w, const at::Tensor& scale, const OptTensor& offset,
                            const OptTensor& bias, int64_t kind, at::ScalarType out_dtype) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = a8_op().call(xq, x_scale, packed_w, scale, offset, bias, kind, out_dtype);
    }
    ctx->saved_data["has_offset"] = present(offset);
    ctx->saved_data["bias_dtype"] = present(bias) ? c10::IValue(bias->scalar_type()) : c10::IValue();
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const NoAutocast no_autocast;  // (csrc/autocast.cpp: the formulas in the forward's dtypes)
    const bool has_offset = ctx->saved_data["has_offset"].toBool();
    const c10::IValue& bias_dtype = ctx->saved_data["bias_dtype"];
    const bool has_bias = !bias_dtype.isNone();
    at::Tensor grad_bias;
    if (has_bias && ctx->needs_input_grad(edge(5, has_offset, has_bias, 4, 5))) grad_bias = bias_grad(grads[0], bias_dtype);
    return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), grad_bias, at::Tensor(), at::Tensor()};
  }
};

at::Tensor a8_autograd(const at::Tensor& xq, const at::Tensor& x_scale, const at::Tensor& packed_w,
                       const at::Tensor& scale, const OptTensor& offset, const OptTensor& bias, int64_t kind,
                       at::ScalarType out_dtype) {
  if (at::GradMode::is_enabled() && all_defined(xq, x_scale, packed_w, scale) &&
      (x_scale.requires_grad() || scale.requires_grad() || requires_grad(offset) ||
                                     requires_grad(bias))) {
    return LinearA8Backward::apply(xq, x_scale, packed_w, scale, offset, bias, kind, out_dtype);
  }
  at::AutoDispatchBelowADInplaceOrView below;
  return a8_op().call(xq, x_scale, packed_w, scale, offset, bias, kind, out_dtype);
}

}  // namespace autograd_impl

TORCH_LIBRARY_IMPL(bitmm, Autograd, m) {
  using namespace autograd_impl;
  m.impl("ternary_linear", TORCH_FN((linear_autograd<TernaryLinearBackward, Kind::kTernary>)));
  m.impl("binary_linear", TORCH_FN((linear_autograd<BinaryLinearBackward, Kind::kBinary>)));
  m.impl("int2_linear", TORCH_FN((linear_autograd<Int2LinearBackward, Kind::kInt2>)));
  m.impl("linear_grad_x", TORCH_FN(grad_x_autograd));
  m.impl("lora_linear", TORCH_FN(lora_autograd));
  m.impl("cpu_prepacked_linear", TORCH_FN(prepacked_autograd));
  m.impl("linear_a8", TORCH_FN(a8_autograd));
}

}  // namespace bitmm
