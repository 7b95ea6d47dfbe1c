#!/usr/bin/env bash
# Prepared in session 47.  Run it first in session 48 (~1 min build + sanitizer units to S48_END, default 520 s):
# issue 8's cover3 sixteenths, four at a time: racecheck 6/16 and initcheck 4/16 resumed (session 47 capped them at
# 80 / 89 tests with no report; bench/results/san_resume_s47b.txt deselects the tests they passed), racecheck 7/16 and
# initcheck 5/16, then racecheck 10/16 and initcheck 6/16.  Commit $OUT/san_resume.txt as bench/results/san_resume_s48.txt.
# Before them (~1 min): grad_x with group-wise scales stored (N, G) and (G, N) (bitmm.linear_grad_x through auto, the
# layers' backward; M = 1 / 16 / 64 / 256, g64 / g128, three kinds, 8192 x 28672 and 8192^2, fp16), the one direction
# session 47 left unmeasured before the layers could store (G, N) (forward: M = 1 / 16 no cost, M = 64 0.93), and the
# grad_x scale-layout test.  Compare: python bench/probe_ab.py gx_ng.json gx_gn.json.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
run_tests "tests/test_tc_grad_x.py" "group_scales_any_layout" "grad_x scale layouts" 60
for L in ng gn; do
  timeout 120 python3 bench/decode_probe.py --direction backward --kinds ternary,int2,binary --groups 64,128 --rounds 2 \
    --scale-layout $L --shapes 8192x28672,8192x8192 --ms 1,16,64,256 --backends fp16,auto --out "$OUT/gx_$L.json" \
    > /tmp/gx_$L.txt 2>&1
  mark "grad_x scale layout $L rc=$? $(tail -1 /tmp/gx_$L.txt)"
done
san_tail "${S48_UNITS:-racecheck:6/16@cover3 initcheck:4/16@cover3 racecheck:7/16@cover3 initcheck:5/16@cover3 racecheck:10/16@cover3 initcheck:6/16@cover3}" ${S48_END:-520}
cat "$OUT/log.txt"
