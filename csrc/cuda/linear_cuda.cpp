// Torch glue for the CUDA backend: checks (shared helper), dtype / layout
// preparation, and launches on the current stream of x's device.  No host
// synchronisation on the linear paths (CUDA-graph capturable).
#include <cstdlib>
#include <limits>
#include <string>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../backend.h"
#include "../bitmm_format.h"
#include "../checks.h"
#include "../linear_a8.h"
#include "a8_fragments.h"
#include "env_knobs.h"
#include "kernels.h"
#include "tc_kernels.h"
#include "wg_plan.h"

namespace bitmm {
namespace {

// Test aid: with BITMM_POISON_OUTPUTS=1 (read once per process; tests/conftest.py sets it) an output that the kernels
// must write whole is filled with NaN before they run, so an element a kernel skips reads NaN in the test, not
// whatever the recycled block held (the caching allocator hands out stale blocks, often holding a previous call's
// correct result).  Off by default: no cost outside the tests.
// Integer outputs get a pattern no kernel writes there by chance: int8 -128 (no stored code is negative), int32
// 0x5A5A5A5A (a packed word: compared bit for bit with the CPU's).
at::Tensor& poison_output(at::Tensor& t) {
  static const bool on = cuda::env_int("BITMM_POISON_OUTPUTS") == 1;
  if (!on || t.numel() == 0) return t;
  if (t.is_floating_point()) t.fill_(std::numeric_limits<double>::quiet_NaN());
  else if (t.scalar_type() == at::kChar) t.fill_(-128);
  else if (t.scalar_type() == at::kInt) t.fill_(0x5A5A5A5A);
  return t;
}

cuda::DType dtype_of(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return cuda::DType::kHalf;
    case at::kBFloat16: return cuda::DType::kBFloat16;
    case at::kDouble: return cuda::DType::kDouble;
    default: return cuda::DType::kFloat;
  }
}

void check_cuda(cudaError_t err, const char* what, const LinearProblem& p) {
  BITMM_CHECK(err == cudaSuccess, "bitmm CUDA ", what, " failed for ", name_of(p.kind), " M=", p.M, " N=", p.N,
              " K=", p.K, ": ", cudaGetErrorString(err));
}

// Scale / offset / bias in a dtype the kernels read: float32, or x's dtype.
struct PreparedScales {
  at::Tensor scale, offset, bias;
  at::ScalarType dtype;
};

PreparedScales prepare_scales(const at::Tensor& x, const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                              const std::optional<at::Tensor>& bias) {
  PreparedScales r;
  const at::ScalarType xt = x.scalar_type();
  bool same = scale.scalar_type() == xt && (!offset || offset->scalar_type() == xt) &&
              (!bias || bias->scalar_type() == xt);
  r.dtype = same ? xt : (xt == at::kDouble ? at::kDouble : at::kFloat);
  r.scale = scale.to(r.dtype);
  if (offset) r.offset = offset->to(r.dtype);
  if (bias) r.bias = bias->to(r.dtype).contiguous();
  return r;
}

void fill_scale_fields(cuda::LinearParams& lp, const LinearProblem& p, const PreparedScales& ps) {
  lp.scale = ps.scale.data_ptr();
  lp.s_sn = ps.scale.dim() >= 1 ? ps.scale.stride(0) : 0;
  // (N, 1) is per channel: the offset may be group-wise, so g can exceed 0.
  lp.s_sg = ps.scale.dim() == 2 && ps.scale.size(1) > 1 ? ps.scale.stride(1) : 0;
  lp.offset = ps.offset.defined() ? ps.offset.data_ptr() : nullptr;
  lp.u_sn = ps.offset.defined() && ps.offset.dim() >= 1 ? ps.offset.stride(0) : 0;
  lp.u_sg = ps.offset.defined() && ps.offset.dim() == 2 && ps.offset.size(1) > 1 ? ps.offset.stride(1) : 0;
  lp.s_dtype = dtype_of(ps.dtype);
  lp.two_planes = planes_of(p.kind) == 2 ? 1 : 0;
  lp.kind = static_cast<int>(p.kind);
  // Per tensor / per channel: one "group" spanning the padded row.
  lp.group_size = p.groups > 1 ? p.group_size : padded_k(p.K);
}

// BITMM_WG_SCALE_T=1 (probe knob, read once; measured slower, session 45): a group-wise (N, G) scale or offset not already stored group-major
// copied to (G, N) storage for the wgmma kernel, its strides in `sn` / `sg` updated (row stride 1, group stride N);
// an undefined tensor (and the strides untouched) otherwise: off, per tensor / channel, or already column-major.
at::Tensor grouped_transposed(const at::Tensor& t, int64_t& sn, int64_t& sg) {
  static const bool on = cuda::env_int("BITMM_WG_SCALE_T") == 1;
  if (!on || t.dim() != 2 || t.size(1) <= 1 || sn == 1) return at::Tensor();
  at::Tensor g = t.t().contiguous();  // (G, N)
  sn = 1;
  sg = g.stride(0);
  return g;
}

// The kernels read packed rows with 16-byte loads: rows are 16-byte multiples,
// but a view with a storage offset may start anywhere.
at::Tensor aligned_packed(const at::Tensor& packed_w) {
  at::Tensor w = packed_w.contiguous();
  if (reinterpret_cast<uintptr_t>(w.data_ptr()) % 16 != 0) w = w.clone();
  return w;
}

int num_sms(int device) {
  return at::cuda::getDeviceProperties(device)->multiProcessorCount;
}

constexpr int64_t kMaxRowsPerLaunch = 65535;  // grid.y / grid.z limit

// Auto dispatch between the add/subtract kernels and the tensor-core kernels:
// a fixed rule from H100 measurements (bench/NOTES.md), no autotuning.
// The tensor-core kernel takes over from this many rows of x.
constexpr int64_t kTensorCoreMinM = 1;
// Group-wise M = 1 on narrower N (use_tensor_core): the block-diagonal path where K <= this and
// N has this many 16-row tiles per SM (two-plane kinds), or, past this K, one tile per SM (any kind).
constexpr int64_t kTcBdM1MaxK = 8192;
constexpr int64_t kTcBdM1MinTilesPerSm = 3;
// Group-wise scales: from this many rows (its block-diagonal decode path at M <= 2).
constexpr int64_t kTensorCoreMinMGrouped = 2;

bool use_tensor_core(const cuda::LinearParams& lp, int64_t M, int sms) {
  if (!cuda::tc_supports(lp)) return false;
  switch (current_backend()) {
    case Backend::kTensorCore:
    case Backend::kWgmma: return true;  // (where the wgmma kernel does not apply)
    case Backend::kAuto:
    case Backend::kDigits:  // (where the digits kernel does not apply)
      // Measured (bench/results/h100.json): per tensor / channel scales, the tensor-core
      // kernel wins from M = 1.  Group-wise from M = 2 (H200, bench/results/
      // h200_decode_13ac0bb.json, 8192 x 28672 g64, tensor core vs add/subtract: int2 M = 2
      // 89.7 vs 114.0 us (its block-diagonal path), M = 3 115.7 vs 261.2; at M = 1 the
      // add/subtract kernel wins, 71.9 vs 89.6 (84.4 at a5e8b92, h200_decode_probe_a5e8b92.json);
      // binary M = 2 78.1 vs 75.7 here, 123.4 vs 141.0 on 28672 x 8192: kept with the others).
      // At M = 1 the block-diagonal path wins where its launch puts all 4 warps along N (cuda::
      // tc_bd_wide: >= 3 CTAs of 64 rows per SM), for the two-plane kinds with fp16 x and for
      // ternary with bf16 x (H200, 8192 x 28672, bench/results/h200_decode_s13_call3.json: fp16 int2 g64
      // 67.6 vs 72.9 us, ternary g64 67.2 vs 73.2, int2 g128 59.7 vs 68.7; bf16 in
      // h200_decode_probe_bf16_s13_call3.json: ternary g64 66.0 vs 71.3, but int2 81.7 vs 70.7, whose
      // bf16 unpacking needs a subtraction per pair that fp16's subnormal codes do not).  Binary
      // keeps the add/subtract kernel (50.1 vs 77.0 us).
      // Since tc14 (a block-diagonal kernel per scale dtype, session 14, bench/results/
      // h200_s14_call3_01be945.txt) the path also wins at M = 1 with fp16 x on narrower N, where K
      // split over the 4 warps: 8192 x 8192 int2 g64 20.0 vs 24.7 us, ternary 20.2 vs 24.7, g128
      // 19.2 vs 23.7 (and on 8192 x 28672 int2 g64 54.1 vs 71.0).  Taken where K <= 8192 (x's tile
      // leaves room for ~6 CTAs per SM) and N gives >= 3 16-row tiles per SM.  Not taken: 4096 x
      // 4096 (256 tiles on 132 SMs: 9.97 vs 9.65), 28672 x 8192 (g64 82.1 vs 77.8; g128 69.0 vs
      // 74.5 would win, not taken), binary (8192 x 28672 g64 53.7 vs 49.2), bf16 there (unmeasured).
      // Since tc16 (programmatic dependent launch, session 15) binary with fp16 x takes it too where
      // N has >= 3 64-row tiles per SM (its launch keeps its own warp split): 8192 x 28672 g64 45.98
      // vs 49.67 us in one run (bench/results/h200_quick_00ecaf2.json); bf16 and narrower N unmeasured.
      if (lp.group_size < padded_k(lp.K)) {
        const bool fp16 = lp.x_dtype == cuda::DType::kHalf;
        // (wide N: every kind with fp16 x, ternary with bf16 x)
        // Since session 20 with fp16 x for every kind where K > kTcBdM1MaxK and N gives every SM a
        // 16-row tile (H200, bench/results/h200_s20_call3_longk_cb5ddf2.txt, g64, the block-diagonal
        // path vs the add/subtract kernel, us): int2 28672 x 8192 68.2 vs 78.3 (then two warps along
        // N there; since session 21 one warp with a capped K tile, 67.8: cuda::tc_bd_long_k, whose cap
        // is 8192 inputs with a 3-slot ring since session 59),
        // 14336 x 8192 29.5 vs 40.4, 28672 x 4096 41.6 vs 53.2,
        // 14336 x 4096 21.7 vs 27.6, 11008 x 4096 17.9 vs 23.4 (ternary alike); binary 55.4 vs 58.0,
        // 31.2 vs 32.6, 31.6 vs 41.5, 18.6 vs 23.2, 15.9 vs 18.2 (but 8192^2 19.5 vs 18.6: binary keeps
        // K <= 8192 on the add/subtract kernel).  The narrowest N measured gives 1.94 tiles per SM
        // (N = 4096); between 1 and 1.94 unmeasured; K between 8193 and 11007 unmeasured.
        const bool bd_m1 = ((fp16 || lp.kind == static_cast<int>(Kind::kTernary)) && cuda::tc_bd_wide_n(lp, sms)) ||
                           (fp16 && lp.two_planes && lp.K <= kTcBdM1MaxK &&
                            (lp.N + 15) / 16 >= kTcBdM1MinTilesPerSm * static_cast<int64_t>(sms)) ||
                           (fp16 && lp.K > kTcBdM1MaxK && (lp.N + 15) / 16 >= static_cast<int64_t>(sms)) ||
                           (fp16 && cuda::tc_mid_layer(lp.K, lp.N));  // session 22 (tc27): the kernel folds there
        // (for ternary / binary; tc_grouped_small_m_fold in tc_launch_rules.h has the measurements)
        return M >= kTensorCoreMinMGrouped || (M == 1 && bd_m1);
      }
      return M >= kTensorCoreMinM;
    default: return false;
  }
}

// Large M: dequantize slices of W to x's dtype and let cuBLAS multiply (the
// product is compute-bound there, and cuBLAS's Hopper kernels beat ours).
// fp16 / bf16, measured on the H100 (pytest-benchmark at 58f90d8, sweep at 59721f4,
// bench/results/): with per-tensor / per-channel scales the tensor-core kernel is
// 1.1-1.4x faster than the dense path at M = 256 on 4096x14336 .. 8192x28672 and dense
// is 1.4-2x faster at M = 1024 (interpolated crossover M ~ 300-450); with group-wise
// scales dense wins at M = 256 on every measured shape, and at M = 64 on some.  A weight
// of at most 2^24 elements (4096x4096) dequantizes into L2 and gives the tensor-core
// kernel too few CTAs: dense from M = 64 there (33 vs 52 us ternary, 36 vs 99 us int2).
constexpr int64_t kDenseMinM = 384;          // per tensor / per channel
constexpr int64_t kDenseMinMGrouped = 128;   // group-wise
constexpr int64_t kDenseMinMSmall = 64;      // weights of at most kDenseSmallWeight elements
constexpr int64_t kDenseSmallWeight = int64_t{1} << 24;
constexpr int64_t kDenseMinMFloat = 32;      // fp32 x: the add/subtract kernel's cost grows with M
constexpr int64_t kDenseSliceBytes = 32 << 20;  // dequantized rows per cuBLAS call: L2-sized
// From kDenseWholeMinM rows of x, W is dequantized whole (up to kDenseWholeBytes, a transient
// buffer) and multiplied in one cuBLAS call: the GEMM is compute-bound there, and L2-sized
// slices cost a partial last wave per call plus a copy of each slice's product into y.  Measured
// on the H200 (bench/results/h200_dense_slice_3b8c0c9.json, 32 MB slices vs one call): int2 g64
// 8192x28672 M = 2048 1711 -> 1541 us (0.74x -> 0.90x of fp16), M = 4096 3423 -> 3100 (0.85x ->
// 0.90x), binary g64 3379 -> 3148, int2 28672x8192 3629 -> 2993, 8192^2 983 -> 971, ternary 3213
// -> 3043.  8192x28672 in fp16 is 470 MB.
constexpr int64_t kDenseWholeMinM = 2048;
constexpr int64_t kDenseWholeBytes = int64_t{512} << 20;

// grad_x, fp16 / bf16: the tensor-core kernel (tc_grad_x.cuh) reads the weights once per 8
// rows of grad_y, so its cost grows in steps of 8 rows; the dense path (one dequantization +
// cuBLAS) takes over above kTcGradXMaxM.  Measured on the H200 (bench/results/
// h200_backward_71adb92.json, ternary 8192 x 28672): tensor core 59.9 / 64.4 / 113.9 / 190 /
// 310 us at M = 1 / 4 / 16 / 32 / 64, dense 387 us at M = 64 and 432 at 256.  Weights of at
// most kDenseSmallWeight elements dequantize into L2, so dense from M = 33 there (predicted,
// as for the forward).  Group-wise scales too from M = 1 (session 25, bench/results/h200_s25_call1_0e8a574.txt,
// fp16 g64 M = 1, scales read as stored: the tensor-core kernel 75-98 us on 8192x28672 / 28672x8192 against the
// add/subtract kernel's 87-178 us; 4096^2 17-19 vs 20-25 us; session 6 had chosen the add/subtract kernel at M = 1
// on 89.6 / 174 vs 192 / 209 us, before the tensor-core kernel's tc30 / tc31).  fp32: the add/subtract
// kernel's cost grows with M, dense from kDenseMinMGradX.
constexpr int64_t kTcGradXMaxM = 64;
constexpr int64_t kTcGradXMaxMSmall = 32;  // weights of at most kDenseSmallWeight elements
constexpr int64_t kDenseMinMGradX = 8;

int64_t tc_grad_x_max_m(const cuda::LinearParams& lp) {
  return lp.N * lp.K <= kDenseSmallWeight ? kTcGradXMaxMSmall : kTcGradXMaxM;
}

// Whether auto may take the dense path (cuBLAS) at all.  Not under torch.use_deterministic_algorithms: keep to
// bitmm's own (deterministic) kernels, whose bits do not depend on cuBLAS's workspace configuration.  Not under
// BITMM_AUTO_NO_DENSE=1 (sanitizer knob, read once; bench/sanitize.sh sets it for racecheck / initcheck), so tests of
// the layers reaching it at larger M run bitmm's own kernels: under racecheck cuBLAS's sm_90 GEMMs die with a
// hardware exception (session 47: the layer's default grad_x at M = 34, bf16, dense from M = 33 on small weights, ended
// racecheck 4/16 and failed the 17 tests after it), and initcheck does not see cuBLAS's writes.  Either way the
// kernels auto takes instead are those of the deterministic mode (use_wgmma below keeps large M too).
bool auto_may_take_dense() {
  static const bool no_dense = cuda::env_int("BITMM_AUTO_NO_DENSE") == 1;
  return !no_dense && !at::globalContext().deterministicAlgorithms();
}

bool use_dense(const cuda::LinearParams& lp, int64_t M, at::ScalarType xt, bool grad_x = false) {
  if (xt == at::kDouble || lp.group_size % BLOCK_K != 0) return false;
  switch (current_backend()) {
    case Backend::kDense: return true;
    case Backend::kAuto:
    case Backend::kDigits:  // (where the digits kernel does not apply)
      if (!auto_may_take_dense()) return false;
      if (grad_x) return M > (cuda::tc_supports(lp) ? tc_grad_x_max_m(lp) : kDenseMinMGradX - 1);
      if (xt == at::kFloat) return M >= kDenseMinMFloat;
      if (lp.N * lp.K <= kDenseSmallWeight && M >= kDenseMinMSmall) return true;
      return M >= (lp.group_size < padded_k(lp.K) ? kDenseMinMGrouped : kDenseMinM);
    default: return false;
  }
}

// grad_x through the tensor-core kernel: fp16 / bf16, groups of a multiple of 32, not in the
// deterministic mode (its row splits add with atomics; grad_x.cu's kernel is reproducible).
bool use_tc_grad_x(const cuda::LinearParams& lp, int64_t M) {
  if (!cuda::tc_supports(lp) || at::globalContext().deterministicAlgorithms()) return false;
  switch (current_backend()) {
    case Backend::kTensorCore:
    case Backend::kWgmma: return true;
    case Backend::kAuto:
    case Backend::kDigits:  // (where the digits kernel does not apply)
      return M <= tc_grad_x_max_m(lp);
    default: return false;
  }
}

// Hopper wgmma kernel (wg_linear.cuh): built only for sm_90a (setup.py defines BITMM_WGMMA when
// TORCH_CUDA_ARCH_LIST holds 9.0a), and its machine code runs only on compute capability 9.0.
// Auto, measured on the H200 (bench/results/h200_wgmma_46d8ed2.json, fp16; us, wgmma vs the
// mma.sync tensor-core kernel; the wgmma kernel with K splits, wg7, costs about the same from
// M = 1 to 64, the tensor-core kernel grows with M):
//   ternary per tensor  M = 32: 8192x28672 136 vs 124, 28672x8192 162 vs 189, 8192^2 51 vs 49,
//                       4096^2 20 vs 27; M = 48: 136 vs 167, 162 vs 257, 52 vs 65, 20 vs 35.
//   int2 / binary g64   M = 32: 169 / 151 vs 235 / 170, 201 / 179 vs 374 / 277, 62 / 56 vs 102 / 80,
//                       23 / 21 vs 54 / 42; at M = 16 (h200_final_01ba735.json) the tensor-core
//                       kernel still wins on 8192x28672 (157 / 123) and loses on the other three.
//   M >= 128 (h200_wgmma_b0b0a39.json): wgmma, also against dense up to M = 1024; group-wise at
//   M = 4096: dense 3431 / 3390 vs wgmma 3786 / 3639 (even near M = 2200).
// So from kWgmmaMinM rows (per tensor / channel) or kWgmmaMinMGrouped (group-wise), and for
// group-wise scales below kWgmmaGroupedMaxM (dense above).
// Per tensor / channel from kWgmmaMinMSplit where the plan splits K (wg8, one wave of split CTAs):
// 8192^2 M = 32 38.0 us (2 splits) vs the tensor-core kernel's 48.9 (h200_wg_probe_splitk_e848b4d
// .json; 28672x8192 and 4096^2 won already with wg7's splits, above).  The tensor-core kernel runs
// one configuration (32-row tile, CM = 4) for all of M = 17..32 and the wgmma kernel one 64-row
// tile for M <= 64, so M = 32's times stand for the range (M = 17..31 not timed through auto yet).
// Without a split (8192x28672: 136 vs 124) from kWgmmaMinM as before.
// Per tensor / channel below kWgmmaMaxM (dense from it; since session 43 only with an offset u, wg_rules_fold_only
// below): H200, session 18, one process per shape,
// fp16, ternary (bench/results/h200_s18_call4_ab_8ac0803.txt, dense with the 2-D dequantization
// kernel): M = 4096 dense vs auto's wgmma 2939 vs 3478 us (8192x28672), 2891 vs 3402 (28672x8192),
// 852 vs 935 (8192^2), 214 vs 227 (4096^2); M = 1024 wgmma 757 vs 988, 749 vs 1100, 214 vs 279,
// 56.5 vs 63.8.  Crossover, session 19 (bench/results/h200_s19_call2_crossover_7531994.txt, one
// process, fp16 F.linear / dense / wgmma, us): M = 1536 wgmma wins on 8192x28672, 28672x8192, 8192^2
// (ternary 1232 vs 1359, 1136 vs 1481, 332 vs 386; int2 alike), not on 4096^2 (103 vs 92.5);
// M = 2048 int2 dense wins on all four (1597 vs 1687, 1593 vs 1655, 456 vs 482, 118 vs 119),
// ternary within 3% either way (1580 vs 1615, 1651 vs 1596, 464 vs 456, 115 vs 114); M = 3072 dense
// wins on all eight (2313 vs 2404 .. 169 vs 176).  So dense from M = 2048, as for group-wise scales.
// The three rules below (tc_grouped_wide, tc_per_tensor_wide, tc_split_small_m) hold for both x dtypes use_wgmma
// can see (wg_supports: fp16 / bf16); until session 36 they took fp16 only, bf16 being unmeasured (H100, session 36,
// bench/results/h100_s36_call6_bf16_d2cf8b6.txt: tensor core vs wgmma forced with bf16 x on the rules' shapes).
// Group-wise M = 17..32 with fp16 / bf16 x on wide N (>= 1.5 128-row tiles per SM) and K <= 8192: the
// tensor-core kernel again since tc24 (its folding path at CM = 2..4 with one kernel per scale dtype,
// session 21): H200, 8192 x 28672 g64 M = 24, tensor core (h200_s21_call3_7f7e73c.txt, tree B) vs
// auto's wgmma (h200_s21_call4_64565e4.txt), us: int2 135.8 vs 166.3, ternary 122.2 vs 157.5, binary
// 100.6 vs 150.4 (fp16 F.linear 114.8-118.9).  Not on 28672 x 8192 (64 tiles: int2 163.6 vs 146.7) nor
// 8192^2 (int2 49.7 vs 45.3).  The tensor-core kernel runs one configuration (CM = 4) for M = 17..32,
// so M = 24 stands for 17..24.  Measured tiles per SM: 0.48 lost, 1.70 won; the 1.5 boundary between
// them is not measured, nor K other than 8192.  M = 25..32 (session 22, bench/results/
// h200_s22_call1_7fc557f.txt, 8192 x 28672 g64, tensor core vs wgmma, us): M = 25 int2 139.7 vs 164.8,
// ternary 127.1 vs 156.2, binary 109.4 vs 149.2; M = 32 153.0 vs 164.8, 136.8 vs 156.2, 114.5 vs 149.3
// (fp16 F.linear 118.8 at M = 32), so the rule holds to M = 32 (the tensor-core kernel's CM = 4 limit).
// bf16 x since session 36 (H100, h100_s36_call6_bf16_d2cf8b6.txt, g64, M = 17 / 24 / 32 on 8192 x 28672 and
// 4096 x 28672): 0.62-0.89 of wgmma's time for every kind (int2 8192 x 28672 M = 17 122.9 vs 177.8 us).
// Against wg13's group-wise wgmma (warp-specialized, s / u through scale warps; session 41, H100,
// bench/results/h100_s41_grouped_wide_{float16,bfloat16}_e81f896.json, forced, --rounds 2, g64 / g128 on 8192 x 28672 and
// 4096 x 28672, M = 17 / 24 / 28 / 32), tensor core / wgmma time: binary 0.72-0.91 at every M, both dtypes (kept to
// M = 32); ternary M = 17 0.90-0.93, 24 1.00-1.05, 28 0.95-1.04, 32 1.13-1.17, both dtypes; int2 fp16 0.95-0.98, 1.06-1.09,
// 1.00-1.06, 1.18-1.22; int2 bf16 0.86-0.88, 0.95-0.97, 0.89-0.95, 1.08-1.10 (bf16 wgmma ~10% slower than fp16 here,
// int2 8192 x 28672 g64 M = 17 139.5 vs 126.7 us).  So ternary / int2 to M = 20, int2 with bf16 x to M = 28.
// Session 42 (H100, bench/results/h100_s42_grouped_band_{float16,bfloat16}_025796f.json, forced, --rounds 2, g64 / g128 on 8192 x 28672 and
// 4096 x 28672, after wg14 made bf16 wgmma 2.5-5% faster): ternary / int2, both dtypes, M = 21 0.88-0.97, M = 22 / 23
// 0.99-1.08, M = 29-31 0.96-1.08 (int2 bf16 1.00-1.08 at 8192 x 28672).  So ternary / int2 to M = 21 for both dtypes.
constexpr int64_t kTcGroupedWideMaxM = 32;            // binary
constexpr int64_t kTcGroupedWideMaxMTwoPlane = 21;    // ternary, int2
constexpr int64_t kTcGroupedWideMaxK = 8192;
bool tc_grouped_wide(const cuda::LinearParams& lp, int64_t M, int sms) {
  const int64_t max_m = lp.kind == static_cast<int>(Kind::kBinary) ? kTcGroupedWideMaxM : kTcGroupedWideMaxMTwoPlane;
  return M <= max_m && lp.K <= kTcGroupedWideMaxK && cuda::tc_wide_128_row_tiles(lp.N, sms);
}
// Per tensor / channel M = 33..64 with fp16 / bf16 x on wide N (>= 1.5 128-row tiles per SM, as tc_grouped_wide) and
// 4096 <= K <= 8192: the tensor-core kernel (RN = 2, CM = 8, all 4 warps along N: tc_launch_rules.h
// tc_per_tensor_wide_four_warps_n) instead of wgmma.  H100, session 34 (bench/results/h100_s34_call10_m33_80_fcefe73.json,
// --rounds 3, tensor core vs wgmma forced, us, on 8192 x 28672 / 4096 x 28672 / 5120 x 27648): binary M = 33, 40, 48,
// 52, 56, 60, 64 0.78-0.88 of wgmma's time on all three (8192 x 28672 M = 64 110.7 vs 130.2); ternary / int2 0.88-0.92
// at M = 60, 64 (ternary 8192 x 28672 M = 64 118.9 vs 134.6) but 1.03-1.25 at M = 33..56, where the launch rule then
// split K over two warps.  H100, session 35 (bench/results/h100_s35_call1_148a810.txt, BITMM_TC_WN=4, the launch rule
// since): ternary / int2 at M = 33..56 0.79-0.93 of wgmma's time on 8192 x 28672 and 4096 x 28672 (ternary 8192 x
// 28672 M = 33 105.9 vs 134.2 us), so every kind from M = 33.  1.36-1.55 at M = 72, 80 (two 64-row chunks from
// M = 65); narrower N (8192^2 M = 64: 80.0 vs 38.8; 28672 x 8192: 2.7x) lost.  bf16 x (session 36,
// h100_s36_call6_bf16_d2cf8b6.txt, M = 33 / 48 / 64 on the first two shapes): 0.72-0.89 (ternary 8192 x 28672 M = 33
// 102.0 vs 136.3 us).  K outside 4096..8192 and N between 1.5 and 1.64 128-row tiles per SM unmeasured.  (K >= 4096
// also keeps these shapes off use_dense's small-weight M >= 64 rule, which a true here, skipping wgmma, would reach
// next.)
// (The shapes are those where the launch runs four warps along N: the same predicate, so the two cannot drift apart.)
// fp16 x against the warp-specialized wgmma pipeline (the default since session 40, 0.85-0.97 of the CTA-barrier
// pipeline's time at M = 64): H100, session 40 (bench/results/h100_s40_rules_6726acc_cce70cf.txt, forced, --rounds 2,
// 8192 x 28672 / 4096 x 28672, us, tensor core vs wgmma): ternary / int2 M = 33 / 40 / 48 the tensor-core kernel
// 0.90-0.99 of wgmma's time (ternary 8192 x 28672 M = 48 110.0 vs 113.3), M = 52 / 56 / 60 / 64 1.01-1.07
// (M = 64 117.4 vs 113.6); binary M = 33 0.98-1.01 (4096 / 8192 x 28672: 52.9 vs 52.6, 100.8 vs 102.4), from M = 40
// 1.01-1.09.  So with fp16 x: ternary / int2 to M = 48 (49-51 unmeasured), binary to M = 36 (33 measured, a tie;
// 37-39 unmeasured).  bf16 x keeps M = 33..64: there the tensor-core kernel took 0.72-0.89 of the CTA-barrier
// pipeline's time (session 36), beyond what the warp-specialized one gained; not measured against it.
constexpr int64_t kTcPerTensorWideMinM = 33;  // (below, the rules before: wgmma only where its plan splits K)
constexpr int64_t kTcPerTensorWideMaxMF16 = 48, kTcPerTensorWideMaxMF16Binary = 36;
bool tc_per_tensor_wide(const cuda::LinearParams& lp, int64_t M, int sms) {
  if (lp.x_dtype == cuda::DType::kHalf &&
      M > (lp.kind == static_cast<int>(Kind::kBinary) ? kTcPerTensorWideMaxMF16Binary : kTcPerTensorWideMaxMF16))
    return false;
  // (tc_per_tensor_wide_four_warps_n: M <= 64, 4096 <= K <= 8192, wide N)
  return M >= kTcPerTensorWideMinM && cuda::tc_per_tensor_wide_four_warps_n(M, lp.K, lp.N, sms);
}
// Per tensor / channel where wgmma's plan splits K, on N >= 6144 and K >= 4096: the tensor-core kernel instead at M = 17
// with fp16 x, M = 17..20 with bf16 x (binary: 17..24 where K <= 16384); session 41's measurements below.  Until then
// (against the CTA-barrier wgmma pipeline): M = 17..20 (K >= 5120: 17..24; binary with K <= 16384: 17..32).  H100, session 35
// (bench/results/h100_s35_call4_ee76e2c.txt, --rounds 3, tensor core vs wgmma forced, us): 8192^2 M = 17 ternary 29.4 vs 36.3, int2 32.7 vs 38.5, binary 25.1 vs 35.3;
// M = 20 0.86-0.95; 28672 x 8192 M = 17 0.77-0.81 (ternary 90.6 vs 113.8), M = 20 0.86-0.95.  H100, session 36
// (bench/results/h100_s36_call3_split_a2dad3c.txt, same method) on 4096 / 6144 / 8192 / 12288 / 16384 x 8192 and
// 8192 x 6144: M = 17..20 0.70-0.95 for every kind (binary 0.70-0.87; 4096 x 8192 ternary M = 17 18.4 vs 20.8;
// 8192 x 6144 int2 M = 20 36.0 vs 38.1); binary to M = 32 0.70-0.90 on all six (8192^2 M = 24 28.3 vs 35.0;
// 16384 x 8192 M = 32 59.1 vs 65.6); ternary / int2 at M = 21..28 0.94-1.04 (not taken: within noise of even) and
// M = 32 1.06-1.35.  N = 4096 lost at every M = 17..32 (4096^2 1.08-1.82, 14336 x 4096 1.04-2.14).  (wgmma's plan
// splits K only where N has few 128-row tiles: N <= 8448 on 132 SMs, so the rule's N range is 6144..8448 there; at
// N = 8192, 64 tiles, on >= 128 SMs.)  bf16 x (session 36, h100_s36_call6_bf16_d2cf8b6.txt, 8192^2, 4096 x 8192, 16384 x 8192): M = 17..20 0.68-0.89 for every kind, binary
// to M = 32 0.69-0.89, ternary / int2 M = 24 0.91-0.96, M = 32 1.02-1.26; bf16 on N = 6144..8191 unmeasured.  Binary
// M = 21..32 with K > 16384: 28672 x 8192 only, 0.92-1.13 (sessions 35-36, h100_s36_call4_2edbb28.txt: M = 21 0.97,
// 24 0.92, 32 1.07), so M = 25..32 not taken there (M = 21..24: the K >= 5120 rule below).  N between 4096 and 6144
// unmeasured.
// M = 21..24 for every kind where K >= 5120 (session 37): bf16 x, H100 (bench/results/
// h100_s37_call1_bf16_auto_6310212.txt, 8192^2, 28672 x 8192, 8192 x 6144, M = 24): ternary / int2 0.91-0.94 of
// wgmma's time (int2 8192 x 6144 37.2 vs 40.3 us: 1.05x of bf16 F.linear where auto's wgmma had 0.97x); fp16 x
// (session 36's calls 3-4 above, 8 shapes with K >= 5120, 11 measurements): ternary 0.94-0.99 at M = 21 / 24, int2
// 0.98-1.02 at M = 21 and 0.96-1.00 at M = 24; K = 4096 (4096 x 6144 / 8192): ternary 0.98-1.01, int2 1.00-1.04, left
// at M <= 20.  Binary's M = 24 at K = 28672: 0.92.  Checked through auto (session 37, h100_s37_call4_dd7c6a1.txt).
// Against the warp-specialized wgmma default (session 40) and the split shapes' rule redrawn in session 41: H100,
// forced, --rounds 2, 8192^2 and 28672 x 8192 (bench/results/h100_s41_split_f16_fc722ff.json, fp16 x, M = 17..21, 24;
// h100_s41_bf16_split_ebcee68.json, bf16 x, M = 17 / 20 / 24 / 32), tensor core / wgmma time:
//   fp16 x: M = 17 0.85-0.98 for every kind (binary 8192^2 24.7 vs 29.1 us); M = 18..24 1.00-1.22 (ternary 28672 x
//     8192 M = 18 97.7 vs 97.7, int2 8192^2 M = 21 39.2 vs 34.1), but binary 8192^2 M = 24 0.97.  So M = 17 only.
//   bf16 x: ternary / int2 M = 17 0.86-0.88, M = 20 0.95-0.98, M = 24 1.03-1.07, M = 32 1.15-1.47: to M = 20;
//     binary 8192^2 M = 17 / 20 / 24 / 32 0.80 / 0.98 / 0.92 / 1.01 (to M = 24 with K <= 16384, as measured there),
//     28672 x 8192 0.92 / 1.11 / 1.11 / 1.24 (M = 17 only beyond).
// (wgmma's bf16 is slower than its fp16 on these shapes, 94.8 vs 88.3 us binary 28672 x 8192 M = 20, the
// tensor-core kernel's the same: hence the wider bf16 band.)  The bounds on N and K stay as measured before (N, K
// other than 8192 / 28672 not re-measured against the warp-specialized pipeline).
constexpr int64_t kTcSplitSmallMMaxMF16 = 17;
constexpr int64_t kTcSplitSmallMMaxMBf16 = 20;
constexpr int64_t kTcSplitSmallMMaxMBf16Binary = 24;
constexpr int64_t kTcSplitSmallMBinaryMaxK = 16384;  // (binary bf16 beyond M = 17: K <= 16384, as measured)
constexpr int64_t kTcSplitSmallMMinN = 6144;
constexpr int64_t kTcSplitSmallMMinK = 4096;
bool tc_split_small_m(const cuda::LinearParams& lp, int64_t M) {
  if (lp.N < kTcSplitSmallMMinN || lp.K < kTcSplitSmallMMinK) return false;
  if (lp.x_dtype == cuda::DType::kHalf) return M <= kTcSplitSmallMMaxMF16;
  if (lp.kind == static_cast<int>(Kind::kBinary))
    return M <= (lp.K <= kTcSplitSmallMBinaryMaxK ? kTcSplitSmallMMaxMBf16Binary : kTcSplitSmallMMaxMF16);
  return M <= kTcSplitSmallMMaxMBf16;
}
// wg_rules_fold_only (session 43): tc_per_tensor_wide and tc_split_small_m apply only where the wgmma kernel folds
// s / u into every unpacked pair, i.e. per tensor / channel with an offset u.  Without one (wg16, the common per
// tensor case: BitNet's absmean s) the wgmma kernel scales its fp32 sums in the epilogue, and then, H100
// (bench/results/h100_s43_band_{float16,bfloat16}_bfcb155.json, forced, --rounds 2, per tensor fp32 s, no offset;
// 4096 / 8192 x 28672, 8192^2, 28672 x 8192, 4096^2, 4096 x 8192, 8192 x 6144; tensor core / wgmma time), both x
// dtypes alike:
//   wide N (4096 / 8192 x 28672): M = 8..28 0.32-0.84 (the tensor-core kernel), M = 33 / 40 / 48 / 64 1.13-1.48
//     (wgmma; the folding wgmma had lost there to M = 48 with fp16 x, to 64 with bf16);
//   split shapes (N <= 8192): M = 8 0.52-0.78, M = 12 / 16 0.80-1.09 (ties on 4096^2 only), M = 17 1.03-1.46,
//     M = 20..28 1.14-1.76, M >= 33 1.7-4.0 (wgmma; the folding wgmma had lost at M = 17 with fp16 x, 17..20 / 24
//     with bf16).
// So without an offset: wgmma from M = 33 (kWgmmaMinM) on wide N, from M = 17 (kWgmmaMinMSplit) where its plan
// splits K, for both x dtypes.  And no dense path past kWgmmaMaxM: H100, bench/results/h100_s43_large_m_1a51d59.json
// (forced, fp16 x, --rounds 2, 4096^2, 8192^2, 8192 x 28672, 28672 x 8192 at M = 1536 / 2048 / 4096), wgmma / dense
// time: M = 1536 0.65-0.81 (4096^2 0.95-0.99), M = 2048 0.82-0.91, M = 4096 0.88-0.95 (fp16 F.linear / wgmma 1.02-1.13
// there; dense 0.95-1.04); beyond M = 4096 unmeasured, but there both are compute-bound and dense is at best
// cuBLAS's own time, which wgmma beat by 2-13% at M = 4096; bf16 x against dense unmeasured (its wgmma gained as
// fp16's did, s43_call1.sh).
constexpr int64_t kWgmmaMinM = 33;
constexpr int64_t kWgmmaMinMSplit = 17;
constexpr int64_t kWgmmaMinMGrouped = 17;
constexpr int64_t kWgmmaGroupedMaxM = 2048;
constexpr int64_t kWgmmaMaxM = 2048;

bool wgmma_device(int device) {
#if defined(BITMM_WGMMA)
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device);
  return prop->major == 9 && prop->minor == 0;
#else
  (void)device;
  return false;
#endif
}

