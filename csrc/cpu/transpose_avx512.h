// A 16 x 16 transpose of 32-bit elements in AVX-512 registers, shared by the CPU kernels that need
// one: linear_a8's row_lanes path (a8_avx512.cpp, words of 16 weight rows) and the float forward's
// group-wise scale gather (forward_avx512.cpp, 16 groups of 16 rows).  x86 only; include after
// <immintrin.h>.
#pragma once
#include <immintrin.h>

namespace bitmm {
namespace cpu {

// In: r[i] = element 0..15 of row i.  Out: r[i] = element i of rows 0..15.  4 rounds of 16 shuffles.
__attribute__((target("avx512f"), always_inline)) inline void transpose16x16_epi32(__m512i r[16]) {
  __m512i t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + j], 128-bit lane L: element 4L + j of rows 4i .. 4i + 3
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i x0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
    // element 4L + j of rows 0..15: lane q from r[4q + j]'s lane L
    t[0 + j] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    t[8 + j] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace cpu
}  // namespace bitmm
