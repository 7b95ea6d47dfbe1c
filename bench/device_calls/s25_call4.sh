#!/usr/bin/env bash
# Prepared in session 24 (for whichever session has ~450 device-seconds to spare): the two forward step-loop patches,
# A/B in one machine.  next_s25_fw_overhead.patch (tc34: the per tensor step loop's issue counter in 32 bits and x's
# fragment offset per lane) and next_s25_scale_offsets32.patch (tc37, applies after it: the RN = 1 group-wise
# kernels' scale offsets in 32 bits).  sm_90a SASS (bench/NOTES.md, plan item 4): per tensor M = 1 step loop 235 ->
# 224 instructions (fp16 ternary / int2), block-diagonal int2 g64 M = 1 783 -> 736 per two-step loop body.
# Predicted 2-6% at per tensor M = 1..3 and group-wise M = 1, 2 (fp16 and bf16), nothing elsewhere.
# A = HEAD, B = both patches, then A2 / B2 (patches reversed and re-applied, rebuilt): the machine's drift shows as
# A2 / A and B2 / B.  Then the per tensor / block-diagonal / exact tests on B.
# Run as: BITMM_COMMIT=<sha> [DEADLINE=<s, default 585>] bash bench/device_calls/s25_call4.sh
source "$(dirname "$0")/prelude.sh"
P1=bench/device_calls/next_s25_fw_overhead.patch P2=bench/device_calls/next_s25_scale_offsets32.patch  # landed in session 25; the patch files: git show ec5d1a3:<path>
fprobe() {  # $1: label
  timeout 60 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms 1,2,4 --groups none,64 --backends fp16,auto --out "/tmp/fw_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/fw.txt"
  mark "probe $1"
}
fprobe A
patch -p1 < $P1 > /dev/null || { mark "patch failed"; exit 1; }
apply_and_rebuild $P2 B
fprobe B
patch -R -p1 < $P2 > /dev/null && patch -R -p1 < $P1 > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1 \
  && mark build-A2 && fprobe A2 && patch -p1 < $P1 > /dev/null && apply_and_rebuild $P2 B2 && fprobe B2
(cd /tmp && tar czf "$OUT/fw_json.tgz" fw_*.json)
SHARDS=8 CAP=$(( ${DEADLINE:-585} - ($(date +%s) - start) )) LABEL="final " \
  PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_tc_launch_rules.py" \
  K_EXPR="per_tensor or block_diagonal or exact or every or rules" source "$(dirname "$0")/gpu_suite_sharded.sh"
