#!/usr/bin/env bash
# Session 57, one call on what is left after four refused starts (~600 s):
#   S57_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/s57_call1.sh (ran as next_s57_call1.sh)
# S57_END: the seconds this command may take (default 560; the call's timeout_s a little above it).
# 1. cudagraph_pool_probe under memcheck: bits 0 (the unconverted net, no bitmm op: is the leak bitmm's?) and bits 2
#    (the test's failure, now with the Python objects that hold each leaked block: _print_holders).
# 2. The rest of memcheck over cover3 (session 56's next_s57_memcheck.sh: 626 tests, 16 hash units, two at once) to S57_END - 60.
# 3. If time is left: the ring depth at M = 1 (BITMM_TC_STAGES=6 against the rule's 3; prediction, session 56: 6 slots
#    beat 3 by 5-15% on 16384 x 53248 if bytes in flight bind).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
pool_mc() {  # $1: label, $2: bits
  BITMM_UNDER_SANITIZER=1 timeout 110 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
    python3 bench/cudagraph_pool_probe.py $2 > "$OUT/pool_mc_$1.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_mc_$1.txt"
  echo "== pool probe memcheck $1" >> "$OUT/log.txt"
  grep -E "^ok|FAILED|leaked block|live tensors|referrers|replays|ERROR SUMMARY|rc=" "$OUT/pool_mc_$1.txt" | cut -c1-400 | head -24 >> "$OUT/log.txt"
  mark "pool $1"
}
pool_mc control 0 &
pool_mc bits2 2 &
END=${S57_END:-560}
# (beside the two probes: a memcheck unit takes ~20 GiB, two at once and the probes' small net fit the H100's 79 GiB)
san_tail "$(for i in $(seq 0 15); do printf "memcheck:%d/16@cover3 " $i; done)" $(( END - 60 ))
wait
for st in 0 6; do
  [ $(( $(date +%s) - start )) -gt $(( END - 40 )) ] && break
  BITMM_TC_STAGES=$st timeout 30 python3 bench/decode_probe.py --kinds ternary,int2 --groups none --rounds 3 \
    --shapes 16384x53248,8192x8192 --ms 1 --backends fp16,tensorcore --out "$OUT/st_$st.json" > "$OUT/st_$st.txt" 2>&1
  echo "stages $st: $(grep tensorcore "$OUT/st_$st.txt" | awk '{print $1, $2, $6}' | tr '\n' ' ')" >> "$OUT/log.txt"
  mark "stages $st"
done
(cd "$OUT" && ls *.json > /dev/null 2>&1 && tar czf probes.tgz *.json && rm -f *.json)
pack_out
cat "$OUT/log.txt"
