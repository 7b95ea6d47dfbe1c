// Instantiates the Hopper wgmma grad_x kernel (wg_grad_x.cuh) for one grad_y dtype: one file per dtype so
// they compile in parallel.
#include "wg_grad_x.cuh"

cudaError_t bitmm::cuda::launch_wg_grad_x_f16(const GradXParams& p, cudaStream_t stream) {
  return launch_wg_grad_x_kinds<__half>(p, stream);
}
