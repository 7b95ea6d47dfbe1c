// linear_a8 (W2A8) fused for few rows of x (M <= 16): int8 activations times the packed weights on the int8 tensor
// cores, the weights unpacked in registers (a8_fragments.h: one LOP3 per 4 weights, one mma per 512), the int32 sums
// exact, and linear_a8's float32 epilogue applied in the same kernel, so it gives the same bits as the unfused path
// (torch's int8 GEMM on unpacked codes + a8_epilogue.cu) and the CPU.
//
// One CTA per 16 weight rows; its kA8Warps warps split K by steps (warp w takes steps w, w + kA8Warps, ...), each
// step one uint4 per lane and row (two rows per lane: g and g + 8), loaded two steps ahead.  x (M rows) is staged
// once per CTA in shared memory, permuted (a8_fragments.h), with its row sums; the warps' int32 partial sums meet in
// shared memory and the CTA's threads write y.
#include <climits>
#include <map>
#include <mutex>
#include <utility>

#include "a8_fragments.h"
#include "common.cuh"

namespace bitmm {
namespace cuda {

constexpr int kA8Warps = 4;                // warps per CTA (K split)
constexpr int kA8Threads = 32 * kA8Warps;  // threads per CTA

__device__ __forceinline__ void mma_u8s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ a8::U4 to_u4(uint4 v) { return a8::U4{v.x, v.y, v.z, v.w}; }

// kPlanes: 2 (ternary / int2) or 1 (binary) bit-planes per weight.
// kCM: x tiles of 8 rows (B columns): 1 for M <= 8, 2 for M <= 16.
// T: the output dtype (float, __half, __nv_bfloat16).
template <int kPlanes, int kCM, typename T>
__global__ void __launch_bounds__(kA8Threads) a8_linear_kernel(const A8Params p) {
  using L = a8::Layout<kPlanes>;
  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int M = static_cast<int>(p.M);
  const int64_t N = p.N, n0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int row_u4 = static_cast<int>(p.wpr / 4);  // uint4s per packed row (wpr is a multiple of 4)
  const int steps = (row_u4 + 3) / 4;
  const int64_t padded_k = p.wpr / kPlanes * 32;
  const int64_t stride = a8::smem_row_stride<kPlanes>(padded_k);
  // shared memory: x rows (M x stride bytes), a window of zeros, then the int32 partial sums and row sums
  unsigned char* zeros = smem + M * stride;                             // B of lanes without an x row
  int* red = reinterpret_cast<int*>(zeros + L::kWindowBytes);           // [warp][cm][reg][lane] partial sums
  int* xsum = red + kA8Warps * kCM * 4 * 32;                            // [warp][m] row sums of x

  // rows past N read row N - 1 (their sums are not stored)
  const uint4* wg = reinterpret_cast<const uint4*>(p.w + imin64(n0 + g, N - 1) * p.wpr);
  const uint4* wg8 = reinterpret_cast<const uint4*>(p.w + imin64(n0 + g + 8, N - 1) * p.wpr);
  // Loads of steps past the row are skipped (warp-uniform); a lane past the row's last uint4 re-reads that uint4
  // (its A is multiplied by a zero B: see `have` below), so no register is zeroed per step.
  auto load = [&](int s, uint4& a, uint4& b) {
    if (s < steps) {
      const int i = a8::lane_u4(s, t, row_u4);
      a = load_weights_16B(reinterpret_cast<const uint32_t*>(wg + i));
      b = load_weights_16B(reinterpret_cast<const uint32_t*>(wg8 + i));
    }
  };
  uint4 wa0 = make_uint4(0u, 0u, 0u, 0u), wb0 = wa0, wa1 = wa0, wb1 = wa0, wa2 = wa0, wb2 = wa0;
  load(warp, wa0, wb0);  // the first two steps' weights are in flight while x is staged
  load(warp + kA8Warps, wa1, wb1);

  if (threadIdx.x < L::kWindowBytes / 16) reinterpret_cast<uint4*>(zeros)[threadIdx.x] = make_uint4(0u, 0u, 0u, 0u);
  // Stage x: thread per 32-byte block, permuted; row sums by warp.
  const int64_t nblocks = padded_k / 32;
  for (int m = 0; m < M; ++m) {
    const int8_t* xrow = p.xq + static_cast<int64_t>(m) * p.K;
    int part = 0;
    for (int64_t b = threadIdx.x; b < nblocks; b += kA8Threads) {
      const int64_t k0 = 32 * b;
      uint32_t X[8], P[8];
      if (p.x_vec && k0 + 32 <= p.K) {
        const uint4 v0 = *reinterpret_cast<const uint4*>(xrow + k0);
        const uint4 v1 = *reinterpret_cast<const uint4*>(xrow + k0 + 16);
        X[0] = v0.x; X[1] = v0.y; X[2] = v0.z; X[3] = v0.w; X[4] = v1.x; X[5] = v1.y; X[6] = v1.z; X[7] = v1.w;
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          uint32_t v = 0;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int64_t k = k0 + 4 * i + j;
            if (k < p.K) v |= static_cast<uint32_t>(static_cast<uint8_t>(xrow[k])) << (8 * j);
          }
          X[i] = v;
        }
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) part = a8::byte_sum(X[i], part);
      a8::permute_block(X, P);
      unsigned char* srow = smem + m * stride;
      *reinterpret_cast<uint4*>(srow + a8::smem_block_offset<kPlanes>(b, 0)) = make_uint4(P[0], P[1], P[2], P[3]);
      *reinterpret_cast<uint4*>(srow + a8::smem_block_offset<kPlanes>(b, 1)) = make_uint4(P[4], P[5], P[6], P[7]);
    }
    part = __reduce_add_sync(0xffffffffu, part);
    if (lane == 0) xsum[warp * 16 + m] = part;
  }
  __syncthreads();

