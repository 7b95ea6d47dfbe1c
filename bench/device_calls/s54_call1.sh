#!/usr/bin/env bash
# Prepared in session 53.  Run first in session 54 (S54_END: the call's end in seconds, default 580; step 0 first):
#   S54_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s54_call1.sh
# The three `TOOL:0/1@wgx` units (tests/test_wg_grad_x.py under memcheck, racecheck and initcheck), whole, on main with
# wgx3 + wgx4 (session 51 capped them at 379 s on wgx3 alone: memcheck 7, racecheck 5, initcheck 3 of 9 tests; the
# file has 10 tests since).  A fourth process takes memcheck over cover3's sixteenths in turn (no session has run them:
# ~130 tests each, counted with BITMM_SAN_COLLECT=1); units not reached are listed NOT STARTED.  Capped units leave their
# passed ids in $OUT/san_resume.txt: commit it as bench/results/san_resume_s54.txt, so the next call resumes them.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
# 0. Issue 4's fixed cost and streaming rate, measured apart (~60 s): the copy rate, then auto and fp16 at M = 1 from a
#    tiny shape to a huge one, three rounds; bench/fixed_stream_fit.py splits each shape's time.
python3 -c "import sys; sys.path.insert(0, 'bench'); from cuda_bench import measure_copy_tbps; print(round(measure_copy_tbps(), 3))" > /tmp/copy.txt 2>&1
echo "copy rate: $(tail -1 /tmp/copy.txt) TB/s" >> "$OUT/log.txt"
timeout 150 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups none --ms 1 --rounds 3 --backends auto,fp16 \
  --shapes 256x256,1024x1024,4096x4096,8192x8192,8192x28672,16384x53248 --out "$OUT/h100_s54_fixed_stream_${BITMM_COMMIT:0:7}.json" > /tmp/fs.txt 2>&1
python3 bench/fixed_stream_fit.py "$OUT/h100_s54_fixed_stream_${BITMM_COMMIT:0:7}.json" --copy-tbps "$(tail -1 /tmp/copy.txt)" >> "$OUT/log.txt" 2>&1
mark "fixed / stream probe"
san_tail "${S54_UNITS:-memcheck:0/1@wgx racecheck:0/1@wgx initcheck:0/1@wgx $(for i in $(seq 0 15); do printf "memcheck:%d/16@cover3 " $i; done)}" "${S54_END:-580}"
cat "$OUT/log.txt"
