#!/usr/bin/env bash
# One device call: build, GPU tests, sanitizers, SASS report, benchmark.
# Results go to $OUT (the device tool brings them back).  Usage on the device:
#   BITMM_COMMIT=<sha> [BITMM_GPU_SANITIZE=all|tc|wide|full|cover|units (bench/sanitize.sh)|kernelfiles|0] [BITMM_TEST_PROFILE=cover3 (tests/conftest.py)] [BITMM_SAN_SHARDS=5] [BITMM_SAN_CAP=420] [BITMM_PYBENCH="-k ..."|all] [BITMM_BENCH=quick|sweep|final|wgmma|decode|none] [BITMM_TESTS=0]
#   [BITMM_MBAR_CONTROL=1] [BITMM_EAGER=0] [BITMM_NCU="case ..." (names in bench/ncu_profile.py)] [BITMM_STAGE_SWEEP="2 3 6"] [BITMM_WN_SWEEP="1 2 4"] bash bench/device_run.sh
# (BITMM_SANITIZE is setup.py's ASan switch for CPU builds: never set here.)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
unset BITMM_SANITIZE
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" BITMM_PTXAS_VERBOSE=1 PYTHONUNBUFFERED=1
start=$(date +%s)
if [ "${BITMM_MBAR_CONTROL:-0}" = "1" ]; then  # racecheck vs the mbarrier protocol of wgmma WS (bench/san_mbarrier_control.cu)
  nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -o /tmp/mbar bench/san_mbarrier_control.cu
  # (rc 124: the 120 s timeout; session 11's mode 2 printed nothing, its rc was not kept)
  for run in "racecheck 0" "racecheck 1" "racecheck 2" "racecheck 3" "synccheck 0" "synccheck 1"; do
    read -r tool m <<< "$run"
    timeout 120 compute-sanitizer --tool "$tool" /tmp/mbar "$m" > /tmp/mbar_run.txt 2>&1
    { echo "== $tool mode $m (rc=$?)"; grep -E "mode|Race|hazard|SUMMARY" /tmp/mbar_run.txt | head -8; } | tee -a "$OUT/mbar_control.txt"
  done
fi
# (few files under $OUT: the device tool brings back a limited number)
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -50 /tmp/build.log; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
grep -E "Compiling entry|bytes spill|Used [0-9]+ registers|C7513" /tmp/build.log > "$OUT/ptxas.txt"; echo "C7513 (serialized wgmma) warnings: $(grep -c C7513 /tmp/build.log)"
grep -E "bytes spill|Used [0-9]+ registers" /tmp/build.log | sort | uniq -c | sort -rn | head -5
python3 -c "import torch, bitmm; print(torch.__version__, torch.cuda.get_device_name())"

if [ "${BITMM_MBAR_CONTROL:-0}" = "1" ]; then  # both wgmma pipelines under racecheck (WS: bench/NOTES.md, session 11)
  for v in cta-sync ws-64; do
    BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 timeout 100 compute-sanitizer --tool racecheck --kernel-name kns=bitmm --print-limit 200 \
      python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "pipeline_variants and $v" > "/tmp/rc_$v.txt" 2>&1
    { echo "== racecheck $v rc=$?: $(grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "/tmp/rc_$v.txt" | tail -2 | tr '\n' ' ') | $(grep -E "passed|failed" "/tmp/rc_$v.txt" | tail -1)"
      grep -E "^========= (Error|Warning|Race)" "/tmp/rc_$v.txt" | cut -c1-120 | sort | uniq -c | head -4
      grep -E "Error:|^E  +[A-Za-z.]*(Error|error)" "/tmp/rc_$v.txt" | grep -v "^=========" | head -3; } | tee -a "$OUT/mbar_control.txt"
  done
fi
# SASS of the inner loop: opcode histogram of the fp16 / per-channel / two-plane / MT=1 kernel.
so=$(ls bitmm/_C*.so)
cuobjdump --dump-sass "$so" > "$OUT/sass_all.txt" 2>&1
python3 bench/sass_report.py "$OUT/sass_all.txt" > "$OUT/sass_report.txt"
head -40 "$OUT/sass_report.txt"
rm -f "$OUT/sass_all.txt"

# GPU tests (the whole suite; CPU cases too, they are quick).
if [ "${BITMM_TESTS:-1}" = "1" ]; then
  python3 -X faulthandler -m pytest ${BITMM_PYTEST_PATHS:-tests} -q -p no:cacheprovider -rf -x ${BITMM_PYTEST_ARGS:-} > "$OUT/pytest.txt" 2>&1
  echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|Fatal|Segmentation|Error" "$OUT/pytest.txt" | tail -30
  echo "tests: $(( $(date +%s) - start )) s"
