#!/usr/bin/env bash
# Session 43 call 6: regression runs for wg16 / wg_rules_fold_only beyond test_wgmma.py: the > 2^31-output test with the
# wgmma kernel without an offset (auto's choice at large M since session 43; 10 GiB), the layers' CUDA tests (BitLinear /
# PackedLinear: per tensor scales without an offset, now wgmma from M = 17 / 33), autocast, the tensor-core auto
# boundaries, the coverage file.
source "$(dirname "$0")/prelude.sh"
BITMM_SKIP_HUGE= timeout 200 python3 -m pytest tests/test_reliability.py -q -p no:cacheprovider -rf -k "past_2_31_outputs" > /tmp/t.txt 2>&1
{ echo "test_reliability -k past_2_31_outputs: $(tail -1 /tmp/t.txt)"; grep -E "^FAILED|^E  " /tmp/t.txt | head -20; } >> "$OUT/log.txt"
mark "past_2_31_outputs"
run_tests "tests/test_nn.py tests/test_lora.py tests/test_autocast.py" "cuda" "test_nn + test_lora + test_autocast -k cuda" 200
run_tests "tests/test_tensorcore.py tests/test_kernel_coverage.py" "auto or coverage or instance" "test_tensorcore + test_kernel_coverage -k 'auto or coverage or instance'" 150
cat "$OUT/log.txt"
