#!/usr/bin/env bash
# Prepared in session 58 (one call of up to 600 s: the perf part ~420 s typical, then sanitizer units to S59_END):
#   SAN_PAR=3 S59_END=<s> BITMM_COMMIT=<full sha> bash bench/device_calls/next_s59_call1.sh (as it was named when it ran)   (3 racecheck / initcheck units at once ran in session 58; 4 memcheck units at once ran out of GPU memory in session 54)
# 1. The block-diagonal kernel's ring at K = 16384 (session 58, h100_s58_kt*_87fb52e.json): g64 M = 1 on 16384 x 53248
#    ran ternary / int2 200.6 / 199.9 us with the launcher's plan, 173.8 / 177.0 with the K tile capped at 8192 and 3
#    ring slots (BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3), 187.3 / 190.0 with the cap and the default (deepest) ring;
#    binary lost with every cap (133.1 -> 155.6-175.5), per tensor tied (cap 8192 + 3 slots 1.00 / 1.02).  Reading
#    (local ptxas: the BD CM = 1 kernels hold 125-128 registers, so 4 CTAs per SM at most): the plan keeps x whole
#    (K = 16384: x 40976 B + block sums 4 KB + zero window) and 4 CTAs per SM, which leaves room for only 2 ring slots
#    (3 slots need 208 bytes more per CTA than 4 CTAs allow), so one step in flight per warp; the capped tile held 4
#    CTAs with 3 slots (restaging x per K tile).  Binary's x is smaller (3 slots fit whole), so the cap only cost it.
#    Measured here, M = 1 and 2, g64 and g128, ternary / int2 / binary, on 16384 x 53248, 16384 x 16384 (K long, N
#    wide), 8192 x 28672 (K = 8192: the plan has 3 slots already; control) and 28672 x 8192 (tc_bd_long_k's capped
#    tile; control):
#    (a) the plan; (b) BITMM_TC_STAGES=3 alone (x whole, 3 slots, 3 CTAs per SM); (c) KT_MAX 8192 + 3 slots (session
#    58's winner, again); (d) s59_bd_quad.patch (next_s59_bd_quad.patch when it ran), the plan (BD's x layout without the pad after each quad's last
#    window: x of K = 16384 38.9 KB in place of 41.0, so 3 slots fit at 4 CTAs per SM with x whole and persistent).
#    Prediction: (d) <= (c) < (a) on 16384 x 53248 ternary / int2 g64 M = 1 (d: 165-180 us); (b) between (a) and (c);
#    binary and K = 8192 unchanged by (d) (binary's layout is not touched; K = 8192 keeps 3 slots at 4 CTAs);
#    16384 x 16384 like 16384 x 53248 (by hand from the launcher: tc_bd_long_k gives it WN = 2 at M = 1, 512 32-row
#    tiles, want 4 CTAs per SM; x whole + reduction 256 words leaves 2 slots at 4 CTAs, the patch 3).  28672 x 8192
#    (capped at 4096, WN = 1) and 8192 x 28672 keep their plans.  M = 2 (two rows of x, <= 2 CTAs per SM, 3 slots; or
#    tc_bd_long_k's capped tile): unchanged.
#    The patched tree's tests first (every block-diagonal test, the new M = 1 wide-N K = 16384 one among them).
# 2. racecheck / initcheck over cover3 on the hash split, resumed from bench/results/san_resume_race_init_s58.txt
#    (session 58 finished racecheck 0-3 and initcheck 0-2 at 87fb52e), on the reversed (main) build.
# At most 8 files come back: the JSON files go in probes.tgz, the rest in rest.tgz.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
END=${S59_END:-560}
P=bench/device_calls/s59_bd_quad.patch
# The probes' files stay in /tmp/p, tarred into $OUT/probes.tgz after each (a call cut at its limit still returns
# log.txt and the tarball: at most 8 files come back).
mkdir -p /tmp/p
probe() {  # $1: label; the environment passes through
  timeout 75 python3 bench/decode_probe.py --kinds ternary,int2,binary --groups 64,128 --rounds 3 \
    --shapes 16384x53248,16384x16384,8192x28672,28672x8192 --ms 1,2 --backends fp16,tensorcore \
    --out "/tmp/p/bd_$1.json" > "/tmp/p/bd_$1.txt" 2>&1
  tar czf "$OUT/probes.tgz" -C /tmp/p .
  mark "probe $1: $(grep -c ' us ' "/tmp/p/bd_$1.txt") lines"
}
run_tests tests/test_tensorcore.py "m1_wide_n_long_k" "new test on main's build" 90
probe plan
# (S59_SHORT=1, a short budget: without (b), the least informative of the four)
[ "${S59_SHORT:-0}" = 1 ] || BITMM_TC_STAGES=3 probe st3
BITMM_TC_KT_MAX=8192 BITMM_TC_STAGES=3 probe kt8192_st3
apply_and_rebuild "$P" quad
# every group-wise and block-diagonal test of the file, in two shards at once (the BD layout is all the patch changes)
sel="grouped or group or block_diagonal or long_k or m1_wide"
RT_ENV="BITMM_SHARD=0/2" run_tests tests/test_tensorcore.py "$sel" "quad tests 0/2" 150 &
RT_ENV="BITMM_SHARD=1/2" run_tests tests/test_tensorcore.py "$sel" "quad tests 1/2" 150 &
wait
probe quad
for b in st3 kt8192_st3 quad; do
  [ -f "/tmp/p/bd_$b.json" ] || continue
  echo "== plan -> $b" >> "$OUT/log.txt"
  python3 bench/probe_ab.py "/tmp/p/bd_plan.json" "/tmp/p/bd_$b.json" >> "$OUT/log.txt" 2>&1
done
# (to here: typical ~420 s; worst ~740 with every limit reached (build 81, test 90, probes 4 x 75, two rebuilds ~120,
# tests 150), past the call's 600: log.txt and probes.tgz still come back)
patch -R -p1 < "$P" > /dev/null && python3 setup.py build_ext --inplace > /tmp/build3.log 2>&1
mark "build-base (patch reversed)"
san_tail "initcheck:3/16@cover3 racecheck:4/16@cover3 initcheck:4/16@cover3 $(for i in $(seq 5 15); do printf "racecheck:%d/16@cover3 initcheck:%d/16@cover3 " $i $i; done)" $(( END - 30 ))
pack_out  # (rest.tgz: the sanitizer files; probes.tgz stays as it is)
cat "$OUT/log.txt"