bool use_wgmma(const cuda::LinearParams& lp, int64_t M, int device) {  // lp.x, lp.y set
  if (!cuda::wg_supports(lp) || !wgmma_device(device)) return false;
  switch (current_backend()) {
    case Backend::kWgmma: return true;
    case Backend::kAuto:
    case Backend::kDigits:  // (where the digits kernel does not apply)
    {
      // Past the maximum M the dense path takes over, except under torch.use_deterministic_algorithms (or
      // BITMM_AUTO_NO_DENSE), where use_dense refuses and the wgmma kernel is still the fastest bitmm kernel.
      const bool dense_next = auto_may_take_dense();
      if (lp.group_size < padded_k(lp.K))
        return M >= kWgmmaMinMGrouped && (M < kWgmmaGroupedMaxM || !dense_next) &&
               !tc_grouped_wide(lp, M, num_sms(device));
      // wg16: without an offset the wgmma kernel scales the sums in its epilogue (no fold per pair), 17-25% faster
      // at M = 17..64 than the folding kernel the two tensor-core rules were measured against, 8-15% at M >= 256;
      // the two rules and the dense path past kWgmmaMaxM stay for an offset u only (wg_rules_fold_only, above).
      const bool fold = lp.offset != nullptr;
      if (fold && M >= kWgmmaMaxM && dense_next) return false;
      if (fold && tc_per_tensor_wide(lp, M, num_sms(device))) return false;
      return M >= kWgmmaMinM || (M >= kWgmmaMinMSplit && !(fold && tc_split_small_m(lp, M)) &&
                                 cuda::wg_plan(M, lp.N, lp.K, num_sms(device), /*honor_env=*/false).splits > 1);
    }
    default: return false;
  }
}

