// The add/subtract CUDA kernel for bitmm linear ops (decode regime, small M).
//
// Work split: a CTA of WARPS warps owns WARPS * R consecutive output rows; each
// warp owns R rows for the whole of K, its 32 lanes striding along K in 16-byte
// chunks of packed weights (64 two-plane or 128 binary weights per chunk).  So
// each weight byte is read once, with 16-byte loads, R independent loads in
// flight per lane per step, and the row sums are reduced inside the warp: one
// pass, no split-K, no atomics, no second kernel.
//
// Activations are staged per K tile in shared memory as fp32, already in the
// packed bit order (bitmm_format.h), together with their per-block sums.  The
// accumulation is add-only: for every weight bit a predicated FADD adds the
// activation to the plane's sum (L for the lo / binary plane, H for hi); per
// scale group the kernel forms  2H + L - X  (two-plane) or  L  (binary) and
// applies the two multiplications of the group: out += s * sum + u * X.
#pragma once
#include <mutex>

#include "common.cuh"

namespace bitmm {
namespace cuda {

constexpr int kAddsubWarps = 4;        // warps per CTA
// Output rows per warp (R): more rows = more independent accumulation chains and
// 16-byte loads in flight per lane, fewer shared-memory reads per weight, but
// fewer row groups to spread over the SMs; see launch_addsub_for_dtype.
constexpr int kAddsubTileFloats = 16384;  // shared-memory floats for x per CTA (64 KB) = MT * KT
constexpr int kMaxDevices = 64;

template <typename T,      // activation / output dtype: float, __half, __nv_bfloat16
          typename S,      // scale / offset / bias dtype: float or T
          bool TWO,        // two planes (ternary, int2) or one (binary)
          int MT,          // activation rows handled per CTA (grid.y covers the rest)
          int R>           // output rows per warp (4 or 8; 2 * R * MT fp32 accumulators)
__global__ void __launch_bounds__(kAddsubWarps * 32)
addsub_linear_kernel(const LinearParams p, const int KT /* x tile length, multiple of 32 */) {
  constexpr int PLANES = TWO ? 2 : 1;
  constexpr int BLOCKS_PER_CHUNK = 4 / PLANES;        // 32-weight blocks per 16-byte chunk
  constexpr int K_PER_CHUNK = BLOCKS_PER_CHUNK * BLOCK_K;

  // Each chunk's activations are followed by 4 pad floats, so the 32 lanes
  // (one chunk each) read 16 bytes from distinct banks.
  const int KT_PAD = KT + (KT / K_PER_CHUNK) * 4;
  extern __shared__ float smem[];
  float* xs = smem;                 // [MT][KT_PAD] activations, packed bit order, fp32
  float* xblk = smem + MT * KT_PAD; // [MT][KT / 32] per-block sums of xs

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * MT;
  const int64_t Kp = padded_k(p.K);
  const int gblocks = static_cast<int>(p.group_size / BLOCK_K);  // blocks per group (group_size % 32 == 0)
  const bool grouped = p.group_size < padded_k(p.K);  // else per tensor / per channel (g = 0)
  const bool single_tile = Kp <= KT;               // stage x once for all row groups of this CTA
  const int64_t row_groups = (p.N + kAddsubWarps * R - 1) / (kAddsubWarps * R);

  const T* x = static_cast<const T*>(p.x);
  const S* scale = static_cast<const S*>(p.scale);
  const S* offset = static_cast<const S*>(p.offset);

  // Stages activations [kt0, kt0 + kt_len) of rows m0.. into shared memory, then
  // the per-block sums.  Loads are independent (8 per thread in flight), sums are
  // one thread per block: no dependent global-load / shuffle chains.
  auto stage = [&](int64_t kt0, int kt_len) {
    const int vecs_per_row = kt_len / 8;
    for (int v = threadIdx.x; v < MT * vecs_per_row; v += blockDim.x) {
      const int m = v / vecs_per_row;
      const int i8 = (v % vecs_per_row) * 8;
      const int64_t mm = m0 + m;
      float vals[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int64_t k = kt0 + i8 + j;
        vals[j] = (mm < p.M && k < p.K) ? to_float<T>(x[mm * p.K + k]) : 0.f;
      }
      const int b = i8 / BLOCK_K;  // 8 consecutive k stay inside one block
      float* dst = xs + m * KT_PAD + b * BLOCK_K + (b * BLOCK_K / K_PER_CHUNK) * 4;
#pragma unroll
      for (int j = 0; j < 8; ++j) dst[bit_of_offset((i8 + j) % BLOCK_K)] = vals[j];
    }
    __syncthreads();
    for (int t = threadIdx.x; t < MT * (kt_len / BLOCK_K); t += blockDim.x) {
      const int m = t / (kt_len / BLOCK_K), b = t % (kt_len / BLOCK_K);
      const float* src = xs + m * KT_PAD + b * BLOCK_K + (b * BLOCK_K / K_PER_CHUNK) * 4;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < BLOCK_K; j += 4) {
        const float4 q = *reinterpret_cast<const float4*>(src + j);
        sum += (q.x + q.y) + (q.z + q.w);
      }
      xblk[m * (KT / BLOCK_K) + b] = sum;
    }
    __syncthreads();
  };

