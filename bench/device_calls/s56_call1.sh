#!/usr/bin/env bash
# Prepared in session 56 (its first start was refused; session 55 got no machine at all).  One call, ~560 s:
#   S56_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/s56_call1.sh  (ran in session 56 as next_s56_call1.sh)
# 1. bench/stream_probe.cu (~15 s, prediction in bench/NOTES.md session 55): the M = 1 tensor-core kernel's 218 MB read
#    with no matmul, in its pattern (16 rows x 64 B per warp step) and in longer runs per row.
# 2. A/B of s56_steprun2.patch (tc_linear.cuh: a warp issues two consecutive steps of a tile, 128 B per row, in
#    place of one step per warp in turn, 64 B; the cheap form of the probe's "longer runs per row"): decode_probe on
#    the tensor-core backend and fp16, M = 1, 8192^2, 8192 x 28672, 16384 x 53248, ternary / int2 / binary per tensor
#    and g64 (~60-100 s a build); then the tensor-core tests on the patched build; then HEAD rebuilt.
#    Compare: python bench/probe_ab.py steprun_base.json steprun_b.json (in rest.tgz).
# 3. The tests session 55 tightened (never run on a GPU) beside the cudagraph pool probes (plain); the pool probe
#    under memcheck; the sanitizer units left (next_s55_call1.sh's list) to S56_END (default 560).
# Everything but log.txt goes back in $OUT/rest.tgz (pack_out).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/stream_probe bench/stream_probe.cu > "$OUT/stream_probe.txt" 2>&1 \
  && timeout 90 /tmp/stream_probe >> "$OUT/stream_probe.txt" 2>&1
cat "$OUT/stream_probe.txt" >> "$OUT/log.txt"; mark stream_probe
probe() {  # $1: output name
  timeout 100 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
    --shapes 8192x8192,8192x28672,16384x53248 --ms 1 --backends fp16,tensorcore --out "$OUT/$1.json" \
    > "$OUT/$1.txt" 2>&1
  mark "probe $1: $(grep -c ' us ' "$OUT/$1.txt") lines"
}
if [ "${S56_AB:-1}" = 1 ]; then
  probe steprun_base
  apply_and_rebuild bench/device_calls/s56_steprun2.patch steprun2
  probe steprun_b
  run_tests tests/test_tensorcore.py "" "tensor-core tests, steprun2" 90
  python3 bench/probe_ab.py "$OUT/steprun_base.json" "$OUT/steprun_b.json" >> "$OUT/log.txt" 2>&1
  patch -R -p1 < bench/device_calls/s56_steprun2.patch > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
  mark "rebuilt HEAD"
fi
run_tests "tests/test_reliability.py tests/test_autograd.py tests/test_lora.py" \
  "fuzz or low_precision or dropout_and_act" "tightened s55 tests" 170 &
for b in 1.58 2; do
  echo "== cudagraph_pool_probe $b plain" >> "$OUT/log.txt"
  timeout 120 python3 bench/cudagraph_pool_probe.py $b > "$OUT/pool_probe_$b.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_$b.txt"
  grep -E "ok$|FAILED|leaked|equal|rc=" "$OUT/pool_probe_$b.txt" | head -8 >> "$OUT/log.txt"
done
mark "pool probe plain"
wait
if [ $(( $(date +%s) - start )) -lt $(( ${S56_END:-560} - 160 )) ]; then
  echo "== cudagraph_pool_probe 1.58 under memcheck" >> "$OUT/log.txt"
  BITMM_UNDER_SANITIZER=1 timeout 150 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
    python3 bench/cudagraph_pool_probe.py 1.58 > "$OUT/pool_probe_memcheck.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_probe_memcheck.txt"
  grep -E "ok$|FAILED|leaked|equal|ERROR SUMMARY|rc=" "$OUT/pool_probe_memcheck.txt" | head -8 >> "$OUT/log.txt"
  mark "pool probe memcheck"
fi
san_tail "${S56_UNITS:-memcheck:6/16@cover3 memcheck:8/16@cover3 racecheck:0/1@wgx initcheck:0/1@wgx memcheck:2/16@cover3 memcheck:3/16@cover3}" "${S56_END:-560}"
pack_out
cat "$OUT/log.txt"