// Hopper wgmma grad_x (wg_grad_x.cuh), session 48; run on a GPU in session 49 (H100: its tests pass, and with
// BITMM_GX_WGMMA=1 so do the grad_x suites, 615 tests; bench/results/s49_device_runs.txt).  Auto, measured on the H100
// (bench/results/h100_s49_gx_ab_99d388b.txt: fp16, ternary / int2, per tensor and g64, 8192 x 28672 and 8192^2; us):
//   M = 16:  its time is 1.3-2.2x the tensor-core grad_x kernel's (it pads to 64 rows: ~145 us on 8192 x 28672)
//   M = 32:  0.94-1.07x g64, 1.04-1.30x per tensor: a tie at best, so the tensor-core kernel keeps M <= 32
//   M = 64:  0.51-0.57x g64, 0.68-0.71x per tensor (8192 x 28672: 231 / 148 us against 413-452 / 220)
//   M = 256: per tensor 0.70-0.75x of the dense path (301-317 us against 410-423); g64 1.10-1.18x (493-498 / 423-428)
//   M = 1024: per tensor 0.90-0.97x of dense; g64 1.21-1.22x.   M = 4096: 1.16-1.59x of dense everywhere.
// Then (bench/results/h100_s49_gx_sweep_869beb4.json and h100_s49_gx_bm256_869beb4.json, ternary, same shapes):
// with a fold it beats the dense path to M = 128 (8192 x 28672 g64: 232-261 us against 398-405) and loses at 192 and
// 512 on tiles of 128 rows (502 / 999 against 412 / 565), but tiles of 256 rows (wg_plan.h wg_gx_bm, from M = 129
// since) take M = 256 to 303 us (8192^2: 98 against 127-131); plain it wins to 192 on 128-row tiles (307 against
// 402) and at M = 256 on 256-row tiles 226 us.  The fold (v * s + u per weight pair: any offset, per-channel or
// group-wise scales) costs ~35% there, so one scale without an offset ("plain") takes it to M = 1024 (809-854 against
// 882-917 at 1024; 512 predicted ~450 against 537 on 256-row tiles) and the fold to kWgxMaxMFold = 256 (the dense
// path's 565 at M = 512 against a predicted ~600).  Weights of at most kDenseSmallWeight elements keep the dense path
// from M = 33 (their dequantized weight stays in L2; not measured against this kernel; but see session 50 below).
// Where auto may not take the dense path (the deterministic mode, BITMM_AUTO_NO_DENSE) it takes this kernel at every M
// from kWgxMinM: its sums need no atomics, and the alternative there is the add/subtract kernel.  BITMM_GX_WGMMA=0
// (read once) turns it off.
// Session 50 (bench/results/h100_s50_gx_sweep_affc1ed.json: fp16, ternary / binary, per tensor and g64, 8192 x 28672,
// 8192^2, 28672 x 8192, M = 160-1024) confirmed the fold to 256 (this kernel 0.65-0.80x of the dense path's time at M =
// 160-256 on all 18 cases; at 384, 768 and 1024 1.08-1.45x, at 512 0.97-1.11x) and plain to 1024 (0.49-0.94x at M =
// 160-1024 on 40 of 42 cases; M = 768, three 256-row tiles, 1.09x / 1.07x on 8192^2 / 8192 x 28672 ternary). Then wgx2a
// (two 64-row CTAs per SM; h100_s50_wgx2a_ab_affc1ed.txt: 0.76-0.85x of its time per tensor, 0.84-0.89x g64 on 8192 x
// 28672 / 8192^2, 0.86-0.97x on 4096^2) moved the tensor-core kernel's crossover: at M = 32 this kernel is faster on 17
// of 18 cases (tensorcore / wgmma 0.96-1.89, geomean 1.29; the loss: binary per tensor 8192 x 28672, 91.1 vs 95.0 us),
// at M = 16 on 6 of 18 (all on 4096^2).  The tensor-core kernel's cost steps every 8 rows (above), so M = 25-31 costs
// it what M = 32 does while this kernel's (64-row tiles) is flat: kWgxMinM = 25 (M = 25-31 not timed).  Weights of at
// most kDenseSmallWeight elements (4096^2: 1.24-1.81x faster than the tensor-core kernel at M = 16 and 32, every kind
// and scale mode; at M = 33-64 12.7-16.4 us per tensor against fp16 grad @ W's 14.8-16.7, so below any dense path's
// dequantize-then-fp16 time, and g64 20.1-23.7, against the 33-36 us of the forward's dense path at M = 64 there,
// kDenseMinMSmall's note) take it from M = 16 to 64; above 64 the dense path as before (not measured against this
// kernel).
// Session 51 (bench/results/h100_s51_gx_small_6ff9550.json: 4096^2 and 4096 x 2048, three kinds, per tensor and g64 with
// an offset, M = 8-128, tensorcore / dense / wgmma; and h100_s51_gx_low_6ff9550.json, M = 17-32 on the large shapes):
// on small weights this kernel is faster than the tensor-core kernel per tensor ("plain") from M = 8 (1.05-1.16x at 8,
// 1.24-1.54x at 12, all 6 cases), with a fold from M = 12 (1.06-1.15x; at M = 8 the tensor-core kernel wins by 8-20%),
// so kWgxMinMSmallPlain = 8 and kWgxMinMSmallFold = 12 (M = 9-11 not timed).  Above M = 64 plain it beats the dense path
// at M = 65 / 96 / 128 on 17 of 18 cases (4096^2 1.44-1.61x; 4096 x 2048 1.04-1.13x at 65 and 128, 96 a tie within 1%),
// so plain to kWgxMaxMSmallPlain = 128 (above it not timed on small weights).  With a fold the two shapes disagree:
// 4096^2 1.09-1.18x faster than dense at 65-128, 4096 x 2048 1.16-1.27x slower (and 1.11-1.17x slower at M = 64,
// 1.27x faster on 4096^2 there), so the fold keeps 64 (kWgxMaxMSmallFold).  On large weights M = 25 stays: on
// 8192 x 28672 per tensor the tensor-core kernel is still 1-5% faster at M = 25 (the wgmma kernel from M = 28, binary
// from above 32), with g64 this kernel 1.09-1.21x faster from 25 (both shapes); on 8192^2 per tensor it wins from M = 20
// (1.01-1.17x at 20-24), g64 within 4% either way (not changed: one shape).
// The constants and the range itself: wg_plan.h wg_gx_auto_takes (host-only, checked by tests/test_wg_grad_x.py).

