// Racecheck control for the warp-specialized wgmma pipeline (wg_linear.cuh, WS; bench/NOTES.md wg9).
//
// racecheck reports every-pair hazards between wg9's consumers' LDS of a ring slot and its producer's
// cp.async writes into it.  This program runs the same protocol on a trivially checkable producer /
// consumer pair and says whether racecheck models each ordering:
//   mode 0 "async-arrive": producer warp cp.async's 16 B per lane into slot s, then
//          cp.async.mbarrier.arrive.noinc on full[s] (count 32); the consumer warp try_waits on full[s],
//          reads the slot, writes it out, __syncwarp, lane 0 arrives on empty[s] (count 1); the
//          producer try_waits on empty[s] before refilling it (wg9's protocol, 2 slots, 64 rounds)
//   mode 1 "wait-arrive": as 0, but the producer waits for its copies (cp.async.wait_all) and
//          arrives with a plain mbarrier.arrive (release) on full[s]
//   mode 2 "no-wait": as 0, but the consumer does not wait on full[s] (a real race: must be reported)
//   mode 3 "bar-sync": the same handshake through named barriers (bar.arrive / bar.sync), which
//          racecheck models (expected clean)
// The output is checked against the input (exit 1 on a mismatch; mode 2 may or may not mismatch).
//
//   nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -o /tmp/mbar bench/san_mbarrier_control.cu
//   for m in 0 1 2 3; do compute-sanitizer --tool racecheck /tmp/mbar $m; done
// Reading: modes 0 and 1 reported like mode 2 while mode 3 is clean -> racecheck does not model the
// mbarrier ordering (wg9's reports are the tool's); mode 0 reported but mode 1 clean -> it models
// mbarriers but not cp.async's arrive-on; neither reported -> wg9's reports need another explanation.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

constexpr int kSlots = 2, kRounds = 64, kLanes = 32;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}

__global__ void control(const uint4* in, uint4* out, int mode) {
  __shared__ alignas(16) uint4 slot[kSlots][kLanes];
  __shared__ alignas(8) uint64_t full[kSlots], empty[kSlots];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kSlots; ++s) {
      mbar_init(smem_addr(&full[s]), kLanes);  // the 32 producer lanes arrive (modes 0-2)
      mbar_init(smem_addr(&empty[s]), 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == 1) {  // producer
    for (int r = 0; r < kRounds; ++r) {
      const int s = r % kSlots;
      if (mode == 3) {
        if (r >= kSlots) asm volatile("bar.sync %0, 64;\n" ::"r"(3 + s) : "memory");  // slot s empty
      } else if (r >= kSlots) {
        mbar_wait(smem_addr(&empty[s]), (r / kSlots - 1) & 1);
      }
      cp_async_16(smem_addr(&slot[s][lane]), in + r * kLanes + lane);
      if (mode == 0 || mode == 2) {
        asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(&full[s])) : "memory");
      } else {
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        if (mode == 1) mbar_arrive(smem_addr(&full[s]));
        else asm volatile("bar.arrive %0, 64;\n" ::"r"(1 + s) : "memory");  // slot s full
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
  } else {  // consumer
    for (int r = 0; r < kRounds; ++r) {
      const int s = r % kSlots;
      if (mode == 3) asm volatile("bar.sync %0, 64;\n" ::"r"(1 + s) : "memory");
      else if (mode != 2) mbar_wait(smem_addr(&full[s]), (r / kSlots) & 1);
      out[r * kLanes + lane] = slot[s][lane];
      __syncwarp();
      if (r + kSlots < kRounds) {  // the producer refills this slot
        if (mode == 3) asm volatile("bar.arrive %0, 64;\n" ::"r"(3 + s) : "memory");
        else if (lane == 0) mbar_arrive(smem_addr(&empty[s]));
      }
    }
  }
}

int main(int argc, char** argv) {
  const int mode = argc > 1 ? std::atoi(argv[1]) : 0;
  const int n = kRounds * kLanes;
  uint4 *in = nullptr, *out = nullptr;
  cudaMallocManaged(&in, n * sizeof(uint4));
  cudaMallocManaged(&out, n * sizeof(uint4));
  for (int i = 0; i < n; ++i) in[i] = make_uint4(i, 3 * i + 1, 7 * i + 2, 11 * i + 3);
  control<<<1, 64>>>(in, out, mode);
  const cudaError_t err = cudaDeviceSynchronize();
  int bad = 0;
  for (int i = 0; i < n && err == cudaSuccess; ++i)
    bad += out[i].x != in[i].x || out[i].y != in[i].y || out[i].z != in[i].z || out[i].w != in[i].w;
  std::printf("mode %d: %s, %d of %d wrong\n", mode, cudaGetErrorString(err), bad, n);
  return err != cudaSuccess || (bad && mode != 2);
}
