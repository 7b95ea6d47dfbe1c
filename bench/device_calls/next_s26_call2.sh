#!/usr/bin/env bash
# Prepared in session 25 for session 26, on the commit where next_s26_gx_parts.patch (tc38) landed: compute-sanitizer
# memcheck / racecheck / initcheck over the grad_x coverage test (tensorcore backend: one split and several, every
# scaling mode, M = 0 .. 65) and tc38's tests (reproducibility with several splits and one, scale layouts), one process
# per tool and kind (~200 s in session 25); then the index tests past 2^31 elements (tc34's 32-bit issue counter,
# tc38's chunks), which the sharded suites skip.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s26_call2.sh
source "$(dirname "$0")/prelude.sh"
san_each_kind "tests/test_kernel_coverage.py tests/test_tc_grad_x.py" \
  "(grad_x_every_kernel_configuration and KIND-tensorcore-cuda) or (reproducible and KIND) or (any_layout and KIND)" 420
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_*.txt)
unset BITMM_SKIP_HUGE
# (BITMM_A8_FUSED=1: the packed-words test also runs the fused W2A8 kernel past 2^31 words, session 26)
BITMM_A8_FUSED=1 timeout 150 python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -k "past_2_31" > /tmp/huge.txt 2>&1
{ echo "huge: $(tail -1 /tmp/huge.txt)"; grep -E "^FAILED|^E  " /tmp/huge.txt | head -10; } >> "$OUT/log.txt"
mark huge
