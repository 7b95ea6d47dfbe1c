// linear_a8 (W2A8) fused for few rows of x (M <= kA8MaxM, up to 16 rows of x per CTA): int8 activations times the
// packed weights on the int8 tensor cores, the weights unpacked in registers (a8_fragments.h: one LOP3 per 4
// weights, one mma per 512), the int32 sums exact, and linear_a8's float32 epilogue applied in the same kernel, so it
// gives the same bits as the unfused path (torch's int8 GEMM on unpacked codes + a8_epilogue.cu) and the CPU.
//
// A CTA of kWarps warps covers kWarps / kKS row tiles of 16 weight rows; the kKS warps of a tile split K by steps
// (warp ks takes steps ks, ks + kKS, ...), each step one uint4 per lane and row (two rows per lane: g and g + 8),
// loaded two steps ahead.  x (M rows) is staged once per CTA in shared memory, permuted (a8_fragments.h), with its
// row sums; the warps' int32 partial sums meet in shared memory and the CTA's threads write y.  Three configurations
// (a8::pick_config, a cost fitted to the H200): 4 warps on one row tile (many CTAs: narrow N), 8 warps on 4 or on 8
// row tiles (x staged 4x / 8x less often).
// The digits backend (p.xe set; linear_cuda.cpp linear_digits) runs the same kernel on fp16 / bf16 x written as four
// int8 digit rows per row (a8_fragments.h kDigits): chunks of x rows in fours, and an epilogue that combines each
// row's four digit sums exactly (int64) and scales in float64 (a8::epilogue_digits).
#include <climits>

#include "a8_fragments.h"
#include "common.cuh"
#include "env_knobs.h"
#include "launch_util.cuh"

