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
  // With prep only: the scale plane of a cpu_prepack_scales layout of s and u (cpu_prepack_format.h;
  // float32 (num_tiles(N), groups, 32)), read in place of s and u, or nullptr: then the kernel
  // gathers each tile's values from s and u per call.  uprep: its offset plane, or nullptr (no
  // offset: zeros, lookup::kZeroScales).
  const float* sprep = nullptr;
  const float* uprep = nullptr;
};

bool has_avx2();
// True when forward_avx2 handles the problem (AVX2 present, group size a multiple of 32).
bool avx2_forward_applies(const LinearProblem& p);
// Returns false when a scale or offset value it read (it reads every one, in float32) is NaN or
// +-Inf: the caller then raises check_scales_finite's error (the outputs are not to be used).
bool forward_avx2(const ForwardArgs& a);

// The same kernel with `vpermd` lookups on AVX-512F machines (forward_avx512.cpp): bitwise the
// same outputs; reads the cpu_prepack blob where one is given, else the packed words.  Off with
// BITMM_CPU_ISA=avx2.
bool has_avx512();
// cpu_isa_cap() >= 2: false under BITMM_CPU_ISA=avx2 or generic.
bool avx512_enabled();
bool avx512_forward_applies(const LinearProblem& p);
bool forward_avx512(const ForwardArgs& a);

// BITMM_CPU_ISA (read once): unset, every kernel this CPU supports; "avx2", no AVX-512 kernel; "generic", no SIMD
// kernel at all (A/B timing, and the tests that compare kernels bit for bit).  2, 1 or 0.
int cpu_isa_cap();

// linear_a8's integer sums from the packed words (a8_kernels.h; a8_avx512.cpp, a8_avx2.cpp):
// sums[m, n] = sum_k xq[m, k] * stored code[n, k] and row_sums[m] = sum_k xq[m, k], both exact in int32.
struct A8Args {
  const LinearProblem* p;
  const int8_t* xq;           // (M, K) contiguous
  const uint32_t* w;          // packed rows
  int64_t wpr;                // words per row
  int32_t* sums;              // (M, N)
  int32_t* row_sums;          // (M,)
};
// |sum| <= 3 * 128 * K must stay below 2^31.
constexpr int64_t kA8MaxK = ((int64_t{1} << 31) - 1) / (3 * 128);  // 5,592,405
bool has_avx512_vnni();
void a8_sums_avx512(const A8Args& a);
void a8_sums_avx2(const A8Args& a);
enum class A8Kernel { kGeneric, kAvx2, kAvx512Vnni };
// The kernel linear_a8 runs for K inputs in this process (CPU features, BITMM_CPU_ISA, K <= kA8MaxK).
A8Kernel a8_kernel(int64_t K);
const char* a8_kernel_name(A8Kernel k);  // "generic", "avx2", "avx512_vnni"

}  // namespace cpu
}  // namespace bitmm
