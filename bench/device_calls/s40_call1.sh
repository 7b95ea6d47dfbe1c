#!/usr/bin/env bash
# Session 40 call 1: (a) the warp-specialized wgmma pipeline (BITMM_WG_WS=1) against the CTA-barrier one at
# M = 1024 / 4096 (issue 5's >= 0.95x rows), each in its own process with fp16 F.linear timed beside it;
# (b) why racecheck with --kernel-name kns=bitmm hits an illegal address in the WS pipeline test
# (h200_ws_racecheck_bisect_0a08e8f.txt): hypothesis, the tool's instrumented code runs out of the 40 registers
# setmaxnreg.dec leaves the producer warpgroup.  Test: the same racecheck run on the base build, then on a build
# without setmaxnreg (s40_no_setmaxnreg.patch).  Prediction: base crashes as before, the patched build completes
# (with the every-pair mbarrier reports of the control kernel's kind).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s40_call1.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
export BITMM_SKIP_HUGE=1
probe() {  # $1: label, rest: environment
  local label=$1; shift
  env "$@" timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 2 \
    --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --ms 1024,4096 --backends fp16,wgmma \
    --out "$OUT/ws_$label.json" 2>&1 | grep " us" | sed "s/^/$label /" >> "$OUT/ws_ab.txt"
  mark "probe $label"
}
probe ws0 BITMM_WG_WS=0
probe ws1 BITMM_WG_WS=1
rc() {  # $1: label, $2: -k selection
  BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1 timeout -s INT 100 compute-sanitizer --tool racecheck \
    --kernel-name kns=bitmm --print-limit 5 python3 -m pytest tests/test_wgmma.py -q -rf -p no:cacheprovider \
    -k "$2" > "/tmp/rc_$1.txt" 2>&1
  echo "== $1 rc=$? | $(grep -E 'RACECHECK SUMMARY' /tmp/rc_$1.txt | tail -1) | illegal: $(grep -c 'illegal memory access' /tmp/rc_$1.txt) | $(tail -1 /tmp/rc_$1.txt)" >> "$OUT/racecheck.txt"
  grep -E "^=========  *(Error|Warning|Race)" "/tmp/rc_$1.txt" | sort | uniq -c | head -8 >> "$OUT/racecheck.txt"
}
rc base_ws64 "pipeline_variants and ws-64"
mark "racecheck base"
apply_and_rebuild bench/device_calls/s40_no_setmaxnreg.patch nosetmaxnreg
rc nsr_ws64 "pipeline_variants and ws-64" &
rc nsr_ws256 "pipeline_variants and ws-256" &
wait
mark "racecheck patched"
run_tests tests/test_wgmma.py "pipeline_variants" "pipeline tests, no setmaxnreg" 60
