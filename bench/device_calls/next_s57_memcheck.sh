#!/usr/bin/env bash
# Prepared in session 56: the rest of memcheck over cover3, on the hash split (tests/conftest.py BITMM_SHARD), in one
# call (~6-8 min warm):
#   S57_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s57_memcheck.sh
# bench/results/san_resume_hash_s56.txt deselects, per unit, the 1842 tests with a clean memcheck run at e53e0a3 or
# d449278 (files changed since excluded), so each of the 16 units has 33-44 tests left (626 in all: the 299 no round
# covered, those in files changed since, the replays test); counted here with BITMM_SAN_COLLECT=1.  Two units at once
# (prelude's SAN_PAR); units not reached leave their passed ids in $OUT/san_resume.txt (in rest.tgz) for the next call.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
san_tail "$(for i in $(seq 0 15); do printf "memcheck:%d/16@cover3 " $i; done)" "${S57_END:-560}"
pack_out
cat "$OUT/log.txt"
