// bitmm from C++: a libtorch program linked against libbitmm.so (no dynamic
// loading).  Linking the library runs its static TORCH_LIBRARY registrations,
// after which the ops are reached by name through the dispatcher, exactly like
// torch.ops.bitmm.* in Python.
//
// Packs random ternary weights W (N=37, K=100; codes c = t + 1 in {0,1,2}),
// computes y = x @ (W * scale)^T with bitmm::ternary_linear (additions only),
// and checks it against the dense reference.  Exit status 0 = pass.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <optional>

#include "bitmm_format.h"  // installed as <prefix>/include/bitmm/bitmm_format.h

namespace {

using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                            const std::optional<at::Tensor>&, const std::optional<at::Tensor>&);
using PackFn = at::Tensor(const at::Tensor&, int64_t);

double max_abs_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace

int main() {
  try {
    const int64_t M = 5, N = 37, K = 100;
    constexpr double kTol = 1e-4;
    at::manual_seed(0);

    auto& dispatcher = c10::Dispatcher::singleton();
    // Throws "Could not find schema for bitmm::pack" if libbitmm.so was not loaded.
    auto pack = dispatcher.findSchemaOrThrow("bitmm::pack", "").typed<PackFn>();
    auto ternary_linear = dispatcher.findSchemaOrThrow("bitmm::ternary_linear", "").typed<LinearFn>();

    const at::Tensor codes = at::randint(0, 3, {N, K}, at::kLong);  // t + 1, t in {-1, 0, 1}
    const at::Tensor packed = pack.call(codes, static_cast<int64_t>(bitmm::Kind::kTernary));
    const int64_t want_words = bitmm::words_per_row(bitmm::Kind::kTernary, K);
    if (packed.scalar_type() != at::kInt || packed.size(0) != N || packed.size(1) != want_words) {
      std::printf("FAIL: packed has shape [%lld, %lld], want [%lld, %lld] int32\n",
                  (long long)packed.size(0), (long long)packed.size(1), (long long)N,
                  (long long)want_words);
      return 1;
    }

    const at::Tensor x = at::randn({M, K});
    const at::Tensor scale = at::rand({N}) + 0.5;  // per output channel
    const at::Tensor w = (codes - 1).to(at::kFloat);

    const at::Tensor y = ternary_linear.call(x, packed, scale, std::nullopt, std::nullopt);
    const at::Tensor ref = x.matmul(w.t()) * scale;
    const double err = max_abs_err(y, ref);

    const at::Tensor bias = at::randn({N});
    const at::Tensor y_bias = ternary_linear.call(x, packed, scale, std::nullopt, bias);
    const double err_bias = max_abs_err(y_bias, ref + bias);

    std::printf("bitmm::ternary_linear  M=%lld N=%lld K=%lld  packed %lldx%lld int32\n",
                (long long)M, (long long)N, (long long)K, (long long)packed.size(0),
                (long long)packed.size(1));
    std::printf("  max |y - x @ (W*scale)^T|        = %.3g\n", err);
    std::printf("  max |y - (x @ (W*scale)^T + b)|  = %.3g   (with bias)\n", err_bias);
    if (!(err <= kTol) || !(err_bias <= kTol)) {  // also fails on NaN
      std::printf("FAIL: error above %.0e\n", kTol);
      return 1;
    }
    std::printf("PASS\n");
    return 0;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 2;
  }
}
