#!/usr/bin/env bash
# One device call: build, GPU tests, sanitizers, SASS report, benchmark.
# Results go to $OUT (the device tool brings them back).  Usage on the device:
#   BITMM_COMMIT=<sha> [BITMM_SANITIZE=0] [BITMM_QUICK=1] bash bench/device_run.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" BITMM_PTXAS_VERBOSE=1 PYTHONUNBUFFERED=1
start=$(date +%s)
python3 setup.py build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
grep -E "bytes spill|Used [0-9]+ registers" "$OUT/build.log" | sort | uniq -c | sort -rn | head -5
python3 -c "import torch, bitmm; print(torch.__version__, torch.cuda.get_device_name())"

# SASS of the inner loop: opcode histogram of the fp16 / per-channel / two-plane / MT=1 kernel.
so=$(ls bitmm/_C*.so)
cuobjdump --dump-sass "$so" > "$OUT/sass_all.txt" 2>&1
python3 bench/sass_report.py "$OUT/sass_all.txt" > "$OUT/sass_report.txt"
head -40 "$OUT/sass_report.txt"
rm -f "$OUT/sass_all.txt"

# GPU tests (the whole suite; CPU cases too, they are quick).
python3 -X faulthandler -m pytest tests -q -p no:cacheprovider -rf ${BITMM_PYTEST_ARGS:-} > "$OUT/pytest.txt" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|Fatal|Segmentation" "$OUT/pytest.txt" | tail -30
if [ "${BITMM_SANITIZE:-1}" = "1" ]; then
  compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest tests/test_linear.py tests/test_autograd.py \
    -q -x -p no:cacheprovider -k "cuda and not compile and not large and not reliability" > "$OUT/memcheck.txt" 2>&1; echo "memcheck rc=$?"
  tail -3 "$OUT/memcheck.txt"
  compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m pytest tests/test_linear.py -q -x -p no:cacheprovider \
    -k "cuda and (channel or group32) and not large" > "$OUT/racecheck.txt" 2>&1; echo "racecheck rc=$?"
  tail -3 "$OUT/racecheck.txt"
fi
python3 bench/cuda_bench.py --out "$OUT/h100.json" $( [ "${BITMM_QUICK:-0}" = "1" ] && echo --quick ) 2>&1 | tee "$OUT/bench.txt"
echo "total: $(( $(date +%s) - start )) s"
