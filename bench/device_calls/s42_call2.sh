#!/usr/bin/env bash
# Session 42 call 2 (warm, after call 1; the rest of session 41's next_s42_call1.sh): (0) test_autocast.py's CUDA
# cases; (1) the WS-vs-CTA bitwise test with its unsplit tile settings (64 / 128 / 256-row rings wrapping), the
# pipeline variants and the auto tests; (3) ncu source counters of wgmma int2 8192 x 28672 M = 1024, g64 and per
# tensor (where the group-wise gap left after wg13 goes), gzipped CSV for bench/ncu_source_blocks.py.
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
