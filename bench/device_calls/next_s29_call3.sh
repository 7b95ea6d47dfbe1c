#!/usr/bin/env bash
# Session 29, issue 8's sanitizer gaps in one call: (1) the fused W2A8 and digits kernels under memcheck, racecheck
# and initcheck (initcheck never ran on them), one process per tool and kind; (2) the tensor-core forward coverage
# test (every kernel configuration, tc34 / tc37's per tensor step loop and 32-bit scale offsets included) under the
# three tools; (3) what time is left: racecheck / initcheck units over the cover3 profile of the kernel test files.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s29_call3.sh
source "$(dirname "$0")/prelude.sh"
export BITMM_A8_FUSED=1
san_each_kind "tests/test_linear_a8.py tests/test_digits.py" \
  "(fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks) and KIND" 170
unset BITMM_A8_FUSED
(cd /tmp && tar czf "$OUT/san_a8_logs.tgz" san_*.txt && rm -f san_*.txt)
san_each_kind tests/test_kernel_coverage.py "forward_every_kernel_configuration and KIND-tensorcore-cuda" 400
(cd /tmp && tar czf "$OUT/san_fwd_logs.tgz" san_*.txt && rm -f san_*.txt)
left=$(( 570 - ($(date +%s) - start) ))
[ $left -gt 60 ] && BITMM_SAN_PAR=6 BITMM_SAN_CAP=$left \
  BITMM_SAN_UNITS="racecheck:0/3@cover3 racecheck:1/3@cover3 racecheck:2/3@cover3 initcheck:0/3@cover3 initcheck:1/3@cover3 initcheck:2/3@cover3" \
  BITMM_SAN_PATHS="tests/test_tc_grad_x.py tests/test_wgmma.py" BITMM_SAN_K="not cpu and not compile and not gradcheck and not opcheck" \
  bash bench/sanitize.sh
mark done
