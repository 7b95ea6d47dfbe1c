#include "checks.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "cpu_prepack_format.h"

namespace bitmm {

Kind kind_from_int(int64_t kind) {
  BITMM_CHECK_VALUE(kind >= 1 && kind <= 3, "bitmm: kind must be 1 (binary), 2 (ternary) or 3 (int2), got ", kind);
  return static_cast<Kind>(kind);
}

static bool is_float_dtype(at::ScalarType t) {
  // float64 is accepted for exact checking (gradcheck); it runs the generic kernels.
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}

static std::string shape_str(const at::Tensor& t) { return msg(t.sizes()); }

// Non-finite scale / offset values (policy: README, "Determinism").  On CPU they
// are rejected: one pass over the values here, or, where the caller passes
// defer_finite, a test inside its kernel (the CPU AVX2 forward: a separate pass
// over group-wise scales cost ~1/4 of its time) followed by this scan on a hit.
// On CUDA they are not looked at (that would need a host sync, and the ops stay
// CUDA-graph capturable); there a NaN / Inf propagates to the outputs that use
// it (scale[n] or offset[n] -> column n of y).  Bias is an ordinary addend and
// is not checked on any device, as in F.linear.
namespace {

// A float is NaN or +-Inf exactly when all its exponent bits are set: test the
// bit pattern (U: the unsigned type of the float's width).
template <typename U>
struct FloatBits {
  U exp_mask;
  bool non_finite(U v) const { return (v & exp_mask) == exp_mask; }
  bool is_nan(U v) const { return (v & static_cast<U>(~(U(1) << (8 * sizeof(U) - 1)))) > exp_mask; }
  bool negative(U v) const { return (v >> (8 * sizeof(U) - 1)) != 0; }
};

// Scans the (rows, cols) values base[r * s0 + c * s1]; throws naming the first
// non-finite one.
template <typename U>
void check_finite_bits(const char* op, const char* what, const at::Tensor& t, FloatBits<U> fb) {
  const U* base = static_cast<const U*>(t.const_data_ptr());
  const int64_t rows = t.dim() >= 1 ? t.size(0) : 1, cols = t.dim() == 2 ? t.size(1) : 1;
  const int64_t s0 = t.dim() >= 1 ? t.stride(0) : 0, s1 = t.dim() == 2 ? t.stride(1) : 0;
  std::atomic<bool> bad{false};
  at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / cols), [&](int64_t r0, int64_t r1) {
    bool b = false;
    for (int64_t r = r0; r < r1; ++r) {
      const U* row = base + r * s0;
      if (s1 == 1) {
        for (int64_t c = 0; c < cols; ++c) b |= fb.non_finite(row[c]);  // vectorizes
      } else {
        for (int64_t c = 0; c < cols; ++c) b |= fb.non_finite(row[c * s1]);
      }
    }
    if (b) bad.store(true, std::memory_order_relaxed);
  });
  if (!bad.load()) return;
  // Error path: find the first one for the message.
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const U v = base[r * s0 + c * s1];
      if (!fb.non_finite(v)) continue;
      const std::string where = t.dim() == 0 ? std::string() : t.dim() == 1 ? msg("[", r, "]") : msg("[", r, ", ", c, "]");
      const char* value = fb.is_nan(v) ? "NaN" : fb.negative(v) ? "-Inf" : "+Inf";
      BITMM_CHECK_VALUE(false, op, ": ", what, where, " is ", value, "; ", what,
                        " must be finite (non-finite scales and offsets are rejected on CPU; on CUDA they are not "
                        "checked, to avoid a host sync, and make the outputs that use them NaN / Inf)");
    }
  }
}

void check_finite(const char* op, const char* what, const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return check_finite_bits<uint32_t>(op, what, t, {0x7f800000u});
    case at::kDouble: return check_finite_bits<uint64_t>(op, what, t, {0x7ff0000000000000ull});
    case at::kHalf: return check_finite_bits<uint16_t>(op, what, t, {0x7c00u});
    case at::kBFloat16: return check_finite_bits<uint16_t>(op, what, t, {0x7f80u});
    default: return;  // other dtypes were rejected before
  }
}

}  // namespace

