// C++ reference packer / unpacker (CPU).  Produces exactly the bytes of
// bitmm/formats.py (tests check both directions).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>

#include "../bitmm_format.h"
#include "../cpu_prepack_format.h"
#include "../checks.h"

namespace bitmm {

at::Tensor pack_cpu(const at::Tensor& codes_in, int64_t kind_i) {
  const Kind kind = kind_from_int(kind_i);
  check_pack_codes(kind, codes_in);
  const int max_code = max_code_of(kind);
  // The range check on the codes as given (min / max: no temporaries; the count of bad values only on failure),
  // then int8 codes for the loop: N x K bytes, not the 8 N x K of an int64 copy (2^31 codes: 2 GB, not 16 GB).
  // (uint16 / 32 / 64 have no CPU aminmax or comparisons: as int64)
  const at::ScalarType in_t = codes_in.scalar_type();
  const at::Tensor checked = in_t == at::kUInt16 || in_t == at::kUInt32 || in_t == at::kUInt64
                                 ? codes_in.to(at::kLong) : codes_in;
  const auto minmax = at::aminmax(checked);
  if (std::get<0>(minmax).item<int64_t>() < 0 || std::get<1>(minmax).item<int64_t>() > max_code) {
    const int64_t bad = (checked.lt(0) | checked.gt(max_code)).sum().item<int64_t>();
    BITMM_CHECK_VALUE(false, "bitmm.pack(", name_of(kind), "): codes must be in [0, ", max_code, "], found ", bad,
                      " out-of-range values",
                      kind == Kind::kTernary ? " (ternary codes are t + 1 for t in {-1,0,1})" : "");
  }
  const at::Tensor codes = checked.to(at::kChar).contiguous();
  const int64_t N = codes.size(0), K = codes.size(1);
  const int planes = planes_of(kind);
  const int64_t wpr = words_per_row(kind, K);
  const int64_t nblocks = wpr / planes;
  at::Tensor out = at::empty({N, wpr}, codes.options().dtype(at::kInt));
  const int8_t* c = codes.data_ptr<int8_t>();
  uint32_t* o = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  const uint32_t zero = zero_code_of(kind);
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t b = 0; b < nblocks; ++b) {
        uint32_t lo = 0, hi = 0;
        for (int j = 0; j < BLOCK_K; ++j) {
          const int64_t k = b * BLOCK_K + j;
          const uint32_t code = k < K ? static_cast<uint32_t>(c[n * K + k]) : zero;
          lo |= (code & 1u) << bit_of_offset(j);
          hi |= (code >> 1) << bit_of_offset(j);
        }
        if (planes == 1) {
          o[n * wpr + b] = lo;
        } else {
          o[n * wpr + 2 * b] = lo;
          o[n * wpr + 2 * b + 1] = hi;
        }
      }
    }
  });
  return out;
}

at::Tensor unpack_cpu(const at::Tensor& packed_in, int64_t kind_i, int64_t K) {
  const Kind kind = kind_from_int(kind_i);
  check_unpack(kind, packed_in, K);
  const at::Tensor packed = packed_in.contiguous();
  const int64_t N = packed.size(0), wpr = packed.size(1);
  const int planes = planes_of(kind);
  at::Tensor out = at::empty({N, K}, packed.options().dtype(at::kChar));
  const uint32_t* p = reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>());
  int8_t* o = out.data_ptr<int8_t>();
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t k = 0; k < K; ++k) {
        const int64_t b = k / BLOCK_K;
        const int bit = bit_of_offset(static_cast<int>(k % BLOCK_K));
        const uint32_t lo = (p[n * wpr + b * planes] >> bit) & 1u;
        const uint32_t hi = planes == 2 ? (p[n * wpr + b * planes + 1] >> bit) & 1u : 0u;
        o[n * K + k] = static_cast<int8_t>(lo | (hi << 1));
      }
    }
  });
  return out;
}

