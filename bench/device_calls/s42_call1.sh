#!/usr/bin/env bash
# Session 42 call 1 (prepared in session 41 as next_s42_call1.sh, run split in two: this and s42_call2.sh):
# (4) the A/B of wg14 + tc48 (landed unmeasured; s41_unpack.patch): bf16 pairs widened from the 32-bit word, int2's
# unpack as one LOP3; base = the tree with the patch reversed; forced wgmma (bf16 and fp16 x, per tensor / g64,
# M = 24-1024) and the tensor-core kernel (int2 fp16, M = 1 / 4 / 16), each build timed with F.linear beside it;
# (5) wg15: two CTAs per SM at 64-row tiles (BITMM_WG_PAIR=1) against the default, and BITMM_WG_WS=0 as a control;
# (2) tc46 / tc47's unmeasured bounds (grouped M = 21-23 / 29-31, split shapes 4096 x 8192, 16384 x 8192, 8192 x 6144).
cd "$(dirname "$0")/../.."
patch -R -p1 < bench/device_calls/s41_unpack.patch > /dev/null || exit 1
source bench/device_calls/prelude.sh
ab_probe() {  # $1: label
  for dt in bfloat16 float16; do
    timeout 70 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none,64 --rounds 2 \
      --shapes 8192x28672,8192x8192 --ms 24,64,256,1024 --backends fp16,wgmma \
      --out "$OUT/unpack_wg_${dt}_$1.json" 2>&1 | grep " us" > /dev/null
  done
  timeout 60 python3 bench/decode_probe.py --kinds int2 --groups none,64 --rounds 3 \
    --shapes 8192x28672,8192x8192 --ms 1,4,16 --backends fp16,tensorcore \
    --out "$OUT/unpack_tc_$1.json" 2>&1 | grep " us" > /dev/null
  mark "unpack probe $1"
}
ab_probe base
apply_and_rebuild bench/device_calls/s41_unpack.patch unpack
ab_probe unpack
# (5) wg15: two CTAs per SM at 64-row tiles (BITMM_WG_PAIR=1) against the default, forced wgmma, each in its own process
# (PAIR=1 runs the CTA-barrier pipeline: "cta" isolates the second CTA per SM from the pipeline change)
for pr in 0 1 cta; do
  if [ $pr = cta ]; then ev="BITMM_WG_WS=0 BITMM_WG_PAIR=0"; else ev="BITMM_WG_PAIR=$pr"; fi
  env $ev timeout 80 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64 --rounds 2 \
    --shapes 8192x28672,28672x8192,8192x8192,4096x28672 --ms 17,33,64,128 --backends fp16,wgmma \
    --out "$OUT/pair_$pr.json" 2>&1 | grep " us" > /dev/null
  mark "pair probe $pr"
done
for dt in float16 bfloat16; do
  timeout 60 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2 --groups 64,128 --rounds 2 \
    --shapes 8192x28672,4096x28672 --ms 21,22,23,29,30,31 --backends tensorcore,wgmma \
    --out "$OUT/grouped_band_$dt.json" 2>&1 | grep " us" >> /tmp/grouped_band.txt
  mark "grouped band $dt"
  timeout 80 python3 bench/decode_probe.py --dtype $dt --kinds ternary,int2,binary --groups none --rounds 2 \
    --shapes 4096x8192,16384x8192,8192x6144 --ms 17,18,20,22,24 --backends tensorcore,wgmma \
    --out "$OUT/split_other_$dt.json" 2>&1 | grep " us" >> /tmp/split_other.txt
  mark "split other shapes $dt"
done
(cd "$OUT" && tar czf probes.tgz *.json && rm -f *.json); cat "$OUT/log.txt"
