// linear_a8's integer sums on AVX-512 VNNI CPUs: a8_kernels.h with 16 dword lanes and `vpdpbusd`.
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
#include "transpose_avx512.h"
// GCC 12's own _mm512_reduce_add_epi32 extracts from a deliberately undefined vector
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace bitmm {
namespace cpu {

#ifdef BITMM_X86
namespace {

#define BITMM_A8_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define BITMM_A8_OP BITMM_A8_TARGET __attribute__((always_inline)) static inline

struct Isa {
  using V = __m512i;
  static constexpr int kLanes = 16;
  static constexpr bool kSplitChains = true;  // vpdpbusd: ~4-5 cycles on its accumulator
  BITMM_A8_OP V zero() { return _mm512_setzero_si512(); }
  BITMM_A8_OP V set1(int32_t v) { return _mm512_set1_epi32(v); }
  BITMM_A8_OP V load(const void* p) { return _mm512_load_si512(p); }
  BITMM_A8_OP V loadu(const void* p) { return _mm512_loadu_si512(p); }
  BITMM_A8_OP void store(void* p, V v) { _mm512_store_si512(p, v); }
  BITMM_A8_OP V add(V a, V b) { return _mm512_add_epi32(a, b); }
  BITMM_A8_OP V band(V a, V b) { return _mm512_and_si512(a, b); }
  BITMM_A8_OP V srli32(V a, int n) { return _mm512_srli_epi32(a, n); }
  BITMM_A8_OP V slli32(V a, int n) { return _mm512_slli_epi32(a, n); }
  BITMM_A8_OP V load_words(const uint32_t* p, int64_t valid) {
    // masked-off lanes are not read (no fault past the end of a row)
    return valid >= kLanes ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(__mmask16((1u << valid) - 1), p);
  }
  // vpternlogd 0xE4 = (A & C) | (B & ~C)
  BITMM_A8_OP V select(V a, V b, V m) { return _mm512_ternarylogic_epi32(a, b, m, 0xE4); }
  // Low dword: E = lo on even bits, hi << 1 on odd bits (q >> 31 there); high dword: O = lo >> 1 on even bits
  // ((q << 31) there), hi on odd bits: one select with 0x55555555 in low dwords and 0xAAAAAAAA in high ones.
  BITMM_A8_OP V planes_to_codes(V q) {
    const V other = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(q, 31), _mm512_slli_epi64(q, 31));
    return select(q, other, _mm512_set1_epi64(static_cast<long long>(0xAAAAAAAA55555555ull)));
  }
  BITMM_A8_OP V dot(V acc, V codes, V x) { return _mm512_dpbusd_epi32(acc, codes, x); }
  BITMM_A8_OP int32_t reduce(V v) { return _mm512_reduce_add_epi32(v); }
  // 16 x 16 dwords (transpose_avx512.h)
  BITMM_A8_OP void transpose(V r[16]) { transpose16x16_epi32(r); }
};

#include "a8_kernels.h"

}  // namespace

bool has_avx512_vnni() {
  static const bool has = has_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return has;
}

// row_major up to 6 rows of x: past ~6 rows x leaves L1 (24 KB at K = 4096) and row_lanes, which broadcasts x to 16
// weight rows at a time, is faster (session 31, 4096^2, 2 threads, 2 alternated sweeps: ternary M = 4 361-401 us
// against 474-520, M = 6 419-439 against 536-681, M = 8 546-839 against 616-806, M = 16 1188-1797 against
// 976-1273; bench/NOTES.md "CPU linear_a8")
void a8_sums_avx512(const A8Args& a) { a8::a8_sums<6>(a); }

#else
bool has_avx512_vnni() { return false; }
void a8_sums_avx512(const A8Args&) {}
#endif

}  // namespace cpu
}  // namespace bitmm
