#!/usr/bin/env bash
# Prepared in session 50: A/B of wgx3 (bench/device_calls/next_s51_wgx3.patch), fewer issued instructions per stage in
# the wgmma grad_x kernel (and, through the shared wg_stage_mma, the forward wgmma kernel):
#   - the E / O merge without a branch on the lane's parity (nvcc predicated both merges: 4 issued instructions for 3);
#   - the ring's slot and phase by counters, not kt % kStages and kt / kStages (a magic-number multiply each);
#   - one shared-memory descriptor per stage with + 2 per k-step on its 32-bit address field (wg_desc's mask / shift /
#     or per k-step before);
#   - the fold's s / u in the A fragments' row order (su_at): one LDS.64 (fp32: LDS.128) per k-step for a lane's two
#     row pairs instead of two, and in grad_y's dtype in one branch a stage (8 LDS.64 issued together, then the 16
#     HFMA2), not a branch per k-step.
# sm_90a SASS here (two-stage loop of wg_grad_x_kernel, both fold branches, static count): ternary plain 580 -> 571
# instructions, predicated ones 140 -> 71; fold LDS 32 x LDS.32 -> 16 x LDS.64 (fp32: 32 x LDS.64 -> 16 x LDS.128);
# registers at BM = 64 up to 124 (cap 128: two CTAs per SM kept), BM = 256 up to 223, no spills; the forward
# kernels' registers within +3, no spills.  Predicted: grad_x 3-5% faster per tensor, 5-10% with a fold (g64), the
# forward wgmma kernel 0-2%.
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
gx=(--direction backward --rounds 3 --kinds ternary,binary,int2 --groups none,64 --shapes 8192x28672,8192x8192
    --ms 32,64,256 --backends fp16,tensorcore,wgmma)
fw=(--rounds 3 --kinds ternary,int2 --groups none,64 --shapes 8192x28672 --ms 64,256,1024 --backends fp16,wgmma)
timeout 100 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx3_gx_base.json" > /tmp/p1.txt 2>&1
mark "gx base rc=$? $(tail -1 /tmp/p1.txt)"
timeout 60 python3 bench/decode_probe.py "${fw[@]}" --out "$OUT/wgx3_fw_base.json" > /tmp/p2.txt 2>&1
mark "fw base rc=$? $(tail -1 /tmp/p2.txt)"
apply_and_rebuild bench/device_calls/next_s51_wgx3.patch wgx3
run_tests "tests/test_wg_grad_x.py tests/test_wgmma.py" "" "wgmma tests (wgx3)" 200
timeout 100 python3 bench/decode_probe.py "${gx[@]}" --out "$OUT/wgx3_gx_new.json" > /tmp/p3.txt 2>&1
mark "gx wgx3 rc=$? $(tail -1 /tmp/p3.txt)"
timeout 60 python3 bench/decode_probe.py "${fw[@]}" --out "$OUT/wgx3_fw_new.json" > /tmp/p4.txt 2>&1
mark "fw wgx3 rc=$? $(tail -1 /tmp/p4.txt)"
{ python3 bench/probe_ab.py "$OUT/wgx3_gx_base.json" "$OUT/wgx3_gx_new.json"
  python3 bench/probe_ab.py "$OUT/wgx3_fw_base.json" "$OUT/wgx3_fw_new.json"; } > "$OUT/wgx3_ab.txt" 2>&1
grep -E "^M=" "$OUT/wgx3_ab.txt" >> "$OUT/log.txt"
cat "$OUT/log.txt"
