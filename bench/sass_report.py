"""Opcode report of bitmm's CUDA kernels from `cuobjdump --dump-sass` output.

For each kernel: the whole-kernel histogram, and the histogram of its hottest
loop (the backward branch whose body holds the most FADDs or HMMAs: the
accumulation loop).  Multiplications (FMUL/FFMA/HMUL2/HFMA2/DMUL/DFMA) and global-load widths
are listed separately, so one can check that the accumulation loop is
add-only and that weights are read with 16-byte loads.

    python bench/sass_report.py sass.txt
"""
import re
import sys
from collections import Counter

MULTS = ("FMUL", "FFMA", "HMUL2", "HFMA2", "DMUL", "DFMA")
INSN = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P[0-9T]\s+)?([A-Z0-9_.]+)([^;]*);")


def parse(body):
    out = []
    for line in body.splitlines():
        m = INSN.match(line)
        if m:
            out.append((int(m.group(1), 16), m.group(3), m.group(4)))
    return out


def histogram(insns):
    c = Counter(op.split(".")[0] for _, op, _ in insns)
    mults = Counter(op for _, op, _ in insns if op.split(".")[0] in MULTS and op != "HFMA2.MMA")
    loads = Counter(op for _, op, _ in insns if op.startswith("LDG") or op.startswith("LDS"))
    return c, mults, loads


def hottest_loop(insns):
    best = None
    for addr, op, args in insns:
        if op.startswith("BRA"):
            t = re.search(r"0x([0-9a-f]+)", args)
            if t and int(t.group(1), 16) < addr:
                body = [i for i in insns if int(t.group(1), 16) <= i[0] <= addr]
                n = sum(1 for i in body if i[1].startswith("FADD") or i[1].startswith("HMMA"))
                if best is None or n > best[0]:
                    best = (n, body)
    return best[1] if best else []


def innermost_loop_with(insns, prefix):
    """The smallest backward-branch loop that contains an instruction starting with `prefix`."""
    hits = [a for a, op, _ in insns if op.startswith(prefix)]
    best = None
    for addr, op, args in insns:
        if op.startswith("BRA") and hits:
            t = re.search(r"0x([0-9a-f]+)", args)
            if t and int(t.group(1), 16) < addr:
                lo = int(t.group(1), 16)
                if any(lo <= h <= addr for h in hits):
                    body = [i for i in insns if lo <= i[0] <= addr]
                    if best is None or len(body) < len(best):
                        best = body
    return best or []


def main(path):
    text = open(path).read()
    for f in re.split(r"\n\s+Function : ", text)[1:]:
        name = f.split("\n", 1)[0].strip()
        if not any(k in name for k in ("addsub_linear_kernel", "grad_x_kernel", "tc_linear_kernel", "tc_linear_bd_kernel",
                                          "a8_linear_kernel", "wg_linear_kernel", "wg_grad_x_kernel")):
            continue
        insns = parse(f)
        c, mults, loads = histogram(insns)
        # tensor-core kernels: the per-step loop (forward: one 16-byte window per row through 16
        # HMMAs; grad_x: one 16-row tile through 16 HMMAs)
        tc = "tc_linear_kernel" in name or "tc_linear_bd_kernel" in name or "tc_grad_x_kernel" in name
        # (a8_linear_kernel, W2A8: the step loop through IMMAs, the int8 tensor-core mma)
        a8 = "a8_linear_kernel" in name
        # (wg_linear_kernel, Hopper wgmma: the stage loop, two stages per iteration, through HGMMAs)
        wg = "wg_linear_kernel" in name or "wg_grad_x_kernel" in name  # (and its grad_x sibling, session 48)
        loop = (innermost_loop_with(insns, "IMMA" if a8 else "HGMMA" if wg else "HMMA") if tc or a8 or wg
                else hottest_loop(insns))
        lc, lmults, lloads = histogram(loop)
        print(f"== {name[:150]}")
        print("   kernel:", ", ".join(f"{k} {v}" for k, v in c.most_common(10)))
        print("   kernel multiplications (per-group / per-row scaling, epilogue):", dict(mults) or "none")
        print("   kernel loads:", dict(loads))
        print(f"   hottest loop ({len(loop)} instructions):", ", ".join(f"{k} {v}" for k, v in lc.most_common(10)))
        print("   hottest loop multiplications:", dict(lmults) or "none", " loads:", dict(lloads))
        print("   (HFMA2.MMA with RZ operands is the compiler's register-zeroing idiom, not arithmetic)")


if __name__ == "__main__":
    main(sys.argv[1])
