#!/usr/bin/env bash
# Session 17, fifth call (the last ~290 device-seconds): the tests of the final tc18 rule (per tensor M <= 8
# on RN = 2 where x spans several K tiles, M = 3, 4 on wide N; the overrides) and the coverage file's
# tensor-core forward test (M = 5, 8 at K = 6000).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s17_call5.sh
source "$(dirname "$0")/prelude.sh"
timeout 150 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -rf -p no:cacheprovider \
  -k "two_row_tiles or m5_8_override or tile_config or (forward_every and tensorcore)" > /tmp/pt.txt 2>&1
echo "tests rc=$? $(tail -1 /tmp/pt.txt)" | tee -a $OUT/log.txt
grep -E "^FAILED|Error|assert" /tmp/pt.txt | head -12 >> $OUT/log.txt
cp /tmp/pt.txt $OUT/pytest.txt
mark tests
