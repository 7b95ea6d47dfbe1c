#!/usr/bin/env bash
# Session 39 call 5 (warm, as run): initcheck over test_wgmma.py -k k_splits WITH the caching allocator, so the tests'
# CUDA-graph capture can allocate (call 2 ran them without it: 3 capture failures).
export BITMM_SKIP_HUGE=1 BITMM_UNDER_SANITIZER=1 BITMM_SAN_NO_CUBLAS=1
timeout -s INT 240 compute-sanitizer --tool initcheck --print-limit 20 python3 -m pytest tests/test_wgmma.py -q -rf -p no:cacheprovider -k "k_splits"