fi
# From here on the sanitizer modes: the tests skip their which-kernel-ran (profiler) checks.
[ "${BITMM_GPU_SANITIZE:-all}" != "0" ] && export BITMM_UNDER_SANITIZER=1
san_summary() {  # log file, label: the verdict, progress, reports by kind and kernel, failed tests
  local f=$1
  { echo "== $2: $(grep -E "ERROR SUMMARY" "$f" | tail -1) | $(grep -E "passed|failed" "$f" | tail -1)"
    echo "   progress: $(grep -oE '\[ *[0-9]+%\]' "$f" | tail -1), $(grep -cE ' (PASSED|FAILED|SKIPPED|ERROR)' "$f") tests finished (-v lines), last: $(grep -E ' (PASSED|FAILED|SKIPPED|ERROR)' "$f" | tail -1 | cut -c1-120)"
    grep -E "^========= (Invalid|Race|Uninitialized|Program hit|Error)" "$f" | sort | uniq -c | head -5
    grep -E "^=========     at .*(Kernel|kernel|void )" "$f" | sed -E 's/\+0x[0-9a-f]+$//' | cut -c1-160 | sort | uniq -c | head -8
    grep -E "^FAILED" "$f" | head -5; } | tee -a "$OUT/sanitizers.txt"
}
if [ "${BITMM_GPU_SANITIZE:-all}" = "units" ]; then  # resumable units, a few processes at once
  bash bench/sanitize.sh
  echo "sanitizers: $(( $(date +%s) - start )) s"
fi
if [ "${BITMM_GPU_SANITIZE:-all}" = "kernelfiles" ]; then
  # Issue 8's remaining pass (bench/NOTES.md, session 9 plan), one process at a time: initcheck over
  # the coverage file (its per-kernel report counts first), then racecheck and initcheck over the
  # cover3 profile of the kernel test files; BITMM_SAN_CAP seconds for all of it (default 480).
  cap=${BITMM_SAN_CAP:-480}; t_end=$(( $(date +%s) + cap ))
  BITMM_SAN_PAR=1 BITMM_SAN_UNITS="initcheck:0/1" BITMM_SAN_PATHS=tests/test_kernel_coverage.py BITMM_SAN_K="not cpu" \
    BITMM_SAN_CAP=$(( cap / 3 )) bash bench/sanitize.sh
  BITMM_SAN_PAR=1 BITMM_SAN_UNITS="racecheck:0/1@cover3 initcheck:0/1@cover3" \
    BITMM_SAN_PATHS="tests/test_kernel_coverage.py tests/test_wgmma.py tests/test_tc_grad_x.py tests/test_linear.py tests/test_lora.py" \
    BITMM_SAN_K="not cpu and not compile and not gradcheck and not opcheck" BITMM_SAN_CAP=$(( t_end - $(date +%s) )) bash bench/sanitize.sh
  echo "sanitizers: $(( $(date +%s) - start )) s"
fi
if [ "${BITMM_GPU_SANITIZE:-all}" = "wide" ]; then
  # Every CUDA kernel family under the three tools: the CUDA cases of the kernel, LoRA and autograd
  # test files (all kinds, dtypes, scale modes, M boundaries); huge-shape tests skipped.  Each tool
  # has a time cap; a capped run reports how far it got (pytest's last line is then missing).
  export BITMM_SKIP_HUGE=1
  # (racecheck: the wgmma kernel's CTA-barrier pipeline, BITMM_WG_WS=0; bench/sanitize.sh says why)
  san() {  # tool, cap seconds, output name, pytest args...
    local tool=$1 cap=$2 name=$3; shift 3
    env $([ "$tool" = racecheck ] && echo BITMM_WG_WS=0) timeout "$cap" compute-sanitizer --tool "$tool" --error-exitcode 9 python3 -m pytest -q -p no:cacheprovider "$@" \
      > "/tmp/$name.txt" 2>&1
    local rc=$?
    { echo "== $tool: $* (rc=$rc; 124 = time cap)"; grep -E "ERROR SUMMARY|passed|failed|Error|========= " "/tmp/$name.txt" | tail -6
      echo "progress: $(grep -oE '\[ *[0-9]+%\]' "/tmp/$name.txt" | tail -1), $(grep -oE '^[.sFE]+' "/tmp/$name.txt" | tr -d '\n' | wc -c) tests run"; } \
      | tee -a "$OUT/sanitizers.txt"
  }
  san memcheck 130 memcheck1 tests/test_linear.py tests/test_lora.py tests/test_autograd.py \
    -k "cuda and not compile and not large"
  san memcheck 130 memcheck2 tests/test_tensorcore.py -k "not matches_reference or (300 and (tensor- or group-32))"
  sel="(matches_reference and 1024 and channel) or many_row or fused_decode or exact_on_integers or deterministic_and_graph"
  san racecheck 90 racecheck tests/test_tensorcore.py tests/test_lora.py -k "$sel"
  san initcheck 90 initcheck tests/test_tensorcore.py tests/test_lora.py -k "$sel"
  echo "sanitizers: $(( $(date +%s) - start )) s"
