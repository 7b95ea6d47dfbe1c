#!/usr/bin/env bash
# Prepared in session 49 (was next_s49_call2.sh, which did not run; its short form s49_call2_short.sh did).  Run first in
# session 50 (build ~75 s, then to S50_END, default 520 s):
# 0. The wgmma grad_x kernel as auto's grad_x (session 49): its tests with the session's last changes (256-row tiles
#    from M = 129, the fold to M = 256; the dispatch checks at M = 256 / 257 have not run on a GPU), the grad_x suites.
# 1. The rule's untimed cases: tensorcore / dense / wgmma / fp16 at M = 160, 192, 256, 384, 512, 768, 1024, ternary /
#    binary, per tensor and g64, 8192 x 28672 / 8192^2 / 28672 x 8192 (gx_sweep.json); the plan's tiles at M = 512 / 1024
#    (BITMM_GX_WG_BM = 128 / 256, gx_bm*.json).
# 2. Sanitizers: the new kernel's units (TOOL:0/1@wgx), racecheck 15/16 and 14/16, initcheck 13/16 (resumed from
#    bench/results/san_resume_s49a.txt), then initcheck 12/16 (rerun without the cublas tests), 14/16, 15/16.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests" 150
run_tests "tests/test_autograd.py tests/test_tc_grad_x.py tests/test_transposed_backward.py tests/test_linear.py" \
  "grad or backward or no_dense" "grad_x suites" 150
common=(--direction backward --rounds 2)
timeout 200 python3 bench/decode_probe.py "${common[@]}" --kinds ternary,binary --groups none,64 \
  --shapes 8192x28672,8192x8192,28672x8192 --ms 160,192,256,384,512,768,1024 \
  --backends fp16,tensorcore,dense,wgmma --out "$OUT/gx_sweep.json" > /tmp/gs.txt 2>&1
mark "grad_x sweep rc=$? $(tail -1 /tmp/gs.txt)"
for bm in 128 256; do
  BITMM_GX_WG_BM=$bm timeout 60 python3 bench/decode_probe.py "${common[@]}" --kinds ternary \
    --groups none,64 --shapes 8192x28672 --ms 512,1024 --backends fp16,wgmma --out "$OUT/gx_bm$bm.json" > /tmp/gbm.txt 2>&1
  mark "grad_x BM=$bm rc=$? $(tail -1 /tmp/gbm.txt)"
done
tar czf "$OUT/gx_bm.tgz" -C "$OUT" gx_bm128.json gx_bm256.json && rm -f "$OUT"/gx_bm{128,256}.json
san_tail "${S50_UNITS:-racecheck:0/1@wgx memcheck:0/1@wgx initcheck:0/1@wgx racecheck:15/16@cover3 racecheck:14/16@cover3 initcheck:13/16@cover3 initcheck:12/16@cover3 initcheck:14/16@cover3}" ${S50_END:-520}
cat "$OUT/log.txt"