bool use_wg_grad_x(const cuda::LinearParams& lp, int64_t M, int device) {
  static const bool off = [] {
    const char* e = std::getenv("BITMM_GX_WGMMA");
    return e != nullptr && std::atoi(e) == 0;
  }();
  if (off || !cuda::tc_supports(lp) || !wgmma_device(device)) return false;
  switch (current_backend()) {
    case Backend::kWgmma: return true;
    case Backend::kAuto:
    case Backend::kDigits: {  // (where the digits kernel does not apply)
      // (one_scale_no_offset: the kernel's own fold test)
      return cuda::wg_gx_auto_takes(M, lp.N * lp.K <= kDenseSmallWeight, cuda::one_scale_no_offset(lp),
                                    auto_may_take_dense());
    }
    default: return false;
  }
}

// Bytes of dequantized W per cuBLAS call: kDenseSliceBytes, kDenseWholeBytes from kDenseWholeMinM
// rows of x, or BITMM_DENSE_SLICE_MB at every M (a knob, read once: bench/wg_probe.py --cases dense;
// a smaller value bounds the transient buffer).
int64_t dense_slice_bytes(int64_t M) {
  static const int64_t forced = [] {
    const int mb = cuda::env_int("BITMM_DENSE_SLICE_MB");
    return mb > 0 && mb <= (1 << 20) ? static_cast<int64_t>(mb) << 20 : int64_t{0};
  }();
  return forced ? forced : M >= kDenseWholeMinM ? kDenseWholeBytes : kDenseSliceBytes;
}

