// Autocast and the bitmm ops: each op computes in the dtypes it is given, inside an autocast region as
// outside it (output in x's dtype, or out_dtype), the way autocast leaves torch's own "run in the input
// dtype" ops alone.  Without these kernels the autocast keys fell through to the ops' implementations,
// whose own ATen calls then ran under autocast: lora_linear's adapter product on CPU came out in bf16
// and addmm_ raised "mat1 and mat2 must have the same dtype"; on CUDA the dense path's at::mm returned
// fp16 for fp32 x; linear_a8's float matmul of integer codes (its CPU fallback) lost its exact sums.
// Casting x to the autocast dtype is the caller's choice (a layer may do it); the ops never do it silently.
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

namespace bitmm {
namespace {

// Boxed: the same op again from the top of the dispatcher with every autocast key excluded.
void without_autocast(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  op.callBoxed(stack);
}

// Every op with floating-point inputs or internal float math (pack / unpack / cpu_prepack have neither).
template <typename Module> void exempt_all(Module& m) {
  for (const char* name : {"ternary_linear", "binary_linear", "int2_linear", "linear_grad_x", "lora_linear",
                           "cpu_prepack_scales", "cpu_prepacked_linear", "linear_a8", "absmax_int8",
                           "absmax_int8_fake"})
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<&without_autocast>());
}

}  // namespace

TORCH_LIBRARY_IMPL(bitmm, AutocastCPU, m) { exempt_all(m); }
TORCH_LIBRARY_IMPL(bitmm, AutocastCUDA, m) { exempt_all(m); }

}  // namespace bitmm
