#!/usr/bin/env bash
# Session 44 call 5 (the last ~350 s of device time): (1) the new wgmma tests: column-major (stride (1, N)) group-wise
# s / u, and the K-split pair test in its sanitizer-safe form; (2) a knob-free probe of the group-wise scale layout at
# large M: the wgmma kernel's scale warps load row n0 + lane of one group per lane, so with contiguous (N, G) scales a
# warp's 32 loads touch 32 sectors (256 B apart at G = 128), with (G, N) storage (an (N, G) view of stride (1, N)) two.
# 8192 x 28672 at M = 1024 g64 reads ~940 MB of scale sectors from L2 (4 x tiles x 28672 rows x 128 groups x 2 x 32 B)
# against 14.7 MB of scales: if L2 bandwidth is part of g64's gap to per tensor (831 vs 664 us), gn is faster.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests tests/test_wgmma.py "column_major or doubled_k_splits" "wgmma column-major scales + pair split" 120
for lay in ng gn; do
  timeout 80 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64 --rounds 2 --scale-layout $lay \
    --shapes 8192x28672,28672x8192 --ms 256,1024 --backends fp16,wgmma \
    --out "$OUT/scale_layout_$lay.json" 2>&1 | grep " us" > /dev/null
  mark "scale layout $lay"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
