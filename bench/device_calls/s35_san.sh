#!/usr/bin/env bash
# Session 35: issue 8's sanitizer pass at one commit over every kernel instance: tests/test_kernel_coverage.py
# (every tensor-core / add-subtract / wgmma / grad_x / generic / fused LoRA / pack kernel instance and launch
# boundary, on small problems), with the auto and dense cases left out (auto runs the same kernels; dense is cuBLAS,
# which dies under racecheck), plus the fused W2A8 and digits kernels' sanitizer cases; memcheck, racecheck and
# initcheck, one process per tool and kind (9 at once), stopped at END seconds from the start.
# Run as: BITMM_COMMIT=<sha> END=560 bash bench/device_calls/s35_san.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader >> "$OUT/log.txt"
END=${END:-560}
export BITMM_A8_FUSED=1
san_each_kind "tests/test_kernel_coverage.py tests/test_linear_a8.py tests/test_digits.py" \
  "KIND and not cpu and not auto and not dense and (every or generic or fused_lora or pack_unpack or fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks)" \
  $END
(cd /tmp && tar czf "$OUT/san_logs.tgz" san_*.txt)
mark done
