#!/usr/bin/env bash
# Session 50, call 1 (the prepared next_s50_call1.sh's tests and sweep, then next_s50_call2.sh's wgx2a A/B, in one call; the
# sanitizer units move to a call of their own, s50_san.sh):
# 0. The wgmma grad_x kernel as auto's grad_x: its tests with session 49's last changes (256-row tiles from M = 129,
#    the fold to M = 256; the dispatch checks at M = 256 / 257 have not run on a GPU), the grad_x suites.
# 1. The rule's untimed cases: tensorcore / dense / wgmma / fp16 at M = 160-1024, ternary / binary, per tensor and
#    g64, 8192 x 28672 / 8192^2 / 28672 x 8192 (gx_sweep.json); the plan's tiles at M = 512 / 1024 (gx_bm.tgz).
# 1b. ncu of the kernel at M = 64 per tensor before and after the patch (as time allows).
# 2. wgx2a (next_s50_wgx2a.patch): 64-row tiles at two CTAs per SM, against the base build in the same machine.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests" 150
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites" 150
common=(--direction backward --rounds 2)
timeout 120 python3 bench/decode_probe.py "${common[@]}" --kinds ternary,binary --groups none,64 \
  --shapes 8192x28672,8192x8192,28672x8192 --ms 160,192,256,384,512,768,1024 \
  --backends fp16,tensorcore,dense,wgmma --out "$OUT/gx_sweep.json" > /tmp/gs.txt 2>&1
mark "grad_x sweep rc=$? $(tail -1 /tmp/gs.txt)"
for bm in 128 256; do
  BITMM_GX_WG_BM=$bm timeout 40 python3 bench/decode_probe.py "${common[@]}" --kinds ternary \
    --groups none,64 --shapes 8192x28672 --ms 512,1024 --backends fp16,wgmma --out "$OUT/gx_bm$bm.json" > /tmp/gbm.txt 2>&1
  mark "grad_x BM=$bm rc=$? $(tail -1 /tmp/gbm.txt)"
done
# ncu of the kernel at M = 64 (stall reasons), base build, if the call has time for it (then again after the patch)
[ $(( $(date +%s) - start )) -lt 300 ] && ncu_raw wgx_ternary_m64 wgx_m64_base
tar czf "$OUT/gx_bm.tgz" -C "$OUT" gx_bm128.json gx_bm256.json && rm -f "$OUT"/gx_bm{128,256}.json
ab=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192,4096x4096
    --ms 16,32,48,64 --backends fp16,tensorcore,wgmma)
timeout 90 python3 bench/decode_probe.py "${ab[@]}" --out "$OUT/wgx2a_base.json" > /tmp/pb.txt 2>&1
mark "base rc=$? $(tail -1 /tmp/pb.txt)"
apply_and_rebuild bench/device_calls/next_s50_wgx2a.patch wgx2a
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests (wgx2a)" 120
timeout 90 python3 bench/decode_probe.py "${ab[@]}" --out "$OUT/wgx2a_new.json" > /tmp/pn.txt 2>&1
mark "wgx2a rc=$? $(tail -1 /tmp/pn.txt)"
[ $(( $(date +%s) - start )) -lt 500 ] && ncu_raw wgx_ternary_m64 wgx_m64_wgx2a
python3 bench/probe_ab.py "$OUT/wgx2a_base.json" "$OUT/wgx2a_new.json" > "$OUT/wgx2a_ab.txt" 2>&1
python3 bench/probe_ab.py --backends tensorcore wgmma "$OUT/wgx2a_new.json" >> "$OUT/wgx2a_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx2a_ab.txt" | head -40 >> "$OUT/log.txt"
cat "$OUT/log.txt"
