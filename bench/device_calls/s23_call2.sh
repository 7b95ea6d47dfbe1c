#!/usr/bin/env bash
# Prepared in session 22 for session 23: next_s23_mid_layer_fold.patch (tc27: group-wise M <= 2 with fp16 x on
# 2^24 .. 2^26 weights, ternary / binary on the folding path instead of the block-diagonal one, and auto's M = 1
# on the tensor-core kernel there for every kind; measured forced in session 22 calls 5 and 7, routing not run).
# The patch's tests and the neighbouring routing tests, then auto against fp16 at g64 M = 1, 2 on the shapes of
# calls 5 and 7 (one process), to compare with h200_s22_call5_a02e416.txt / h200_s22_call7_53933d7.txt.
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s23_call2.sh   (the patch applied by the script)
source "$(dirname "$0")/prelude.sh"
apply_and_rebuild bench/device_calls/next_s23_mid_layer_fold.patch B
timeout 60 python3 bench/decode_probe.py --shapes 4096x4096,8192x8192,8192x4096,4096x8192,4096x11008,11008x4096,4096x14336,14336x4096,8192x28672,28672x8192 \
  --kinds int2,ternary,binary --ms 1,2 --groups 64 --backends fp16,auto --out "$OUT/records_mid_layer.json" 2>&1 | grep " us" > "$OUT/records.txt"
mark records
# The merged speedup table's group-wise M = 9..16 rows on three shapes predate tc24 (e.g. 4096^2 int2 M = 16 0.63x,
# 8192^2 M = 12 0.68x): refreshed here, auto vs fp16 in one process.
timeout 40 python3 bench/decode_probe.py --shapes 28672x8192,8192x8192,4096x4096 --kinds int2,ternary,binary --ms 9,12,16 \
  --groups 64 --backends fp16,auto --out "$OUT/records_g64_m9_16.json" 2>&1 | grep " us" >> "$OUT/records.txt"
mark records-m9-16
# The folding path at M = 9..16 with one 16-row tile per warp for int2 / ternary too (BITMM_TC_RN=1: 64-row CTAs,
# 448 on 8192 x 28672; session 14 measured it worse for int2 before tc24's typed kernels cut the registers), against
# the default RN = 2, A B A B, one process each.
for lab in A1 B1 A2 B2; do
  env $([ ${lab:0:1} = B ] && echo BITMM_TC_RN=1) timeout 40 python3 bench/decode_probe.py --shapes 8192x28672,28672x8192,8192x8192 \
    --kinds int2,ternary --ms 9,16 --groups 64 --backends tensorcore --out /tmp/rn_$lab.json 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/rn.txt"
done
mark rn
# Session 23 call 1 (h200_s23_call1_2bc945f.txt): per tensor M = 1 with two warps along N (BITMM_TC_WN=2, 256 CTAs
# instead of 512) won on 8192^2 (ternary 12.8 -> 12.0 us, int2 13.0 -> 12.1, binary 11.0 -> 8.9) and lost on
# 28672 x 8192 (1.15-1.22x), 8192 x 28672 and 4096^2.  On 8192^2 it also flips the PDL rule (512 CTAs in ~792
# slots: off; 256: on).  Which one wins: A rule, B WN=2, C BITMM_PDL=2 (PDL on, WN rule), D WN=2 with BITMM_PDL=0,
# A B C D twice, one process each, on N = 6144 .. 13824.
for lab in A1 B1 C1 D1 A2 B2 C2 D2; do
  case ${lab:0:1} in A) e="";; B) e=BITMM_TC_WN=2;; C) e=BITMM_PDL=2;; D) e="BITMM_TC_WN=2 BITMM_PDL=0";; esac
  env $e timeout 40 python3 bench/decode_probe.py --shapes 8192x8192,4096x8192,8192x6144,5120x13824,14336x8192 \
    --kinds ternary,binary --ms 1 --groups none --backends tensorcore --out /tmp/wnp_$lab.json 2>&1 | grep " us" | sed "s/^/$lab /" >> "$OUT/wn_pdl.txt"
done
mark wn-pdl
SHARDS=8 CAP=$(( 585 - ($(date +%s) - start) )) PYTEST_ARGS="tests/test_tensorcore.py tests/test_kernel_coverage.py tests/test_tc_launch_rules.py tests/test_lora.py" \
  K_EXPR="mid_layer or wide_rows or block_diagonal or override or grouped or table or lora" source "$(dirname "$0")/gpu_suite_sharded.sh"
