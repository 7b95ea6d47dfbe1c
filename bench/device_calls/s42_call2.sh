#!/usr/bin/env bash
# Session 42 call 2 (warm, after call 1): parts (0), (1) and (3) of next_s42_call1.sh: the autocast CUDA tests, the
# WS-vs-CTA bitwise test with its unsplit tile settings + pipeline variants + auto tests, ncu source counters.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests tests/test_autocast.py "cuda" "test_autocast.py -k cuda (session 41's autocast exemption, CUDA side)" 120
run_tests tests/test_wgmma.py "ws_matches or auto or pipeline_variants" "test_wgmma.py -k 'ws_matches or auto or pipeline_variants'" 300
for c in wg_int2_g64_m1024 wg_int2_m1024; do
  timeout 150 ncu --nvtx --nvtx-include "$c/" --section InstructionStats --section SourceCounters --section LaunchStats \
    --import-source no -f -o "/tmp/ncu_src_$c" python3 bench/ncu_profile.py "$c" > /tmp/ncu.log 2>&1
  ncu -i "/tmp/ncu_src_$c.ncu-rep" --page source --csv --print-source sass | gzip > "$OUT/ncu_src_$c.csv.gz"
  mark "ncu source $c"
done

cat "$OUT/log.txt"
