#!/usr/bin/env bash
# Session 44 call 4: call 3's two sanitizer units again after their fixes (1e: tests/helpers.py cuda_graphs_capturable,
# no graph capture where torch's caching allocator is off, as initcheck units run; bench/sanitize.sh: racecheck leaves
# out the int8-activation tests that reach cuBLAS / cuBLASLt GEMMs): racecheck 1/8 and initcheck 0/8 of cover3, side by
# side, to the call's end.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
# (S44_UNITS / S44_END override the units and the call's end in seconds: session 44 ran it with
# S44_UNITS="initcheck:0/8@cover3" S44_END=240, the device time left)
left=$(( ${S44_END:-390} - ($(date +%s) - start) ))
OUT="$OUT" BITMM_SAN_UNITS="${S44_UNITS:-racecheck:1/8@cover3 initcheck:0/8@cover3}" BITMM_SAN_PAR=2 BITMM_SAN_CAP=$left \
  bash bench/sanitize.sh > /dev/null 2>&1
mark sanitizers
cat "$OUT/sanitizers.txt" >> "$OUT/log.txt"; cat "$OUT/log.txt"
