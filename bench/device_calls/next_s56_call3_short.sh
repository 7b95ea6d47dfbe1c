#!/usr/bin/env bash
# Session 56, last start on ~360 s of device time (a start spends most of it): the ring-depth sweep at M = 1 on the two
# largest shapes (per tensor, three kinds; BITMM_TC_STAGES against the rule's 3 slots), then cudagraph_pool_probe's
# control under memcheck (bits 0: the unconverted net, no bitmm op; the converted one fails there, plain passes).
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
for st in 0 6 4 2; do
  BITMM_TC_STAGES=$st timeout 40 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 3 \
    --shapes 16384x53248,8192x28672 --ms 1 --backends fp16,tensorcore --out "$OUT/st_$st.json" > "$OUT/st_$st.txt" 2>&1
  echo "stages $st: $(grep tensorcore "$OUT/st_$st.txt" | awk '{print $1, $2, $6}' | tr '\n' ' ')" >> "$OUT/log.txt"
  mark "stages $st"
done
BITMM_UNDER_SANITIZER=1 timeout 100 compute-sanitizer --tool memcheck --kernel-name kns=bitmm --print-limit 20 \
  python3 bench/cudagraph_pool_probe.py 0 > "$OUT/pool_mc_control.txt" 2>&1; echo "rc=$?" >> "$OUT/pool_mc_control.txt"
grep -E "^ok|FAILED|leaked block|replays|ERROR SUMMARY|rc=" "$OUT/pool_mc_control.txt" | head -14 >> "$OUT/log.txt"
mark "pool control memcheck"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json)
pack_out
cat "$OUT/log.txt"
