#!/usr/bin/env bash
# Prepared in session 54.  Run in session 55 after next_s55_call1.sh (warm: ~6 s build):
#   BITMM_COMMIT=<full sha> bash bench/device_calls/next_s55_call2.sh
# Issue 4's M = 1 rows are short on the streaming rate (session 54: the tensor-core kernel moves 218 MB at 1.93 TB/s on
# 16384 x 53248, fp16 F.linear 1745 MB at 2.95; bench/results/h100_s54_fixed_stream_fit_e53e0a3.txt).  ncu of both on
# that shape, of the tensor-core kernel on 8192^2 (16.8 MB) and of the digits kernel on 8192 x 28672 (auto's M = 1
# choice there): dram throughput, bytes in flight, occupancy, stall reasons and issue activity, side by side.
# ~90 s each; everything but log.txt in $OUT/rest.tgz.
# Added in session 55, first: bench/stream_probe.cu (no torch, ~10 s): the same 218 MB read with no matmul, in the
# kernel's access pattern (16 rows x 64 B per warp step) and in longer runs per row, with the ring depth, resident
# CTAs and ALU instructions per step varied: pattern, bytes in flight or issue.  S55_NCU: the ncu cases (all four
# by default); a case is started only with >= 100 s left before S55_END (default 540).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/stream_probe bench/stream_probe.cu > "$OUT/stream_probe.txt" 2>&1 \
  && timeout 120 /tmp/stream_probe >> "$OUT/stream_probe.txt" 2>&1
cat "$OUT/stream_probe.txt" >> "$OUT/log.txt"; mark stream_probe
cases=${S55_NCU:-tc_ternary_m1_huge fp16_m1_huge tc_ternary_m1_8192sq digits_ternary_m1}
for c in $cases; do [ $(( $(date +%s) - start )) -lt $(( ${S55_END:-540} - 100 )) ] && ncu_raw $c $c; done
for c in $cases; do
  echo "== $c" >> "$OUT/log.txt"
  grep -E "^ +(Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Grid Size|Block Size|Issue Slots Busy|No Eligible|Eligible Warps Per Scheduler)" "$OUT/ncu_$c.txt" | head -12 >> "$OUT/log.txt"
done
pack_out
cat "$OUT/log.txt"
