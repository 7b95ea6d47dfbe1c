// Instantiates the tensor-core kernel for one (x dtype, kind): one file each so
// the instantiations compile in parallel.
#include "tc_linear.cuh"

namespace bitmm {
namespace cuda {
cudaError_t launch_tc_linear_bf16_binary(const LinearParams& p, int num_sms, cudaStream_t stream) {
  return launch_tc_for<__nv_bfloat16, 1>(p, num_sms, stream);
}
}  // namespace cuda
}  // namespace bitmm
