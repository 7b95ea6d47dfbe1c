// Instantiates the Hopper wgmma kernel (wg_linear.cuh) for one (x dtype, kind): one file each so
// the instantiations compile in parallel.
#include "wg_linear.cuh"

namespace bitmm {
namespace cuda {
cudaError_t launch_wg_linear_bf16_int2(const LinearParams& p, int num_sms, cudaStream_t stream) {
  return launch_wg_for<__nv_bfloat16, 3>(p, num_sms, stream);
}
}  // namespace cuda
}  // namespace bitmm
