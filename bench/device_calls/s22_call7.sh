#!/usr/bin/env bash
# Session 22, call 7 (the last device seconds): the folding path at M = 1, 2 (BITMM_TC_BD=0) against the
# block-diagonal default on Llama-sized shapes, tensor-core backend, with auto and fp16 in process A, for
# the next session's M <= 2 rule (call 5: folding ahead for binary / ternary on 8192^2 and 4096^2 only).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s22_call7.sh
source "$(dirname "$0")/prelude.sh"
SH=4096x11008,11008x4096,4096x14336,14336x4096,8192x4096,4096x8192
timeout 60 python3 bench/decode_probe.py --shapes $SH --kinds int2,ternary,binary --ms 1,2 --groups 64 \
  --backends fp16,auto,tensorcore --out /tmp/a.json 2>&1 | grep " us" | sed "s/^/A /" > "$OUT/m12_llama.txt"
mark A
BITMM_TC_BD=0 timeout 60 python3 bench/decode_probe.py --shapes $SH --kinds int2,ternary,binary --ms 1,2 --groups 64 \
  --backends tensorcore --out /tmp/b.json 2>&1 | grep " us" | sed "s/^/B /" >> "$OUT/m12_llama.txt"
mark B
