# Sourced by the device-call scripts (from session 17 on): $OUT, the timer, the build environment, the
# build itself (its log's tail and exit 1 on failure), and `mark NAME`, a log line with the seconds since
# the start.  The earlier sNN_callK.sh scripts spell the same lines out: they are kept as they ran.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1 BITMM_COMMIT=${BITMM_COMMIT:-unknown}
mark() { echo "$* t=$(( $(date +%s) - start ))" | tee -a "$OUT/log.txt"; }
# A warm machine keeps the build outputs of the call before, while the tree is copied afresh with its files' own
# (older) times: after apply_and_rebuild the next call's build saw nothing newer and kept the patched objects (session
# 51: its sanitizer call ran on the wgx3 build, compiling nothing in 6 s).  So the files a patch touched are listed in
# build/patched_files, and the next call touches them before it builds.
if [ -f build/patched_files ]; then xargs -r touch -c < build/patched_files; rm -f build/patched_files; fi
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
mark build
# A/B scripts (from session 19 on): apply a patch to the tree and rebuild in place; $2: the log label (B).
apply_and_rebuild() {
  mkdir -p build && grep -E '^\+\+\+ b/' "$1" | cut -c7- >> build/patched_files
  patch -p1 < "$1" > /dev/null || exit 1
  python3 setup.py build_ext --inplace > /tmp/build2.log 2>&1 || { tail -30 /tmp/build2.log; exit 1; }
  mark "build-${2:-B}"
}
# ncu of one bench/ncu_profile.py case (session 22): the details page plus the raw stall / instruction metrics
# into $OUT/ncu_LABEL.txt.  $1: case, $2: output label; the environment passes through.
ncu_raw() {  # $1: case (bench/ncu_profile.py), $2: output label
  timeout 90 ncu --nvtx --nvtx-include "$1/" --section LaunchStats --section Occupancy --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section InstructionStats \
    --import-source no -f -o "/tmp/ncu_$2" python3 bench/ncu_profile.py "$1" > /tmp/ncu.log 2>&1
  { ncu -i "/tmp/ncu_$2.ncu-rep" --page details; ncu -i "/tmp/ncu_$2.ncu-rep" --page raw | grep -E "stall|issue_active|inst_executed|dram__bytes|duration"; } > "$OUT/ncu_$2.txt" 2>&1
  mark "ncu $2"
}
# compute-sanitizer memcheck / racecheck / initcheck side by side, one process per tool and kind (session 23's
# s23_call3.sh spelled it out): pytest over $1 (files) with -k "$2", where KIND in $2 becomes each kind; a summary
# line per process into $OUT/sanitizers.txt; stopped with SIGINT at $3 seconds from the script's start.
san_each_kind() {  # $1: test files, $2: -k template (KIND), $3: deadline (s since start)
  local cap=$(( $3 - ($(date +%s) - start) )) tool kind kns extra kx
  export BITMM_SKIP_HUGE=1
  for tool in memcheck racecheck initcheck; do
    for kind in ternary binary int2; do
      kns="--kernel-name kns=bitmm"; extra=""
      # initcheck sees every kernel's writes without the caching allocator (as bench/sanitize.sh); racecheck /
      # initcheck with the tests' cuBLAS baselines on the CPU (cuBLAS's sm_90 GEMMs die under racecheck)
      [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
      [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
      # racecheck judges the wgmma kernel's CTA-barrier pipeline (bench/sanitize.sh says why)
      local kx="${2//KIND/$kind}"
      [ $tool = racecheck ] && extra="$extra BITMM_WG_WS=0" && kx="($kx) and not (pipeline_variants and ws) and not ws_matches_cta"
      ( env $extra BITMM_UNDER_SANITIZER=1 timeout -s INT "$cap" compute-sanitizer --tool $tool $kns --print-limit 50 \
          python3 -m pytest $1 -q -p no:cacheprovider -k "$kx" > /tmp/san_${tool}_$kind.txt 2>&1
        echo "== $tool $kind rc=$? t=$(( $(date +%s) - start )): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_${tool}_$kind.txt | tail -1) | reports: $(grep -c -E '^========= +(Invalid|Race|Uninitialized|Error:|Warning:|Program hit)' /tmp/san_${tool}_$kind.txt) | $(tail -1 /tmp/san_${tool}_$kind.txt)" >> "$OUT/sanitizers.txt" ) &
    done
  done
  wait
  mark sanitizers
}
# pytest over $1 (files) with -k "$2" (from session 36's scripts on; the earlier ones spell it out): the summary line
# and the failures into $OUT/log.txt under label $3, at most $4 seconds (default 150), huge shapes skipped.
run_tests() {  # $1: test files, $2: -k expression, $3: label, $4: time limit (s); extra environment: $RT_ENV
  # (a file of its own per run and the log lines in one write, so runs may go in parallel: `run_tests ... &`, `wait`)
  local tf rc res; tf=$(mktemp /tmp/t.XXXXXX)
  env ${RT_ENV:-} BITMM_SKIP_HUGE=1 timeout "${4:-150}" python3 -m pytest $1 -q -p no:cacheprovider -rf -k "$2" > "$tf" 2>&1
  rc=$?
  res="$3: $(tail -1 "$tf")"
  res+=$'\n'"$(grep -E "^FAILED|^E  " "$tf" | head -20)"
  # a run cut by its limit prints no summary, and -q's last line is only the last ~80 results (sessions 51-52 read
  # that line as the run's progress): so the whole progress count, and its F / E, from every progress line
  local prog='^[.FEsxX]+( +\[ *[0-9]+%\])?$'
  [ $rc = 124 ] && res+=$'\n'"   CUT at ${4:-150} s: $(grep -E "$prog" "$tf" | tr -cd '.FEsxX' | wc -c) results, $(grep -E "$prog" "$tf" | tr -cd 'FE' | wc -c) F / E, last marker $(grep -oE '\[ *[0-9]+%\]' "$tf" | tail -1)"
  printf '%s\n' "$(grep -v '^$' <<< "$res")" >> "$OUT/log.txt"
  mark "$3"
}
# bench/sanitize.sh's units to the call's end (session 45; the sNN_callK.sh scripts before it spell this out), SAN_PAR
# (default 2) at once: four memcheck cover3 units at once ran the 79 GiB H100 out of memory (session 54: ~20 GiB each;
# 7 units failed tests on OOM and the sanitizer dropped launches), two at once did not.
# $1: units, $2: the call's end in seconds from the start; skipped with under 150 s left.  Resumes capped units from
# bench/results/san_resume_*.txt; the verdicts go to the end of $OUT/log.txt.
san_tail() {  # $1: units, $2: end (s)
  local left=$(( $2 - ($(date +%s) - start) ))
  [ $left -gt 150 ] && OUT="$OUT" BITMM_SAN_RESUME="$(ls bench/results/san_resume_*.txt 2> /dev/null | tr '\n' ' ')" \
    BITMM_SAN_UNITS="$1" BITMM_SAN_PAR=${SAN_PAR:-2} BITMM_SAN_CAP=$left bash bench/sanitize.sh > /dev/null 2>&1 && mark sanitizers
  [ -f "$OUT/sanitizers.txt" ] && cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"
  return 0
}
# The files under $OUT but log.txt and the results JSON, in one $OUT/rest.tgz (session 54: at most 8 files come back
# from a call, and a call's ninth, san_resume.txt, was lost).  Run last.
pack_out() {
  ( cd "$OUT" && find . -maxdepth 1 -type f ! -name log.txt ! -name '*.json' ! -name rest.tgz ! -name probes.tgz -printf '%f\n' | sort > /tmp/pack.lst
    [ -s /tmp/pack.lst ] && tar czf rest.tgz -T /tmp/pack.lst && xargs rm -f < /tmp/pack.lst )
  return 0
}