// y (M, N) = x2 @ W^T + bias through dequantized slices of W.
at::Tensor dense_linear(const cuda::LinearParams& lp, const LinearProblem& p, const at::Tensor& x2,
                        const at::Tensor& bias, cudaStream_t stream) {
  // Slices of a multiple of 128 rows: an odd slice width gives cuBLAS a misaligned output leading
  // dimension (measured on 28672x8192 at 286e2ed: 585-row slices, 8x slower than fp16).
  const int64_t fit = dense_slice_bytes(p.M) / (p.K * x2.element_size()) / 128 * 128;
  const int64_t rows = std::min<int64_t>(p.N, std::max<int64_t>(128, fit));
  at::Tensor w = at::empty({std::min(rows, p.N), p.K}, x2.options());
  at::Tensor b = bias.defined() ? bias.to(x2.scalar_type()) : at::Tensor();
  if (rows >= p.N) {
    check_cuda(cuda::launch_dequant(lp, w.data_ptr(), 0, p.N, stream), "dequantize", p);
    return b.defined() ? at::addmm(b, x2, w.t()) : at::mm(x2, w.t());
  }
  at::Tensor y = at::empty({p.M, p.N}, x2.options());
  poison_output(y);
  for (int64_t n0 = 0; n0 < p.N; n0 += rows) {
    const int64_t nn = std::min(rows, p.N - n0);
    at::Tensor ws = w.narrow(0, 0, nn);
    check_cuda(cuda::launch_dequant(lp, ws.data_ptr(), n0, nn, stream), "dequantize", p);
    at::Tensor ys = b.defined() ? at::addmm(b.narrow(0, n0, nn), x2, ws.t()) : at::mm(x2, ws.t());
    y.narrow(1, n0, nn).copy_(ys);
  }
  return y;
}

// The fused int8 kernel's scale / offset / bias (a8_linear.cu; linear_a8 and the digits backend): in their own
// dtypes, the kernel converting each as it reads it (no conversion kernels); () / (N,) / (N, 1) scale and offset.  The
// returned tensors hold the memory ap points to until the launch.
struct A8ScaleTensors {
  at::Tensor s, u, b;
};
A8ScaleTensors set_a8_scales(cuda::A8Params& ap, const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                             const std::optional<at::Tensor>& bias) {
  A8ScaleTensors t{scale.reshape({-1}).contiguous(),
                   offset.has_value() ? offset->reshape({-1}).contiguous() : at::Tensor(),
                   bias.has_value() ? bias->contiguous() : at::Tensor()};
  ap.s = t.s.data_ptr();
  ap.s_dt = dtype_of(t.s.scalar_type());
  ap.s_stride = t.s.numel() == 1 ? 0 : 1;
  ap.u = t.u.defined() ? t.u.data_ptr() : nullptr;
  ap.u_dt = t.u.defined() ? dtype_of(t.u.scalar_type()) : cuda::DType::kFloat;
  ap.u_stride = t.u.defined() && t.u.numel() != 1 ? 1 : 0;
  ap.b = t.b.defined() ? t.b.data_ptr() : nullptr;
  ap.b_dt = t.b.defined() ? dtype_of(t.b.scalar_type()) : cuda::DType::kFloat;
  return t;
}

