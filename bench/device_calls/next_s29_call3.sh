#!/usr/bin/env bash
# Session 29, issue 8's sanitizer gaps in one call: (1) the fused W2A8 and digits kernels under memcheck, racecheck
# and initcheck (initcheck never ran on them), one process per tool and kind; (3) the tensor-core forward coverage
# test (every kernel configuration, tc34 / tc37's per tensor step loop and 32-bit scale offsets included) under the
# three tools; (2, before it) the huge-shape tests, uninstrumented; (0) first, fused vs unfused W2A8 at M = 16-128.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s29_call3.sh
source "$(dirname "$0")/prelude.sh"
# (0) ~30 s: where the fused W2A8 kernel stops beating the unfused path now that unpacking is block-wise
# (call 1: unfused 263-274 us at M = 256 on the large shapes against fused 460-1147)
aprobe() {  # $1: label, $2: backends, $3: M list, $4: time limit; the environment passes through
  timeout $4 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" --out "$OUT/a8_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/a8.txt"
  mark "probe $1"
}
BITMM_A8_FUSED=0 aprobe unfused fp16,a8op 16,32,64 40
BITMM_A8_FUSED=1 aprobe fused fp16,a8op 32,128 30
export BITMM_A8_FUSED=1
san_each_kind "tests/test_linear_a8.py tests/test_digits.py" \
  "(fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks) and KIND" 170
unset BITMM_A8_FUSED
(cd /tmp && tar czf "$OUT/san_a8_logs.tgz" san_*.txt && rm -f san_*.txt)
# the tests past 2^31 elements / words, which the sharded suite and the sanitizers skip (BITMM_SKIP_HUGE); with
# BITMM_A8_FUSED unset, test_reliability's W2A8 block takes the fused kernel by default (never run on a GPU)
unset BITMM_SKIP_HUGE
timeout 150 python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -rf -k "past_2_31 or huge" > /tmp/huge.txt 2>&1
{ echo "huge: $(tail -1 /tmp/huge.txt)"; grep -E "^FAILED|^E  " /tmp/huge.txt | head -10; } >> "$OUT/log.txt"
mark huge
san_each_kind tests/test_kernel_coverage.py "forward_every_kernel_configuration and KIND-tensorcore-cuda" 560
(cd /tmp && tar czf "$OUT/san_fwd_logs.tgz" san_*.txt && rm -f san_*.txt)
mark done
cd "$OUT" && tar czf s29_call3.tgz *.json && rm -f *.json
