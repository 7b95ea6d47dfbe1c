#!/usr/bin/env bash
# Session 34, call 4: the H100's own dispatch check.  Call 3 (h100_s34_fw.json) showed rule-made losses that the
# H200 runs the rules were tuned on did not (e.g. binary per tensor 8192x28672: M = 1 33.2 us, M = 4 25.3), so
# each backend and the rules' env knobs, with the kernel family each case ran (decode_probe's "kernel"):
#   pt:   per tensor M = 1, 2, 4: fp16, auto, tensorcore, addsub, digits; 3 kinds x 4 shapes
#   rn2:  auto with BITMM_TC_RN2_FROM=1 (RN = 2 tiles from M = 1), and with BITMM_TC_M8=1 as well (CM = 2)
#   g64:  group-wise M = 1, 2, 4: auto, tensorcore, addsub
#   mid:  M = 16, 64, 256: auto, tensorcore, wgmma, dense on 8192x28672 and 8192x8192, per tensor and g64
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call4.sh
source "$(dirname "$0")/prelude.sh"
S=8192x28672,8192x8192,4096x4096,28672x8192
probe() {  # $1: label, $2: time limit, rest: decode_probe args
  local l=$1 t=$2; shift 2
  timeout $t python3 bench/decode_probe.py --kinds ternary,int2,binary "$@" --out "$OUT/p_$l.json" > /tmp/p_$l.txt 2>&1
  mark "$l ($(grep -c ' us' /tmp/p_$l.txt) lines) $(grep -vE ' us|^wrote' /tmp/p_$l.txt | tail -2 | tr '\n' ' ')"
}
probe pt 120 --shapes $S --groups none --ms 1,2,4 --backends fp16,auto,tensorcore,addsub,digits
BITMM_TC_RN2_FROM=1 probe rn2 60 --shapes $S --groups none --ms 1,2,4 --backends fp16,auto
BITMM_TC_RN2_FROM=1 BITMM_TC_M8=1 probe rn2cm2 60 --shapes $S --groups none --ms 1,2,4 --backends fp16,auto
probe g64 120 --shapes $S --groups 64 --ms 1,2,4 --backends fp16,auto,tensorcore,addsub
probe mid 150 --shapes 8192x28672,8192x8192 --groups none,64 --ms 16,64,256 --backends fp16,auto,tensorcore,wgmma,dense
cd "$OUT" && tar czf s34_call4.tgz p_*.json && rm -f p_*.json
