// Instantiates the Hopper wgmma grad_x kernel (wg_grad_x.cuh) for one grad_y dtype: one file per dtype so
// they compile in parallel.
#include "wg_grad_x.cuh"

cudaError_t bitmm::cuda::launch_wg_grad_x_bf16(const GradXParams& p, cudaStream_t stream) {
  return launch_wg_grad_x_kinds<__nv_bfloat16>(p, stream);
}