// Maps a scale/offset tensor onto (n, group).  `what` is the argument name.
static ScaleLayout scale_layout(const char* op, const char* what, const at::Tensor& s,
                                const at::Tensor& x, int64_t N, int64_t K, const char* xname = "x",
                                bool defer_finite = false) {
  check_defined(op, what, s);
  BITMM_CHECK_TYPE(is_float_dtype(s.scalar_type()), op, ": ", what,
                   " must be float32, float16, bfloat16 or float64, got ", s.scalar_type());
  BITMM_CHECK(s.device() == x.device(), op, ": ", what, " is on ", s.device(), " but ", xname, " is on ",
              x.device(), "; move all arguments to one device");
  ScaleLayout l;
  l.present = true;
  if (s.dim() == 0) {
    if (s.device().is_cpu() && !defer_finite) check_finite(op, what, s);
    return l;  // per tensor
  }
  if (s.dim() == 1) {
    BITMM_CHECK_VALUE(s.size(0) == N, op, ": ", what, " of shape ", shape_str(s),
                      " must be () per tensor, (N,) per output channel or (N, K/G) per group, "
                      "with N=", N, ", K=", K);
    if (s.device().is_cpu() && !defer_finite) check_finite(op, what, s);
    l.stride_n = s.stride(0);
    return l;
  }
  BITMM_CHECK_VALUE(s.dim() == 2 && s.size(0) == N && s.size(1) >= 1, op, ": ", what, " of shape ",
                    shape_str(s), " must be () per tensor, (N,) per output channel or (N, K/G) per "
                    "group, with N=", N, ", K=", K);
  BITMM_CHECK_VALUE(K % s.size(1) == 0, op, ": ", what, " has ", s.size(1),
                    " groups along K, which does not divide K=", K, " (group size G = K / ",
                    what, ".shape[1] must be an integer)");
  if (s.device().is_cpu() && !defer_finite) check_finite(op, what, s);
  l.stride_n = s.stride(0);
  l.stride_g = s.size(1) > 1 ? s.stride(1) : 0;  // (N, 1) is per channel: g may run past 0
  l.groups = s.size(1);
  return l;
}

// packed_w: an int32 (N >= 1, words_per_row(kind, K)) tensor, on x's device when x is given.
static void check_packed(const char* op, Kind kind, const at::Tensor& packed_w, const at::Tensor* x,
                         int64_t K, const char* xname = "x") {
  check_defined(op, "packed_w", packed_w);
  BITMM_CHECK_TYPE(packed_w.scalar_type() == at::kInt, op, ": packed_w must be an int32 tensor from bitmm.pack_",
                   name_of(kind), ", got dtype ", packed_w.scalar_type());
  BITMM_CHECK_VALUE(packed_w.dim() == 2, op, ": packed_w must be 2-D (N, words_per_row), got shape ",
                    shape_str(packed_w));
  if (x != nullptr) {
    BITMM_CHECK(packed_w.device() == x->device(), op, ": packed_w is on ", packed_w.device(),
                " but ", xname, " is on ", x->device(), "; move all arguments to one device");
  }
  BITMM_CHECK_VALUE(packed_w.size(0) >= 1, op, ": packed_w has N=0 rows");
  const int64_t want = words_per_row(kind, K);
  BITMM_CHECK_VALUE(packed_w.size(1) == want, op, ": packed_w has ", packed_w.size(1),
                    " int32 words per row but the ", name_of(kind), " format with K=", K, " needs ", want, " (",
                    planes_of(kind), " bit", planes_of(kind) > 1 ? "s" : "",
                    " per weight); was it packed for another K or another kind?");
}