fi
if [ "${BITMM_GPU_SANITIZE:-all}" = "full" ] || [ "${BITMM_GPU_SANITIZE:-all}" = "cover" ]; then
  # cover: the same run over tests/test_kernel_coverage.py only (every kernel instance and launcher
  # switch on small problems, so the three tools can finish it), 4 shards per tool by default.
  # pytest -v: a capped shard still says how many tests finished and which came last (with -q a
  # shard that finished fewer than a line of tests printed nothing: 31fe3c9's attempt).
  if [ "${BITMM_GPU_SANITIZE}" = "cover" ]; then
    : "${BITMM_SAN_PATHS:=tests/test_kernel_coverage.py}" "${BITMM_SAN_SHARDS:=4}" "${BITMM_SAN_K:=not cpu}"
  fi
  # The whole GPU test suite (every test id without "cpu" or "compile": torch.compile runs the same
  # bitmm kernels, plus Triton's own; BITMM_SKIP_HUGE=1: the > 2^31-element
  # tests would take hours under instrumentation) under memcheck, racecheck and initcheck, each
  # tool split into BITMM_SAN_SHARDS pytest processes (tests/conftest.py: BITMM_SHARD=i/n), all
  # tools and shards at once on the 16 host cores; one time cap for all.  The full product of
  # the suite's parameters does not fit a session's device time under the three tools (1b591e8:
  # 0-31% in 470 s); BITMM_TEST_PROFILE=cover3 keeps every triple of parameter values (~25%).
  # BITMM_SAN_PATHS: the test files to run (default: all; the kernel files are enough, see
  # bench/results/h200_sanitizers_*.txt).  BITMM_SAN_TOOLS: a subset of the three tools (one tool
  # with 15 shards gets through ~3x more tests per call than three tools with 5 each).
  export BITMM_SKIP_HUGE=1
  shards=${BITMM_SAN_SHARDS:-5}; cap=${BITMM_SAN_CAP:-420}
  tools=${BITMM_SAN_TOOLS:-memcheck racecheck initcheck}  # e.g. one tool per call, all shards for it
  # BITMM_SAN_FILTER (e.g. kns=bitmm): instrument only kernels whose name holds "bitmm" (every
  # kernel of ours is in namespace bitmm), to keep cuBLAS's own reports (nvjet races, splitKreduce
  # initcheck: bench/results/h200_sanitizers_bbd72c9.txt) out of the verdict.  Measured at 3988c28
  # (bench/results/h200_sanitizers_3988c28_filtered.txt): no faster (the same ~55 tests per shard in
  # 360 s as unfiltered), and it breaks initcheck, which then flags every read of a tensor that an
  # uninstrumented torch kernel wrote (pack_kernel reading its int8 input).  Default: none.
  san_filter=()
  filt=${BITMM_SAN_FILTER:-none}
  if [ "$filt" != "none" ]; then
    if compute-sanitizer --help 2>&1 | grep -q -- "--kernel-name "; then san_filter=(--kernel-name "$filt")
    elif compute-sanitizer --help 2>&1 | grep -q -- "--filter "; then san_filter=(--filter "$filt"); fi
  fi
  { compute-sanitizer --version | tail -1; echo "kernel filter: ${san_filter[*]:-none}"; } | tee -a "$OUT/sanitizers.txt"
  for tool in $tools; do
    for ((i = 0; i < shards; i++)); do
      # (racecheck: the CTA-barrier wgmma pipeline, and not the tests whose children force the warp-specialized one)
      ws_env=""; ws_k=""
      [ "$tool" = racecheck ] && ws_env="BITMM_WG_WS=0" && ws_k=" and not (pipeline_variants and ws) and not ws_matches_cta"
      env $ws_env BITMM_SHARD="$i/$shards" timeout "$cap" compute-sanitizer --tool "$tool" "${san_filter[@]}" --error-exitcode 9 \
        python3 -m pytest ${BITMM_SAN_PATHS:-tests} -v -p no:cacheprovider -k "(${BITMM_SAN_K:-not cpu and not compile})$ws_k" > "/tmp/san_${tool}_$i.txt" 2>&1 &
    done
  done
  wait
  for tool in $tools; do
    for ((i = 0; i < shards; i++)); do
      san_summary "/tmp/san_${tool}_$i.txt" "$tool shard $i/$shards"
    done
  done
  echo "sanitizers: $(( $(date +%s) - start )) s"
