#!/usr/bin/env bash
# Session 28, call 2: the fused W2A8 kernel (BITMM_A8_FUSED=1, M <= 256) on a GPU for the first time, in one call:
# test_linear_a8.py under the configuration rule and in each CTA configuration (CUDA == CPU bit for bit), the fuzz;
# the timing (fp16 / auto / a8op fused / a8 fused with absmax_int8 per call, M = 1 / 4 / 16 / 64 / 256, four shapes,
# three kinds); compute-sanitizer memcheck / racecheck over the fused and digits sanitizer cases.
# Predicted (session 26): ternary 8192 x 28672 M = 1 a8op ~20-25 us, binary ~15-18 us; M = 16 ~1.3-2x M = 1.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s28_call2.sh
source "$(dirname "$0")/prelude.sh"
left() { echo $(( 585 - ($(date +%s) - start) )); }
T="python3 -m pytest -q -p no:cacheprovider -rf"
run_t() { local name=$1 lim=$2; shift 2; timeout $lim "$@" > /tmp/$name.txt 2>&1
  { echo "$name: $(tail -1 /tmp/$name.txt)"; grep -E "^FAILED|^E  " /tmp/$name.txt | head -20; } >> "$OUT/log.txt"; mark "$name"; }
BITMM_A8_FUSED=1 run_t a8_fused_rule 110 $T tests/test_linear_a8.py
for c in 1 2 3; do BITMM_A8_FUSED=1 BITMM_A8_CFG=$c run_t a8_fused_cfg$c 45 $T tests/test_linear_a8.py -k "bitwise or fused or exact"; done
BITMM_A8_FUSED=1 BITMM_FUZZ_EXAMPLES=200 run_t a8_fuzz 45 $T tests/test_reliability.py -k fuzz_linear_a8
BITMM_A8_FUSED=1 timeout 150 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 \
  --kinds ternary,int2,binary --ms 1,4,16,64,256 --groups none --backends fp16,auto,a8op,a8 --out "$OUT/a8f_rule.json" 2>&1 \
  | grep " us" >> "$OUT/a8f.txt"
mark probe
SK="fused_sanitizer_cases or digits_sanitizer_cases"
for tool in memcheck racecheck; do
  [ $(left) -lt 60 ] && { echo "sanitizer $tool: skipped (time)" >> "$OUT/log.txt"; continue; }
  BITMM_A8_FUSED=1 BITMM_UNDER_SANITIZER=1 timeout $(( $(left) - 20 < 100 ? $(left) - 20 : 100 )) compute-sanitizer --tool $tool \
    --kernel-name kns=bitmm --print-limit 20 $T tests/test_linear_a8.py tests/test_digits.py -k "$SK" > /tmp/san_$tool.txt 2>&1
  echo "== $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_$tool.txt | tail -1) | $(tail -1 /tmp/san_$tool.txt)" >> "$OUT/log.txt"
  grep -E "^========= +(Invalid|Race|Uninitialized|Error)" /tmp/san_$tool.txt | sort | uniq -c | head -5 >> "$OUT/log.txt"
done
mark done