// bias: None, or a float (N,) tensor on x's device (xname: how the op calls x).
static void check_bias(const char* op, const std::optional<at::Tensor>& bias, int64_t N, const at::Tensor& x,
                       const char* xname = "x") {
  if (!bias.has_value()) return;
  const at::Tensor& b = *bias;
  BITMM_CHECK_TYPE(is_float_dtype(b.scalar_type()), op, ": bias must be float32, float16, bfloat16 or float64, got ",
                   b.scalar_type());
  BITMM_CHECK_VALUE(b.dim() == 1 && b.size(0) == N, op, ": bias must have shape (N,)=(", N, ",), got ",
                    shape_str(b));
  BITMM_CHECK(b.device() == x.device(), op, ": bias is on ", b.device(), " but ", xname, " is on ", x.device(),
              "; move all arguments to one device");
}

static LinearProblem finish(const char* op, Kind kind, int64_t M, int64_t N, int64_t K,
                            const at::Tensor& x, const at::Tensor& scale,
                            const std::optional<at::Tensor>& offset, const char* xname = "x",
                            bool defer_finite = false) {
  LinearProblem p;
  p.kind = kind;
  p.M = M;
  p.N = N;
  p.K = K;
  p.scale = scale_layout(op, "scale", scale, x, N, K, xname, defer_finite);
  if (offset.has_value()) {
    p.offset = scale_layout(op, "offset", *offset, x, N, K, xname, defer_finite);
  }
  p.groups = std::max(p.scale.groups, p.offset.groups);
  BITMM_CHECK_VALUE(!(p.scale.groups > 1 && p.offset.present && p.offset.groups > 1 &&
                      p.scale.groups != p.offset.groups),
                    op, ": scale has ", p.scale.groups, " groups but offset has ", p.offset.groups,
                    "; group-wise scale and offset must use the same group size (K=", K, ")");
  p.group_size = K / p.groups;
  return p;
}

static LinearProblem check_linear_named(const char* op, Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                                        const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                                        const std::optional<at::Tensor>& bias, bool defer_finite) {
  check_defined(op, "x", x);
  BITMM_CHECK_TYPE(is_float_dtype(x.scalar_type()), op, ": x must be float32, float16, bfloat16 or float64, got ",
                   x.scalar_type());
  BITMM_CHECK_VALUE(x.dim() >= 1, op, ": x must have at least 1 dimension (..., K)");
  const int64_t K = x.size(-1);
  BITMM_CHECK_VALUE(K >= 1, op, ": x has K=0 input features; K must be >= 1");
  check_packed(op, kind, packed_w, &x, K);
  const int64_t N = packed_w.size(0);
  const int64_t M = K == 0 ? 0 : x.numel() / K;
  check_bias(op, bias, N, x);
  return finish(op, kind, M, N, K, x, scale, offset, "x", defer_finite);
}

static std::string linear_op_name(Kind kind) { return std::string("bitmm.") + name_of(kind) + "_linear"; }
static std::string prepacked_op_name(Kind kind) {
  return std::string("bitmm.cpu_prepacked_linear(") + name_of(kind) + ")";
}

LinearProblem check_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           const std::optional<at::Tensor>& bias, bool defer_finite) {
  const std::string opname = linear_op_name(kind);
  return check_linear_named(opname.c_str(), kind, x, packed_w, scale, offset, bias, defer_finite);
}

void check_scales_finite(Kind kind, bool prepacked, const at::Tensor& scale, const std::optional<at::Tensor>& offset) {
  const std::string opname = prepacked ? prepacked_op_name(kind) : linear_op_name(kind);
  check_finite(opname.c_str(), "scale", scale);
  if (offset.has_value()) check_finite(opname.c_str(), "offset", *offset);
}

