// The one place where every bitmm op schema is declared.  Backends register
// implementations in their own files (cpu/linear_cpu.cpp, cuda/linear_cuda.cpp);
// autograd.cpp registers the autograd kernels (C++, device-agnostic); Python adds
// the fake (meta) kernels in bitmm/ops.py.
#include <torch/library.h>

#include "backend.h"
#include "cpu/cpu_kernels.h"
#include "checks.h"

#ifndef BITMM_NO_PYTHON_MODULE  // defined by CMakeLists.txt: the C++ library needs no Python
#include <Python.h>


// Importing bitmm._C loads this library, which runs the TORCH_LIBRARY
// registrations below; no Python-visible functions are needed (ops are reached
// through torch.ops.bitmm.*).
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
#endif

namespace {
// Returns the previous setting, so Python can restore it (context manager).
int64_t set_backend(int64_t mode) {
  BITMM_CHECK_VALUE(mode >= 0 && mode <= 5,
                    "bitmm.set_backend: mode must be 0 (auto), 1 (addsub), 2 (tensorcore), 3 (dense), 4 (wgmma) or 5 "
                    "(digits), got ",
                    mode);
  return bitmm::backend_setting().exchange(mode);
}
int64_t get_backend() { return bitmm::backend_setting().load(); }
std::string last_kernel() { return bitmm::kKernelRanNames[bitmm::last_kernel_ran()]; }
std::string cpu_a8_kernel() { return bitmm::cpu::a8_kernel_name(bitmm::cpu::a8_kernel(1)); }
// The kernel of the float forward ops on CPU in this process for float32 / fp16 / bf16 x and group sizes
// that are multiples of 32 (the *_forward_applies conditions of cpu_kernels.h without the group-size
// one); float64 x and other group sizes always take the generic kernel.
std::string cpu_forward_kernel() {
  namespace c = bitmm::cpu;
  if (c::has_avx512() && c::avx512_enabled()) return "avx512";
  if (c::has_avx2() && c::cpu_isa_cap() >= 1) return "avx2";
  return "generic";
}
}  // namespace

TORCH_LIBRARY(bitmm, m) {
  // y = x @ (W_q * scale)^T + (x @ 1^T) * offset + bias, with W_q packed (see bitmm_format.h).
  m.def("ternary_linear(Tensor x, Tensor packed_w, Tensor scale, Tensor? offset=None, Tensor? bias=None) -> Tensor");
  m.def("binary_linear(Tensor x, Tensor packed_w, Tensor scale, Tensor? offset=None, Tensor? bias=None) -> Tensor");
  m.def("int2_linear(Tensor x, Tensor packed_w, Tensor scale, Tensor? offset=None, Tensor? bias=None) -> Tensor");
  // grad_x = grad_y @ (W_q * scale + offset) over the packed weight, for kind
  // 1 (binary), 2 (ternary), 3 (int2); K is the unpadded input width.
  m.def("linear_grad_x(Tensor grad_y, Tensor packed_w, Tensor scale, Tensor? offset, int kind, SymInt K) -> Tensor");
  // LoRA on the packed base, kind 1/2/3 as above: y = <kind>_linear(x, packed_w, scale, offset, bias)
  // + lora_scale * (x @ lora_a^T) @ lora_b^T; lora_a (r, K), lora_b (N, r), x's dtype or float32.
  m.def("lora_linear(Tensor x, Tensor packed_w, Tensor scale, Tensor? offset, Tensor? bias, Tensor lora_a, "
        "Tensor lora_b, int kind, float lora_scale=1.0) -> Tensor");
  // CPU only: the derived layout of csrc/cpu_prepack_format.h (uint8 blob, made once per
  // layer from packed_w of `kind` and true K), and the linear op reading it.  The result
  // equals <kind>_linear(x, packed_w, scale, offset, bias) bit for bit; packed_w is still
  // passed (shape checks, the fallback kernels, and grad_x through linear_grad_x).
  m.def("cpu_prepack(Tensor packed_w, int kind, SymInt K) -> Tensor");
  // ... and the derived layout of scale and offset (float32 (1 or 2, ceil(N / 32), G, 32), the same file), which
  // cpu_prepacked_linear reads as prepacked_scales instead of gathering them per call.
  m.def("cpu_prepack_scales(Tensor scale, Tensor? offset, SymInt N, SymInt K) -> Tensor");
  m.def("cpu_prepacked_linear(Tensor x, Tensor packed_w, Tensor prepacked, Tensor scale, Tensor? offset, "
        "Tensor? bias, int kind, Tensor? prepacked_scales=None) -> Tensor");
  // W2A8, int8 activations (BitNet's per-token absmax, bitmm.quant.absmax_int8): xq int8 (..., K), x_scale
  // (..., 1), so x ~ xq * x_scale; y = x_scale * (xq @ W_q^T * scale + (xq @ 1^T) * offset) + bias in out_dtype,
  // with the integer sums exact (int8 tensor cores through torch's _int_mm on CUDA where the shape allows).
  // Per tensor or per channel scale / offset only; kind 1/2/3 as above.  No gradient (int8 input).
  m.def("linear_a8(Tensor xq, Tensor x_scale, Tensor packed_w, Tensor scale, Tensor? offset, Tensor? bias, "
        "int kind, ScalarType out_dtype) -> Tensor");
  // BitNet's per-token absmax int8 quantization of float x (..., K), as bitmm.quant.absmax_int8 documents it:
  // s = 127 / max(|x|).clamp(min=1e-5) per row, in float32; xq = round(x * s).clamp(-128, 127) int8 (..., K) and
  // x_scale = 1 / s float32 (..., 1).  absmax_int8_fake: xq * x_scale in x's dtype (what QAT feeds forward).
  // One kernel on CUDA (the composite is ~10), the same bits as the composite on every device.  No gradient.
  m.def("absmax_int8(Tensor x) -> (Tensor, Tensor)");
  m.def("absmax_int8_fake(Tensor x) -> Tensor");
  // codes (N, K) integer tensor -> packed int32 (N, words_per_row); and back (as int8 codes).
  m.def("pack(Tensor codes, int kind) -> Tensor");
  m.def("unpack(Tensor packed, int kind, SymInt K) -> Tensor");
  // Kernel family for the CUDA linear ops (backend.h); process-wide, returns the previous mode.
  m.def("_set_backend(int mode) -> int", &set_backend);
  m.def("_get_backend() -> int", &get_backend);
  // The CUDA kernel family the last CUDA linear / linear_grad_x / linear_a8 call on this thread ran (backend.h
  // KernelRan): "none", "addsub", "tensorcore", "dense", "wgmma", "digits", "generic", "a8_fused", "a8_unfused".
  m.def("_last_kernel() -> str", &last_kernel);
  // The CPU kernel of linear_a8 in this process (cpu/cpu_kernels.h): "avx512_vnni", "avx2" or "generic" (an int8 copy
  // of the codes and a float matmul: slower than the float ops; also for K > 5,592,405).  PackedLinear.int8_matmul
  // asks it.
  m.def("_cpu_a8_kernel() -> str", &cpu_a8_kernel);
  // The CPU kernel of the float forward ops in this process: "avx512", "avx2" or "generic" (see cpu_forward_kernel);
  // `python -m bitmm info` and bench/cpu_bench.py print it.
  m.def("_cpu_forward_kernel() -> str", &cpu_forward_kernel);
}
