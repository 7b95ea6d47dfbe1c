// CPU prepacked weight layout ("cpu_prepack", layout version 1): a derived copy
// of a packed weight (bitmm_format.h) made once per layer by
// torch.ops.bitmm.cpu_prepack and read by torch.ops.bitmm.cpu_prepacked_linear.
// It is not a storage format: it is never in a state_dict or checkpoint, and a
// blob of another layout version is rejected (remake it from the packed weight).
// Plain C++, no torch headers.
//
// Why: the AVX2 forward (cpu/forward_avx2.cpp) looks up 32 output rows per
// `vpshufb`, so it needs, per 32-row tile and per 4 weights, one 32-byte vector
// holding the 4-bit slice ("nibble") of all 32 rows.  From the canonical row-major
// words it builds those vectors on every call (a transpose, ~25% of the kernel's
// time at M = 1, bench/NOTES.md "CPU forward").  This layout stores them
// transposed once, two nibbles per byte, so the bytes read per call stay those
// of the packed weight (2 bits per weight for ternary / int2, 1 for binary).
// The AVX-512 forward reads the same blob in place of its own per-call
// transpose (below, and bench/NOTES.md "CPU forward" v9).
//
// Blob: a 1-D uint8 tensor = 64-byte header + payload.
//
//   header (little-endian)   offset  size  value
//     magic                  0       4     "BMCP"
//     version                4       1     kVersion (1)
//     kind                   5       1     1 binary, 2 ternary, 3 int2 (bitmm_format.h Kind)
//     tile_rows              6       1     32
//     reserved               7       1     0
//     K                      8       8     true input width (int64)
//     N                      16      8     output rows (int64)
//     words_per_row          24      8     words_per_row(kind, K) of the packed weight
//     payload_bytes          32      8     num_tiles(N) * words_per_row * 128
//     reserved               40      24    0
//
//   payload: num_tiles(N) = ceil(N / 32) tiles of 32 output rows, tile t holding
//   rows 32t .. 32t+31 (rows >= N are zero words).  A tile is words_per_row
//   chunks of 128 bytes, chunk w for packed word w of its rows (the row's word
//   order of bitmm_format.h: binary b0, b1, ...; two-plane lo0, hi0, lo1, hi1, ...).
//   A chunk is 4 vectors of 32 bytes; vector q (0..3) holds byte q of word w:
//
//     chunk[32 * q + p] = byte q of word w of row 32t + row_of_byte(p),  p = 0..31
//
//   so its low nibbles are the index vector of weights (bits) 8q .. 8q+3 of the
//   word and its high nibbles that of bits 8q+4 .. 8q+7.  The AVX-512 forward
//   (cpu/forward_avx512.cpp) reads the same bytes: 16 of them zero-extended to
//   dword lanes index fp32 tables with vpermd (its lanes then follow row_of_byte).  The row order
//   row_of_byte(p) = 8 * ((p % 16) / 4) + 4 * (p / 16) + p % 4 is the one the
//   AVX2 kernel's byte / word unpacks undo: after them, fp32 lane j of accumulator i
//   belongs to row 8i + j.
//
// Checked on every call (cheap: the header only): magic, version, kind, K, N,
// words_per_row, tile_rows and the blob's size.  The payload is not checksummed
// (every byte value is a valid weight, as in the packed weight itself).
//
// Scale layout ("cpu_prepack_scales", made by torch.ops.bitmm.cpu_prepack_scales and read
// by cpu_prepacked_linear's prepacked_scales argument; derived, never stored, like the blob):
// a contiguous float32 tensor of shape (P, num_tiles(N), G, 32), G the problem's scale groups
// along K (1 per tensor / per output channel), P = 2 with an offset and 1 without (so a layout
// made with or without one cannot be passed with the other: the shape check names it):
//
//     [0][t][g][p] = float(scale  of row min(32t + row_of_byte(p), N - 1), group g)
//     [1][t][g][p] = float(offset of row min(32t + row_of_byte(p), N - 1), group g)  (P = 2)
//
// Per tensor / per channel values are repeated over rows / groups as the kernels see them.
// Why: with group-wise scales each 32-row tile's K tile needs its rows' values of 16-64
// groups, [group][row]; gathered per call from the (N, G) tensors (32 strided row segments
// and a transpose per tile), with each layer's scales cold in memory, that gather was
// latency-bound: with this layout float32 g64 at M = 1 takes 0.60-0.77 of the time
// (bench/NOTES.md "CPU forward" v11).  Here they are one sequential stream, in the blob's row order: the
// AVX-512 kernel loads them as its lanes (16 rows per zmm), the AVX2 kernel rows 8i .. 8i+7 as
// the 4 + 4 floats at p = 4i and p = 16 + 4i.  Checked per call: dtype, device, contiguity
// and shape; not the values (a stale copy reads stale values: the layer that keeps it remakes
// it when scale or offset change, bitmm/nn.py).
#pragma once
#include <cstdint>

#include "bitmm_format.h"

namespace bitmm {
namespace cpu_prepack {

constexpr uint8_t kVersion = 1;
constexpr int kTileRows = 32;
constexpr int kHeaderBytes = 64;
constexpr int kChunkBytes = 128;  // per packed word and tile: 4 bytes x 32 rows
constexpr char kMagic[4] = {'B', 'M', 'C', 'P'};

struct Header {
  char magic[4];
  uint8_t version;
  uint8_t kind;
  uint8_t tile_rows;
  uint8_t reserved0;
  int64_t K;
  int64_t N;
  int64_t words_per_row;
  int64_t payload_bytes;
  uint8_t reserved1[24];
};
static_assert(sizeof(Header) == kHeaderBytes, "prepack header is 64 bytes");

constexpr inline int row_of_byte(int p) { return 8 * ((p % 16) / 4) + 4 * (p / 16) + p % 4; }
constexpr inline int64_t num_tiles(int64_t N) { return (N + kTileRows - 1) / kTileRows; }
constexpr inline int64_t payload_bytes(Kind kind, int64_t N, int64_t K) {
  return num_tiles(N) * words_per_row(kind, K) * kChunkBytes;
}
constexpr inline int64_t blob_bytes(Kind kind, int64_t N, int64_t K) {
  return kHeaderBytes + payload_bytes(kind, N, K);
}
constexpr inline int64_t scale_planes(bool has_offset) { return has_offset ? 2 : 1; }  // scale[, offset]
static_assert(row_of_byte(0) == 0 && row_of_byte(4) == 8 && row_of_byte(16) == 4 && row_of_byte(31) == 31,
              "row order of the unpacks");

}  // namespace cpu_prepack
}  // namespace bitmm
