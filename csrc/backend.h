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

}  // namespace bitmm
