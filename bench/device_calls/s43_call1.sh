#!/usr/bin/env bash
# Session 43 call 1: wg16 (the wgmma kernel scales per tensor / channel sums without an offset in the epilogue instead
# of folding s into every unpacked pair; s43_wg16.patch): A/B on one machine, base = the tree with the patch reversed,
# forced wgmma and fp16 F.linear, per tensor (fp32 s, no offset: the benchmark's per tensor case), fp16 and bf16 x,
# M = 17 / 33 / 64 / 256 / 1024 on four shapes, plus the tensor-core kernel at M = 17 / 33 (auto's band); then the
# wgmma tests on the new build, and the per tensor grid through auto at M = 64 / 256 / 1024 / 4096 for h100.json.
cd "$(dirname "$0")/../.."
patch -R -p1 < bench/device_calls/s43_wg16.patch > /dev/null || exit 1
source bench/device_calls/prelude.sh
ab_probe() {  # $1: label
  for dt in float16 bfloat16; do
    timeout 90 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none --rounds 2 \
      --shapes 8192x28672,8192x8192,28672x8192,4096x4096 --ms 17,33,64,256,1024 --backends fp16,wgmma \
      --out "$OUT/wg16_${dt}_$1.json" 2>&1 | grep " us" > /dev/null
    mark "wg16 probe $dt $1"
  done
}
ab_probe base
apply_and_rebuild bench/device_calls/s43_wg16.patch wg16
ab_probe wg16
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 8192x28672,8192x8192,28672x8192,4096x4096 --ms 17,20,24,33 --backends tensorcore,wgmma \
  --out "$OUT/wg16_band_float16.json" 2>&1 | grep " us" > /dev/null
mark "band"
run_tests "tests/test_wgmma.py tests/test_wg_plan.py" "not ws_matches" "test_wgmma + wg_plan -k 'not ws_matches'" 200
timeout 120 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --rounds 2 \
  --shapes 4096x4096,8192x8192,8192x28672,28672x8192 --ms 64,256,1024,4096 --backends fp16,auto \
  --out "$OUT/h100_s43_auto_grid.json" 2>&1 | grep " us" > /tmp/grid.txt
mark "grid ($(wc -l < /tmp/grid.txt) lines)"
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
