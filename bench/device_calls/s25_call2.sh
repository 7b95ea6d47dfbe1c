#!/usr/bin/env bash
# Session 25 (prepared in session 24): the whole GPU suite (8 shards, ~290-460 s each in session 24) on the tree
# where s25_call1.sh's winners landed (the sanitizer pass is s25_call3.sh, a call of its own).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s25_call2.sh
source "$(dirname "$0")/prelude.sh"
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
