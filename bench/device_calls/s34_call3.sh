#!/usr/bin/env bash
# Session 34, call 3: the issues' target cases on an H100 (the hardware issues 4 and 5 name; every "now" number
# since session 4 was an H200's, where fp16 is faster), HEAD's kernels, `auto` against fp16 F.linear in the same
# process (decode_probe.py: CUDA-graph replays, weights rotated past L2, medians), plus grad_x and W2A8:
#   fw:  ternary / int2 / binary x {per tensor, g64} x 4 shapes x M in {1, 4, 16, 64, 256, 1024, 4096}
#   bw:  grad_x, the same kinds and scale modes, 8192x28672 and 8192x8192, M in {1, 4, 16}
#   a8:  W2A8 (linear_a8 on x quantized once, per tensor) M in {1, 4, 1024, 4096}, 8192x28672
#   copy: a 1 GiB device copy's rate (the bandwidth fraction's denominator)
# Run as: BITMM_COMMIT=<sha> bash bench/device_calls/s34_call3.sh
source "$(dirname "$0")/prelude.sh"
python3 -c "import sys; sys.path.insert(0, 'bench'); import torch, cuda_bench; print('copy_tbps', round(cuda_bench.measure_copy_tbps(), 3), torch.__version__, torch.cuda.get_device_name())" >> "$OUT/log.txt" 2>&1
mark copy
timeout 330 python3 bench/decode_probe.py --kinds ternary,int2,binary --shapes 8192x28672,8192x8192,4096x4096,28672x8192 \
  --groups none,64 --ms 1,4,16,64,256,1024,4096 --backends fp16,auto --out "$OUT/h100_s34_fw.json" > /tmp/fw.txt 2>&1
mark "fw ($(grep -c ' us' /tmp/fw.txt) lines)"
timeout 90 python3 bench/decode_probe.py --direction backward --kinds ternary,int2,binary --shapes 8192x28672,8192x8192 \
  --groups none,64 --ms 1,4,16 --backends fp16,auto --out "$OUT/h100_s34_bw.json" > /tmp/bw.txt 2>&1
mark "bw ($(grep -c ' us' /tmp/bw.txt) lines)"
timeout 60 python3 bench/decode_probe.py --kinds ternary,int2,binary --shapes 8192x28672 --groups none --ms 1,4,1024,4096 \
  --backends fp16,a8op --out "$OUT/h100_s34_a8.json" > /tmp/a8.txt 2>&1
mark "a8 ($(grep -c ' us' /tmp/a8.txt) lines)"
cat /tmp/fw.txt /tmp/bw.txt /tmp/a8.txt | grep -vE " us$" | tail -5 >> "$OUT/log.txt"
