#!/usr/bin/env bash
# The whole GPU test suite in SHARDS pytest processes side by side (tests/conftest.py BITMM_SHARD; default 8,
# ~200-240 s each on the H200 machine's 16 cores in session 20, 6084 tests), each shard's summary, failures and
# slowest tests into $OUT/log.txt.  Sourced after prelude.sh (the build), or run alone:
#   BITMM_COMMIT=<sha> bash bench/device_calls/gpu_suite_sharded.sh      (SHARDS=8 CAP=330 by default)
# PYTEST_ARGS (default "tests": files, split on spaces) and K_EXPR (a -k expression) select a part;
# LABEL prefixes the log lines; SHARD_IDS (e.g. "0 2 5") runs only those shards of the SHARDS-way split.
if [ -z "${OUT:-}" ] || ! declare -F mark > /dev/null; then source "$(dirname "$0")/prelude.sh"; fi
SHARDS=${SHARDS:-8}; CAP=${CAP:-330}; PYTEST_ARGS=${PYTEST_ARGS:-tests}; K_EXPR=${K_EXPR:-}; LABEL=${LABEL:-}
# At most one shard per 10 GB of GPU memory: session 33's 16 shards on an 80 GB H100 ran out of memory in 69 tests
# (single processes peaked at 13.6 GB), all of which passed when rerun one by one; the H200's 141 GB held 16.
_gpu_gb=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1)
if [ -n "$_gpu_gb" ] && [ -z "${SHARD_IDS:-}" ] && [ "$SHARDS" -gt $(( _gpu_gb / 10240 )) ]; then
  SHARDS=$(( _gpu_gb / 10240 > 1 ? _gpu_gb / 10240 : 1 )); echo "${LABEL}shards: $SHARDS (${_gpu_gb} MiB of GPU memory)" | tee -a "$OUT/log.txt"
fi
CAP=$(( CAP > 30 ? CAP : 30 ))  # (a computed remainder can reach 0, which `timeout` takes as no limit)
# The shard list and the PIDs in names of this file's own: a plain SHARD_IDS= here would outlive the
# `source` (session 23's review: a second suite in one script ran only the first one's shards), and a bare
# `wait` would also wait for the caller's other background jobs (session 23 call 3: its sanitizers).
_suite_ids=${SHARD_IDS:-$(seq 0 $((SHARDS - 1)))}; _suite_pids=()
for i in $_suite_ids; do
  OMP_NUM_THREADS=2 BITMM_SKIP_HUGE=1 BITMM_SHARD=$i/$SHARDS timeout "$CAP" python3 -m pytest $PYTEST_ARGS ${K_EXPR:+-k "$K_EXPR"} -q -rf -p no:cacheprovider \
    --durations=3 -o faulthandler_timeout=120 > "/tmp/suite_shard$i.txt" 2>&1 &
  _suite_pids+=($!)
done
wait "${_suite_pids[@]}"
for i in $_suite_ids; do
  # (a shard without pytest's summary line was cut off by the cap: say so, it is not a pass)
  _sum=$(tail -1 "/tmp/suite_shard$i.txt"); grep -qE "[0-9]+ (passed|failed|error)" <<< "$_sum" || _sum="CAPPED, NO SUMMARY (rerun with SHARD_IDS=$i): $_sum"
  echo "${LABEL}shard $i/$SHARDS: $_sum" | tee -a "$OUT/log.txt"
  grep -E "^FAILED|^E  |Error|Timeout|^[0-9.]+s (call|setup)" "/tmp/suite_shard$i.txt" | head -15 >> "$OUT/log.txt"
  # faulthandler's dump names no test: the test function's frame in its traceback does (session 24 call 1)
  grep -A60 "Timeout (" "/tmp/suite_shard$i.txt" | grep -E 'File ".*tests/test_' | head -3 >> "$OUT/log.txt"
done
mark "${LABEL}suite"
# The failed tests once more, one process, when time is left (RERUN_CAP seconds, default 120): a failure that
# passes alone came from the shards' contention (memory), not from the code; one that fails again is real.
_failed=$(cat $(for i in $_suite_ids; do echo "/tmp/suite_shard$i.txt"; done) | grep "^FAILED" | sed 's/^FAILED //; s/ - .*//' | sort -u)
if [ -n "$_failed" ] && [ "${RERUN_CAP:-120}" -gt 10 ]; then
  OMP_NUM_THREADS=8 BITMM_SKIP_HUGE=1 timeout "${RERUN_CAP:-120}" python3 -m pytest $_failed -q -rf -p no:cacheprovider > /tmp/suite_rerun.txt 2>&1
  echo "${LABEL}rerun of $(echo "$_failed" | wc -l) failed, one process: $(tail -1 /tmp/suite_rerun.txt)" | tee -a "$OUT/log.txt"
  grep -E "^FAILED" /tmp/suite_rerun.txt | head -15 >> "$OUT/log.txt"
  mark "${LABEL}rerun"
fi
