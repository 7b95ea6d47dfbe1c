#!/usr/bin/env bash
# Prepared in session 25 for session 26: the whole GPU suite in 16 shards, 8 per call (session 25's 8-shard run was cut
# in 3 shards at the call's limit: ~290-500 s per shard after an 80 s build).  Run twice:
#   BITMM_COMMIT=<sha> SHARD_IDS="0 1 2 3 4 5 6 7" bash bench/device_calls/next_s26_call3.sh
#   BITMM_COMMIT=<sha> SHARD_IDS="8 9 10 11 12 13 14 15" bash bench/device_calls/next_s26_call3.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=16 CAP=$(( 585 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
