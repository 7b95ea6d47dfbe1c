#!/usr/bin/env bash
# Session 23 call 3 (the session's last device-seconds): tc28 (per tensor M = 1, two warps along N where N gives every
# SM ~2 32-row CTAs and K <= 8192) checked, and the sanitizer pass of next_s23_call3.sh.
#  1. auto vs fp16 at per tensor M = 1, 2, 3 (A = the rule), BITMM_TC_WN=1 at M = 1 (B: the launch before tc28) and
#     BITMM_TC_WN=2 at M = 2, 3 (C: unmeasured there), A B C twice, one process each, on N = 8192 .. 10240 (shapes
#     the rule takes) and 8192 x 6144 / 14336 x 8192 (shapes it leaves).
#  2. ncu of the tensor-core grad_x kernel at M = 1 (1.83x of fp16 grad @ W; issue 4 asks 4x).
#  3. compute-sanitizer memcheck / racecheck / initcheck over the tensor-core forward coverage test (every launch
#     configuration on small problems, with tc25's typed CM = 1 folding instances, tc26 / tc27's routing), one
#     process per tool and kind, in the background while
#  4. the per tensor / channel tensor-core tests (tc28's own test among them) run in 6 shards.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s23_call3.sh
source "$(dirname "$0")/prelude.sh"
SH=8192x8192,4096x8192,2048x8192,6144x9216,8192x10240,8192x6144,14336x8192
for lab in A1 B1 C1 A2 B2 C2; do
  case ${lab:0:1} in A) e=""; ms=1,2,3;; B) e=BITMM_TC_WN=1; ms=1;; C) e=BITMM_TC_WN=2; ms=2,3;; esac
  env $e timeout 40 python3 bench/decode_probe.py --shapes $SH --kinds ternary,int2,binary --ms $ms --groups none \
    --backends fp16,auto --out "/tmp/pt_$lab.json" 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/pt_wn.txt"
done
cp /tmp/pt_A1.json "$OUT/pt_rule.json"
mark probes
ncu_raw gradx_ternary_m1 gradx_ternary_m1
export BITMM_SKIP_HUGE=1
SCAP=$(( 560 - ($(date +%s) - start) ))
for tool in memcheck racecheck initcheck; do
  for kind in ternary binary int2; do
    kns="--kernel-name kns=bitmm"; extra=""
    # initcheck sees every kernel's writes without the caching allocator (as bench/sanitize.sh); racecheck /
    # initcheck with the tests' cuBLAS baselines on the CPU (cuBLAS's sm_90 GEMMs die under racecheck)
    [ $tool = initcheck ] && kns="" && extra="PYTORCH_NO_CUDA_MEMORY_CACHING=1"
    [ $tool != memcheck ] && extra="$extra BITMM_SAN_NO_CUBLAS=1"
    ( env $extra BITMM_UNDER_SANITIZER=1 timeout -s INT "$SCAP" compute-sanitizer --tool $tool $kns --print-limit 50 python3 -m pytest \
        tests/test_kernel_coverage.py -q -p no:cacheprovider -k "forward_every_kernel_configuration and $kind-tensorcore-cuda" > /tmp/san_${tool}_$kind.txt 2>&1
      echo "== $tool $kind rc=$? t=$(( $(date +%s) - start )): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_${tool}_$kind.txt | tail -1) | reports: $(grep -c -E '^========= +(Invalid|Race|Uninitialized|Error:|Warning:|Program hit)' /tmp/san_${tool}_$kind.txt) | $(tail -1 /tmp/san_${tool}_$kind.txt)" >> /tmp/san_summary.txt ) &
  done
done
SHARDS=6 CAP=240 PYTEST_ARGS="tests/test_tensorcore.py tests/test_tc_launch_rules.py" \
  K_EXPR="per_tensor or two_warps or exact_on_integers or back_to_back or deterministic_and_graph or (matches_reference and (tensor or channel))" \
  source "$(dirname "$0")/gpu_suite_sharded.sh"
wait
cat /tmp/san_summary.txt | tee -a "$OUT/log.txt"
cat /tmp/san_*_*.txt | gzip -c > "$OUT/san_all.txt.gz"
mark sanitizers
