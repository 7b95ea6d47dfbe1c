#!/usr/bin/env bash
# Session 28, call 4 (NOT RUN: the machine was taken back mid-call and the session's device time ran out; for
# the next session; it applies next_unpack_blocks.patch itself, which session 28 took back out of generic.cu because it
# never ran on a GPU): the fitted launch rule (a8_fragments.h pick_config), 4 staging
# units per thread for two-plane kinds, the fused W2A8 kernel by default up to M = 64, and the block-wise CUDA unpack
# kernel (next_unpack_blocks.patch): tests, then the timing (the rule's a8op / digits against fp16 and
# auto at M = 1-64, a8op at M = 256, the unfused path at M = 1024 / 4096 with the new unpack), then memcheck.
# Predicted from call 3's per-configuration times: the rule within ~2% of the best configuration per case (e.g.
# ternary 8192^2 M = 16 56 -> ~15 us, 28672 x 8192 M = 4 88 -> ~37 us); unpack 8192 x 28672 from ~800 us to
# ~100 us (235 MB written), so the unfused path at M = 4096 from 3.0 ms to ~2.3 ms.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/next_s28_call4.sh
patch -p1 -N < "$(dirname "$0")/next_unpack_blocks.patch" > /dev/null || exit 1  # (before the build)
source "$(dirname "$0")/prelude.sh"
left() { echo $(( ${BITMM_CALL_S:-300} - ($(date +%s) - start) )); }  # (BITMM_CALL_S: the device time the call may take)
T="python3 -m pytest -q -p no:cacheprovider -rf"
run_t() { local name=$1 lim=$2; shift 2; timeout $lim "$@" > /tmp/$name.txt 2>&1
  { echo "$name: $(tail -1 /tmp/$name.txt)"; grep -E "^FAILED|^E  " /tmp/$name.txt | head -12; } >> "$OUT/log.txt"; mark "$name"; }
run_t a8_default 50 $T tests/test_linear_a8.py
BITMM_A8_FUSED=1 run_t a8_fused 50 $T tests/test_linear_a8.py
run_t digits 60 $T tests/test_digits.py
run_t formats 60 $T tests/test_formats.py tests/test_reliability.py -k "unpack or pack or fuzz_linear_a8"
aprobe() {  # $1: label, $2: backends, $3: M list, $4: time limit; the environment passes through
  timeout $4 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192,4096x4096 --kinds ternary,int2,binary \
    --ms "$3" --groups none --backends "$2" --out "$OUT/a8_$1.json" 2>&1 | grep " us" | sed "s/^/$1 /" >> "$OUT/a8.txt"
  mark "probe $1"
}
aprobe rule fp16,auto,a8op,a8,digits 1,4,16,64 60
BITMM_A8_FUSED=1 aprobe m256 fp16,a8op 256 30
BITMM_A8_FUSED=0 aprobe unfused fp16,a8op 256,1024,4096 60
[ $(left) -gt 80 ] && BITMM_A8_FUSED=1 BITMM_UNDER_SANITIZER=1 timeout $(( $(left) - 20 )) compute-sanitizer --tool memcheck \
  --kernel-name kns=bitmm --print-limit 20 $T tests/test_linear_a8.py tests/test_digits.py -k "fused_sanitizer_cases or digits_sanitizer_cases or short_chunks" \
  > /tmp/san.txt 2>&1; echo "== memcheck: $(grep -E 'ERROR SUMMARY' /tmp/san.txt | tail -1) | $(tail -1 /tmp/san.txt)" >> "$OUT/log.txt"
mark done
cd "$OUT" && tar czf s28_call4.tgz *.json && rm -f *.json
