// Launch helpers: the dynamic shared-memory limit and the PTX version per kernel and device (the W2A8 kernels,
// a8_linear.cu and quant_absmax.cu), and programmatic dependent launch (PDL; the tensor-core kernel too).  Host code.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "env_knobs.h"

namespace bitmm {
namespace cuda {

// Per kernel and device, remembered for the process: the dynamic shared-memory limit set so far (raised through
// the driver only when a launch needs more) and the PTX version the kernel's code came from (programmatic
// dependent launch needs griddepcontrol, compiled in from compute_90 on: sm_80 code JIT-compiled for a Hopper has
// no wait and must launch plainly).
struct KernelState {
  int64_t smem_set = 0;
  int ptx_version = -1;
};
inline cudaError_t prepare_kernel(const void* kernel, int device, int64_t smem, int* ptx_version) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, KernelState> states;
  const std::lock_guard<std::mutex> lock(mu);
  KernelState& st = states[{kernel, device}];
  if (st.ptx_version < 0) {
    cudaFuncAttributes fa{};
    const cudaError_t e = cudaFuncGetAttributes(&fa, kernel);
    if (e != cudaSuccess) return e;
    st.ptx_version = fa.ptxVersion;
  }
  *ptx_version = st.ptx_version;
  if (smem > 48 * 1024 && st.smem_set < smem) {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    st.smem_set = smem;
  }
  return cudaSuccess;
}

// A launch with programmatic dependent launch: the kernel's CTAs may start while the previous kernel on the stream
// still runs, so the kernel must execute griddepcontrol.wait before it touches anything that kernel writes.
template <typename Kernel, typename... Args>
cudaError_t launch_pdl(Kernel kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, args...);
}

// The W2A8 kernels' launch: with programmatic dependent launch where the kernel's code has griddepcontrol
// (BITMM_A8_PDL=0: never; read once), else a plain one.
template <typename Kernel, typename... Args>
cudaError_t launch_maybe_pdl(Kernel kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, int ptx_version,
                             Args... args) {
  static const bool pdl_env = std::getenv("BITMM_A8_PDL") == nullptr || env_int("BITMM_A8_PDL") != 0;
  if (pdl_env && ptx_version >= 90) return launch_pdl(kernel, grid, block, smem, stream, args...);
  kernel<<<grid, block, smem, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace bitmm
