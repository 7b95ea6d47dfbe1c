#!/usr/bin/env bash
# compute-sanitizer over the GPU test suite in resumable units, a few processes at a time.
#
#   OUT=<dir> BITMM_SAN_UNITS="memcheck:0/8 memcheck:1/8 ... racecheck:0/4@cover3" \
#     [BITMM_SAN_PAR=4] [BITMM_SAN_CAP=500] [BITMM_SAN_PATHS=tests] [BITMM_SAN_K="not cpu and not compile ..."] \
#     [BITMM_SAN_KNS=bitmm] [BITMM_SAN_RESUME="bench/results/san_resume_*.txt"] bash bench/sanitize.sh
#   BITMM_SAN_COLLECT=1 (no GPU needed): each unit's test ids as the device would select them, into $OUT/collect_*.txt
#
# A unit is TOOL:i/n[@PROFILE]: one pytest process under `compute-sanitizer --tool TOOL` over shard i
# of n of the selected test ids (tests/conftest.py: BITMM_SHARD, BITMM_TEST_PROFILE=cover2|cover3; PROFILE a8fused:
# the fused W2A8 kernel's own tests with BITMM_A8_FUSED=1, below).
# BITMM_SAN_PAR units run at once (earlier runs: 15-18 processes at once got ~57 tests per process
# through in 360 s, while one process at a time got 48 wgmma tests through memcheck in 7 s; the GPU
# time-slices between processes, so a few processes, each kept busy, is the better use of a call).  Memcheck takes
# ~20 GiB of GPU memory per cover3 process: four at once ran the H100 out of memory (session 54), two did not.
# Every unit's verdict is one line in $OUT/sanitizers.txt: DONE (pytest finished, with the sanitizer's
# error count) or CAPPED (the call's deadline hit; rerun that unit), so a pass can span device calls.
# BITMM_SKIP_HUGE=1: the > 2^31-element tests take hours under instrumentation (they run uninstrumented
# in the plain test run).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# BITMM_UNDER_SANITIZER=1: the tests skip their which-kernel-ran checks (the CUDA profiler sees no
# kernels under compute-sanitizer) and check only results.
export BITMM_SKIP_HUGE=1 PYTHONUNBUFFERED=1 BITMM_UNDER_SANITIZER=1
par=${BITMM_SAN_PAR:-4}
deadline=$(( $(date +%s) + ${BITMM_SAN_CAP:-500} ))
# SAN_K (BITMM_SAN_K): the tests a unit selects within its shard.  Besides the CPU-device and torch.compile cases it
# leaves out the two host-only files, test_a8_emulation.py (the W2A8 kernel's loop emulated in a C++ program) and
# test_wg_plan.py (the wgmma plan compiled on the host): no GPU kernel runs in them.  Counted with pytest --collect-only
# in session 44, cover3: memcheck 2285 -> 2019 tests, initcheck 2016 -> 1750 (it also leaves out dense / auto), racecheck 1468.
export SAN_DEADLINE=$deadline SAN_OUT=$OUT SAN_PATHS=${BITMM_SAN_PATHS:-tests} \
  SAN_K=${BITMM_SAN_K:-not cpu and not compile and not a8_emulation and not wg_plan}
# BITMM_SAN_COLLECT=1 (session 52): no sanitizer and no GPU; each unit's test ids, as the device would select them, go
# to $OUT/collect_UNIT.txt (pytest --collect-only with the unit's shard, -k, -m and resumed ids, and with
# bench/san_fake_cuda.py reporting CUDA available, so tests/conftest.py's DEVICES holds "cuda" and the shards are cut
# from the device's list).  Session 52 found racecheck 14/16's stuck test this way; it also counts what a unit has left.
export SAN_COLLECT=${BITMM_SAN_COLLECT:-0}
if [ "$SAN_COLLECT" = 1 ]; then export BITMM_SAN_KNS=""; fi
[ "$SAN_COLLECT" = 1 ] || compute-sanitizer --version | tail -1 | tee -a "$OUT/sanitizers.txt"
# BITMM_SAN_KNS (default "bitmm"; every bitmm kernel lives in namespace bitmm): memcheck and racecheck
# instrument only the kernels whose name contains it (--kernel-name kns=...), so torch's and cuBLAS's
# own kernels run uninstrumented, at full speed.  initcheck is never filtered: it must see every
# kernel's writes to know which bytes a bitmm kernel may read.  "" = no filter.
export SAN_KNS=${BITMM_SAN_KNS-bitmm}
san_help=$(compute-sanitizer --help 2>&1)  # (not piped into grep -q: under pipefail its early exit fails the pipe)
if [ -n "$SAN_KNS" ] && ! grep -q -- "--kernel-name " <<< "$san_help"; then
  echo "this compute-sanitizer has no --kernel-name: units run unfiltered" | tee -a "$OUT/sanitizers.txt"; SAN_KNS=""
