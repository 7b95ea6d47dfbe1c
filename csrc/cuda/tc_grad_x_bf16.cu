// Instantiates the tensor-core grad_x kernel (tc_grad_x.cuh) for one grad_y dtype; one file per
// dtype so they compile in parallel.
#include "tc_grad_x.cuh"

cudaError_t bitmm::cuda::launch_tc_grad_x_bf16(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream) {
  return launch_tc_grad_x_kinds<__nv_bfloat16>(p, accum, num_sms, stream);
}
