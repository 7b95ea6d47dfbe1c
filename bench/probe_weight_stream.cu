// Probe (not part of the extension): how fast can a CTA grid stream 2-bit weights
// (N x K = 28672 x 8192, 58.7 MB) into shared memory with cp.async, by access
// pattern?  Isolates the memory side of the tensor-core kernel at M = 1
// (bench/NOTES.md, tc10).  Build and run on the device:
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probe_weight_stream.cu -o /tmp/probe && /tmp/probe
// Patterns (each warp step moves 1 KB, 16 weight rows of 2 KB each per CTA tile):
//   0  the tc kernel's: lane (g, tig) copies rows g and g+8, 16 B at window tig:
//      64 B per row per instruction, 4 K-split warps on interleaved steps
//   1  super-steps: 4 steps (16 rows x 256 B = 4 KB) per warp, each instruction
//      covering 2 rows x 256 B (any lane copies any piece; __syncwarp before use)
//   2  a tiled layout: each warp step's 1 KB contiguous in memory
//   3  plain coalesced 16-byte loads to registers (upper bound)
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

constexpr int K = 8192, N = 28672, ROW_B = K / 4, TILE_ROWS = 16, WARPS = 4;

__device__ __forceinline__ void cp16(void* s, const void* g) {
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(s));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(g));
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int n> __device__ __forceinline__ void wait_g() { asm volatile("cp.async.wait_group %0;\n" ::"n"(n)); }

template <int PAT, int ST>
__global__ void __launch_bounds__(128) stream_kernel(const uint8_t* __restrict__ w, uint32_t* out) {
  constexpr int STEP_B = PAT == 1 ? 4096 : 1024;  // bytes per warp step
  __shared__ __align__(16) uint8_t ring[WARPS][ST][STEP_B];
  const int lane = threadIdx.x & 31, wk = threadIdx.x >> 5, g = lane >> 2, tig = lane & 3;
  const int tiles = N / TILE_ROWS;
  const int steps_per_tile = ROW_B * TILE_ROWS / STEP_B / WARPS;  // per warp
  uint32_t acc = 0;
  // Flattened (tile, step) sequence of this warp; ring of ST slots, ST - 1 ahead.
  const int my_tiles = (tiles - 1 - blockIdx.x) / gridDim.x + 1;
  const int total = my_tiles * steps_per_tile;
  auto src_of = [&](int j, int piece) -> const uint8_t* {
    const int t = blockIdx.x + (j / steps_per_tile) * gridDim.x, i = j % steps_per_tile;
    const int ls = wk + i * WARPS;  // step index within the tile
    const uint8_t* tile = w + static_cast<size_t>(t) * TILE_ROWS * ROW_B;
    if constexpr (PAT == 0) {  // piece 0: row g, piece 1: row g + 8
      return tile + static_cast<size_t>(g + 8 * piece) * ROW_B + ls * 64 + tig * 16;
    } else if constexpr (PAT == 1) {  // piece 0..7: rows 2p, 2p+1, 256 B each
      const int row = 2 * piece + (lane >> 4);
      return tile + static_cast<size_t>(row) * ROW_B + ls * 256 + (lane & 15) * 16;
    } else {  // tiled: step ls of the tile is 1 KB contiguous
      return tile + static_cast<size_t>(ls) * 1024 + piece * 512 + lane * 16;
    }
  };
  constexpr int PIECES = PAT == 1 ? 8 : 2;
  auto issue = [&](int j) {
    if (j < total) {
#pragma unroll
      for (int p = 0; p < PIECES; ++p) cp16(&ring[wk][j % ST][(p * 32 + lane) * 16], src_of(j, p));
    }
    commit();
  };
  for (int j = 0; j < ST - 1; ++j) issue(j);
  for (int j = 0; j < total; ++j) {
    wait_g<ST - 2>();
    if (PAT == 1) __syncwarp();
    issue(j + ST - 1);
    const uint4* s = reinterpret_cast<const uint4*>(ring[wk][j % ST]);
#pragma unroll
    for (int p = 0; p < PIECES; ++p) {
      const uint4 v = s[p * 32 + lane];
      acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (PAT == 1) __syncwarp();
  }
  wait_g<0>();
  if (acc == 0x12345678u) out[0] = acc;
}

__global__ void ldg_kernel(const uint4* __restrict__ w, size_t n16, uint32_t* out) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n16; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(w + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) out[0] = acc;
}

template <typename F> float time_it(F f, int reps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f(0);
  cudaEventRecord(a);
  for (int r = 0; r < reps; ++r) f(r);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  return ms * 1000 / reps;
}

int main() {
  const size_t bytes = static_cast<size_t>(N) * ROW_B;
  constexpr int BUFS = 6;  // 352 MB: rotated past the L2
  uint8_t* w;
  uint32_t* out;
  cudaMalloc(&w, bytes * BUFS);
  cudaMalloc(&out, 4);
  cudaMemset(w, 1, bytes * BUFS);
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  auto report = [&](const char* name, float us) {
    printf("%-40s %7.2f us  %6.2f TB/s\n", name, us, bytes / us / 1e6);
  };
  for (int per_sm : {4, 5, 7}) {
    const int grid = sms * per_sm;
    char name[96];
#define RUN(PAT, ST)                                                                                      \
  snprintf(name, sizeof name, "pattern %d, ring %d, %d CTAs/SM", PAT, ST, per_sm);                         \
  report(name, time_it([&](int r) { stream_kernel<PAT, ST><<<grid, 128>>>(w + (r % BUFS) * bytes, out); }, 30));
    RUN(0, 2) RUN(0, 3) RUN(0, 4) RUN(0, 6) RUN(1, 2) RUN(1, 3) RUN(2, 2) RUN(2, 3) RUN(2, 4)
  }
  report("plain LDG.128, 8 CTAs/SM x 256 thr",
         time_it([&](int r) { ldg_kernel<<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(w + (r % BUFS) * bytes), bytes / 16, out); }, 30));
  const cudaError_t e = cudaDeviceSynchronize();
  printf("status: %s\n", cudaGetErrorString(e));
  return 0;
}
