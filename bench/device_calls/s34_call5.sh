#!/usr/bin/env bash
# Session 34, call 5: call 3's H100 target grid again with decode_probe --rounds 3 (every backend 3 times per case,
# order alternating, median kept): call 4 showed the first backend timed after a weight set read 7-15% high at M = 1.
#   fw:  auto vs fp16, 3 kinds x {per tensor, g64} x 4 shapes x M in {1, 4, 16, 64, 256, 1024, 4096}
#   dg:  per tensor M = 1, 2: auto, tensorcore, digits (is digits' H200 "never" right on the H100?)
#   bw:  grad_x auto vs fp16 grad_y @ W, 8192x28672 and 8192x8192, M in {1, 4, 16}
#   a8:  W2A8 (linear_a8 on x quantized once) per tensor 8192x28672 M in {1, 4, 16, 64, 1024, 4096}
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call5.sh
source "$(dirname "$0")/prelude.sh"
S=8192x28672,8192x8192,4096x4096,28672x8192
probe() {  # $1: label, $2: time limit, rest: decode_probe args
  local l=$1 t=$2; shift 2
  timeout $t python3 bench/decode_probe.py --kinds ternary,int2,binary --rounds 3 "$@" --out "$OUT/h100_s34_$l.json" > /tmp/p_$l.txt 2>&1
  mark "$l ($(grep -c ' us' /tmp/p_$l.txt) lines) $(grep -vE ' us|^wrote' /tmp/p_$l.txt | tail -2 | tr '\n' ' ')"
}
probe fw 240 --shapes $S --groups none,64 --ms 1,4,16,64,256,1024,4096 --backends fp16,auto
probe dg 90 --shapes $S --groups none --ms 1,2 --backends fp16,auto,tensorcore,digits
probe bw 90 --direction backward --shapes 8192x28672,8192x8192 --groups none,64 --ms 1,4,16 --backends fp16,auto
probe a8 90 --shapes 8192x28672 --groups none --ms 1,4,16,64,1024,4096 --backends fp16,a8op
