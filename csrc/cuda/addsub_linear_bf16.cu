// Instantiates the add/subtract kernel for one activation dtype (one file per
// dtype so the instantiations compile in parallel).
#include "addsub_linear.cuh"

namespace bitmm {
namespace cuda {
cudaError_t launch_addsub_linear_bf16(const LinearParams& p, int num_sms, cudaStream_t stream) {
  return launch_addsub_for_dtype<__nv_bfloat16>(p, num_sms, stream);
}
}  // namespace cuda
}  // namespace bitmm
