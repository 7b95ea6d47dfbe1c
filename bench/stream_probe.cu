// Session 55: is the M = 1 tensor-core kernel's streaming rate (1.93 TB/s on 16384 x 53248 ternary, 218 MB, against
// fp16 F.linear's 2.95 TB/s; bench/results/h100_s54_fixed_stream_fit_e53e0a3.txt) set by its access pattern, by its
// bytes in flight or by the instructions it issues per byte?  This probe reads the same 218 MB (53248 rows of 4096
// packed bytes) with no matmul at all:
//   linear     every thread 16-byte loads over the whole buffer, U loads in flight (the read peak);
//   tile R D P C  the kernel's shape: a CTA of 4 warps owns R rows; a warp step moves 1 KB (32 lanes x 2 x 16 B
//              cp.async into a per-warp shared ring of D slots) as R rows x (1024 / R) bytes; the 4 warps take
//              alternate steps along K (warp w: steps w, w + 4, ...), as tc_linear's WK = 4 warps do at M = 1.
//              P KB of extra shared memory per CTA stands for x's staging (32 KB at K = 16384), which caps the
//              resident CTAs as in the real kernel; C: ALU instructions per lane per step (the real step loop
//              issues ~224 per 1 KB, bench/results/sass_report_tc_sm90a_cd6014e.txt, RN = CM = 1).
// R = 16 is today's pattern (16 rows x 64 B per warp step, 256 B per row per CTA round).
// Build and run (no torch):  nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/stream_probe bench/stream_probe.cu && /tmp/stream_probe
// Prints one line per variant: microseconds per pass (median of 15, two buffers alternated, each past the 50 MB
// L2) and TB/s.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#define CK(x)                                                                           \
  do {                                                                                  \
    cudaError_t e_ = (x);                                                               \
    if (e_ != cudaSuccess) {                                                            \
      std::printf("CUDA error %s at line %d: %s\n", #x, __LINE__, cudaGetErrorString(e_)); \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

constexpr int kRows = 53248;
constexpr int kRowBytes = 4096;  // 16384 ternary weights
constexpr size_t kBytes = size_t(kRows) * kRowBytes;

template <int U>
__global__ void read_linear(const uint4* __restrict__ p, size_t n16, uint32_t* sink) {
  uint32_t acc = 0;
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (; i + (U - 1) * stride < n16; i += U * stride) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = __ldg(p + i + u * stride);
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n16; i += stride) { uint4 v = __ldg(p + i); acc ^= v.x ^ v.y ^ v.z ^ v.w; }
  if (acc == 0x12345678u) sink[0] = acc;  // (never true in practice; keeps the loads)
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// R rows per CTA tile; D ring slots per warp.
template <int R, int D>
__global__ void __launch_bounds__(128) read_tile(const uint8_t* __restrict__ w, uint32_t* sink, int alu) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int kSeg = 1024 / R;      // bytes per row per warp step
  constexpr int kC16 = kSeg / 16;     // 16-byte chunks per row per step
  constexpr int kSteps = kRowBytes / kSeg;  // steps per row (over all 4 warps)
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  uint8_t* ring = smem + warp * D * 1024;
  const uint8_t* tile = w + size_t(blockIdx.x) * R * kRowBytes;
  // this lane's two chunks of a step: c = p * 32 + lane
  int off[2];
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    const int c = p * 32 + lane;
    off[p] = (c / kC16) * kRowBytes + (c % kC16) * 16;
  }
  auto issue = [&](int s, int slot) {
    if (s < kSteps) {
#pragma unroll
      for (int p = 0; p < 2; ++p) cp_async16(ring + slot * 1024 + (p * 32 + lane) * 16, tile + off[p] + s * kSeg);
    }
    cp_commit();
  };
  int s = warp;
#pragma unroll
  for (int d = 0; d < D - 1; ++d) issue(s + 4 * d, d);
  uint32_t acc = lane;
  int slot = 0;
  for (; s < kSteps; s += 4) {
    cp_wait<D - 2>();
    __syncwarp();
    const uint4 a = *reinterpret_cast<const uint4*>(ring + slot * 1024 + lane * 16);
    const uint4 b = *reinterpret_cast<const uint4*>(ring + slot * 1024 + (32 + lane) * 16);
    uint32_t x = a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
#pragma unroll 8
    for (int i = 0; i < alu; ++i) x = (x << 1) ^ (x >> 3) ^ 0x9e3779b9u;
    acc += x;
    __syncwarp();
    issue(s + 4 * (D - 1), (slot + D - 1) % D);
    slot = (slot + 1) % D;
  }
  cp_wait<0>();
  if (acc == 0x12345678u) sink[0] = acc;
}

static float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Launch>
static void time_it(const char* name, Launch launch, uint8_t* bufs[2]) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) launch(bufs[i & 1]);
  CK(cudaGetLastError());
  std::vector<float> t;
  for (int i = 0; i < 15; ++i) {
    CK(cudaEventRecord(e0));
    launch(bufs[i & 1]);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    t.push_back(ms * 1000.f);
  }
  const float us = median(t);
  std::printf("%-34s %8.1f us  %5.2f TB/s\n", name, us, kBytes / (us * 1e-6) / 1e12);
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
}

template <int R, int D>
static void tile_case(uint8_t* bufs[2], uint32_t* sink, int pad_kb, int alu) {
  const int smem = 4 * D * 1024 + pad_kb * 1024;
  CK(cudaFuncSetAttribute(read_tile<R, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, read_tile<R, D>, 128, smem));
  char name[96];
  std::snprintf(name, sizeof name, "tile R=%d D=%d P=%dKB C=%d (%d/SM)", R, D, pad_kb, alu, per_sm);
  time_it(name, [&](uint8_t* w) { read_tile<R, D><<<kRows / R, 128, smem>>>(w, sink, alu); }, bufs);
}

int main() {
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, %zu MB per pass\n", prop.name, sms, kBytes >> 20);
  uint8_t* bufs[2];
  uint32_t* sink;
  for (auto& b : bufs) {
    CK(cudaMalloc(&b, kBytes));
    CK(cudaMemset(b, 0x5a, kBytes));
  }
  CK(cudaMalloc(&sink, 4));
  const size_t n16 = kBytes / 16;
  time_it("linear U=4 (8 CTAs/SM x 256)", [&](uint8_t* p) {
    read_linear<4><<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(p), n16, sink); }, bufs);
  time_it("linear U=8 (8 CTAs/SM x 256)", [&](uint8_t* p) {
    read_linear<8><<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(p), n16, sink); }, bufs);
  for (int alu : {0, 100, 200}) {
    tile_case<16, 6>(bufs, sink, 32, alu);  // today's pattern and ring
    tile_case<8, 6>(bufs, sink, 32, alu);
    tile_case<4, 6>(bufs, sink, 32, alu);
    tile_case<1, 6>(bufs, sink, 32, alu);
  }
  tile_case<16, 6>(bufs, sink, 0, 0);
  tile_case<16, 4>(bufs, sink, 32, 0);
  tile_case<16, 2>(bufs, sink, 32, 0);
  tile_case<4, 4>(bufs, sink, 32, 0);
  tile_case<16, 6>(bufs, sink, 80, 0);  // 2 CTAs per SM
  tile_case<4, 6>(bufs, sink, 80, 0);
  CK(cudaDeviceSynchronize());
  return 0;
}
