"""Where a kernel's executed instructions and stall samples go, from Nsight Compute's source page.

Input: `ncu -i <report> --page source --csv --print-source sass` (optionally gzipped), from a report
taken with the SourceCounters section (bench/device_calls/s14_call1.sh).  Each SASS instruction
carries its warp-level execution count, so runs of equal counts are the kernel's basic blocks, and
the count tells how often a block runs: once per warp (setup, x staging), once per row tile
(epilogue, reduction), once per load step (the loop).  Printed: the blocks with the most executed
instructions (their opcode mix and share of stall samples), the totals grouped by execution count,
the opcode shares, and the stall reasons.

    python bench/ncu_source_blocks.py bench/results/ncu_s14/h200_ncu_src_tc_ternary_m1_f40f7a8.csv.gz [top]
"""
from __future__ import annotations

import collections
import csv
import gzip
import sys


def read(path: str):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = list(csv.reader(f))
    hdr = next(r for r in rows if "Address" in r and "Source" in r)
    data = rows[rows.index(hdr) + 1:]
    i_src, i_exec = hdr.index("Source"), hdr.index("Instructions Executed")
    i_smp = hdr.index("Warp Stall Sampling (All Samples)")
    stall_cols = [(j, h) for j, h in enumerate(hdr) if h.startswith("stall_") and "Not Issued" not in h]
    ins, stalls = [], collections.Counter()
    for r in data:
        try:
            e, s = int(r[i_exec]), int(r[i_smp])
        except (ValueError, IndexError):
            continue
        words = r[i_src].split()
        op = words[1] if words[0].startswith("@") else words[0]
        ins.append((op.split(".")[0], e, s))
        for j, h in stall_cols:
            if j < len(r) and r[j].isdigit():
                stalls[h] += int(r[j])
    return ins, stalls


def main(path: str, top: int = 15) -> None:
    ins, stalls = read(path)
    tot = sum(e for _, e, _ in ins) or 1
    tsm = sum(s for _, _, s in ins) or 1
    print(f"{len(ins)} SASS instructions, {tot} executed (warp level), {tsm} stall samples")
    blocks, cur = [], None
    for k, (_, e, _) in enumerate(ins):
        if cur is not None and e == cur[0]:
            cur[1].append(k)
        else:
            cur = (e, [k])
            blocks.append(cur)
    print("\nbasic blocks (runs of equal execution counts) by executed instructions:")
    for e, idx in sorted(blocks, key=lambda b: -b[0] * len(b[1]))[:top]:
        ops = collections.Counter(ins[k][0] for k in idx)
        smp = sum(ins[k][2] for k in idx)
        print(f"  @{idx[0]:5d}-{idx[-1]:5d} runs {e:8d} x {len(idx):4d} instrs: {e * len(idx) / tot * 100:5.1f}% "
              f"executed, {smp / tsm * 100:5.1f}% samples  {dict(ops.most_common(6))}")
    by_count, n_by_count, smp_by_count = collections.Counter(), collections.Counter(), collections.Counter()
    for _, e, s in ins:
        by_count[e] += e
        n_by_count[e] += 1
        smp_by_count[e] += s
    print("\ngrouped by execution count:")
    for e, v in by_count.most_common(10):
        print(f"  runs {e:8d}: {n_by_count[e]:5d} instrs, {v / tot * 100:5.1f}% executed, "
              f"{smp_by_count[e] / tsm * 100:5.1f}% samples")
    opc, ops_smp = collections.Counter(), collections.Counter()
    for op, e, s in ins:
        opc[op] += e
        ops_smp[op] += s
    print("\nopcodes (% executed / % samples):",
          ", ".join(f"{o} {c / tot * 100:.1f}/{ops_smp[o] / tsm * 100:.1f}" for o, c in opc.most_common(14)))
    print("stall reasons (% of samples):",
          ", ".join(f"{h[6:]} {v / tsm * 100:.1f}" for h, v in stalls.most_common(8)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15)