  int acc[kCM][L::kSets][4];
#pragma unroll
  for (int cm = 0; cm < kCM; ++cm)
#pragma unroll
    for (int i = 0; i < L::kSets; ++i) acc[cm][i][0] = acc[cm][i][1] = acc[cm][i][2] = acc[cm][i][3] = 0;

  // One step: weights (wa, wb) of step s against x, and the loads of step s + 2 kA8Warps into (la, lb).  Three
  // steps per iteration with the buffers rotated by name, so no register is copied.
  auto step = [&](int s, const uint4& wa, const uint4& wb, uint4& la, uint4& lb) {
    load(s + 2 * kA8Warps, la, lb);
    const bool valid = a8::lane_valid(s, t, row_u4);
    a8::U4 ch[kCM][L::kChunks];
#pragma unroll
    for (int cm = 0; cm < kCM; ++cm) {
      // lanes without a row of x, or past the packed row, read zeros (one address, not a zeroed register set)
      const unsigned char* base = smem + a8::b_base<kPlanes>(s, t, 8 * cm + g, M, valid, stride, zeros - smem);
#pragma unroll
      for (int i = 0; i < L::kChunks; ++i) ch[cm][i] = to_u4(*reinterpret_cast<const uint4*>(base + 64 * i));
    }
    uint32_t a[L::kMmas][4];
    a8::a_frags<kPlanes>(to_u4(wa), to_u4(wb), a);
#pragma unroll
    for (int j = 0; j < L::kMmas; ++j) {
#pragma unroll
      for (int cm = 0; cm < kCM; ++cm) {
        uint32_t b0, b1;
        a8::b_frag<kPlanes>(ch[cm], j, b0, b1);
        mma_u8s8(acc[cm][L::set_of(j)], a[j], b0, b1);
      }
    }
  };
  for (int s = warp; s < steps; s += 3 * kA8Warps) {
    step(s, wa0, wb0, wa2, wb2);
    if (s + kA8Warps >= steps) break;
    step(s + kA8Warps, wa1, wb1, wa0, wb0);
    if (s + 2 * kA8Warps >= steps) break;
    step(s + 2 * kA8Warps, wa2, wb2, wa1, wb1);
  }

