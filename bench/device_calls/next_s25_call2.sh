#!/usr/bin/env bash
# Prepared in session 24 for session 25: the whole GPU suite (8 shards, ~290-460 s each in session 24) on the tree
# where next_s25_call1.sh's winners landed (the sanitizer pass is next_s25_call3.sh, a call of its own).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s25_call2.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
