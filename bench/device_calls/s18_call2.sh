#!/usr/bin/env bash
# Session 18, call 2: diagnosis.  In s18_call1 both pytest runs timed out (5 tests in 120 s, then 19 in
# 300 s) while decode_probe and cuda_bench --quick ran normally in between.  Here: per-test durations
# with faulthandler's traceback after 20 s of one test, the GPU's and the CPU's state meanwhile.
source "$(dirname "$0")/prelude.sh"
ps aux --sort=-%cpu | head -8 > $OUT/ps_before.txt; nvidia-smi > $OUT/smi_before.txt 2>&1
( sleep 40; nvidia-smi > $OUT/smi_during.txt 2>&1; ps aux --sort=-%cpu | head -12 > $OUT/ps_during.txt ) &
timeout 75 python3 -m pytest tests/test_tensorcore.py -v -x -p no:cacheprovider -o faulthandler_timeout=20 --durations=0 \
  -k "small_m_long_k_two_row_tiles or tile_config_reads" > $OUT/pt_sel.txt 2>&1
echo "sel rc=$?" | tee -a $OUT/log.txt; mark sel
timeout 60 python3 -m pytest tests/test_tensorcore.py -v -x -p no:cacheprovider -o faulthandler_timeout=20 --durations=0 \
  -k "test_backend_switch or test_backend_does_not or (test_tensorcore_matches_reference and ternary and 300 and tensor-)" > $OUT/pt_ref.txt 2>&1
echo "ref rc=$?" | tee -a $OUT/log.txt; mark ref
ps aux --sort=-%cpu | head -8 > $OUT/ps_after.txt