fi
if [ "${BITMM_GPU_SANITIZE:-all}" = "all" ]; then
  compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest tests/test_linear.py tests/test_autograd.py \
    -q -x -p no:cacheprovider -k "cuda and not compile and not large and not reliability" > "$OUT/memcheck.txt" 2>&1; echo "memcheck rc=$?"
  tail -3 "$OUT/memcheck.txt"
  BITMM_WG_WS=0 compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m pytest tests/test_linear.py -q -x -p no:cacheprovider \
    -k "cuda and (channel or group32) and not large" > "$OUT/racecheck.txt" 2>&1; echo "racecheck rc=$?"
  tail -3 "$OUT/racecheck.txt"
fi
if [ "${BITMM_GPU_SANITIZE:-all}" = "all" ] || [ "${BITMM_GPU_SANITIZE:-all}" = "tc" ]; then
  # tensor-core kernels: every kind, fp16 and bf16, M across the configuration boundaries
  compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest tests/test_tensorcore.py -q -x -p no:cacheprovider \
    -k "tensorcore and 300 and (group-32 or channel)" > "$OUT/memcheck_tc.txt" 2>&1; echo "memcheck (tensor core) rc=$?"
  tail -2 "$OUT/memcheck_tc.txt"
  BITMM_WG_WS=0 compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m pytest tests/test_tensorcore.py -q -x -p no:cacheprovider \
    -k "exact_on_integers or deterministic_and_graph" > "$OUT/racecheck_tc.txt" 2>&1; echo "racecheck (tensor core) rc=$?"
  tail -2 "$OUT/racecheck_tc.txt"
  compute-sanitizer --tool initcheck --error-exitcode 9 python3 -m pytest tests/test_tensorcore.py tests/test_linear.py -q -x \
    -p no:cacheprovider -k "tensorcore and 300 and channel and dtype0" > "$OUT/initcheck.txt" 2>&1; echo "initcheck rc=$?"
  tail -2 "$OUT/initcheck.txt"
  echo "sanitizers: $(( $(date +%s) - start )) s"
fi
if [ -n "${BITMM_SAN_PROBE:-}" ]; then  # "tool i/n cap": which tests of a shard draw a sanitizer report
  read -r ptool pshard pcap <<< "$BITMM_SAN_PROBE"
  BITMM_SKIP_HUGE=1 BITMM_SHARD="$pshard" timeout "$pcap" compute-sanitizer --tool "$ptool" --print-limit 5000 \
    python3 -m pytest tests -v -p no:cacheprovider -k "${BITMM_SAN_K:-not cpu and not compile}" > /tmp/probe.txt 2>&1
  { echo "== probe $ptool shard $pshard (rc=$?)"
    awk '{ if (match($0, /tests\/[^ ]+::[^ ]+/)) last = substr($0, RSTART, RLENGTH) }
         /========= (Uninitialized|Invalid|Race|Error)/ { if (!(last in seen)) { seen[last] = 1; l1 = $0; getline; print last; print "   " l1; print "   " $0 } }' /tmp/probe.txt | head -30
    echo "tests run: $(grep -cE '::.*(PASSED|FAILED)' /tmp/probe.txt)"; } | tee -a "$OUT/sanitizers.txt"
fi
if [ -n "${BITMM_PYBENCH:-}" ]; then
  # The pytest-benchmark suite (bench/test_bench.py), CUDA cases, one JSON per weight shape (so a
  # time cap keeps the shapes that finished); BITMM_PYBENCH="all" or a list of K-N shape ids.
  shapes="$BITMM_PYBENCH"; [ "$shapes" = "all" ] && shapes="4096-4096 8192-8192 4096-14336 14336-4096 8192-28672"
  deadline=$(( $(date +%s) + ${BITMM_PYBENCH_CAP:-400} ))
  for sh in $shapes; do
    left=$(( deadline - $(date +%s) )); [ "$left" -lt 30 ] && { echo "pytest-benchmark: no time left for $sh"; break; }
    timeout "$left" python3 -m pytest bench/test_bench.py --benchmark-only -q -p no:cacheprovider -k "cuda and $sh${BITMM_PYBENCH_K:+ and $BITMM_PYBENCH_K}" \
      --benchmark-group-by=group --benchmark-json="$OUT/pytest_benchmark_$sh.json" > "/tmp/pybench_$sh.txt" 2>&1
    echo "pytest-benchmark $sh rc=$? ($(( $(date +%s) - start )) s): $(grep -E "passed|failed|error" "/tmp/pybench_$sh.txt" | tail -1)"
  done
