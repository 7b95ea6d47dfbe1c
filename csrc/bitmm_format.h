// bitmm packed weight formats: the one definition shared by the CPU kernels,
// the CUDA kernels and (mirrored line for line) bitmm/formats.py.
// Plain C++ only: no torch headers, so CUDA files can include it cheaply.
//
// A weight matrix W has shape (N, K) (nn.Linear convention: N outputs, K inputs).
// Every kind stores, per row n, ceil(K / ROW_ALIGN_K) * ROW_ALIGN_K weights
// (padded at the end of the row), as a sequence of 32-weight BLOCKS.  A block
// is one 32-bit word per bit-plane:
//
//   kind     planes  bits/weight  code stored per weight        value used by the math
//   binary   1       1            b in {0,1}                    b
//   ternary  2       2            c = t + 1  (-1,0,1 -> 0,1,2)  t = c - 1 = 2*hi + lo - 1
//   int2     2       2            q in {0,1,2,3}                q - 1 = 2*hi + lo - 1
//
//   lo plane bit = code & 1, hi plane bit = code >> 1.
//
// Word order in a row (dtype int32, tensor shape (N, words_per_row)):
//   binary:           [b0, b1, b2, ...]                (block j = weights 32j..32j+31)
//   ternary / int2:   [lo0, hi0, lo1, hi1, ...]         (lo and hi plane of block j adjacent)
// so one 16-byte load reads 128 binary weights or 64 two-plane weights.
//
// Bit order inside a word ("even/odd interleave"): for the block starting at k0,
//   weight k0 + 2*i     -> bit i        (i = 0..15, low half-word)
//   weight k0 + 2*i + 1 -> bit 16 + i   (high half-word)
//
//   bit:    31 ............ 16 | 15 ............. 0
//   weight: 31 29 ...  5  3  1 | 30 28 ...  4  2  0      (offsets from k0)
//
// Why: a GPU thread holding two fp16 activations (x[k0+2i], x[k0+2i+1]) in one
// half2 register gets both of their bits at bit positions 15 and 31 with ONE
// shift (word << (15 - i)), i.e. exactly on the two fp16 sign bits, so a single
// LOP3 flips or masks the pair.  CPU kernels instead permute x once per call
// into the same even/odd order, after which bit i simply belongs to x'[i].
//
// Bits are defined on the 32-bit *value* of each word (bit i = (word >> i) & 1),
// so the format is the same on every device; int32 tensors are little-endian on
// every platform torch supports.
//
// Padding: weights k >= K (up to the padded row length) hold the code for the
// value 0 (binary 0, ternary/int2 code 1).  Kernels do not rely on it: they
// also treat activations beyond K as 0.
//
// Math (per output n, scale group g, G = group size along K):
//   X_g = sum_{k in g} x_k,   H_g = sum_{k in g, hi} x_k,   L_g = sum_{k in g, lo} x_k
//   binary:        sum_k x_k * b_k        = L_g      (the single plane is stored as "lo")
//   ternary, int2: sum_k x_k * (code_k-1) = 2*H_g + L_g - X_g
//   i.e. the 2-bit value q-1 in {-1,0,1,2} is the binary plane hi plus the
//   ternary t = hi + lo - 1 in {-1,0,1}; both are sums of x selected by bits.
//   y_n = sum_g scale[n,g] * (that sum) + offset[n,g] * X_g (+ bias_n)
// Only additions happen per weight; two multiplications per group per output.
#pragma once
#include <cstdint>

namespace bitmm {

constexpr int BLOCK_K = 32;        // weights per plane word
constexpr int ROW_ALIGN_K = 128;   // rows padded to this many weights: 16-byte aligned rows

enum class Kind : int { kBinary = 1, kTernary = 2, kInt2 = 3 };

struct BinaryBlock {   // 32 weights, 1 bit each
  uint32_t b;          // bit-plane of b in {0,1}; even/odd interleaved bit order
};
struct TwoPlaneBlock { // 32 weights, 2 bits each (ternary code t+1, or int2 code q)
  uint32_t lo;         // code & 1 for each weight; even/odd interleaved bit order
  uint32_t hi;         // code >> 1 for each weight; same order
};
static_assert(sizeof(BinaryBlock) == BLOCK_K * 1 / 8, "binary: 1 bit per weight");
static_assert(sizeof(TwoPlaneBlock) == BLOCK_K * 2 / 8, "ternary/int2: 2 bits per weight");

constexpr inline int planes_of(Kind kind) { return kind == Kind::kBinary ? 1 : 2; }
constexpr inline int max_code_of(Kind kind) {
  return kind == Kind::kBinary ? 1 : (kind == Kind::kTernary ? 2 : 3);  // inclusive
}
constexpr inline int zero_code_of(Kind kind) { return kind == Kind::kBinary ? 0 : 1; }
constexpr inline const char* name_of(Kind kind) {
  return kind == Kind::kBinary ? "binary" : (kind == Kind::kTernary ? "ternary" : "int2");
}
constexpr inline int64_t padded_k(int64_t K) {
  return (K + ROW_ALIGN_K - 1) / ROW_ALIGN_K * ROW_ALIGN_K;
}
constexpr inline int64_t words_per_row(Kind kind, int64_t K) {
  return padded_k(K) / BLOCK_K * planes_of(kind);
}
// Bit position, inside its block's word, of the weight at offset j (0..31) in the block.
constexpr inline int bit_of_offset(int j) { return (j & 1) ? 16 + (j >> 1) : (j >> 1); }
// Offset in the block of the weight stored at bit position p (inverse of bit_of_offset).
constexpr inline int offset_of_bit(int p) { return p < 16 ? 2 * p : 2 * (p - 16) + 1; }
static_assert(offset_of_bit(bit_of_offset(31)) == 31 && bit_of_offset(1) == 16, "interleave");

}  // namespace bitmm
