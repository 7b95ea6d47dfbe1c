#!/usr/bin/env bash
# Session 28, call 3: what limits the fused int8 kernel (calls 1-2: W2A8 fused M = 1 beats auto on every shape, but
# M = 4-256 on K = 28672 and M = 16 everywhere are 2-10x slower than M = 1; digits M = 1 = a8op M = 4 + ~3 us).
#  1. the unfused W2A8 path (torch's int8 GEMM on unpacked codes) at M = 1-256: the crossover for kA8MaxM;
#  2. each CTA configuration of the fused kernel at M = 1 / 4 / 16, also with 8 / 4 x rows per CTA (BITMM_A8_CHUNK);
#     digits and a8 with PDL off;
#  3. B: next_s28_stage4.patch (4 staging units per thread in flight) tested and timed;
#  4. ncu (on B): a8 fused ternary / binary M = 1, ternary M = 4 on long K, M = 16; digits M = 1 (x_digits + the kernel).
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s28_call3.sh
source "$(dirname "$0")/prelude.sh"
left() { echo $(( 585 - ($(date +%s) - start) )); }
aprobe() {  # $1: label, $2: backends, $3: M list, $4: time limit; the environment passes through
  timeout $4 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" --out "$OUT/a8_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/a8.txt"
  mark "probe $1"
}
# the W2A8 tests under the new default (fused for M <= 4) and with the fused kernel off (the unfused route, every M)
T="python3 -m pytest -q -p no:cacheprovider -rf"
timeout 60 $T tests/test_linear_a8.py > /tmp/a8_default.txt 2>&1
{ echo "a8 default: $(tail -1 /tmp/a8_default.txt)"; grep -E "^FAILED|^E  " /tmp/a8_default.txt | head; } >> "$OUT/log.txt"
BITMM_A8_FUSED=0 timeout 60 $T tests/test_linear_a8.py > /tmp/a8_off.txt 2>&1
{ echo "a8 fused off: $(tail -1 /tmp/a8_off.txt)"; grep -E "^FAILED|^E  " /tmp/a8_off.txt | head; } >> "$OUT/log.txt"
mark "a8 tests"
BITMM_A8_FUSED=0 aprobe unfused fp16,a8op 1,4,16,64,256,1024,4096 120
for c in 1 2 3; do BITMM_A8_FUSED=1 BITMM_A8_CFG=$c aprobe cfg$c fp16,a8op,digits 1,4,16 40; done
# fewer x rows per CTA (BITMM_A8_CHUNK: more CTAs per SM, the weights read once per chunk): a8op M = 16, digits M = 4
for n in 8 4; do for c in 1 2 3; do BITMM_A8_FUSED=1 BITMM_A8_CFG=$c BITMM_A8_CHUNK=$n aprobe chunk${n}_cfg$c a8op,digits 4,16 30; done; done
BITMM_A8_FUSED=1 BITMM_A8_PDL=0 aprobe nopdl fp16,a8,digits 1,4 40
# B: 4 staging units per thread in flight instead of 2 (next_s28_stage4.patch; the prologue's round trips halved)
apply_and_rebuild bench/device_calls/next_s28_stage4.patch stage4
BITMM_A8_FUSED=1 timeout 60 $T tests/test_linear_a8.py -k "few_rows or fused" > /tmp/a8_b.txt 2>&1
{ echo "stage4 tests: $(tail -1 /tmp/a8_b.txt)"; grep -E "^FAILED|^E  " /tmp/a8_b.txt | head; } >> "$OUT/log.txt"
BITMM_A8_FUSED=1 aprobe stage4 fp16,a8op,digits 1,4,16 40
for c in a8_ternary_m4_longk a8_ternary_m1 a8_ternary_m16 digits_ternary_m1 a8_binary_m1; do
  [ $(left) -gt 70 ] && BITMM_A8_FUSED=1 ncu_raw $c $c
done
mark done
# (at most 8 files come back: the JSON and ncu pages in one archive)
cd "$OUT" && tar czf s28_call3.tgz *.json ncu_*.txt && rm -f *.json ncu_*.txt
