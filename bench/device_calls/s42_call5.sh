#!/usr/bin/env bash
# Session 42 call 5: the layers' autocast cast (bitmm.nn._autocast_x, 0970de5: x in the autocast dtype as for
# nn.Linear) on CUDA: test_autocast.py's CUDA cases, then the layer / LoRA test files' CUDA cases.
source "$(dirname "$0")/prelude.sh"
run_tests tests/test_autocast.py "cuda" "test_autocast.py -k cuda" 100
run_tests "tests/test_nn.py tests/test_lora.py" "cuda" "test_nn.py + test_lora.py -k cuda" 150
cat "$OUT/log.txt"
