#!/usr/bin/env bash
# Prepared in session 37 (its call 8 got no answer from the machine, which took the rest of the device time): racecheck and initcheck (side by side, one process each) over test_wgmma.py's K-split and
# forced-tile tests, whose launches the cost-model plan (wg10) now makes by default at M > 128 on narrow N (256-row
# tiles with K splits); the CTA-wide pipeline only (the warp-specialized variant's racecheck question is wg9's).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s39_san.sh
source "$(dirname "$0")/prelude.sh"
export BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1
SEL="k_splits or forced_tiles"
( timeout -s INT 260 compute-sanitizer --tool racecheck --kernel-name kns=bitmm --print-limit 20 python3 -m pytest \
    tests/test_wgmma.py -q -p no:cacheprovider -k "$SEL" > /tmp/rc.txt 2>&1
  echo "racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/rc.txt | tail -1) | $(tail -1 /tmp/rc.txt)" >> "$OUT/log.txt" ) &
( PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout -s INT 260 compute-sanitizer --tool initcheck --print-limit 20 python3 -m pytest \
    tests/test_wgmma.py -q -p no:cacheprovider -k "$SEL" > /tmp/ic.txt 2>&1
  echo "initcheck rc=$?: $(grep -E 'ERROR SUMMARY' /tmp/ic.txt | tail -1) | $(tail -1 /tmp/ic.txt)" >> "$OUT/log.txt" ) &
wait
mark sanitizers
grep -E "^=========" /tmp/rc.txt | head -30 > "$OUT/racecheck_head.txt"; grep -E "^=========" /tmp/ic.txt | head -30 > "$OUT/initcheck_head.txt"