// The digits backend (Backend::kDigits; cuda/a8_fragments.h kDigits): each row of x as a 30-bit fixed point in four
// int8 digits (quant_absmax.cu x_digits), then the fused int8 kernel (a8_linear.cu) on the 4 M digit rows with its
// float64 digits epilogue, into y (M, N).  It applies to fp16 / bf16 x with per tensor / per channel scale and offset,
// M <= kDigitsMaxM, and shapes the kernel takes on this device (K within its int32 bound, 4 rows of x within the
// shared memory); digits_params says whether (without launching anything) and fills the kernel's shape fields.
constexpr int64_t kDigitsMaxM = cuda::kA8MaxM / a8::kDigits;
bool digits_params(const LinearProblem& p, at::ScalarType xt, int64_t wpr, cuda::A8Params& ap) {
  if ((xt != at::kHalf && xt != at::kBFloat16) || p.groups != 1 || p.M < 1 || p.M > kDigitsMaxM) return false;
  ap = cuda::A8Params{};
  ap.M = a8::kDigits * p.M;
  ap.N = p.N;
  ap.K = p.K;
  ap.wpr = wpr;
  ap.planes = planes_of(p.kind);
  ap.shift = a8_code_shift(p.kind);
  ap.out = dtype_of(xt);
  return cuda::a8_linear_supported(ap, /*digits=*/true);
}

// Whether `auto` takes the digits kernels (where they apply): tc_launch_rules.h digits_auto_rule, measured on the
// H100.  BITMM_DIGITS_AUTO_MAX_M=n (read once) replaces the rule, for probes: M <= n on every shape (0: never).
// The rule only on compute capability 9.x, where it was measured (H100; the H200, also 9.0 with 132 SMs, not timed
// at this code): elsewhere the two kernels' balance is unknown.
bool auto_takes_digits(const LinearProblem& p, int device) {
  static const int64_t env = std::getenv("BITMM_DIGITS_AUTO_MAX_M") ? cuda::env_int("BITMM_DIGITS_AUTO_MAX_M") : -1;
  if (env >= 0) return p.M <= env;
  if (p.M > cuda::kDigitsAutoMaxM) return false;  // (most calls: no device query on the way)
  return at::cuda::getDeviceProperties(device)->major == 9 && cuda::digits_auto_rule(p.M, p.K, p.N, num_sms(device));
}

// The digits backend's forward into y; false (nothing launched) where it does not apply (digits_params).
bool linear_digits(const LinearProblem& p, const at::Tensor& x2, const at::Tensor& w, const at::Tensor& scale,
                   const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, at::Tensor& y) {
  cuda::A8Params ap;
  if (!digits_params(p, x2.scalar_type(), w.size(1), ap)) return false;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const at::Tensor xd = at::empty({a8::kDigits * p.M, p.K}, x2.options().dtype(at::kChar));
  const at::Tensor xe = at::empty({p.M}, x2.options().dtype(at::kInt));
  check_cuda(cuda::launch_x_digits(x2.data_ptr(), dtype_of(x2.scalar_type()), p.M, p.K, xd.data_ptr<int8_t>(),
                                   xe.data_ptr<int>(), stream),
             "linear (digits of x)", p);
  const A8ScaleTensors held = set_a8_scales(ap, scale, offset, bias);
  ap.xq = xd.data_ptr<int8_t>();
  ap.xe = xe.data_ptr<int>();
  ap.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  ap.y = y.data_ptr();
  ap.x_vec = p.K % 16 == 0;  // (xd is a fresh allocation: aligned)
  check_cuda(cuda::launch_a8_linear(ap, stream), "linear (digits)", p);
  note_kernel_ran(KernelRan::kDigits);
  return true;
}

struct LoraEpilogue {
  at::Tensor xa;      // (M, r) float32 contiguous: x @ lora_a^T
  at::Tensor b;       // (N, r) contiguous, float32 or x's dtype
  double scale;
};

