// Which CUDA kernel family the linear ops use (bitmm.set_backend in Python).
// A process-wide setting, read on every call; no torch headers.
#pragma once
#include <atomic>
#include <cstdint>

namespace bitmm {

enum class Backend : int64_t {
  kAuto = 0,        // pick by M, shape and dtype (rule in cuda/linear_cuda.cpp, README)
  kAddsub = 1,      // multiplication-free add/subtract kernels at every M
  kTensorCore = 2,  // tensor-core (mma) kernels wherever they apply (fp16 / bf16 x)
  kDense = 3,       // dequantize weight slices to x's dtype, then cuBLAS (large M)
  kWgmma = 4,       // Hopper warpgroup tensor-core kernel wherever it applies (sm_90a build, cc 9.0),
                    // else as kTensorCore
  kDigits = 5,      // forward with fp16 / bf16 x, per tensor / per channel scales, M <= kDigitsMaxM: x as four int8
                    // digits per row on the fused int8 tensor-core kernel (cuda/a8_fragments.h); else as kAuto
};

inline std::atomic<int64_t>& backend_setting() {
  static std::atomic<int64_t> v{static_cast<int64_t>(Backend::kAuto)};
  return v;
}
inline Backend current_backend() { return static_cast<Backend>(backend_setting().load()); }

// The CUDA kernel family that the last CUDA linear / linear_grad_x / linear_a8 call on this thread ran (the op
// `_last_kernel`, bitmm.backend.last_kernel).  A forced backend whose kernel declines a shape falls back silently to
// another family; the tests read this to check that the kernel they mean to test is the one that ran.  Per thread
// (a test's own calls; autograd's backward runs on another thread), one store per call.
enum class KernelRan : int64_t {
  kNone = 0,        // nothing launched (M = 0) or no CUDA call yet on this thread
  kAddsub = 1,      // add/subtract kernels (addsub_linear.cuh; grad_x.cu for linear_grad_x)
  kTensorCore = 2,  // mma.sync tensor-core kernels (tc_linear.cuh; tc_grad_x.cuh)
  kDense = 3,       // weights dequantized (dequant.cu) then cuBLAS
  kWgmma = 4,       // Hopper warpgroup kernel (wg_linear.cuh)
  kDigits = 5,      // x as four int8 digits on the fused int8 kernel (a8_linear.cu)
  kGeneric = 6,     // the generic kernels: fp64 x or groups not a multiple of 32 (generic.cu)
  kA8Fused = 7,     // linear_a8: the fused int8 kernel (a8_linear.cu)
  kA8Unfused = 8,   // linear_a8: codes unpacked to int8, torch's int8 GEMM, then the epilogue
};
inline constexpr const char* kKernelRanNames[] = {"none",    "addsub",  "tensorcore", "dense",     "wgmma",
                                                  "digits",  "generic", "a8_fused",   "a8_unfused"};
inline int64_t& last_kernel_ran() {
  thread_local int64_t v = 0;
  return v;
}
inline void note_kernel_ran(KernelRan k) { last_kernel_ran() = static_cast<int64_t>(k); }

}  // namespace bitmm
