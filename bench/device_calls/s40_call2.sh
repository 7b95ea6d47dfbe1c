#!/usr/bin/env bash
# Session 40 call 2 (warm, after call 1): the sanitizer's version; racecheck (filtered) over the other WS pipeline
# variants on the base build (call 1: ws-64 completed on the H100 without the illegal address); test_wgmma.py whole
# with BITMM_WG_WS=1.
source "$(dirname "$0")/prelude.sh"
compute-sanitizer --version | tail -1 >> "$OUT/log.txt"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$OUT/log.txt"
export BITMM_SKIP_HUGE=1
rc() {  # $1: label, $2: -k selection
  BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1 timeout -s INT 150 compute-sanitizer --tool racecheck \
    --kernel-name kns=bitmm --print-limit 5 python3 -m pytest tests/test_wgmma.py -q -rf -p no:cacheprovider \
    -k "$2" > "/tmp/rc_$1.txt" 2>&1
  echo "== $1 rc=$? | $(grep -E 'RACECHECK SUMMARY' /tmp/rc_$1.txt | tail -1) | illegal: $(grep -c 'illegal memory access' /tmp/rc_$1.txt) | $(grep -E 'passed|failed' /tmp/rc_$1.txt | tail -1)" >> "$OUT/racecheck.txt"
}
rc base_ws128 "pipeline_variants and ws-128" &
rc base_ws256 "pipeline_variants and ws-256" &
rc base_split "pipeline_variants and ws-split" &
BITMM_WG_WS=1 run_tests tests/test_wgmma.py "not pipeline_variants" "test_wgmma.py with BITMM_WG_WS=1" 300 &
wait; mark done