// With `lora`: the low-rank term is fused into the tensor-core kernel's
// epilogue; returns an undefined tensor (nothing launched) where that kernel
// does not run, so the caller composes the term instead.
at::Tensor linear_cuda_impl(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                            const LoraEpilogue* lora = nullptr) {
  const LinearProblem p = check_linear(kind, x, packed_w, scale, offset, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = p.N;
  at::Tensor y = at::empty({p.M, p.N}, x.options());
  note_kernel_ran(KernelRan::kNone);
  if (p.M == 0) return y.reshape(out_shape);
  poison_output(y);
  const at::Tensor x2 = x.reshape({p.M, p.K}).contiguous();
  const at::Tensor w = aligned_packed(packed_w);
  // (auto with LoRA keeps the tensor-core kernel, whose epilogue adds the low-rank term: digits + a composed term,
  // one more kernel, was not timed against it)
  const bool auto_digits = current_backend() == Backend::kAuto && !lora && auto_takes_digits(p, x.get_device());
  if (current_backend() == Backend::kDigits || auto_digits) {
    // (with LoRA under `digits`: the fused LoRA epilogue is the tensor-core kernel's, so where digits applies the
    // caller composes digits + the low-rank term instead, and the base term is the same with or without LoRA)
    cuda::A8Params probe;
    if (lora && digits_params(p, x.scalar_type(), w.size(1), probe)) return at::Tensor();
    if (!lora && linear_digits(p, x2, w, scale, offset, bias, y)) return y.reshape(out_shape);
  }
  const PreparedScales ps = prepare_scales(x, scale, offset, bias);
  cuda::LinearParams lp{};
  lp.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  lp.bias = ps.bias.defined() ? ps.bias.data_ptr() : nullptr;
  lp.N = p.N;
  lp.K = p.K;
  lp.wpr = w.size(1);
  lp.x_dtype = dtype_of(x.scalar_type());
  fill_scale_fields(lp, p, ps);
  const bool fast = x.scalar_type() != at::kDouble && (p.groups == 1 || p.group_size % BLOCK_K == 0);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  lp.M = p.M;
  lp.x = x2.data_ptr();
  lp.y = y.data_ptr();
  if (fast && !lora && use_wgmma(lp, p.M, x.get_device())) {
    // CTA tile and K splits (wg_plan.h); splits > 1 write fp32 partial tiles into a workspace
    // that a second kernel sums in split order (deterministic, graph capturable).
    cuda::WgPlan plan = cuda::wg_plan(p.M, p.N, p.K, num_sms(x.get_device()));
    // K-split pairs: twice the splits, two CTAs per SM (wg_plan.h wg_pair_split; ternary / int2 without an offset)
    const bool pair_split = cuda::wg_pair_split(plan, p.M, p.K, lp.group_size < padded_k(lp.K), lp.offset != nullptr,
                                                lp.kind == static_cast<int>(Kind::kBinary));
    if (pair_split) plan.splits *= 2;
    lp.wg_pair = pair_split ? 1 : 0;
    at::Tensor ws;
    if (plan.splits > 1) ws = at::empty({plan.splits, p.M, p.N}, x.options().dtype(at::kFloat));
    lp.wg_bm = plan.bm;
    lp.wg_splits = plan.splits;
    lp.wg_ws = ws.defined() ? ws.data_ptr<float>() : nullptr;
    // BITMM_WG_SCALE_T=1 (a probe knob, session 44; off by default): group-wise s / u stored as (G, N) for this call,
    // so the scale warps' 32 loads of a group (rows n0 + lane) read 2 sectors instead of 32 (with (N, G) storage the
    // rows are G elements apart).  The same values in the same order: the same bits as without it.  Measured in
    // session 45 (bench/results/h100_s45_scale_layout_4a1c09c.txt): (G, N) storage itself 0.955 / 0.962 of the time at
    // M = 256 / 1024, but this per-call copy 1.19 / 1.03 (slower), so it stays a probe; the gain needs the caller to
    // store (G, N).
    const cuda::LinearParams before = lp;
    const at::Tensor s_t = grouped_transposed(ps.scale, lp.s_sn, lp.s_sg),
                     u_t = ps.offset.defined() ? grouped_transposed(ps.offset, lp.u_sn, lp.u_sg) : at::Tensor();
    if (s_t.defined()) lp.scale = s_t.data_ptr();
    if (u_t.defined()) lp.offset = u_t.data_ptr();
    const cudaError_t err = cuda::launch_wg_linear(lp, num_sms(x.get_device()), stream);
    if (err != cudaErrorNotSupported) {  // (else: a shape it does not take; the rules below pick another kernel)
      check_cuda(err, "linear (wgmma)", p);
      note_kernel_ran(KernelRan::kWgmma);
      return y.reshape(out_shape);
    }
    lp = before;  // (the copies above die here: the other kernels read the caller's tensors)
  }
  if (fast && use_dense(lp, p.M, x.scalar_type())) {
    if (lora) return at::Tensor();
    note_kernel_ran(KernelRan::kDense);
    return dense_linear(lp, p, x2, ps.bias, stream).reshape(out_shape);
  }
  const int sms = num_sms(x.get_device());
  const bool tc = fast && use_tensor_core(lp, p.M, sms);
  if (lora) {
    if (!tc) return at::Tensor();
    lp.lora_xa = lora->xa.data_ptr<float>();
    lp.lora_b = lora->b.data_ptr();
    lp.lora_r = lora->xa.size(1);
    lp.lora_scale = static_cast<float>(lora->scale);
    lp.lora_b_f32 = lora->b.scalar_type() == at::kFloat ? 1 : 0;
  }
  const int64_t chunk = fast && !tc ? kMaxRowsPerLaunch : p.M;  // the generic kernel has a 1-D grid
  for (int64_t m0 = 0; m0 < p.M; m0 += chunk) {
    lp.M = std::min(chunk, p.M - m0);
    lp.x = static_cast<const char*>(x2.data_ptr()) + m0 * p.K * x2.element_size();
    lp.y = static_cast<char*>(y.data_ptr()) + m0 * p.N * y.element_size();
    cudaError_t err = tc ? cuda::launch_tc_linear(lp, sms, stream) : cudaErrorNotSupported;
    // (the tensor-core kernel declines shapes whose tiles do not fit in shared memory; it
    // runs M in one launch, so with LoRA nothing has been launched yet)
    if (err == cudaErrorNotSupported && lora) return at::Tensor();
    KernelRan ran = KernelRan::kTensorCore;
    if (err == cudaErrorNotSupported && !fast) {
      err = cuda::launch_generic_linear(lp, stream);
      ran = KernelRan::kGeneric;
    } else if (err == cudaErrorNotSupported) {
      // (a declined tensor-core launch covered all M rows: the add/subtract kernel takes them in its own chunks)
      cuda::LinearParams c = lp;
      err = cudaSuccess;
      for (int64_t r0 = 0; r0 < lp.M && err == cudaSuccess; r0 += kMaxRowsPerLaunch) {
        c.M = std::min(kMaxRowsPerLaunch, lp.M - r0);
        c.x = static_cast<const char*>(lp.x) + r0 * p.K * x2.element_size();
        c.y = static_cast<char*>(lp.y) + r0 * p.N * y.element_size();
        err = cuda::launch_addsub_linear(c, sms, stream);
      }
      ran = KernelRan::kAddsub;
    }
    check_cuda(err, "linear", p);
    note_kernel_ran(ran);
  }
  return y.reshape(out_shape);
}

at::Tensor grad_x_cuda(const at::Tensor& grad_y, const at::Tensor& packed_w, const at::Tensor& scale,
                       const std::optional<at::Tensor>& offset, int64_t kind_i, int64_t K) {
  const Kind kind = kind_from_int(kind_i);
  const LinearProblem p = check_grad_x(kind, grad_y, packed_w, scale, offset, K);
  const c10::cuda::CUDAGuard guard(grad_y.device());
  std::vector<int64_t> out_shape(grad_y.sizes().begin(), grad_y.sizes().end());
  out_shape.back() = K;
  note_kernel_ran(KernelRan::kNone);
  if (p.M == 0) return at::empty(out_shape, grad_y.options());
  const at::Tensor g2 = grad_y.reshape({p.M, p.N}).contiguous();
  const at::Tensor w = aligned_packed(packed_w);
  const PreparedScales ps = prepare_scales(grad_y, scale, offset, std::nullopt);
  cuda::GradXParams lp{};
  lp.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  lp.N = p.N;
  lp.K = K;
  lp.wpr = w.size(1);
  lp.x_dtype = dtype_of(grad_y.scalar_type());
  fill_scale_fields(lp, p, ps);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const bool fast = grad_y.scalar_type() != at::kDouble && (p.groups == 1 || p.group_size % BLOCK_K == 0);
  // Group-wise s / u reach the tensor-core kernel as stored (any strides).  A (groups, N) copy, which
  // made a tile's 16 rows at one group 32 contiguous bytes, cost more than it saved once the kernel
  // loaded them a step ahead (tc30).  Session 25, g64 fp16, three shapes x three kinds (bench/results/
  // h200_s25_call1_0e8a574.txt): time as stored / with PyTorch's transposing copies, geomean 0.58 at M = 1
  // and 4, 0.72 at M = 16; as stored / with a tiled transpose kernel (both with tc33) 0.81, 0.81, 0.89.
  // Launches take at most kMaxRowsPerLaunch rows of grad_y (the grids' row limit): chunk m0's rows of grad_y and `out`.
  auto set_chunk = [&](const at::Tensor& out, int64_t m0) {
    lp.M = std::min(kMaxRowsPerLaunch, p.M - m0);
    lp.x = static_cast<const char*>(g2.data_ptr()) + m0 * p.N * g2.element_size();
    lp.y = static_cast<char*>(out.data_ptr()) + m0 * K * out.element_size();
  };
  if (fast && use_wg_grad_x(lp, p.M, grad_y.get_device())) {
    // Hopper wgmma kernel: grad_x in grad_y's dtype straight from fp32 sums (no accumulation buffer).
    at::Tensor out = at::empty({p.M, K}, grad_y.options());
    poison_output(out);
    // Tile and splits of the reduction (wg_plan.h wg_gx_plan; knobs BITMM_GX_WG_BM / BITMM_GX_WG_SPLIT, read once), planned for
    // the first chunk of rows; splits write fp32 partial tiles into a workspace that the chunks reuse in turn.
    static const int forced_bm = cuda::env_int("BITMM_GX_WG_BM"), forced_splits = cuda::env_int("BITMM_GX_WG_SPLIT");
    const int64_t m_first = std::min(kMaxRowsPerLaunch, p.M);
    const cuda::WgPlan plan = cuda::wg_gx_plan(m_first, p.N, K, num_sms(grad_y.get_device()), forced_bm, forced_splits);
    at::Tensor ws;
    if (plan.splits > 1) ws = at::empty({plan.splits * m_first * K}, grad_y.options().dtype(at::kFloat));
    lp.wg_bm = plan.bm;
    lp.wg_splits = plan.splits;
    lp.wg_ws = ws.defined() ? ws.data_ptr<float>() : nullptr;
    cudaError_t err = cudaSuccess;
    for (int64_t m0 = 0; m0 < p.M && err == cudaSuccess; m0 += kMaxRowsPerLaunch) {
      set_chunk(out, m0);
      err = lp.x_dtype == cuda::DType::kHalf ? cuda::launch_wg_grad_x_f16(lp, stream)
                                              : cuda::launch_wg_grad_x_bf16(lp, stream);
      // (the launcher's conditions hold for every chunk once they hold for the first: N % 8 == 0 keeps grad_y's
      // chunks 16-byte aligned, K % 8 == 0 grad_x's; so only the first can be refused, with nothing launched)
    }
    if (err != cudaErrorNotSupported) {
      check_cuda(err, "linear_grad_x", p);
      note_kernel_ran(KernelRan::kWgmma);
      return out.reshape(out_shape);
    }
    lp.M = 0;  // (the paths below set x, y and M per chunk again: set_chunk)
    lp.wg_bm = lp.wg_splits = 0;
    lp.wg_ws = nullptr;
  }
  if (fast && use_dense(lp, p.M, grad_y.scalar_type(), /*grad_x=*/true) &&
      p.N * K * static_cast<int64_t>(grad_y.element_size()) <= (int64_t{1} << 30)) {
    // Large M (training): grad_x = grad_y @ W with W dequantized once (one cuBLAS call).
    at::Tensor w = at::empty({p.N, K}, grad_y.options());
    check_cuda(cuda::launch_dequant(lp, w.data_ptr(), 0, p.N, stream), "dequantize", p);
    note_kernel_ran(KernelRan::kDense);
    return at::mm(g2, w).reshape(out_shape);
  }
  at::Tensor out = at::empty({p.M, K}, grad_y.options());
  poison_output(out);  // (zeroed again below where the fast kernel accumulates into it)
  // The fast kernel accumulates with atomics into fp32 (the output itself when it is fp32).
  at::Tensor accum;
  if (fast) accum = grad_y.scalar_type() == at::kFloat ? out.zero_() : at::zeros({p.M, K}, grad_y.options().dtype(at::kFloat));
  for (int64_t m0 = 0; m0 < p.M; m0 += kMaxRowsPerLaunch) {
    set_chunk(out, m0);
    float* acc = fast ? accum.data_ptr<float>() + m0 * K : nullptr;
    const int sms = num_sms(grad_y.get_device());
    cudaError_t err = cudaErrorNotSupported;
    KernelRan ran = KernelRan::kTensorCore;
    if (fast && use_tc_grad_x(lp, p.M)) {
      err = lp.x_dtype == cuda::DType::kHalf ? cuda::launch_tc_grad_x_f16(lp, acc, sms, stream)
                                              : cuda::launch_tc_grad_x_bf16(lp, acc, sms, stream);
    }
    if (err == cudaErrorNotSupported) {
      err = fast ? cuda::launch_grad_x(lp, acc, sms, at::globalContext().deterministicAlgorithms(), stream)
                 : cuda::launch_generic_grad_x(lp, stream);
      ran = fast ? KernelRan::kAddsub : KernelRan::kGeneric;
    }
    check_cuda(err, "linear_grad_x", p);
    note_kernel_ran(ran);
  }
  if (fast && grad_y.scalar_type() != at::kFloat) out.copy_(accum);
  return out.reshape(out_shape);
}

at::Tensor pack_cuda(const at::Tensor& codes_in, int64_t kind_i) {
  const Kind kind = kind_from_int(kind_i);
  check_pack_codes(kind, codes_in);
  const c10::cuda::CUDAGuard guard(codes_in.device());
  const int max_code = max_code_of(kind);
  // Packing is not a hot path: this range check synchronises once.  (uint16 / 32 / 64 have no comparison kernels:
  // as int64, as on the CPU.)
  const at::ScalarType in_t = codes_in.scalar_type();
  const at::Tensor checked = in_t == at::kUInt16 || in_t == at::kUInt32 || in_t == at::kUInt64
                                 ? codes_in.to(at::kLong) : codes_in;
  const int64_t bad = (checked.lt(0) | checked.gt(max_code)).sum().item<int64_t>();
  BITMM_CHECK_VALUE(bad == 0, "bitmm.pack(", name_of(kind), "): codes must be in [0, ", max_code, "], found ", bad,
                    " out-of-range values",
                    kind == Kind::kTernary ? " (ternary codes are t + 1 for t in {-1,0,1})" : "");
  const at::Tensor codes = checked.to(at::kChar).contiguous();
  const int64_t N = codes.size(0), K = codes.size(1), wpr = words_per_row(kind, K);
  at::Tensor out = at::empty({N, wpr}, codes.options().dtype(at::kInt));
  poison_output(out);
  const cudaError_t err = cuda::launch_pack(codes.data_ptr<int8_t>(), N, K, planes_of(kind) == 2, zero_code_of(kind),
                                            reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>()), wpr,
                                            at::cuda::getCurrentCUDAStream());
  BITMM_CHECK(err == cudaSuccess, "bitmm.pack(", name_of(kind), ") CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}

at::Tensor unpack_cuda(const at::Tensor& packed_in, int64_t kind_i, int64_t K) {
  const Kind kind = kind_from_int(kind_i);
  check_unpack(kind, packed_in, K);
  const c10::cuda::CUDAGuard guard(packed_in.device());
  const at::Tensor packed = packed_in.contiguous();
  const int64_t N = packed.size(0);
  at::Tensor out = at::empty({N, K}, packed.options().dtype(at::kChar));
  poison_output(out);
  const cudaError_t err = cuda::launch_unpack(reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>()), N, K,
                                              planes_of(kind) == 2, packed.size(1), out.data_ptr<int8_t>(),
                                              at::cuda::getCurrentCUDAStream());
  BITMM_CHECK(err == cudaSuccess, "bitmm.unpack(", name_of(kind), ") CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}

// One registered function per kind, all the same impl.
template <Kind kind>
at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& w, const at::Tensor& s,
                       const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b) {
  return linear_cuda_impl(kind, x, w, s, u, b);
}

// linear_a8's epilogue where torch's int8 GEMM gave int32 sums: one kernel (a8_epilogue.cu) instead of the ATen
// epilogue's five passes over the (M, N) sums; an undefined tensor elsewhere (linear_a8_forward then runs the
// ATen one).
at::Tensor a8_epilogue_cuda(const A8Sums& s, const at::Tensor& x_scale2, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias, int shift,
                            at::ScalarType out_dtype) {
  if (s.sums.scalar_type() != at::kInt || out_dtype == at::kDouble || !s.sums.is_contiguous()) return at::Tensor();
  const int64_t M = s.sums.size(0), N = s.sums.size(1);
  const at::Tensor sv = scale.to(at::kFloat).reshape({-1}).expand({N}).contiguous();
  const at::Tensor uv = offset.has_value() ? offset->to(at::kFloat).reshape({-1}).expand({N}).contiguous() : at::Tensor();
  const at::Tensor bv = bias.has_value() ? bias->to(at::kFloat).contiguous() : at::Tensor();
  const at::Tensor xs = x_scale2.to(at::kFloat).reshape({M}).contiguous();
  const at::Tensor X = s.row_sums.contiguous();
  at::Tensor y = at::empty({M, N}, s.sums.options().dtype(out_dtype));
  poison_output(y);
  const cudaError_t err = cuda::launch_a8_epilogue(
      s.sums.data_ptr<int32_t>(), X.data_ptr<int32_t>(), xs.data_ptr<float>(), sv.data_ptr<float>(),
      uv.defined() ? uv.data_ptr<float>() : nullptr, bv.defined() ? bv.data_ptr<float>() : nullptr, shift, M, N,
      dtype_of(out_dtype), y.data_ptr(), num_sms(s.sums.get_device()), at::cuda::getCurrentCUDAStream());
  if (err == cudaErrorNotSupported) return at::Tensor();
  BITMM_CHECK(err == cudaSuccess, "bitmm.linear_a8 CUDA epilogue failed for M=", M, " N=", N, ": ",
              cudaGetErrorString(err));
  return y;
}

// linear_a8 in one kernel for few rows (a8_linear.cu: the codes unpacked in registers for the int8 tensor cores, the
// epilogue fused; the same bits as the unfused path): M <= kA8FusedAutoMaxM by default, M <= kA8MaxM with
// BITMM_A8_FUSED=1, never with BITMM_A8_FUSED=0 (read once).  An undefined tensor where it does not apply (the
// unfused path then runs).
// kA8FusedAutoMaxM = 64 (H200, session 28, bench/results/h200_s28_call3_*): up to M = 64 the fused kernel beat the
// unfused path (which unpacks W to int8 codes on every call, 74-830 us at M = 1-256) on all 12 probed kind x shape
// cases (48 in all), by 1.8-47x (session 26's launch rule); at M = 256 on 10 of 12 (not two-plane 28672 x 8192, where
// x rows of 28 KB leave 8 per CTA).
constexpr int64_t kA8FusedAutoMaxM = 64;
at::Tensor linear_a8_fused(const LinearProblem& p, const at::Tensor& xq, const at::Tensor& x_scale,
                           const at::Tensor& packed_w, const at::Tensor& s, const std::optional<at::Tensor>& u,
                           const std::optional<at::Tensor>& b, at::ScalarType out_dtype) {
  static const int64_t max_m = [] {
    const char* e = std::getenv("BITMM_A8_FUSED");
    return e == nullptr ? kA8FusedAutoMaxM : std::atoi(e) == 1 ? int64_t{cuda::kA8MaxM} : int64_t{0};
  }();
  if (p.M < 1 || p.M > max_m || out_dtype == at::kDouble) return at::Tensor();
  const at::Tensor xq2 = xq.reshape({p.M, p.K}).contiguous();
  const at::Tensor xs = x_scale.to(at::kFloat).reshape({p.M}).contiguous();
  const at::Tensor w = aligned_packed(packed_w);  // (16-byte weight loads)
  std::vector<int64_t> out_shape(xq.sizes().begin(), xq.sizes().end());
  out_shape.back() = p.N;
  at::Tensor y = at::empty(out_shape, xq.options().dtype(out_dtype));
  poison_output(y);
  cuda::A8Params ap{};
  const A8ScaleTensors held = set_a8_scales(ap, s, u, b);
  ap.xq = xq2.data_ptr<int8_t>();
  ap.xs = xs.data_ptr<float>();
  ap.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  ap.y = y.data_ptr();
  ap.M = p.M;
  ap.N = p.N;
  ap.K = p.K;
  ap.wpr = w.size(1);
  ap.planes = planes_of(p.kind);
  ap.shift = a8_code_shift(p.kind);
  ap.x_vec = reinterpret_cast<uintptr_t>(ap.xq) % 16 == 0 && p.K % 16 == 0;
  ap.out = dtype_of(out_dtype);
  const cudaError_t err = cuda::launch_a8_linear(ap, at::cuda::getCurrentCUDAStream());
  if (err == cudaErrorNotSupported) return at::Tensor();
  BITMM_CHECK(err == cudaSuccess, "bitmm.linear_a8(", name_of(p.kind), ") fused CUDA kernel failed for M=", p.M,
              " N=", p.N, " K=", p.K, ": ", cudaGetErrorString(err));
  note_kernel_ran(KernelRan::kA8Fused);
  return y;
}

at::Tensor linear_a8_cuda(const at::Tensor& xq, const at::Tensor& x_scale, const at::Tensor& packed_w,
                          const at::Tensor& s, const std::optional<at::Tensor>& u, const std::optional<at::Tensor>& b,
                          int64_t kind, at::ScalarType out_dtype) {
  const LinearProblem p = check_linear_a8(kind_from_int(kind), xq, x_scale, packed_w, s, u, b, out_dtype);
  const c10::cuda::CUDAGuard guard(xq.device());
  note_kernel_ran(KernelRan::kNone);  // (M = 0: nothing runs)
  const at::Tensor fused = linear_a8_fused(p, xq, x_scale, packed_w, s, u, b, out_dtype);
  if (fused.defined()) return fused;
  if (p.M > 0) note_kernel_ran(KernelRan::kA8Unfused);
  return linear_a8_forward(p, xq, x_scale, packed_w, s, u, b, out_dtype, &a8_epilogue_cuda);
}

// absmax_int8 / absmax_int8_fake in one kernel (quant_absmax.cu), the ATen composite's bits
at::Tensor absmax_int8_launch(const at::Tensor& x, bool fake, at::Tensor* scale_out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const int64_t K = x.size(-1), rows = x.numel() / K;
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(fake ? x.scalar_type() : at::kChar));
  at::Tensor scale;
  if (!fake) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = 1;
    scale = at::empty(shape, x.options().dtype(at::kFloat));
    poison_output(scale);
  }
  poison_output(out);
  const cudaError_t err = cuda::launch_absmax_int8(
      xc.data_ptr(), dtype_of(x.scalar_type()), rows, K, fake ? nullptr : out.data_ptr<int8_t>(),
      fake ? nullptr : scale.data_ptr<float>(), fake ? out.data_ptr() : nullptr, at::cuda::getCurrentCUDAStream());
  if (err == cudaErrorNotSupported) {  // (more than 2^31 - 1 rows)
    if (fake) return absmax_int8_fake_aten(x);
    auto [xq, sc] = absmax_int8_aten(x);
    *scale_out = sc;
    return xq;
  }
  BITMM_CHECK(err == cudaSuccess, "bitmm.quant.absmax_int8 CUDA kernel failed for ", rows, " rows of K=", K, ": ",
              cudaGetErrorString(err));
  if (!fake) *scale_out = scale;
  return out;
}

