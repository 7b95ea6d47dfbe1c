// Instantiates the tensor-core grad_x kernel (tc_grad_x.cuh) for one grad_y dtype; one file per
// dtype so they compile in parallel.
#include "tc_grad_x.cuh"

namespace bitmm {
namespace cuda {
cudaError_t launch_tc_grad_x_bf16(const GradXParams& p, float* accum, int num_sms, cudaStream_t stream) {
  switch (p.kind) {
    case 1: return launch_tc_grad_x_for<__nv_bfloat16, 1>(p, accum, num_sms, stream);
    case 2: return launch_tc_grad_x_for<__nv_bfloat16, 2>(p, accum, num_sms, stream);
    default: return launch_tc_grad_x_for<__nv_bfloat16, 3>(p, accum, num_sms, stream);
  }
}
}  // namespace cuda
}  // namespace bitmm
