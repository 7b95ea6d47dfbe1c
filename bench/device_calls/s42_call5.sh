#!/usr/bin/env bash
# Session 42 call 5: the layers' autocast cast (bitmm.nn._autocast_x, 0970de5: x in the autocast dtype as for
# nn.Linear; b6eefb0 with the review mends) on CUDA: test_autocast.py's CUDA cases, the auto-pair test, then the layer /
# LoRA test files' CUDA cases.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_autocast.py "cuda" "test_autocast.py -k cuda" 100
run_tests tests/test_wgmma.py "pairs_ctas" "test_wgmma.py -k pairs_ctas (the instance check moved out of the child)" 60
run_tests "tests/test_nn.py tests/test_lora.py" "cuda" "test_nn.py + test_lora.py -k cuda" 90
cat "$OUT/log.txt"