// The derived CPU layout of cpu_prepack_format.h: per 32-row tile and packed word, byte q
// of the word of row row_of_byte(p) at chunk[32 q + p].  Once per layer; plain loops.
at::Tensor cpu_prepack_cpu(const at::Tensor& packed_in, int64_t kind_i, int64_t K) {
  namespace cp = cpu_prepack;
  const Kind kind = kind_from_int(kind_i);
  check_cpu_prepack(kind, packed_in, K);
  const at::Tensor packed = packed_in.contiguous();
  const int64_t N = packed.size(0), wpr = packed.size(1);
  at::Tensor out = at::empty({cp::blob_bytes(kind, N, K)}, packed.options().dtype(at::kByte));
  uint8_t* o = out.data_ptr<uint8_t>();
  cp::Header h{};
  std::memcpy(h.magic, cp::kMagic, 4);
  h.version = cp::kVersion;
  h.kind = static_cast<uint8_t>(kind);
  h.tile_rows = cp::kTileRows;
  h.K = K;
  h.N = N;
  h.words_per_row = wpr;
  h.payload_bytes = cp::payload_bytes(kind, N, K);
  std::memcpy(o, &h, sizeof(h));
  const uint32_t* w = reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>());
  uint8_t* payload = o + cp::kHeaderBytes;
  at::parallel_for(0, cp::num_tiles(N), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      uint8_t* tile = payload + t * wpr * cp::kChunkBytes;
      for (int p = 0; p < cp::kTileRows; ++p) {
        const int64_t n = t * cp::kTileRows + cp::row_of_byte(p);
        for (int64_t j = 0; j < wpr; ++j) {
          const uint32_t word = n < N ? w[n * wpr + j] : 0u;
          for (int q = 0; q < 4; ++q) tile[j * cp::kChunkBytes + 32 * q + p] = static_cast<uint8_t>(word >> (8 * q));
        }
      }
    }
  });
  return out;
}

// The scale / offset layout of cpu_prepack_format.h: [plane][tile][group][p] = the float32 value of
// row min(32 tile + row_of_byte(p), N - 1), group g (no offset plane when there is no offset).  Values as
// the kernels read them without it: the tensors converted to float32 (rounded for float64), a
// per tensor / per channel value repeated; NaN / Inf copied as they are (the linear op reports them).
at::Tensor cpu_prepack_scales_cpu(const at::Tensor& scale, const std::optional<at::Tensor>& offset, int64_t N,
                                  int64_t K) {
  namespace cp = cpu_prepack;
  const LinearProblem p = check_cpu_prepack_scales(scale, offset, N, K);
  const int64_t tiles = cp::num_tiles(N), G = p.groups;
  const int64_t planes = cp::scale_planes(offset.has_value());
  at::Tensor out = at::empty({planes, tiles, G, cp::kTileRows}, scale.options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const at::Tensor* src[2] = {&scale, offset.has_value() ? &*offset : nullptr};
  for (int plane = 0; plane < planes; ++plane) {
    float* op = o + plane * tiles * G * cp::kTileRows;
    // (N, G) float32: () and (N,) broadcast, (N, 1) per channel repeated over the groups
    const at::Tensor& t = *src[plane];
    const at::Tensor v =
        (t.dim() == 2 ? t : t.reshape({t.dim() == 0 ? 1 : N, 1})).to(at::kFloat).expand({N, G}).contiguous();
    const float* vp = v.const_data_ptr<float>();
    at::parallel_for(0, tiles, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t ti = t0; ti < t1; ++ti)
        for (int64_t g = 0; g < G; ++g)
          for (int q = 0; q < cp::kTileRows; ++q) {
            const int64_t n = std::min<int64_t>(ti * cp::kTileRows + cp::row_of_byte(q), N - 1);
            op[(ti * G + g) * cp::kTileRows + q] = vp[n * G + g];
          }
    });
  }
  return out;
}

TORCH_LIBRARY_IMPL(bitmm, CPU, m) {
  m.impl("cpu_prepack", &cpu_prepack_cpu);
  m.impl("cpu_prepack_scales", &cpu_prepack_scales_cpu);
  m.impl("pack", &pack_cpu);
  m.impl("unpack", &unpack_cpu);
}

}  // namespace bitmm
