#!/usr/bin/env bash
# Prepared in session 49: A/B of wgx2a (bench/device_calls/next_s50_wgx2a.patch): the wgmma grad_x kernel's 64-row tiles
# at two CTAs per SM (__launch_bounds__(256, 2): 100-122 registers, no spills, sm_90a ptxas here; a ring of 8-11 stages,
# 107-114 KB, the largest shared-memory carveout), and the plan's splits filling 2 x 132 CTA slots (8192 x 28672 M = 64: 4
# splits instead of 2).
# Why: session 49 measured the kernel flat at ~145 us (per tensor) / ~230 us (g64) from M = 16 to 64 on 8192 x 28672,
# its unpacking latency-bound at 8 warps per SM (bench/NOTES.md, wgx1).  Predicted: M = 33-64 ~1.3-1.5x faster
# (per tensor ~100-110 us, g64 ~160-180 us), then auto could take it below M = 33 too; M >= 65 unchanged (other tiles).
# Base and patched builds in one machine, forced backend wgmma and auto, M = 16 / 32 / 48 / 64.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
common=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192,4096x4096
        --ms 16,32,48,64 --backends fp16,tensorcore,wgmma)
timeout 120 python3 bench/decode_probe.py "${common[@]}" --out "$OUT/wgx2a_base.json" > /tmp/pb.txt 2>&1
mark "base rc=$? $(tail -1 /tmp/pb.txt)"
apply_and_rebuild bench/device_calls/next_s50_wgx2a.patch wgx2a
run_tests "tests/test_wg_grad_x.py" "" "wgmma grad_x tests (wgx2a)" 150
timeout 120 python3 bench/decode_probe.py "${common[@]}" --out "$OUT/wgx2a_new.json" > /tmp/pn.txt 2>&1
mark "wgx2a rc=$? $(tail -1 /tmp/pn.txt)"
# new / base per backend (the tensor-core grad_x kernel, unchanged, is the control), then the patched kernel against
# the tensor-core one per M (where auto should switch)
python3 bench/probe_ab.py "$OUT/wgx2a_base.json" "$OUT/wgx2a_new.json" > "$OUT/wgx2a_ab.txt" 2>&1
python3 bench/probe_ab.py --backends tensorcore wgmma "$OUT/wgx2a_new.json" >> "$OUT/wgx2a_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx2a_ab.txt" >> "$OUT/log.txt"
cat "$OUT/log.txt"