namespace bitmm {
namespace cuda {

constexpr int kA8MaxWarps = 8;  // warps per CTA in the largest configuration

__device__ __forceinline__ void mma_u8s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ a8::U4 to_u4(uint4 v) { return a8::U4{v.x, v.y, v.z, v.w}; }


// Element i of a scale / offset / bias of dtype dt as float32 (the epilogue's rounding of a float64 one included)
__device__ __forceinline__ float load_as_float(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::kHalf: return to_float<__half>(static_cast<const __half*>(p)[i]);
    case DType::kBFloat16: return to_float<__nv_bfloat16>(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::kDouble: return to_float<double>(static_cast<const double*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

// y[i] = v in the output dtype p.out
__device__ __forceinline__ void store_out(const A8Params& p, int64_t i, float v) {
  switch (p.out) {
    case DType::kHalf: static_cast<__half*>(p.y)[i] = from_float<__half>(v); break;
    case DType::kBFloat16: static_cast<__nv_bfloat16*>(p.y)[i] = from_float<__nv_bfloat16>(v); break;
    default: static_cast<float*>(p.y)[i] = v;
  }
}

// kPlanes: 2 (ternary / int2) or 1 (binary) bit-planes per weight.
// kCM: x tiles of 8 rows (B columns): 1 where a CTA takes <= 8 rows of x (p.chunk_rows), else 2.
// kWarps: warps per CTA (4 or 8).
// kKS: warps splitting one row tile's K (kWarps / kKS row tiles per CTA).
// (The output dtype, p.out, is a run-time switch at each store: it touches nothing else.)
template <int kPlanes, int kCM, int kWarps, int kKS>
__global__ void __launch_bounds__(32 * kWarps) a8_linear_kernel(const A8Params p) {
  using L = a8::Layout<kPlanes>;
  constexpr int kThreads = 32 * kWarps, kRT = kWarps / kKS;
  static_assert(kWarps % kKS == 0 && kWarps <= kA8MaxWarps, "warps = row tiles x K splits");
  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int ks = warp % kKS, rt = warp / kKS;  // the warp's K split and row tile
  int64_t chunk, group;  // this CTA's x rows (chunk_rows at a time) and weight rows (16 kRT at a time)
  a8::cta_position(blockIdx.x, (p.M + p.chunk_rows - 1) / p.chunk_rows, chunk, group);
  const int64_t m0 = chunk * p.chunk_rows;
  const int M = static_cast<int>(imin64(p.M - m0, p.chunk_rows));  // x rows of this CTA
  const int8_t* xq = p.xq + m0 * p.K;
  const int64_t N = p.N, cta_n0 = group * (16 * kRT), n0 = cta_n0 + 16 * rt;
  const int row_u4 = static_cast<int>(p.wpr / 4);  // uint4s per packed row (wpr is a multiple of 4)
  const int steps = (row_u4 + 3) / 4;
  const int64_t padded_k = p.wpr / kPlanes * 32;
  // shared memory: x rows (M x stride bytes), a window of zeros, then the int32 partial sums and row sums
  const a8::SmemLayout sl = a8::smem_layout<kPlanes>(M, padded_k, kWarps, kCM);
  const int64_t stride = sl.stride;
  unsigned char* zeros = smem + sl.zeros;                     // B of lanes without an x row
  int* red = reinterpret_cast<int*>(smem + sl.red);           // partial sums (a8::red_index)
  int* xsum = reinterpret_cast<int*>(smem + sl.xsum);         // row sums of x (a8::xsum_index)

  // rows past N read row N - 1 (their sums are not stored)
  const uint4* wg = reinterpret_cast<const uint4*>(p.w + imin64(n0 + g, N - 1) * p.wpr);
  const uint4* wg8 = reinterpret_cast<const uint4*>(p.w + imin64(n0 + g + 8, N - 1) * p.wpr);
  // (opaque to the compiler: otherwise ptxas may recompute both 64-bit row addresses from the parameters at every
  // step, ~30 instructions per step; it did after an unrelated change to A8Params)
  asm volatile("" : "+l"(wg), "+l"(wg8));
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Programmatic dependent launch (launch_a8_linear sets it on sm_90+): until griddepcontrol.wait this CTA may run
  // beside the previous kernel on the stream (typically absmax_int8 making xq and x_scale), so it must not read what
  // that kernel may write: x, x_scale, scales, nor the weights into registers.  It asks L2 for its first two steps'
  // weights (a prefetch is safe even if that kernel wrote them: global memory is coherent in L2), then waits; then
  // the next kernel may launch in turn.  Without the attribute, wait returns at once.
  for (int s = ks; s < steps && s < ks + 2 * kKS; s += kKS) {
    prefetch_l2(wg + a8::lane_u4(s, t, row_u4));
    prefetch_l2(wg8 + a8::lane_u4(s, t, row_u4));
  }
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  // Loads of steps past the row are skipped (warp-uniform); a lane past the row's last uint4 re-reads that uint4
  // (its A is multiplied by a zero B: a8::b_base points it at the zero window), so no register is zeroed per step.
  auto load = [&](int s, uint4& a, uint4& b) {
    if (s < steps) {
      const int i = a8::lane_u4(s, t, row_u4);
      a = load_weights_16B(reinterpret_cast<const uint32_t*>(wg + i));
      b = load_weights_16B(reinterpret_cast<const uint32_t*>(wg8 + i));
    }
  };
  uint4 wa0 = make_uint4(0u, 0u, 0u, 0u), wb0 = wa0, wa1 = wa0, wb1 = wa0, wa2 = wa0, wb2 = wa0;
  load(ks, wa0, wb0);  // the first two steps' weights are in flight while x is staged
  load(ks + kKS, wa1, wb1);

  if (threadIdx.x < L::kWindowBytes / 16) reinterpret_cast<uint4*>(zeros)[threadIdx.x] = make_uint4(0u, 0u, 0u, 0u);
  // Stage x: item i = (row m, unit u) = (i / nunits, i % nunits) of the CTA's rows, each unit (a8::Stage: one 32-byte
  // block, binary two) permuted.  A thread loads kStageBatch items before it stores any, so the loads of several rows
  // are in flight together (row after row, each row's loads were waited for before the next's were issued: the
  // digits backend's 4 rows at M = 1 were 4 round trips, now 2).  Row sums by shared-memory atomics.
  using S = a8::Stage<kPlanes>;
  // Two-plane kinds 4 (session 28, H200: M = 1-4 up to 20% faster than 2, e.g. ternary 8192^2 M = 4 16.2 -> 13.0 us,
  // int2 8192 x 28672 M = 4 29.8 -> 26.2; 88-121 registers, no spills); binary 2 (4 took binary 8192 x 28672 M = 1
  // from 17.5 to 18.8 us: 118-128 registers), 1 with two x tiles (2 took it from 128 to 150 registers).
  constexpr int kStageBatch = kPlanes == 2 ? 4 : kCM == 2 ? 1 : 2;
  const int nunits = static_cast<int>(padded_k / (32 * S::kUnitBlocks));  // (padded_k is a multiple of 128)
  const int items = M * nunits;  // (<= 16 * 8192: K <= kMaxK)
  if (threadIdx.x < a8::kMaxChunkRows) xsum[a8::xsum_index(threadIdx.x)] = 0;
  __syncthreads();
  auto load_unit = [&](int m, int u, uint32_t (&X)[S::kUnitBlocks][8]) {
    const int8_t* xrow = xq + static_cast<int64_t>(m) * p.K;
#pragma unroll
    for (int ub = 0; ub < S::kUnitBlocks; ++ub) {
      const int64_t k0 = 32 * (static_cast<int64_t>(u) * S::kUnitBlocks + ub);
      if (p.x_vec && k0 + 32 <= p.K) {
        const uint4 v0 = *reinterpret_cast<const uint4*>(xrow + k0);
        const uint4 v1 = *reinterpret_cast<const uint4*>(xrow + k0 + 16);
        X[ub][0] = v0.x; X[ub][1] = v0.y; X[ub][2] = v0.z; X[ub][3] = v0.w;
        X[ub][4] = v1.x; X[ub][5] = v1.y; X[ub][6] = v1.z; X[ub][7] = v1.w;
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          uint32_t v = 0;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int64_t k = k0 + 4 * i + j;
            if (k < p.K) v |= static_cast<uint32_t>(static_cast<uint8_t>(xrow[k])) << (8 * j);
          }
          X[ub][i] = v;
        }
      }
    }
  };
  for (int i0 = threadIdx.x; i0 < items; i0 += kStageBatch * kThreads) {
    uint32_t X[kStageBatch][S::kUnitBlocks][8];
#pragma unroll
    for (int r = 0; r < kStageBatch; ++r) {
      const int i = i0 + r * kThreads;
      if (i < items) load_unit(i / nunits, i % nunits, X[r]);
    }
#pragma unroll
    for (int r = 0; r < kStageBatch; ++r) {
      const int i = i0 + r * kThreads;
      if (i >= items) break;  // (i grows with r)
      const int m = i / nunits, u = i % nunits;
      int part = 0;
      uint32_t P[S::kUnitBlocks][8];
#pragma unroll
      for (int ub = 0; ub < S::kUnitBlocks; ++ub) {
#pragma unroll
        for (int w = 0; w < 8; ++w) part = a8::byte_sum(X[r][ub][w], part);
        a8::permute_block(X[r][ub], P[ub]);
      }
      unsigned char* srow = smem + m * stride;
#pragma unroll
      for (int c = 0; c < S::kUnitChunks; ++c)
        *reinterpret_cast<uint4*>(srow + a8::smem_unit_offset<kPlanes>(u, c)) =
            make_uint4(a8::unit_word<kPlanes>(P, c, 0), a8::unit_word<kPlanes>(P, c, 1),
                       a8::unit_word<kPlanes>(P, c, 2), a8::unit_word<kPlanes>(P, c, 3));
      atomicAdd(&xsum[a8::xsum_index(m)], part);
    }
  }
  __syncthreads();

  int acc[kCM][L::kSets][4];
#pragma unroll
  for (int cm = 0; cm < kCM; ++cm)
#pragma unroll
    for (int i = 0; i < L::kSets; ++i) acc[cm][i][0] = acc[cm][i][1] = acc[cm][i][2] = acc[cm][i][3] = 0;

  // One step: weights (wa, wb) of step s against x, and the loads of step s + 2 kKS into (la, lb).  Three
  // steps per iteration with the buffers rotated by name, so no register is copied.
  auto step = [&](int s, const uint4& wa, const uint4& wb, uint4& la, uint4& lb) {
    load(s + 2 * kKS, la, lb);
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
  for (int s = ks; s < steps; s += 3 * kKS) {
    step(s, wa0, wb0, wa2, wb2);
    if (s + kKS >= steps) break;
    step(s + kKS, wa1, wb1, wa0, wb0);
    if (s + 2 * kKS >= steps) break;
    step(s + 2 * kKS, wa2, wb2, wa1, wb1);
  }

  // Undo the sets' powers (exact shifts), then each row tile's sum over its kKS warps.
#pragma unroll
  for (int cm = 0; cm < kCM; ++cm)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      int v = 0;
#pragma unroll
      for (int i = 0; i < L::kSets; ++i) v += acc[cm][i][r] >> (L::kSetShift * i);
      red[a8::red_index<kCM>(warp, cm, r, lane)] = v;
    }
  __syncthreads();
  if (p.xe != nullptr) {  // digits backend: rows 4 mx .. 4 mx + 3 are the digits of x row m0 / 4 + mx
    for (int o = threadIdx.x; o < 16 * kRT * (M / a8::kDigits); o += kThreads) {
      int rc, mx;
      a8::out_position(o, 16 * kRT, rc, mx);
      const int rr = rc & 15, tile = rc >> 4;
      const int64_t n = cta_n0 + rc;
      if (n >= N) continue;
      int sum[a8::kDigits], X[a8::kDigits];
#pragma unroll
      for (int j = 0; j < a8::kDigits; ++j) {
        int cm, ln, reg;
        a8::c_position(rr, a8::kDigits * mx + j, cm, ln, reg);
        sum[j] = 0;
#pragma unroll
        for (int k = 0; k < kKS; ++k) sum[j] += red[a8::red_index<kCM>(tile * kKS + k, cm, reg, ln)];
        X[j] = xsum[a8::xsum_index(a8::kDigits * mx + j)];
      }
      int64_t T, XT;
      a8::combine_digits(sum, X, p.shift, T, XT);
      const int64_t row = m0 / a8::kDigits + mx;
      const float sv = load_as_float(p.s, p.s_dt, n * p.s_stride);
      const float uv = p.u ? load_as_float(p.u, p.u_dt, n * p.u_stride) : 0.f;
      const float bv = p.b ? load_as_float(p.b, p.b_dt, n) : 0.f;
      store_out(p, row * N + n, a8::epilogue_digits(T, XT, p.xe[row], sv, p.u != nullptr, uv, p.b != nullptr, bv));
    }
    return;
  }
  for (int o = threadIdx.x; o < 16 * kRT * M; o += kThreads) {
    int rc, m;  // weight row in the CTA, x row
    a8::out_position(o, 16 * kRT, rc, m);
    const int rr = rc & 15, tile = rc >> 4;  // row in its tile, the tile
    const int64_t n = cta_n0 + rc;
    if (n >= N) continue;
    int cm, ln, reg;
    a8::c_position(rr, m, cm, ln, reg);
    int sum = 0;
#pragma unroll
    for (int k = 0; k < kKS; ++k) sum += red[a8::red_index<kCM>(tile * kKS + k, cm, reg, ln)];
    const int X = xsum[a8::xsum_index(m)];
    const float sv = load_as_float(p.s, p.s_dt, n * p.s_stride);
    const float uv = p.u ? load_as_float(p.u, p.u_dt, n * p.u_stride) : 0.f;
    const float bv = p.b ? load_as_float(p.b, p.b_dt, n) : 0.f;
    const float v = a8::epilogue(sum, X, p.shift, p.xs[m0 + m], sv, p.u != nullptr, uv, p.b != nullptr, bv);
    store_out(p, (m0 + m) * N + n, v);
  }
}

namespace {
struct A8Plan {
  A8Config cfg;
  int variant;     // 0 / 1 / 2: {4, 4} / {8, 2} / {8, 1}
  int device;
  int chunk_rows;  // x rows per CTA
  int64_t smem;    // dynamic shared memory per CTA
  int64_t ctas;
};
// The launch of `params` (digits: x rows go in fours), or cudaErrorNotSupported where the kernel does not take it.
cudaError_t plan_a8_linear(const A8Params& params, bool digits, A8Plan& plan) {
  if (params.M < 1 || params.M > kA8MaxM || params.out == DType::kDouble || params.N < 1 ||
      (digits && params.M % a8::kDigits != 0) ||
      params.K > (params.planes == 2 ? a8::kMaxKTwoPlanes : a8::kMaxKBinary))
    return cudaErrorNotSupported;
  int optin = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&plan.device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, plan.device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, plan.device);
  if (err != cudaSuccess) return err;
  // the CTA configuration and x rows per CTA (a8::pick_config's fitted cost; BITMM_A8_CFG=1 / 2 / 3 keeps {4, 4} /
  // {8, 2} / {8, 1}, BITMM_A8_CHUNK=n at most n x rows per CTA: probe overrides, read once)
  static const int force = env_int("BITMM_A8_CFG"), chunk_cap = env_int("BITMM_A8_CHUNK");
  const int64_t padded_k = ::bitmm::padded_k(params.K);
  const int unit = digits ? a8::kDigits : 1;  // (the digits of a row of x stay in one CTA)
  const int cap = chunk_cap > 0 && chunk_cap < a8::kMaxChunkRows ? chunk_cap : a8::kMaxChunkRows;
  const a8::Config c =
      params.planes == 2 ? a8::pick_config<2>(params.M, params.N, padded_k, sms, optin, unit, force, cap)
                         : a8::pick_config<1>(params.M, params.N, padded_k, sms, optin, unit, force, cap);
  if (c.chunk_rows == 0) return cudaErrorNotSupported;  // (not even `unit` rows of x fit the shared memory)
  plan.cfg = A8Config{c.warps, c.ks};
  plan.chunk_rows = c.chunk_rows;
  plan.smem = c.smem;
  const A8Config& cfg = plan.cfg;
  plan.variant = cfg.warps == 4 && cfg.ks == 4 ? 0 : cfg.warps == 8 && cfg.ks == 2 ? 1
                                                  : cfg.warps == 8 && cfg.ks == 1 ? 2 : -1;
  if (plan.variant < 0) return cudaErrorNotSupported;  // (the instances in launch_a8_linear)
  const int64_t rows_per_cta = 16 * cfg.warps / cfg.ks;
  plan.ctas = (params.N + rows_per_cta - 1) / rows_per_cta * ((params.M + plan.chunk_rows - 1) / plan.chunk_rows);
  return plan.ctas > INT_MAX ? cudaErrorNotSupported : cudaSuccess;
}
}  // namespace

bool a8_linear_supported(const A8Params& params, bool digits) {
  A8Plan plan;
  return plan_a8_linear(params, digits, plan) == cudaSuccess;
}

cudaError_t launch_a8_linear(const A8Params& params, cudaStream_t stream) {
  A8Plan plan;
  const cudaError_t err = plan_a8_linear(params, params.xe != nullptr, plan);
  if (err != cudaSuccess) return err;
  const A8Config cfg = plan.cfg;
  const int variant = plan.variant, device = plan.device;
  const int64_t smem = plan.smem;
  A8Params p = params;
  p.chunk_rows = plan.chunk_rows;
  const dim3 grid(static_cast<unsigned>(plan.ctas));
  auto go = [&](auto kernel) {
    int ptx = 0;
    const cudaError_t e = prepare_kernel(reinterpret_cast<const void*>(kernel), device, smem, &ptx);
    if (e != cudaSuccess) return e;
    return launch_maybe_pdl(kernel, grid, dim3(32 * cfg.warps), static_cast<size_t>(smem), stream, ptx, p);
  };
  // planes x x tiles x configuration: 2 x 2 x 3 instances
  return BITMM_BOOL_SWITCH(p.planes == 2, kTwo, [&] {
    return BITMM_BOOL_SWITCH(p.chunk_rows > 8, kTwoTiles, [&] {
      constexpr int P = kTwo ? 2 : 1, CM = kTwoTiles ? 2 : 1;
      return variant == 0 ? go(a8_linear_kernel<P, CM, 4, 4>)
             : variant == 1 ? go(a8_linear_kernel<P, CM, 8, 2>) : go(a8_linear_kernel<P, CM, 8, 1>);
    });
  });
}

}  // namespace cuda
}  // namespace bitmm
