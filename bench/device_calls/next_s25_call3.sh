#!/usr/bin/env bash
# Prepared in session 24 for session 25, to run on the tree where next_s25_gx_scales.patch / next_s25_gx_dn.patch
# landed (after next_s25_call1.sh and the whole-suite call): compute-sanitizer memcheck / racecheck / initcheck over
# the grad_x coverage test (every grad_x kernel configuration on small problems: plain, fma, fma_f32 and group-wise
# modes, M = 0 .. 65, fp16 / bf16 / fp32) on the tensorcore backend, one process per tool and kind side by side
# (as session 23's s23_call3.sh did for the forward), and the patches' layout / non-finite tests of test_tc_grad_x.py.
# Covers tc31's splits, tc33's subnormal unpacking / G mma / incremental addresses, tc36's last-CTA conversion, the
# tiled scale transpose.  The patches must be committed first (this script applies none).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s25_call3.sh
source "$(dirname "$0")/prelude.sh"
san_each_kind "tests/test_kernel_coverage.py tests/test_tc_grad_x.py" \
  "(grad_x_every_kernel_configuration and KIND-tensorcore-cuda) or (copy_any_layout and KIND) or (nonfinite and KIND)" 560
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_*.txt)
