// Instantiates the Hopper wgmma kernel (wg_linear.cuh) for one (x dtype, kind): one file each so
// the instantiations compile in parallel.
#include "wg_linear.cuh"

namespace bitmm {
namespace cuda {
cudaError_t launch_wg_linear_f16_ternary(const LinearParams& p, int num_sms, cudaStream_t stream) {
  return launch_wg_for<__half, 2>(p, num_sms, stream);
}
}  // namespace cuda
}  // namespace bitmm