  if (single_tile) stage(0, static_cast<int>(Kp));

  // Persistent CTAs: grid.x is sized to the GPU, each CTA walks row groups.
  for (int64_t rg = blockIdx.x; rg < row_groups; rg += gridDim.x) {
  const int64_t n_base = (rg * kAddsubWarps + warp) * R;
  const uint32_t* wrow[R];
  int64_t nrow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    nrow[r] = min(n_base + r, p.N - 1);  // rows past N repeat the last row and are not stored
    wrow[r] = p.w + nrow[r] * p.wpr;
  }

  // Grouped: out = sum over pieces of s*sum + u*X.  Per tensor / channel: out
  // first collects the unscaled sums, Xrow the activation sums, scaled at the end.
  float out[R][MT], Xrow[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    Xrow[m] = 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) out[r][m] = 0.f;
  }

  for (int64_t kt0 = 0; kt0 < Kp; kt0 += KT) {
    const int kt_len = static_cast<int>(imin64(KT, Kp - kt0));
    if (!single_tile) {
      __syncthreads();  // the previous tile is consumed
      stage(kt0, kt_len);
    }

    const int chunks = kt_len / K_PER_CHUNK;
    for (int c = lane; c < chunks; c += 32) {
      uint4 wv[R];
#pragma unroll
      for (int r = 0; r < R; ++r) wv[r] = load_weights_16B(wrow[r] + (kt0 / BLOCK_K) * PLANES + c * 4);

      float H[R][MT], L[R][MT];
      float Xp[MT];  // sum of x over the current group piece
      int piece_first = static_cast<int>((kt0 + c * K_PER_CHUNK) / BLOCK_K);  // first block of the piece
      // Group-wise: the piece's scale and offset, loaded where the piece starts and kept in S (converted at its
      // flush, a block or more later), so no instruction right after the loads waits for them (tc30's point for
      // this kernel: loaded at the flush and converted at once, every flush waited for its loads).  A piece
      // starting in the row padding (x = 0 there) has no scale to read: 0 (its first block decides).
      S s_pre[R], u_pre[R];
      auto prefetch_piece = [&](int first) {
        const int g = first / gblocks;  // a piece never crosses a group boundary (flushed there)
        const bool real = static_cast<int64_t>(first) * BLOCK_K < p.K;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          s_pre[r] = real ? scale[nrow[r] * p.s_sn + g * p.s_sg] : from_float<S>(0.f);
          u_pre[r] = (real && offset) ? offset[nrow[r] * p.u_sn + g * p.u_sg] : from_float<S>(0.f);
        }
      };
      if (grouped) prefetch_piece(piece_first);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        Xp[m] = 0.f;
#pragma unroll
        for (int r = 0; r < R; ++r) H[r][m] = L[r][m] = 0.f;
      }
#pragma unroll
      for (int blk = 0; blk < BLOCKS_PER_CHUNK; ++blk) {
        const int xoff = c * K_PER_CHUNK + blk * BLOCK_K;  // offset in the tile
        const int xoff_pad = c * (K_PER_CHUNK + 4) + blk * BLOCK_K;
        uint32_t lo[R], hi[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t words[4] = {wv[r].x, wv[r].y, wv[r].z, wv[r].w};
          lo[r] = words[blk * PLANES];
          hi[r] = TWO ? words[blk * PLANES + 1] : 0u;
        }
#pragma unroll
        for (int j4 = 0; j4 < 8; ++j4) {
          float4 xv[MT];
#pragma unroll
          for (int m = 0; m < MT; ++m) xv[m] = *reinterpret_cast<const float4*>(xs + m * KT_PAD + xoff_pad + 4 * j4);
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int j = 4 * j4 + q;
#pragma unroll
            for (int r = 0; r < R; ++r) {
              const bool bl = (lo[r] >> j) & 1u;
              const bool bh = TWO && ((hi[r] >> j) & 1u);
#pragma unroll
              for (int m = 0; m < MT; ++m) {
                const float v = q == 0 ? xv[m].x : q == 1 ? xv[m].y : q == 2 ? xv[m].z : xv[m].w;
                if (bl) L[r][m] += v;  // add-only: the bit selects the activation
                if (TWO && bh) H[r][m] += v;
              }
            }
          }
        }
#pragma unroll
        for (int m = 0; m < MT; ++m) Xp[m] += xblk[m * (KT / BLOCK_K) + xoff / BLOCK_K];
        // Block index in the row: < 2^31 for any tensor that fits in memory, so 32-bit math.
        const int kblock = static_cast<int>(kt0 / BLOCK_K) + xoff / BLOCK_K;
        if (!grouped) {
          // Per tensor / per channel: one scale for the whole row, applied at the end.
          if (blk == BLOCKS_PER_CHUNK - 1) {
#pragma unroll
            for (int m = 0; m < MT; ++m) {
#pragma unroll
              for (int r = 0; r < R; ++r) out[r][m] += TWO ? (H[r][m] + H[r][m] + L[r][m] - Xp[m]) : L[r][m];
              Xrow[m] += Xp[m];
            }
          }
        } else if (blk == BLOCKS_PER_CHUNK - 1 || (kblock + 1) % gblocks == 0) {
          // Group piece ends at a group boundary or at the end of the chunk (its s and u: prefetch_piece).
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const float s = to_float<S>(s_pre[r]);
            const float u = to_float<S>(u_pre[r]);
#pragma unroll
            for (int m = 0; m < MT; ++m) {
              // the per-group scaling: the only multiplications
              const float sum = TWO ? (H[r][m] + H[r][m] + L[r][m] - Xp[m]) : L[r][m];
              out[r][m] += s * sum + u * Xp[m];
              H[r][m] = L[r][m] = 0.f;
            }
          }
#pragma unroll
          for (int m = 0; m < MT; ++m) Xp[m] = 0.f;
          piece_first = kblock + 1;
          if (blk < BLOCKS_PER_CHUNK - 1) prefetch_piece(piece_first);  // the next piece of this chunk
        }
      }
    }
  }
  if (!grouped) {
    // the per-row scaling: the only multiplications
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = to_float<S>(scale[nrow[r] * p.s_sn]);
      const float u = offset ? to_float<S>(offset[nrow[r] * p.u_sn]) : 0.f;
#pragma unroll
      for (int m = 0; m < MT; ++m) out[r][m] = s * out[r][m] + u * Xrow[m];
    }
  }

  // Reduce over the warp's lanes; lane 0 writes.
  T* y = static_cast<T*>(p.y);
  const S* bias = static_cast<const S*>(p.bias);
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = warp_sum(out[r][m]);
      const int64_t n = n_base + r, mm = m0 + m;
      if (lane == 0 && n < p.N && mm < p.M) {
        y[mm * p.N + n] = from_float<T>(v + (bias ? to_float<S>(bias[n]) : 0.f));
      }
    }
  }
  }  // row groups
}

