#!/usr/bin/env bash
# Session 39 call 2 (warm, after s39_combined.sh, as run): racecheck and initcheck side by side over test_wgmma.py's K-split and
# forced-tile tests with a 330 s cap each (call 1's 200 s had cut racecheck off), failures listed (-rf).
source "$(dirname "$0")/prelude.sh"; export BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1; S="k_splits or forced_tiles"
(timeout -s INT 330 compute-sanitizer --tool racecheck --kernel-name kns=bitmm --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -rf -p no:cacheprovider -k "$S" > $OUT/rc.txt 2>&1; echo "racecheck rc=$?" >> $OUT/log.txt) &
(PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout -s INT 330 compute-sanitizer --tool initcheck --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -rf -p no:cacheprovider -k "$S" > $OUT/ic.txt 2>&1; echo "initcheck rc=$?" >> $OUT/log.txt) &
wait; mark san
