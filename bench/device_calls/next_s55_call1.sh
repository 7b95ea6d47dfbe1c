#!/usr/bin/env bash
# Prepared in session 54.  Run first in session 55 (S55_END: the call's end in seconds, default 560):
#   S55_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s55_call1.sh
# 0. tests/test_nn.py::test_converted_model_replays_in_cuda_graph_and_reduce_overhead failed under memcheck in session 54
#    (cover3 2/16 and 3/16: torch.compile(mode="reduce-overhead")'s warm-up found 192 / 230 live blocks in the
#    cudagraph-trees pool that no output owns).  It last passed plainly in session 43.  bench/cudagraph_pool_probe.py
#    repeats its steps with the allocation histories on: plain for both bit widths, then 1.58 under memcheck.
# 1. The sanitizer units left (resumed from bench/results/san_resume_*.txt; two processes at once, prelude's SAN_PAR):
#    memcheck 6/16 and 8/16 of cover3 (session 54 ran them four at once: out of memory), racecheck / initcheck
#    0/1@wgx (only test_wg_grad_x_dispatch_fallback_determinism_and_nonfinite is left, fixed for BITMM_AUTO_NO_DENSE
#    in session 54), memcheck 2/16 and 3/16 (only the replays test is left).
# Everything but log.txt goes back in $OUT/rest.tgz (pack_out).
# S55_STREAM=1 (session 55, for when one call must do: refused starts took most of the device time): first
# bench/stream_probe.cu (~15 s; the streaming gap's pattern / bytes-in-flight / issue question, next_s55_call2.sh).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
if [ "${S55_STREAM:-0}" = 1 ]; then
  nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/stream_probe bench/stream_probe.cu > "$OUT/stream_probe.txt" 2>&1 \
    && timeout 90 /tmp/stream_probe >> "$OUT/stream_probe.txt" 2>&1
  cat "$OUT/stream_probe.txt" >> "$OUT/log.txt"; mark stream_probe
fi
# S56_TESTS=1 (default, session 56): the tests session 55 tightened on the CPU, first on the GPU, beside the pool probes
if [ "${S56_TESTS:-1}" = 1 ]; then
  run_tests "tests/test_reliability.py tests/test_autograd.py tests/test_lora.py" \
    "fuzz or low_precision or dropout_and_act" "tightened s55 tests" 170 &
fi
for b in 1.58 2; do
  echo "== cudagraph_pool_probe $b plain" >> "$OUT/log.txt"
  timeout 120 python3 bench/cudagraph_pool_probe.py $b > "$OUT/pool_probe_$b.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_$b.txt"
  grep -E "ok$|FAILED|leaked|equal|rc=" "$OUT/pool_probe_$b.txt" | head -8 >> "$OUT/log.txt"
done
mark "pool probe plain"
wait
echo "== cudagraph_pool_probe 1.58 under memcheck" >> "$OUT/log.txt"
BITMM_UNDER_SANITIZER=1 timeout 150 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
  python3 bench/cudagraph_pool_probe.py 1.58 > "$OUT/pool_probe_memcheck.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_memcheck.txt"
grep -E "ok$|FAILED|leaked|equal|ERROR SUMMARY|rc=" "$OUT/pool_probe_memcheck.txt" | head -8 >> "$OUT/log.txt"
mark "pool probe memcheck"
san_tail "${S55_UNITS:-memcheck:6/16@cover3 memcheck:8/16@cover3 racecheck:0/1@wgx initcheck:0/1@wgx memcheck:2/16@cover3 memcheck:3/16@cover3}" "${S55_END:-560}"
pack_out
cat "$OUT/log.txt"