// The header of a cpu_prepack blob against what the call needs; every message names `prepacked`.
static void check_prepacked_blob(const char* op, Kind kind, const at::Tensor& prepacked, const at::Tensor& x,
                                 int64_t N, int64_t K) {
  check_defined(op, "prepacked", prepacked);
  namespace cp = cpu_prepack;
  const char* remake = "; remake it with torch.ops.bitmm.cpu_prepack(packed_w, kind, K)";
  BITMM_CHECK_TYPE(prepacked.scalar_type() == at::kByte, op,
                   ": prepacked must be a uint8 tensor from torch.ops.bitmm.cpu_prepack, got dtype ",
                   prepacked.scalar_type());
  BITMM_CHECK(prepacked.device() == x.device(), op, ": prepacked is on ", prepacked.device(), " but x is on ",
              x.device(), "; move all arguments to one device");
  BITMM_CHECK(prepacked.device().is_cpu(), op, ": prepacked must be a CPU tensor (the layout is CPU-only), got ",
              prepacked.device());
  BITMM_CHECK_VALUE(prepacked.dim() == 1 && prepacked.is_contiguous(), op,
                    ": prepacked must be a contiguous 1-D uint8 tensor, got shape ", shape_str(prepacked));
  const int64_t want = cp::blob_bytes(kind, N, K);
  BITMM_CHECK_VALUE(prepacked.numel() >= cp::kHeaderBytes, op, ": prepacked has ", prepacked.numel(),
                    " bytes, fewer than its ", cp::kHeaderBytes, "-byte header (truncated?)", remake);
  cp::Header h;
  std::memcpy(&h, prepacked.const_data_ptr(), sizeof(h));
  BITMM_CHECK_VALUE(std::memcmp(h.magic, cp::kMagic, 4) == 0, op,
                    ": prepacked does not start with the cpu_prepack header (magic \"BMCP\"): not a "
                    "cpu_prepack blob, or corrupted",
                    remake);
  BITMM_CHECK_VALUE(h.version == cp::kVersion, op, ": prepacked has layout version ", int(h.version),
                    " but this build reads version ", int(cp::kVersion), remake);
  BITMM_CHECK_VALUE(h.tile_rows == cp::kTileRows && h.reserved0 == 0, op,
                    ": prepacked has a corrupted header (tile_rows ", int(h.tile_rows), ", expected ",
                    cp::kTileRows, ")", remake);
  BITMM_CHECK_VALUE(h.kind == static_cast<int>(kind), op, ": prepacked was made for kind ", int(h.kind),
                    " but the call is for kind ", static_cast<int>(kind), " (", name_of(kind), ")", remake);
  BITMM_CHECK_VALUE(h.K == K, op, ": prepacked was made for K=", h.K, " but x has K=", K, remake);
  BITMM_CHECK_VALUE(h.N == N, op, ": prepacked was made for N=", h.N, " but packed_w has N=", N, remake);
  BITMM_CHECK_VALUE(h.words_per_row == words_per_row(kind, K) && h.payload_bytes == want - cp::kHeaderBytes, op,
                    ": prepacked has a corrupted header (words_per_row ", h.words_per_row, ", payload ",
                    h.payload_bytes, " bytes; expected ", words_per_row(kind, K), " and ", want - cp::kHeaderBytes,
                    ")", remake);
  BITMM_CHECK_VALUE(prepacked.numel() == want, op, ": prepacked has ", prepacked.numel(), " bytes but its header (",
                    name_of(kind), ", N=", N, ", K=", K, ") needs ", want, prepacked.numel() < want ? " (truncated)" : "",
                    remake);
}