  // Undo the sets' powers (exact shifts), then the CTA's sum over warps.
#pragma unroll
  for (int cm = 0; cm < kCM; ++cm)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      int v = 0;
#pragma unroll
      for (int i = 0; i < L::kSets; ++i) v += acc[cm][i][r] >> (L::kSetShift * i);
      red[((warp * kCM + cm) * 4 + r) * 32 + lane] = v;
    }
  __syncthreads();
  T* y = static_cast<T*>(p.y);
  for (int o = threadIdx.x; o < 16 * M; o += kA8Threads) {
    const int rr = o & 15, m = o >> 4;  // weight row in the tile, x row
    const int64_t n = n0 + rr;
    if (n >= N) continue;
    int cm, ln, reg;
    a8::c_position(rr, m, cm, ln, reg);
    int sum = 0, X = 0;
#pragma unroll
    for (int w = 0; w < kA8Warps; ++w) {
      sum += red[((w * kCM + cm) * 4 + reg) * 32 + ln];
      X += xsum[w * 16 + m];
    }
    const float v = a8::epilogue(sum, X, p.shift, p.xs[m], p.s[n * p.s_stride], p.u ? p.u + n * p.u_stride : nullptr,
                                 p.b ? p.b + n : nullptr);
    y[static_cast<int64_t>(m) * N + n] = from_float<T>(v);
  }
}

int64_t a8_linear_smem_bytes(int64_t M, int64_t K, int planes) {
  const int64_t padded_k = ::bitmm::padded_k(K);
  const int64_t stride = planes == 2 ? a8::smem_row_stride<2>(padded_k) : a8::smem_row_stride<1>(padded_k);
  const int cm = M <= 8 ? 1 : 2;
  return M * stride + (planes == 2 ? a8::Layout<2>::kWindowBytes : a8::Layout<1>::kWindowBytes) +
         (kA8Warps * cm * 4 * 32 + kA8Warps * 16) * static_cast<int64_t>(sizeof(int));
}

// The kernel's dynamic shared-memory limit raised to at least `smem` on `device`, through the driver only when it
// grows (the attribute is per device and function; the largest value set so far is remembered for each pair).
cudaError_t raise_smem_limit(const void* kernel, int device, int64_t smem) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, int64_t> set;
  const std::lock_guard<std::mutex> lock(mu);
  int64_t& have = set[{kernel, device}];
  if (have >= smem) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e == cudaSuccess) have = smem;
  return e;
}

cudaError_t launch_a8_linear(const A8Params& p, cudaStream_t stream) {
  if (p.M < 1 || p.M > kA8MaxM || p.out == DType::kDouble || p.N < 1 ||
      p.K > (p.planes == 2 ? a8::kMaxKTwoPlanes : a8::kMaxKBinary) || (p.N + 15) / 16 > INT_MAX)
    return cudaErrorNotSupported;
  const int64_t smem = a8_linear_smem_bytes(p.M, p.K, p.planes);
  int device = 0, optin = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  if (smem > optin) return cudaErrorNotSupported;
  const dim3 grid(static_cast<unsigned>((p.N + 15) / 16));
  auto go = [&](auto kernel) {
    if (smem > 48 * 1024) {
      const cudaError_t e = raise_smem_limit(reinterpret_cast<const void*>(kernel), device, smem);
      if (e != cudaSuccess) return e;
    }
    kernel<<<grid, kA8Threads, static_cast<size_t>(smem), stream>>>(p);
    return cudaGetLastError();
  };
  // planes x tiles x output dtype: 2 x 2 x 3 instances
  return BITMM_X_DTYPE_SWITCH(p.out, T, [&] {
    return BITMM_BOOL_SWITCH(p.planes == 2, kTwo, [&] {
      return BITMM_BOOL_SWITCH(p.M > 8, kTwoTiles, [&] {
        return go(a8_linear_kernel<kTwo ? 2 : 1, kTwoTiles ? 2 : 1, T>);
      });
    });
  });
}

}  // namespace cuda
}  // namespace bitmm
