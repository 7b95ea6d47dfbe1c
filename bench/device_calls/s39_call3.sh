#!/usr/bin/env bash
# Session 39 call 3 (warm, as run): the whole GPU suite in 7 shards (80 GB H100), cap 290 s, no rerun (call 4 reran the
# 4 failures alone by hand: all passed).
source "$(dirname "$0")/prelude.sh"; SHARDS=7 CAP=290 RERUN_CAP=0 source "$(dirname "$0")/gpu_suite_sharded.sh"
