#!/usr/bin/env bash
# Session 28, call 1 (the device start cost ~3 min of the budget: one call for the digits backend's correctness and
# timing together, rather than next_a8_fused.sh's PART=tests and PART=digits): test_digits.py (CUDA ==
# reference.linear_digits bit for bit, kernels taken, graphs, grad_x), the non-finite policy under digits; then
# decode_probe fp16 / auto / digits per tensor M = 1 / 4 / 16 / 64, four shapes, three kinds; grad_x through the
# transposed forward (t_auto / t_digits); bench/digits_rule.py's table.
# Predicted (session 27): ternary 8192 x 28672 M = 1 18-25 us (auto 31.4 us on H200, session 25); M = 4 22-30 us;
# M = 16 no better than auto.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s28_call1.sh
source "$(dirname "$0")/prelude.sh"
left() { echo $(( 585 - ($(date +%s) - start) )); }
T="python3 -m pytest -q -p no:cacheprovider -rf"
timeout 170 $T tests/test_digits.py > /tmp/digits_tests.txt 2>&1
{ echo "digits tests: $(tail -1 /tmp/digits_tests.txt)"; grep -E "^FAILED|^E  " /tmp/digits_tests.txt | head -30; } >> "$OUT/log.txt"
cp /tmp/digits_tests.txt "$OUT/digits_tests.txt"
mark "digits tests"
timeout 50 $T tests/test_reliability.py -k "nonfinite and digits" > /tmp/dnf.txt 2>&1
{ echo "digits nonfinite: $(tail -1 /tmp/dnf.txt)"; grep -E "^FAILED|^E  " /tmp/dnf.txt | head -10; } >> "$OUT/log.txt"
mark "digits nonfinite"
dprobe() {  # $1: label, $2: backends, $3: M list, $4: time limit, $5: extra decode_probe arguments
  timeout $4 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" ${5:-} --out "$OUT/digits_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/digits.txt"
  mark "digits $1"
}
dprobe rule fp16,auto,digits 1,4,16,64 $(( $(left) - 110 ))
dprobe bwd fp16,auto,t_auto,t_digits 1,4 $(( $(left) - 15 )) "--direction backward --shapes 8192x28672 --kinds ternary,binary"
python3 bench/digits_rule.py "$OUT"/digits_rule.json "$OUT"/digits_bwd.json > "$OUT/digits_table.txt" 2>&1
mark done
