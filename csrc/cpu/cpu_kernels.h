// Declarations shared by the CPU kernel files (no torch tensors here).
#pragma once
#include <cstdint>

#include "../bitmm_format.h"
#include "../checks.h"

namespace bitmm {
namespace cpu {

// Dense views of scale / offset in the accumulation type T: value(n, g) = ptr[n*sn + g*sg].
template <typename T>
struct ScaleView {
  const T* ptr = nullptr;
  int64_t sn = 0, sg = 0;
  T at(int64_t n, int64_t g) const { return ptr ? ptr[n * sn + g * sg] : T(0); }
};

// Arguments of the AVX2 and AVX-512 forward kernels (forward_avx2.cpp, forward_avx512.cpp).
struct ForwardArgs {
  const LinearProblem* p;
  const uint32_t* w;          // packed rows
  int64_t wpr;                // words per row
  const float* x;             // (M, K) fp32 contiguous activations
  float* y;                   // (M, N) fp32 output
  ScaleView<float> s, u;      // scale, offset (u.ptr == nullptr: none)
  // Payload of a cpu_prepack blob of w (cpu_prepack_format.h), or nullptr: then the
  // kernel transposes w's words into index vectors itself, per call.
  const uint8_t* prep = nullptr;
};

bool has_avx2();
// True when forward_avx2 handles the problem (AVX2 present, group size a multiple of 32).
bool avx2_forward_applies(const LinearProblem& p);
// Returns false when a scale or offset value it read (it reads every one, in float32) is NaN or
// +-Inf: the caller then raises check_scales_finite's error (the outputs are not to be used).
bool forward_avx2(const ForwardArgs& a);

// The same kernel with `vpermd` lookups on AVX-512F machines (forward_avx512.cpp): bitwise the
// same outputs; reads the packed words (not a cpu_prepack blob).  Off with BITMM_CPU_ISA=avx2.
bool has_avx512();
bool avx512_forward_applies(const LinearProblem& p);
bool forward_avx512(const ForwardArgs& a);

}  // namespace cpu
}  // namespace bitmm