LinearProblem check_prepacked_linear(Kind kind, const at::Tensor& x, const at::Tensor& packed_w,
                                     const at::Tensor& prepacked, const at::Tensor& scale,
                                     const std::optional<at::Tensor>& offset, const std::optional<at::Tensor>& bias,
                                     bool defer_finite, const std::optional<at::Tensor>& prepacked_scales) {
  const std::string opname = prepacked_op_name(kind);
  const char* op = opname.c_str();
  const LinearProblem p = check_linear_named(op, kind, x, packed_w, scale, offset, bias, defer_finite);
  check_prepacked_blob(op, kind, prepacked, x, p.N, p.K);
  if (prepacked_scales.has_value()) {
    const at::Tensor& t = *prepacked_scales;
    const char* remake = "; remake it with torch.ops.bitmm.cpu_prepack_scales(scale, offset, N, K)";
    BITMM_CHECK_TYPE(t.scalar_type() == at::kFloat, op,
                     ": prepacked_scales must be a float32 tensor from torch.ops.bitmm.cpu_prepack_scales, got dtype ",
                     t.scalar_type());
    BITMM_CHECK(t.device() == x.device(), op, ": prepacked_scales is on ", t.device(), " but x is on ", x.device(),
                "; move all arguments to one device");
    const int64_t tiles = cpu_prepack::num_tiles(p.N), planes = cpu_prepack::scale_planes(offset.has_value());
    BITMM_CHECK_VALUE(t.dim() != 4 || t.size(0) == planes, op, ": prepacked_scales has ", t.size(0), " plane(s), but ",
                      offset.has_value() ? "a call with an offset needs 2: was it made without the offset?"
                                         : "a call without an offset needs 1: was it made with one?",
                      remake);
    BITMM_CHECK_VALUE(t.dim() == 4 && t.size(1) == tiles && t.size(2) == p.groups && t.size(3) == cpu_prepack::kTileRows,
                      op, ": prepacked_scales of shape ", shape_str(t), " does not fit N=", p.N, ", K=", p.K,
                      " and scale / offset with ", p.groups, " group(s) along K: expected (", planes, ", ", tiles, ", ",
                      p.groups, ", 32)", remake);
    BITMM_CHECK_VALUE(t.is_contiguous(), op, ": prepacked_scales must be contiguous (as cpu_prepack_scales makes it)",
                      remake);
  }
  return p;
}

LinearProblem check_cpu_prepack_scales(const at::Tensor& scale, const std::optional<at::Tensor>& offset, int64_t N,
                                       int64_t K) {
  const char* op = "bitmm.cpu_prepack_scales";
  BITMM_CHECK_VALUE(N >= 1 && K >= 1, op, ": N and K must be >= 1, got N=", N, ", K=", K);
  BITMM_CHECK(scale.device().is_cpu(), op, ": scale must be a CPU tensor (the layout is CPU-only), got ",
              scale.device());
  // (offset's device against scale's: finish's "x" is scale here)
  return finish(op, Kind::kTernary, 0, N, K, scale, scale, offset, "scale", /*defer_finite=*/true);
}

void check_cpu_prepack(Kind kind, const at::Tensor& packed_w, int64_t K) {
  const std::string opname = std::string("bitmm.cpu_prepack(") + name_of(kind) + ")";
  const char* op = opname.c_str();
  BITMM_CHECK_VALUE(K >= 1, op, ": K must be >= 1, got ", K);
  check_packed(op, kind, packed_w, nullptr, K);
}

LinearProblem check_grad_x(Kind kind, const at::Tensor& grad_y, const at::Tensor& packed_w,
                           const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                           int64_t K) {
  const std::string opname = std::string("bitmm.linear_grad_x(") + name_of(kind) + ")";
  const char* op = opname.c_str();
  check_defined(op, "grad_y", grad_y);
  BITMM_CHECK_TYPE(is_float_dtype(grad_y.scalar_type()), op,
                   ": grad_y must be float32, float16, bfloat16 or float64, got ", grad_y.scalar_type());
  BITMM_CHECK_VALUE(grad_y.dim() >= 1, op, ": grad_y must have at least 1 dimension (..., N)");
  BITMM_CHECK_VALUE(K >= 1, op, ": K must be >= 1, got ", K);
  check_packed(op, kind, packed_w, &grad_y, K);
  const int64_t N = packed_w.size(0);
  BITMM_CHECK_VALUE(grad_y.size(-1) == N, op, ": grad_y has ", grad_y.size(-1),
                    " features in its last dimension but packed_w has N=", N, " rows");
  const int64_t M = grad_y.numel() / N;
  return finish(op, kind, M, N, K, grad_y, scale, offset);
}

void check_absmax_int8(const char* op, const at::Tensor& x) {
  BITMM_CHECK_TYPE(is_float_dtype(x.scalar_type()), op, ": x must be float16, bfloat16, float32 or float64, got ",
                   x.scalar_type());
  BITMM_CHECK_VALUE(x.dim() >= 1 && x.size(-1) >= 1, op, ": x must have a last dimension K >= 1 (..., K), got shape ",
                    shape_str(x));
}

