#!/usr/bin/env bash
# Prepared in session 37 (not run): s39_scales2.patch, the wgmma kernel's group-wise s / u loaded two stages
# ahead (double-buffered by stage parity) instead of one.  Why: at M = 256-1024 group-wise runs 15-25% behind per
# tensor on the same kernel and plan (H100, session 37 call 7, 8192 x 28672 M = 1024: ternary g64 969 vs 761 us, int2
# 954 vs 813, binary 875 vs 774), yet a stage's extra work for the groups is ~30 instructions per thread against
# ~1000 tensor-core cycles; the likely cost is a stage waiting for its scales (loaded one stage before, from DRAM: each
# scale row is read by M / 256 CTAs at different times), with one CTA of two consumer warpgroups per SM and no other
# warps to cover the wait.  ptxas (sm_90a, local): GM 1 +4-8 and GM 2 +6-12 registers per thread (max 224), no
# spills; per tensor instances unchanged.  Prediction: g64 M = 1024 5-15% faster, M = 256 a few %; per tensor equal
# (control for the rebuild).  (a) base; (b) patched: test_wgmma.py in 6 shards (~50 s), then the same probe.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s39_scales2.sh
source "$(dirname "$0")/prelude.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 >> "$OUT/log.txt"
probe() {  # $1: label
  timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none,64,128 --rounds 3 \
    --shapes 8192x28672,28672x8192,8192x8192 --ms 256,1024 --backends fp16,wgmma --out "$OUT/s2_$1.json" 2>&1 \
    | grep " us" | sed "s/^/$1 /" >> "$OUT/scales2.txt"
  mark "probe $1"
}
probe base
apply_and_rebuild bench/device_calls/s39_scales2.patch scales2
PYTEST_ARGS="tests/test_wgmma.py" SHARDS=6 CAP=200 LABEL="wgmma tests " source "$(dirname "$0")/gpu_suite_sharded.sh"
probe patched
