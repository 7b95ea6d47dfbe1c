#!/usr/bin/env bash
# Session 24 call 2, on the tree with tc30 (scale bits) and tc31 (grad_x splits) landed:
#  1. next_s24_addsub_prefetch.patch A/B (why and prediction: bench/NOTES.md, tc32):
#     A = HEAD, B = A + patch, bf16 and fp16 x, g64 M = 1, 2 on four shapes, addsub forced and auto.
#  2. The whole GPU suite (8 shards) on tree B: tc28's never-completed test, tc30, tc31 and the patch.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s24_call2.sh
source "$(dirname "$0")/prelude.sh"
aprobe() {  # $1: label
  for dt in bfloat16 float16; do
    timeout 40 python3 bench/decode_probe.py --dtype $dt --shapes 8192x28672,8192x8192,4096x4096,2048x2048 --kinds int2,ternary,binary \
      --ms 1,2 --groups 64 --backends fp16,addsub,auto --out "/tmp/as_$1_$dt.json" 2>&1 | grep " us" | sed "s/^/$1 $dt /" >> "$OUT/addsub.txt"
  done
  mark "probe $1"
}
aprobe A
apply_and_rebuild bench/device_calls/next_s24_addsub_prefetch.patch B
aprobe B
(cd /tmp && tar czf "$OUT/addsub_json.tgz" as_*.json)
SHARDS=8 CAP=$(( 588 - ($(date +%s) - start) )) source "$(dirname "$0")/gpu_suite_sharded.sh"
