#!/usr/bin/env bash
# SASS reports of bitmm's kernels without a GPU: each kernel file compiled alone for sm_90a (nvcc -cubin, the same
# flags as setup.py's, -Xptxas -v for registers / spills), cuobjdump --dump-sass, bench/sass_report.py.  Writes
#   bench/results/sass_report_sm90a_<commit>.txt      add/subtract forward, add/subtract grad_x
#   bench/results/sass_report_tc_sm90a_<commit>.txt   tensor-core forward (tc_linear) and grad_x (tc_grad_x)
#   bench/results/sass_report_a8_sm90a_<commit>.txt   the fused W2A8 kernel (a8_linear: its IMMA step loop)
#   bench/results/sass_report_wg_sm90a_<commit>.txt   the Hopper wgmma kernel (wg_linear: its stage loop through HGMMAs)
#   bench/results/sass_report_wgx_sm90a_<commit>.txt  the Hopper wgmma grad_x kernel (wg_grad_x, session 48)
# each headed by the ptxas lines (registers, spills) of its files.  Needs nvcc (CUDA_HOME, default /usr/local/cuda),
# the torch wheel's CUDA headers (site-packages/nvidia/cu13/include) and a cuobjdump (CUDA's, else triton's copy).
#   bash bench/sass_local.sh            (MAX_JOBS=2 files at a time; ~10 min on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
SP=$(python -c "import site; print(site.getsitepackages()[0])")
NVCC=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
OBJDUMP=$(command -v cuobjdump || echo "$SP/triton/backends/nvidia/bin/cuobjdump")
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- csrc || echo "-dirty")
TMP=$(mktemp -d)
compile() {  # $1: source file
  local b; b=$(basename "$1" .cu)
  # (torch's extension flags: without the __CUDA_NO_* defines register counts and loops come out differently)
  "$NVCC" -O3 -std=c++20 --expt-relaxed-constexpr -arch=sm_90a -cubin -Xptxas -v -Icsrc -I"$SP/nvidia/cu13/include" \
    -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ \
    -D__CUDA_NO_HALF2_OPERATORS__ \
    -o "$TMP/$b.cubin" "$1" > "$TMP/$b.ptxas" 2>&1 && "$OBJDUMP" --dump-sass "$TMP/$b.cubin" > "$TMP/$b.sass"
}
export -f compile; export NVCC OBJDUMP SP TMP
ls csrc/cuda/addsub_linear_*.cu csrc/cuda/grad_x.cu csrc/cuda/tc_linear_*.cu csrc/cuda/tc_grad_x_*.cu csrc/cuda/a8_linear.cu \
  csrc/cuda/quant_absmax.cu csrc/cuda/wg_linear_*.cu csrc/cuda/wg_grad_x_*.cu \
  | xargs -P "${MAX_JOBS:-2}" -I{} bash -c 'compile {}'
report() {  # $1: output, $2: title, rest: file stems
  local out=$1 title=$2; shift 2
  { echo "# $title (nvcc $("$NVCC" --version | grep -o 'release [0-9.]*'), sm_90a, local cuobjdump of commit $COMMIT: bench/sass_local.sh)"
    echo "# 'hottest loop': tensor-core kernels, the innermost loop holding HMMA (forward: a step; grad_x: a 16-row tile;"
    echo "# wgmma: HGMMA, two stages, whose fold branches (group-wise or with an offset: HFMA2, or FFMA for fp32 scales) the"
    echo "# per tensor / channel path without an offset branches past, wg16);"
    echo "# add/subtract kernels, the backward branch whose body holds the most FADDs"
    for f in "$@"; do
      echo "# ptxas $f: $(grep -c 'Compiling entry' "$TMP/$f.ptxas") kernels, registers $(grep -o 'Used [0-9]* registers' "$TMP/$f.ptxas" | awk '{print $2}' | sort -n | uniq | tr '\n' ' ')| spill stores (bytes) $(grep -o '[0-9]* bytes spill stores' "$TMP/$f.ptxas" | awk '{print $1}' | sort -n | uniq | tr '\n' ' ')"
    done
    for f in "$@"; do python bench/sass_report.py "$TMP/$f.sass"; done; } > "$out"
  echo "wrote $out"
}
report "bench/results/sass_report_sm90a_$COMMIT.txt" "SASS of the add/subtract kernels" \
  addsub_linear_f16 addsub_linear_bf16 addsub_linear_f32 grad_x
report "bench/results/sass_report_tc_sm90a_$COMMIT.txt" "SASS of the tensor-core kernels" \
  tc_linear_f16_ternary tc_linear_f16_int2 tc_linear_f16_binary tc_linear_bf16_ternary tc_linear_bf16_int2 \
  tc_linear_bf16_binary tc_grad_x_f16 tc_grad_x_bf16
report "bench/results/sass_report_a8_sm90a_$COMMIT.txt" "SASS of the fused int8 kernel (W2A8, digits)" a8_linear quant_absmax
report "bench/results/sass_report_wg_sm90a_$COMMIT.txt" "SASS of the Hopper wgmma kernel" \
  wg_linear_f16_ternary wg_linear_f16_int2 wg_linear_f16_binary wg_linear_bf16_ternary wg_linear_bf16_int2 wg_linear_bf16_binary
report "bench/results/sass_report_wgx_sm90a_$COMMIT.txt" "SASS of the Hopper wgmma grad_x kernel" wg_grad_x_f16 wg_grad_x_bf16
# x_digits (quant_absmax.cu; no accumulation loop for sass_report.py): its global load / store widths and multiplications
for f in $(grep "Function :" "$TMP/quant_absmax.sass" | awk '{print $3}' | grep x_digits); do
  body=$(awk -v F="$f" '$0 ~ "Function : "F {x=1; next} /Function :/{x=0} x' "$TMP/quant_absmax.sass")
  echo "== $f: $(grep -oE "(LDG|STG)[.A-Z0-9]*" <<< "$body" | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')$(grep -oE " (DMUL|FMUL|FFMA|DFMA)[.A-Z0-9]* " <<< "$body" | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')calls $(grep -c CALL <<< "$body")"
done >> "bench/results/sass_report_a8_sm90a_$COMMIT.txt"
rm -rf "$TMP"
