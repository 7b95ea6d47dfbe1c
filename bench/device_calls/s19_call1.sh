#!/usr/bin/env bash
# Written at the end of session 18 for the next session (bench/NOTES.md, "Plan for the next device session
# (written in session 18)", item 0a): A/B of s19_call1_bounds.patch in one machine -- the launch bound of the
# RN = CM = 2 instances, per tensor 5 -> 4 CTAs per SM (96 -> 126-128 registers, sm_90a) and group-wise 3 -> 2
# (168 -> 200-235; binary's 116-byte spill gone), the way tc19's 5 -> 4 for RN = 2, CM = 1 gave 5-27% -- then
# the tests of those instances on B.  At most 8 files come back from $OUT: the probes of a tree go to one file.
# A = HEAD, B = HEAD + the patch, C = B + s19_call1_bound11.patch (the end of the script).  Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s19_call1.sh
source "$(dirname "$0")/prelude.sh"   # builds A
probe() {  # $1: A or B; every probe in its own process, its JSON appended to one file
  : > $OUT/probes_$1.txt; : > $OUT/probes_$1.json
  # (As it ran: inside run1, $1 is run1's own first argument, so both trees' probes went to probes_--shapes.txt / .json, A's first.)
  run1() { timeout 60 python3 bench/decode_probe.py --out /tmp/p.json "$@" 2>&1 | grep " us" >> $OUT/probes_$1.txt; cat /tmp/p.json >> $OUT/probes_$1.json; }
  run1 --shapes 8192x28672,8192x8192,28672x8192,4096x4096 --kinds int2,ternary,binary --ms 1,2,5,8,9,12,16 --groups none --backends fp16,tensorcore
  run1 --shapes 8192x28672,28672x8192 --kinds int2,ternary,binary --ms 9,16 --groups none --backends tensorcore --dtype bfloat16
  run1 --shapes 8192x28672,8192x8192,28672x8192 --kinds int2,ternary --ms 9,12,16 --groups 64 --backends tensorcore
  mark probe-$1
}
probe A
apply_and_rebuild bench/device_calls/s19_call1_bounds.patch
probe B
# plan item 2: fp16 ternary M = 5..8 with x split on tc19's RN = 2, CM = 1 (BITMM_TC_M8=2) instead of RN = CM = 2
echo "# BITMM_TC_M8=2:" >> $OUT/probes_B.txt
BITMM_TC_M8=2 timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192 --kinds ternary --ms 3,4,5,8 \
  --groups none --backends tensorcore --out /tmp/p.json 2>&1 | grep " us" >> $OUT/probes_B.txt
mark m8-2
# (the tensor-core backend's tests, ~1100: every M incl. 9..16, the exact ones, the coverage file's forward, overrides)
timeout 200 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider -o faulthandler_timeout=60 \
  -k "(matches_reference and not addsub and not dense) or exact_on_integers or (forward_every and not addsub and not dense and not auto) or grouped_row_tile or two_row_tiles or m5_8" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
mark tests
# C = B + s19_call1_bound11.patch: the one-tile instance (RN = CM = 1: per tensor M <= 8 where tc18's rule keeps one
# tile, i.e. M = 1, 2 on most shapes, the issue-4 headline) under 5 CTAs per SM instead of 6 (80 -> 92-96 registers;
# no spills either way).  Compare with B's M = 1, 2 rows.
apply_and_rebuild bench/device_calls/s19_call1_bound11.patch C
: > $OUT/probes_C.txt
timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,8192x8192,28672x8192,4096x4096 --kinds int2,ternary,binary --ms 1,2 \
  --groups none --backends fp16,tensorcore --out /tmp/p.json 2>&1 | grep " us" >> $OUT/probes_C.txt
mark probe-C