std::tuple<at::Tensor, at::Tensor> absmax_int8_cuda(const at::Tensor& x) {
  check_absmax_int8("bitmm.quant.absmax_int8", x);
  at::Tensor scale;
  at::Tensor xq = absmax_int8_launch(x, /*fake=*/false, &scale);
  return {xq, scale};
}

at::Tensor absmax_int8_fake_cuda(const at::Tensor& x) {
  check_absmax_int8("bitmm.quant.absmax_int8_fake", x);
  return absmax_int8_launch(x, /*fake=*/true, nullptr);
}

}  // namespace

at::Tensor linear_cuda_fused_lora(Kind kind, const at::Tensor& x, const at::Tensor& packed_w, const at::Tensor& scale,
                                  const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                                  const at::Tensor& xa, const at::Tensor& lora_b, double lora_scale) {
  if (x.scalar_type() != at::kHalf && x.scalar_type() != at::kBFloat16) return at::Tensor();
  const at::ScalarType bt = lora_b.scalar_type();
  if (bt != at::kFloat && bt != x.scalar_type()) return at::Tensor();
  const LoraEpilogue lora{xa.to(at::kFloat).contiguous(), lora_b.contiguous(), lora_scale};
  return linear_cuda_impl(kind, x, packed_w, scale, offset, bias, &lora);
}

TORCH_LIBRARY_IMPL(bitmm, CUDA, m) {
  m.impl("ternary_linear", &linear_cuda<Kind::kTernary>);
  m.impl("binary_linear", &linear_cuda<Kind::kBinary>);
  m.impl("int2_linear", &linear_cuda<Kind::kInt2>);
  m.impl("linear_grad_x", &grad_x_cuda);
  m.impl("pack", &pack_cuda);
  m.impl("unpack", &unpack_cuda);
  m.impl("linear_a8", &linear_a8_cuda);
  m.impl("absmax_int8", &absmax_int8_cuda);
  m.impl("absmax_int8_fake", &absmax_int8_fake_cuda);
}

}  // namespace bitmm
