#!/usr/bin/env bash
# Session 39: one call for both of session 38's first two items, since machines were scarce (six starts refused):
# (1) racecheck and initcheck side by side over test_wgmma.py's K-split and forced-tile tests (s39_san.sh's selection),
#     capped at 200 s; (2) the A/B of s39_scales2.patch (s39_scales2.sh, trimmed to two shapes): probe, patch, rebuild,
#     test_wgmma.py in 6 shards, probe again.  ~520 s with the build.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s39_combined.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
export BITMM_SKIP_HUGE=1
SEL="k_splits or forced_tiles"
( BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1 timeout -s INT 200 compute-sanitizer --tool racecheck --kernel-name kns=bitmm \
    --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "$SEL" > /tmp/rc.txt 2>&1
  echo "racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/rc.txt | tail -1) | $(tail -1 /tmp/rc.txt)" >> "$OUT/log.txt" ) &
( BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1 PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout -s INT 200 compute-sanitizer \
    --tool initcheck --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "$SEL" > /tmp/ic.txt 2>&1
  echo "initcheck rc=$?: $(grep -E 'ERROR SUMMARY' /tmp/ic.txt | tail -1) | $(tail -1 /tmp/ic.txt)" >> "$OUT/log.txt" ) &
wait
mark sanitizers
{ grep -E "^=========" /tmp/rc.txt | head -15; grep -E "^=========" /tmp/ic.txt | head -15; } > "$OUT/san_head.txt"
probe() {  # $1: label
  timeout 90 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 3 \
    --shapes 8192x28672,8192x8192 --ms 256,1024 --backends fp16,wgmma --out "$OUT/s2_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/scales2.txt"
  mark "probe $1"
}
probe base
apply_and_rebuild bench/device_calls/s39_scales2.patch scales2
PYTEST_ARGS="tests/test_wgmma.py" SHARDS=6 CAP=90 RERUN_CAP=0 LABEL="wgmma tests " source "$(dirname "$0")/gpu_suite_sharded.sh"
probe patched
