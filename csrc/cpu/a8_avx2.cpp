// linear_a8's integer sums on AVX2 CPUs: a8_kernels.h with 8 dword lanes, the multiply-add as `vpmaddubsw` (u8 codes
// x s8 inputs, pairs summed into int16: |2 * 3 * 128| = 768, no saturation) + `vpmaddwd` by 1 (pairs into int32).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "cpu_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BITMM_X86 1
#endif

namespace bitmm {
namespace cpu {

#ifdef BITMM_X86
namespace {

#define BITMM_A8_TARGET __attribute__((target("avx2,fma")))
#define BITMM_A8_OP BITMM_A8_TARGET __attribute__((always_inline)) static inline

struct Isa {
  using V = __m256i;
  static constexpr int kLanes = 8;
  // the accumulator only sees a 1-cycle vpaddd (and AVX2's 16 registers hold no second set)
  static constexpr bool kSplitChains = false;
  BITMM_A8_OP V zero() { return _mm256_setzero_si256(); }
  BITMM_A8_OP V set1(int32_t v) { return _mm256_set1_epi32(v); }
  BITMM_A8_OP V load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  BITMM_A8_OP V loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  BITMM_A8_OP void store(void* p, V v) { _mm256_store_si256(static_cast<__m256i*>(p), v); }
  BITMM_A8_OP V add(V a, V b) { return _mm256_add_epi32(a, b); }
  BITMM_A8_OP V band(V a, V b) { return _mm256_and_si256(a, b); }
  BITMM_A8_OP V srli32(V a, int n) { return _mm256_srli_epi32(a, n); }
  BITMM_A8_OP V slli32(V a, int n) { return _mm256_slli_epi32(a, n); }
  BITMM_A8_OP V load_words(const uint32_t* p, int64_t valid) {
    if (valid >= kLanes) return loadu(p);
    // vpmaskmovd reads only the lanes whose mask is set (no fault past the end of a row)
    const V mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
  }
  BITMM_A8_OP V select(V a, V b, V m) { return _mm256_or_si256(_mm256_and_si256(a, m), _mm256_andnot_si256(m, b)); }
  // as a8_avx512.cpp's: E in the low dword of each (lo, hi) qword, O in the high one
  BITMM_A8_OP V planes_to_codes(V q) {
    const V other = _mm256_blend_epi32(_mm256_srli_epi64(q, 31), _mm256_slli_epi64(q, 31), 0xAA);
    return select(q, other, _mm256_set1_epi64x(static_cast<long long>(0xAAAAAAAA55555555ull)));
  }
  BITMM_A8_OP V dot(V acc, V codes, V x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), _mm256_set1_epi16(1)));
  }
  BITMM_A8_OP int32_t reduce(V v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
  // 8 x 8 dwords: 3 rounds of 8 shuffles
  BITMM_A8_OP void transpose(V r[8]) {
    V t[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // r[4i + j], 128-bit lane L: word 4L + j of rows 4i .. 4i + 3
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      r[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
      r[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
      r[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
      r[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      // word j: lane 0 of r[j] (rows 0-3) and of r[4 + j] (rows 4-7); word 4 + j: their lane 1
      t[j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x20);
      t[4 + j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x31);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) r[i] = t[i];
  }
};

#include "a8_kernels.h"

}  // namespace

// row_major up to 6 rows of x (its largest instance), as on AVX-512: faster than row_lanes at every M <= 6 here too
// (session 31, this kernel on a Zen 4 under BITMM_CPU_ISA=avx2: ternary 4096^2 M = 6 811-1011 us against 1112-1290;
// bench/NOTES.md "CPU linear_a8")
void a8_sums_avx2(const A8Args& a) { a8::a8_sums<6>(a); }

#else
void a8_sums_avx2(const A8Args&) {}
#endif

A8Kernel a8_kernel(int64_t K) {
  if (K > kA8MaxK) return A8Kernel::kGeneric;
  if (has_avx512_vnni() && cpu_isa_cap() >= 2) return A8Kernel::kAvx512Vnni;
  if (has_avx2() && cpu_isa_cap() >= 1) return A8Kernel::kAvx2;
  return A8Kernel::kGeneric;
}

const char* a8_kernel_name(A8Kernel k) {
  return k == A8Kernel::kAvx512Vnni ? "avx512_vnni" : (k == A8Kernel::kAvx2 ? "avx2" : "generic");
}

}  // namespace cpu
}  // namespace bitmm
