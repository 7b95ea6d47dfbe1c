#!/usr/bin/env bash
# Session 32: next_s29_call3.sh fitted to what is left of the device budget: END (seconds from the start, default
# 560) is the last deadline; PROBES=1 also runs its fused vs unfused W2A8 probes first (~70 s).  In order:
# (1) the fused W2A8 and digits kernels under memcheck / racecheck / initcheck, one process per tool and kind;
# (2) the huge-shape tests (past 2^31 elements / words), uninstrumented; (3) the tensor-core forward coverage test
# (every kernel configuration; tc34 / tc37's step loop and 32-bit offsets) under the three tools.
# Run as: BITMM_COMMIT=<sha> END=480 bash bench/device_calls/next_s32_call2.sh
source "$(dirname "$0")/prelude.sh"
END=${END:-560}
if [ "${PROBES:-0}" = 1 ]; then
  aprobe() {  # $1: label, $2: backends, $3: M list, $4: time limit
    timeout $4 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
      --ms "$3" --groups none --backends "$2" --out "$OUT/a8_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/a8.txt"
    mark "probe $1"
  }
  BITMM_A8_FUSED=0 aprobe unfused fp16,a8op 16,32,64 40
  BITMM_A8_FUSED=1 aprobe fused fp16,a8op 32,128 30
fi
now() { echo $(( $(date +%s) - start )); }
# (1) ~100 s
export BITMM_A8_FUSED=1
san_each_kind "tests/test_linear_a8.py tests/test_digits.py" \
  "(fused_sanitizer_cases or fused_short_chunks or digits_sanitizer_cases or digits_cuda_short_chunks) and KIND" \
  $(( $(now) + 110 ))
unset BITMM_A8_FUSED
(cd /tmp && tar czf "$OUT/san_a8_logs.tgz" san_*.txt && rm -f san_*.txt)
# (2) the tests past 2^31 elements / words, which the sharded suite and the sanitizers skip (BITMM_SKIP_HUGE); with
# BITMM_A8_FUSED unset, test_reliability's W2A8 block takes the fused kernel by default
unset BITMM_SKIP_HUGE
timeout $(( END - $(now) > 150 ? 150 : END - $(now) - 20 )) python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -rf -k "past_2_31 or huge" > /tmp/huge.txt 2>&1
{ echo "huge: $(tail -1 /tmp/huge.txt)"; grep -E "^FAILED|^E  " /tmp/huge.txt | head -10; } >> "$OUT/log.txt"
mark huge
# (3) what is left
[ $(( END - $(now) )) -gt 60 ] && san_each_kind tests/test_kernel_coverage.py "forward_every_kernel_configuration and KIND-tensorcore-cuda" $END
(cd /tmp && ls san_*.txt > /dev/null 2>&1 && tar czf "$OUT/san_fwd_logs.tgz" san_*.txt && rm -f san_*.txt)
mark done
cd "$OUT" && ls *.json > /dev/null 2>&1 && tar czf s32_call2.tgz *.json && rm -f *.json
exit 0