LinearProblem check_linear_a8(Kind kind, const at::Tensor& xq, const at::Tensor& x_scale, const at::Tensor& packed_w,
                              const at::Tensor& scale, const std::optional<at::Tensor>& offset,
                              const std::optional<at::Tensor>& bias, at::ScalarType out_dtype) {
  const std::string opname = std::string("bitmm.linear_a8(") + name_of(kind) + ")";
  const char* op = opname.c_str();
  check_defined(op, "xq", xq);
  check_defined(op, "x_scale", x_scale);
  BITMM_CHECK_TYPE(xq.scalar_type() == at::kChar, op,
                   ": xq must be int8 (bitmm.quant.absmax_int8 makes it from float activations), got ",
                   xq.scalar_type());
  BITMM_CHECK_VALUE(xq.dim() >= 1, op, ": xq must have at least 1 dimension (..., K)");
  const int64_t K = xq.size(-1);
  BITMM_CHECK_VALUE(K >= 1, op, ": xq has K=0 input features; K must be >= 1");
  BITMM_CHECK_TYPE(is_float_dtype(x_scale.scalar_type()), op,
                   ": x_scale must be float32, float16, bfloat16 or float64, got ", x_scale.scalar_type());
  BITMM_CHECK(x_scale.device() == xq.device(), op, ": x_scale is on ", x_scale.device(), " but xq is on ",
              xq.device(), "; move all arguments to one device");
  std::vector<int64_t> want(xq.sizes().begin(), xq.sizes().end());
  want.back() = 1;
  BITMM_CHECK_VALUE(x_scale.sizes() == at::IntArrayRef(want), op, ": x_scale must have shape xq.shape[:-1] + (1,) = ",
                    msg(at::IntArrayRef(want)), " (one scale per row of xq), got ", shape_str(x_scale));
  BITMM_CHECK_TYPE(out_dtype == at::kFloat || out_dtype == at::kHalf || out_dtype == at::kBFloat16 ||
                       out_dtype == at::kDouble,
                   op, ": out_dtype must be float32, float16, bfloat16 or float64, got ", out_dtype);
  check_packed(op, kind, packed_w, &xq, K, "xq");
  const int64_t N = packed_w.size(0);
  const int64_t M = xq.numel() / K;
  check_bias(op, bias, N, xq, "xq");
  const LinearProblem p = finish(op, kind, M, N, K, xq, scale, offset, "xq");
  BITMM_CHECK_VALUE(p.groups == 1, op, ": scale / offset must be per tensor () or per output channel (N,) / (N, 1) "
                    "(the int8 path sums each row over all of K at once), got ", p.groups,
                    " groups along K; for group-wise weights use the float path (bitmm.linear on xq * x_scale)");
  return p;
}

void check_pack_codes(Kind kind, const at::Tensor& codes) {
  const char* name = name_of(kind);
  BITMM_CHECK_TYPE(!at::isFloatingType(codes.scalar_type()) && !at::isComplexType(codes.scalar_type()) &&
                       codes.scalar_type() != at::kBool,
                   "bitmm.pack(", name, "): codes must be an integer tensor, got ", codes.scalar_type());
  BITMM_CHECK_VALUE(codes.dim() == 2 && codes.size(0) >= 1 && codes.size(1) >= 1, "bitmm.pack(", name,
                    "): codes must be a 2-D (N, K) tensor with N, K >= 1, got shape ", shape_str(codes));
}

void check_unpack(Kind kind, const at::Tensor& packed, int64_t K) {
  const char* name = name_of(kind);
  BITMM_CHECK_VALUE(K >= 1, "bitmm.unpack(", name, "): K must be >= 1, got ", K);
  BITMM_CHECK_TYPE(packed.scalar_type() == at::kInt, "bitmm.unpack(", name,
                   "): packed must be int32, got ", packed.scalar_type());
  BITMM_CHECK_VALUE(packed.dim() == 2 && packed.size(1) == words_per_row(kind, K), "bitmm.unpack(", name,
                    "): packed of shape ", shape_str(packed), " does not hold K=", K, " ", name,
                    " weights per row (needs ", words_per_row(kind, K), " int32 words per row)");
}

}  // namespace bitmm
