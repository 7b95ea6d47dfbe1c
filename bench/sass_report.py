"""Opcode histogram of bitmm's CUDA kernels from `cuobjdump --dump-sass` output.

Shows, per kernel, the instruction counts, and flags any FMUL / FFMA / HMUL2 /
HFMA2 (multiplications) and the widths of the global loads.
"""
import re
import sys
from collections import Counter

text = open(sys.argv[1]).read()
funcs = re.split(r"\n\s+Function : ", text)
for f in funcs[1:]:
    name = f.split("\n", 1)[0].strip()
    if "addsub_linear_kernel" not in name and "grad_x_kernel" not in name:
        continue
    ops = Counter()
    for line in f.splitlines():
        m = re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(@!?U?P[0-9T]\s+)?([A-Z0-9_.]+)", line)
        if m:
            ops[m.group(2)] += 1
    base = Counter({k.split(".")[0]: 0 for k in ops})
    for k, v in ops.items():
        base[k.split(".")[0]] += v
    mults = {k: v for k, v in ops.items() if k.split(".")[0] in ("FMUL", "FFMA", "HMUL2", "HFMA2", "DMUL", "DFMA")}
    loads = {k: v for k, v in ops.items() if k.startswith("LDG")}
    print(f"== {name[:160]}")
    print("   top:", ", ".join(f"{k} {v}" for k, v in base.most_common(12)))
    print("   multiplications:", mults or "none")
    print("   global loads:", loads)