fi
case "${BITMM_BENCH:-quick}" in
  quick) python3 bench/cuda_bench.py --out "$OUT/h100.json" --quick --lora 2>&1 | tee /tmp/bench.txt ;;
  sweep) python3 bench/cuda_bench.py --out "$OUT/h100.json" 2>&1 | tee /tmp/bench.txt ;;
  final) python3 bench/cuda_bench.py --out "$OUT/h100_final.json" --final 2>&1 | tee /tmp/bench.txt ;;
  backward) python3 bench/cuda_bench.py --out "$OUT/h100_backward.json" --final --backward-only 2>&1 | tee /tmp/bench.txt ;;
  wgmma) python3 bench/cuda_bench.py --out "$OUT/h100_wgmma.json" --wgmma 2>&1 | tee /tmp/bench.txt ;;
  decode)  # group-wise M <= 4: auto / add-subtract / tensor core (block-diagonal at M <= 4), then the folding path
    python3 bench/cuda_bench.py --out "$OUT/h100_decode.json" --decode 2>&1 | tee /tmp/bench.txt
    BITMM_TC_BD=0 python3 bench/cuda_bench.py --out "$OUT/h100_decode_fold.json" --decode --backends tensorcore 2>&1 | tee -a /tmp/bench.txt ;;
  wgprobe) python3 bench/wg_probe.py --out "$OUT/wg_probe.json" ${BITMM_WG_TILES:+--tiles "$BITMM_WG_TILES"} ${BITMM_WG_CASES:+--cases "$BITMM_WG_CASES"} 2>&1 | tee /tmp/bench.txt ;;
esac
if [ "${BITMM_EAGER:-1}" = "1" ]; then
  python3 bench/eager_bench.py --out "$OUT/eager.json" 2>&1 | tee /tmp/eager.txt
fi
if [ -n "${BITMM_NCU:-}" ]; then  # e.g. BITMM_NCU="tc_ternary_m1 addsub_int2_g64_m1"
  for c in $BITMM_NCU; do
    ncu --nvtx --nvtx-include "$c/" --set full --import-source no -f -o "/tmp/ncu_$c" python3 bench/ncu_profile.py "$c" > "/tmp/ncu_$c.log" 2>&1
    { echo "===== $c"; ncu -i "/tmp/ncu_$c.ncu-rep" --page details; } >> "$OUT/ncu.txt" 2>&1
    echo "ncu $c rc=$?"; ncu -i "/tmp/ncu_$c.ncu-rep" --page details 2>&1 | grep -E "Duration|DRAM Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per" | head -8
  done
fi
if [ "${BITMM_GX_PROBE:-0}" = "1" ]; then  # group-wise tc grad_x with scales as stored (0) vs transposed (1, the default)
  for v in 0 1; do
    echo "== BITMM_GX_SCALES_T=$v" | tee -a "$OUT/gx_probe.txt"
    BITMM_GX_SCALES_T=$v python3 bench/cuda_bench.py --final --backward-only --grouped-only --out /tmp/gx_$v.json 2>&1 \
      | grep backward | tee -a "$OUT/gx_probe.txt"
  done
fi
if [ -n "${BITMM_STAGE_SWEEP:-}" ]; then  # ring depth override (BITMM_TC_STAGES) on the tensor-core M <= 16 cases
  for st in $BITMM_STAGE_SWEEP; do
    echo "== BITMM_TC_STAGES=$st" | tee -a "$OUT/stage_sweep.txt"
    BITMM_TC_STAGES=$st python3 bench/cuda_bench.py --quick --backends tensorcore --out /tmp/st_$st.json 2>&1 | grep forward | tee -a "$OUT/stage_sweep.txt"
  done
fi
if [ -n "${BITMM_WN_SWEEP:-}" ]; then  # warps along N override (BITMM_TC_WN) on the tensor-core M <= 16 cases
  for wn in $BITMM_WN_SWEEP; do
    echo "== BITMM_TC_WN=$wn" | tee -a "$OUT/wn_sweep.txt"
    BITMM_TC_WN=$wn python3 bench/cuda_bench.py --quick --backends tensorcore --out /tmp/wn_$wn.json 2>&1 | grep forward | tee -a "$OUT/wn_sweep.txt"
  done
fi
echo "total: $(( $(date +%s) - start )) s"