fi
if [ -n "$SAN_KNS" ]; then  # the filter's positive control: a kernel named bitmm_* that reads address 256
  compute-sanitizer --tool memcheck --kernel-name "kns=$SAN_KNS" python3 bench/san_control.py > "$OUT/san_control.txt" 2>&1
  if grep -q "Invalid __global__ read" "$OUT/san_control.txt" && grep -q "bitmm_sanitizer_control" "$OUT/san_control.txt"; then
    echo "filter control: memcheck with --kernel-name kns=$SAN_KNS reported the control kernel's invalid read (the filter instruments bitmm kernels)" | tee -a "$OUT/sanitizers.txt"
  else
    { echo "filter control FAILED: no report in the control kernel; units run unfiltered"; sed -n 1,20p "$OUT/san_control.txt"; } | tee -a "$OUT/sanitizers.txt"
    SAN_KNS=""
  fi
fi

run_unit() {  # TOOL:i/n[@PROFILE]
  local unit=$1 tool shard profile="" name log left rc
  tool=${unit%%:*}; shard=${unit#*:}
  if [[ $shard == *@* ]]; then profile=${shard#*@}; shard=${shard%@*}; fi
  name="${tool}_${shard/\//of}${profile:+_$profile}"; log="/tmp/san_$name.txt"
  left=$(( SAN_DEADLINE - $(date +%s) ))
  if [ "$left" -lt 30 ]; then echo "NOT STARTED $unit (no time left)" >> "$SAN_OUT/sanitizers.txt"; return; fi
  local t0; t0=$(date +%s)
  # initcheck: without torch's caching allocator (every tensor fresh from cudaMalloc), so a kernel
  # that skips a write is caught even where the block held an earlier, written tensor
  # (BITMM_SAN_INIT_NOCACHE=0 keeps the caching allocator: faster, but a recycled block counts as
  # written); every report printed, without host backtraces, so each is attributed to its kernel.
  # racecheck / initcheck: BITMM_SAN_NO_CUBLAS=1 (tests/helpers.py baseline_device) moves the tests'
  # own fp16 / bf16 baselines to the CPU: under racecheck cuBLAS's sm_90 GEMMs die with a hardware
  # exception even when left uninstrumented (F.linear alone, M = 129, fp16), and initcheck does not
  # see what they write.  Both skip the dense backend's tests for the same reason (racecheck: its
  # dequantize kernel uses no shared memory, the only memory racecheck watches; initcheck: its
  # output is cuBLAS's; memcheck covers it), and the "auto" cases too: auto takes the dense backend
  # for grad_x above M = 32-64 (fp32: from M = 8; session 10: racecheck died in test_grad_x_every_kernel_configuration
  # [ternary-auto], initcheck's 6144 reports were all that test's reads of cuBLAS's output; see
  # bench/san_initcheck_control.py); the forced-backend cases run the same bitmm kernels.
  local nocache=0 nocublas=0 k=$SAN_K filter=() extra=()
  case $tool in racecheck|initcheck) k="($SAN_K) and not dense and not auto" ;; esac
  # racecheck: the warp-specialized wgmma pipeline (the default since session 40) draws every-pair
  # reports between its consumers' reads of a slot and the producer's cp.async writes, which racecheck
  # draws for a correct mbarrier handshake too (bench/san_mbarrier_control.cu, bench/device_run.sh
  # BITMM_MBAR_CONTROL): racecheck units run the CTA-barrier pipeline (BITMM_WG_WS=0, the same stage
  # body), and the tests whose children force the warp-specialized one are left out (its race check
  # is test_wgmma_ws_matches_cta_pipeline_bitwise itself: bitwise equal to the CTA-barrier pipeline)
  local wsenv=()
  [ "$tool" = racecheck ] && wsenv=(BITMM_WG_WS=0) && k="$k and not (pipeline_variants and ws) and not ws_matches_cta"
  # racecheck also leaves out the int8-activation tests (every id with "a8" or "act_bits": test_linear_a8.py, the
  # layers' act_bits = 8 tests, the a8 determinism cases, and the host-only test_a8_emulation.py): outside the fused
  # W2A8 kernel's M and shape range (and for some cases inside its tests) the op's integer sums are torch's int8 GEMM
  # (cuBLASLt) or a float cuBLAS GEMM, the GEMMs that die under racecheck as above, instrumented or not (session 44,
  # cover3 racecheck 1/8: "the Sanitizer failed to handle a hardware exception" in
  # test_linear_a8_matches_reference[int2-tensor-False-False-out_dtype3-cuda], float64 out, N = 130: the float GEMM;
  # then 171 errors in the tests after it).  The fused kernel (a8_linear.cu, the one with shared memory) keeps a racecheck
  # run of its own, the unit racecheck:0/1@a8fused: its sanitizer-case and short-chunk tests with BITMM_A8_FUSED=1
  # (session 33 ran the same by hand: 0 hazards).  (The shards are cut before -k, tests/conftest.py, so a shard's
  # racecheck unit run before this exclusion covers the tests it selects now.)
  # initcheck leaves them out too (session 45, cover3 initcheck 9/16, capped: >= 255 "Uninitialized __global__ memory
  # read" reports (the sanitizer's buffer overflowed and dropped more), all in torch's int add (CUDAFunctor_add<int>),
  # the first in test_linear_a8_matches_reference[int2-tensor-False-False-out_dtype3-cuda], whose float64 epilogue
  # subtracts the code shift from torch._int_mm's sums: initcheck does not see what cuBLAS / cuBLASLt's sm_90 GEMMs
  # write, as with the dense path above (bench/san_initcheck_control.py); the test's outcome was not recorded).
  # bitmm's own int8-activation kernels keep a unit of their own under each tool, TOOL:0/1@a8fused (below): the fused
  # W2A8 kernel and absmax_int8's kernel.  Not judged by racecheck / initcheck: a8_epilogue.cu, the CUDA epilogue over
  # the int8 GEMM's sums (M > 64 by default; memcheck runs it, which sees bad addresses, not uninitialized reads).
  case $tool in racecheck|initcheck) k="$k and not a8 and not act_bits" ;; esac
  # PROFILE a8fused (a unit TOOL:0/1@a8fused): that run, the fused W2A8 kernel's sanitizer-case and short-chunk tests
  # with BITMM_A8_FUSED=1 (the fused kernel for M <= 256), under any tool; since session 45 also its few-rows test (M up
  # to 256 on 8 shapes, every output dtype but float64, which the fused kernel leaves to the GEMM path; ~240 tests) and
  # the absmax_int8 kernel's tests (quant_absmax.cu), which the a8 exclusion above had dropped from racecheck / initcheck
  # Files added after the cover3 sixteenths were cut (sessions 44-48): tests/test_wg_grad_x.py (session 48).  Shards were
  # cut by position in the collected list until session 56, so a file inserted among the others would have moved every
  # later test to another shard; the cover3 units --ignore it (removed at collection, before the shard is cut), and it
  # runs as units of its own, TOOL:0/1@wgx (the whole file, no cover3 cut).  (Earlier drift: session 47's one new test in
  # test_linear.py moved the later tests by one position.)  Since session 56 a test's shard is a hash of its id
  # (tests/conftest.py), so added tests move no others; the resume files of the position split are kept apart in
  # bench/results/san_resume_index_split/ (their unit names meant other test sets).
  local paths="$SAN_PATHS --ignore=tests/test_wg_grad_x.py"
  if [ "$profile" = wgx ]; then
    profile=""; paths="tests/test_wg_grad_x.py"
  fi
  local a8env=()
  if [ "$profile" = a8fused ]; then
    profile=""; a8env=(BITMM_A8_FUSED=1)
    k="($SAN_K) and (fused_sanitizer_cases or fused_short_chunks or few_rows_cuda_equals_host or absmax_int8)"
  fi
  # (racecheck: the tensor-core kernel's K-split reduction is ordered by CTA barriers again since
  # session 15; tc13's barrier-free one, ordered by shared-memory counters racecheck cannot follow,
  # is gone: bench/results/h200_racecheck_reduce_attribution_b870711.txt, h200_s15_call2_9a07a7d.txt.)
  case $tool in
    initcheck) nocache=${BITMM_SAN_INIT_NOCACHE:-1}; nocublas=1; extra=(--print-limit 10000000 --show-backtrace no) ;;
    racecheck) nocublas=1 ;;
  esac
  [ -n "$SAN_KNS" ] && [ "$tool" != initcheck ] && filter=(--kernel-name "kns=$SAN_KNS")
  # Resume (session 45): BITMM_SAN_RESUME names files of "UNIT<TAB>test id" lines (written below: the tests an earlier,
  # capped run of the same unit passed with no sanitizer report in its whole log); this run deselects them, so a unit
  # capped near its end (session 45: racecheck 9/16 at 107 of ~109 tests) is finished, not rerun whole.  Its DONE line
  # then says how many it left to the earlier run(s), whose lines stay in bench/results.
  # Tests marked cublas (pyproject.toml) run a cuBLAS GEMM from their own code, one the knob below cannot reach (the QAT
  # weight gradient, a model's nn.Linear lm_head); racecheck died in two of them in session 48 (racecheck 11/16 and 12/16,
  # "the Sanitizer failed to handle a hardware exception"; bench/results/s48_device_runs.txt), so racecheck leaves them
  # out (their bitmm kernels are racechecked through other tests; memcheck keeps them).  -m filters inside the shard
  # (conftest's shard hook runs first), so the sixteenths stay the same tests.  initcheck too (session 49): initcheck
  # 12/16's 63 reports in torch's unrolled_elementwise_kernel (session 48) came back, alone, from the cublas-marked
  # tests/test_nn.py::test_bitlinear_half_precision_and_1d_input (192 reports, all in direct_copy_kernel_cuda reading
  # what cuBLAS wrote; bench/results/s49_device_runs.txt), as initcheck never sees cuBLAS's writes.
  local marks=(); case $tool in racecheck|initcheck) marks=(-m "not cublas") ;; esac
  local resume=() u id
  if [ -n "${BITMM_SAN_RESUME:-}" ]; then
    while IFS=$'\t' read -r u id; do
      [ "$u" = "$unit" ] && [ -n "$id" ] && resume+=(--deselect "$id")
    done < <(cat $BITMM_SAN_RESUME 2> /dev/null)
  fi
  # BITMM_AUTO_NO_DENSE (csrc/cuda/linear_cuda.cpp auto_may_take_dense) with it: auto never takes cuBLAS's dense path
  # either, which tests of the layers reach without naming a backend (session 47: racecheck 4/16 died in a layer's grad_x
  # at M = 34).  It covers that path only: LoRA's adapter products, the autograd scale / LoRA gradients and the QAT
  # weight gradient (bitmm/nn.py) still call cuBLAS (the units run so far passed through them).
  if [ "$SAN_COLLECT" = 1 ]; then  # (BITMM_SAN_COLLECT above: the ids only)
    BITMM_SHARD="$shard" BITMM_TEST_PROFILE="$profile" PYTHONPATH="bench${PYTHONPATH:+:$PYTHONPATH}" \
      python3 -m pytest -p san_fake_cuda $paths --collect-only -q -p no:cacheprovider -k "$k" "${marks[@]}" "${resume[@]}" \
      > "$SAN_OUT/collect_$name.txt" 2>&1
    echo "COLLECTED $unit${resume[*]:+ (resumed: $(( ${#resume[@]} / 2 )) deselected)}: $(tail -1 "$SAN_OUT/collect_$name.txt"); first: $(head -1 "$SAN_OUT/collect_$name.txt")" >> "$SAN_OUT/sanitizers.txt"
    return
  fi
  PYTORCH_NO_CUDA_MEMORY_CACHING=$nocache BITMM_SAN_NO_CUBLAS=$nocublas BITMM_AUTO_NO_DENSE=$nocublas \
    BITMM_SHARD="$shard" BITMM_TEST_PROFILE="$profile" \
    env "${wsenv[@]}" "${a8env[@]}" timeout "$left" compute-sanitizer --tool "$tool" "${filter[@]}" "${extra[@]}" --error-exitcode 9 \
    python3 -m pytest $paths -v -p no:cacheprovider -k "$k" "${marks[@]}" "${resume[@]}" > "$log" 2>&1
  rc=$?
  local verdict="DONE"; [ "$rc" = 124 ] && verdict="CAPPED"
  # A capped run with no report anywhere in its log (a report can share a line with the test id) leaves its passed tests
  # for the next run of the unit: $OUT/san_resume.txt (commit it; the next call passes it in BITMM_SAN_RESUME)
  if [ "$rc" = 124 ] && ! grep -qE "========= (Invalid|Race|Uninitialized|Program hit|Error|Warning)" "$log"; then
    grep -oE '^tests/[^ ]+::[^ ]+ PASSED' "$log" | awk -v u="$unit" '{print u "\t" $1}' > "/tmp/san_$name.resume"
    cat "/tmp/san_$name.resume" >> "$SAN_OUT/san_resume.txt"
  fi
  local sum="/tmp/san_$name.sum"
  { echo "$verdict $unit${filter[*]:+ (${filter[*]})}${resume[*]:+ (resumed: $(( ${#resume[@]} / 2 )) tests passed in an earlier capped run, deselected)} rc=$rc $(( $(date +%s) - t0 )) s | $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1) | $(grep -vE "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | grep -E "^=+ .*[0-9]+ (passed|failed|skipped|deselected)" | tail -1)"
    echo "   $(grep -cE '::.* (PASSED|FAILED|SKIPPED|ERROR|XFAIL)' "$log") tests finished, last: $(grep -E '::.* (PASSED|FAILED|SKIPPED|ERROR)' "$log" | tail -1 | cut -c1-110)"
    # a capped unit: the test it was in at the cap (pytest -v names a test before it runs; session 51: racecheck 14/16
    # made no progress past one test in three calls, 266-379 s each, and its name never came back)
    [ "$rc" = 124 ] && echo "   running at the cap: $(tail -c 4000 "$log" | grep -oE 'tests/[^ ]+::[^ ]+' | tail -1)"
    grep -E "^========= (Invalid|Race|Uninitialized|Program hit|Error|Warning)" "$log" | cut -c1-150 | sort | uniq -c | head -6
    # every report's kernel, template arguments and offsets cut off, most frequent first
    grep -E "^=========     at " "$log" | sed -E 's/^=========     at (void )?//; s/[<(].*//; s/\+0x[0-9a-f]+$//' | sort | uniq -c | sort -rn | head -12
    grep -E "^FAILED|Fatal Python|Segmentation" "$log" | head -5; } > "$sum"
  cat "$sum" >> "$SAN_OUT/sanitizers.txt"  # one write per unit: units finishing together do not interleave
  # the logs of units with a report or a failure come back whole (compressed)
  # (initcheck prints every report: a log past 16 MB comes back as its first and last 8 MB)
  if [ "$rc" != 0 ] && [ "$rc" != 124 ]; then
    if [ "$(stat -c %s "$log")" -gt 16000000 ]; then
      { head -c 8000000 "$log"; printf '\n[... cut: %s bytes in all ...]\n' "$(stat -c %s "$log")"; tail -c 8000000 "$log"; } | gzip -c > "$SAN_OUT/san_$name.txt.gz"
    else
      gzip -c "$log" > "$SAN_OUT/san_$name.txt.gz"
    fi
  fi
}
export -f run_unit
printf '%s\n' ${BITMM_SAN_UNITS:?set BITMM_SAN_UNITS} | xargs -P "$par" -I{} bash -c 'run_unit "$@"' _ {}
cat "$OUT/sanitizers.txt"