// Launch configuration: a fixed rule, no autotuning.  MT in {1, 2, 4, 8}.
template <typename T, typename S, bool TWO, int MT, int R>
cudaError_t launch_addsub_mt(const LinearParams& p, int num_sms, cudaStream_t stream) {
  const int64_t Kp = padded_k(p.K);
  // x tile: as much of K as fits in kAddsubTileFloats / MT floats (multiple of 128).
  constexpr int K_PER_CHUNK = (TWO ? 2 : 4) * BLOCK_K;
  constexpr int KT_MAX = (kAddsubTileFloats / MT) / ROW_ALIGN_K * ROW_ALIGN_K;
  auto smem_bytes = [](int kt) {
    return sizeof(float) * static_cast<size_t>(MT) * (kt + (kt / K_PER_CHUNK) * 4 + kt / BLOCK_K);
  };
  const int KT = static_cast<int>(imin64(Kp, KT_MAX));
  const size_t smem = smem_bytes(KT);
  auto kernel = addsub_linear_kernel<T, S, TWO, MT, R>;
  // Raise the dynamic shared-memory limit to this instantiation's maximum once
  // per device (a per-call value could race between host threads).
  static std::once_flag raised[kMaxDevices];
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device >= kMaxDevices) return cudaErrorInvalidDevice;
  std::call_once(raised[device], [&] {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem_bytes(KT_MAX)));
  });
  if (err != cudaSuccess) return err;
  // Persistent grid: as many CTAs as fit on the GPU at once (occupancy from the
  // driver, once per device), never more than there are row groups.
  static int ctas_per_sm[kMaxDevices] = {0};
  if (ctas_per_sm[device] == 0) {
    int n = 0;
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kAddsubWarps * 32, smem_bytes(KT_MAX));
    if (err != cudaSuccess) return err;
    ctas_per_sm[device] = n > 0 ? n : 1;
  }
  const int64_t rows_per_cta = static_cast<int64_t>(kAddsubWarps) * R;
  const int64_t row_groups = (p.N + rows_per_cta - 1) / rows_per_cta;
  const int64_t m_chunks = (p.M + MT - 1) / MT;
  const int64_t resident = static_cast<int64_t>(num_sms) * ctas_per_sm[device];
  const int64_t ctas_x = imax64(1, imin64(row_groups, (resident + m_chunks - 1) / m_chunks));
  dim3 grid(static_cast<unsigned>(ctas_x), static_cast<unsigned>(m_chunks));
  kernel<<<grid, kAddsubWarps * 32, smem, stream>>>(p, KT);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_addsub_for_dtype(const LinearParams& p, int num_sms, cudaStream_t stream) {
  auto with_s = [&](auto s_tag) -> cudaError_t {
    using S = decltype(s_tag);
    return BITMM_BOOL_SWITCH(p.two_planes != 0, TWO, [&] {
      // M = 1: 8 rows per warp when that still leaves a row group of 32 rows for
      // every SM (measured on the H100: 8192x8192 25.2 -> 21.8 us, 28672x8192
      // 91 -> 69 us; 4096x4096 8.5 -> 11.7 us, so that shape keeps R = 4).
      if (p.M <= 1) {
        if (p.N >= static_cast<int64_t>(kAddsubWarps) * 8 * num_sms)
          return launch_addsub_mt<T, S, TWO, 1, 8>(p, num_sms, stream);
        return launch_addsub_mt<T, S, TWO, 1, 4>(p, num_sms, stream);
      }
      if (p.M <= 2) return launch_addsub_mt<T, S, TWO, 2, 4>(p, num_sms, stream);
      if (p.M <= 4) return launch_addsub_mt<T, S, TWO, 4, 4>(p, num_sms, stream);
      return launch_addsub_mt<T, S, TWO, 8, 4>(p, num_sms, stream);
    });
  };
  if (p.s_dtype == DType::kFloat) return with_s(float{});
  return with_s(T{});
}

}  // namespace cuda
}  // namespace bitmm
