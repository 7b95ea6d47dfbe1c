#!/usr/bin/env bash
# Session 22, call 6: the one failure of call 5's suite (test_tensorcore_grouped_m5_8_activation_tiles_override[1]:
# the test's expectation missed tc26, binary / ternary M = 4 now on CM = 1) after its fix, with the other
# override tests of the group-wise paths.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s22_call6.sh
source "$(dirname "$0")/prelude.sh"
timeout 200 python3 -m pytest tests/test_tensorcore.py -q -rf -p no:cacheprovider \
  -k "activation_tiles or block_diagonal_limit_override or grouped_row_tile_override" 2>&1 | tail -5 | tee -a "$OUT/log.txt"
mark tests
