"""CPU emulation of the tensor-core grad_x kernel's two unpackings of a 16-row tile (csrc/cuda/tc_grad_x.cuh), for
bench/device_calls/next_s25_gx_dn.patch (tc33, landed in ad25d4a; the patch: git show 0e8a574:bench/device_calls/next_s25_gx_dn.patch): HEAD's sign / exponent (ternary, binary) and exponent-trick (int2)
unpacking (`unpack_pair`, times its value scale) against the patch's fp16-subnormal fields (`gx_dn_field`, times
2^(24 - gx_dn_pow), minus 1 for two-plane codes), for every k-step, A register and half-word of random tiles, with
the PRMT pairing of two rows and the E / O merge as the kernel does them.  Also checks that every field is an fp16
subnormal (exponent bits 0).  Prints the number of mismatching values: 0 expected.

    python bench/gx_dn_emulate.py [tiles]
"""
import random
import sys

import numpy as np

M32 = 0xFFFFFFFF


def prmt(a, b, sel):  # __byte_perm(a, b, sel)
    by = [(a >> (8 * i)) & 0xFF for i in range(4)] + [(b >> (8 * i)) & 0xFF for i in range(4)]
    return sum(by[(sel >> (4 * i)) & 0x7] << (8 * i) for i in range(4))


def bit_select(a, b, m):  # lop3 0xE4: m ? a : b
    return ((a & m) | (b & ~m)) & M32


def merge_even(lo, hi):
    return bit_select(lo, (hi << 1) & M32, 0x55555555)


def merge_odd(lo, hi):
    return bit_select(lo >> 1, hi, 0x55555555)


def f16(bits):
    return float(np.array([bits], dtype=np.uint16).view(np.float16)[0])


def halves(x):
    return f16(x & 0xFFFF), f16(x >> 16)


def old_values(kind, e, sh):  # unpack_pair<KIND, __half>(e, sh) as two values, times HEAD's value scale
    if kind == 1:
        v = halves((((e << sh) & M32) if sh >= 0 else (e >> 1)) & 0x40004000)
        return [x * 0.5 for x in v]
    if kind == 2:
        v = halves(~((e << sh) & M32) & M32 & 0xC000C000)
        return [x * 0.5 for x in v]
    h = ((e >> (14 - sh)) & 0x00030003) | 0x64006400  # fp16 1024 + q, minus 1025
    return [x - 1025 for x in halves(h)]


def dn_pow(kind, st):
    if kind == 1:
        return st if st <= 9 else st - 10
    c = st & 7
    return 2 * c if c <= 4 else 2 * (c - 5)


def dn_field(kind, w, st):
    w10 = w >> 10
    if kind == 1:
        return w & (0x00010001 << st) if st <= 9 else w10 & (0x00010001 << (st - 10))
    c = st & 7
    return w & (0x00030003 << (2 * c)) if c <= 4 else w10 & (0x00030003 << (2 * (c - 5)))


def main(tiles: int) -> int:
    random.seed(0)
    bad = 0
    for _ in range(tiles):
        for kind in (1, 2, 3):
            two = kind != 1
            w = [[random.getrandbits(32), random.getrandbits(32)] for _ in range(4)]
            if kind == 2:  # valid ternary codes only (lo and hi never both set)
                w = [[a, b & ~a & M32] for a, b in w]
            for hh in range(2 if two else 1):
                sel = 0x7632 if hh else 0x5410
                e, o = [0, 0], [0, 0]
                for q in range(2):
                    lo = prmt(w[2 * q][0], w[2 * q + 1][0], sel)
                    if two:
                        hi = prmt(w[2 * q][1], w[2 * q + 1][1], sel)
                        e[q], o[q] = merge_even(lo, hi), merge_odd(lo, hi)
                    else:
                        e[q] = lo
                for c in range(8 if two else 16):
                    st = 8 * hh + c if two else c
                    if two:
                        regs, sh = (e[0], o[0], e[1], o[1]), 14 - 2 * c
                    else:
                        regs = (e[0], prmt(w[0][0], w[1][0], 0x7632), e[1], prmt(w[2][0], w[3][0], 0x7632))
                        sh = 14 - c
                    for x in regs:
                        a = dn_field(kind, x, st)
                        assert a & 0x7C007C00 == 0, hex(a)  # exponent bits 0: subnormals
                        new = [v * 2.0 ** (24 - dn_pow(kind, st)) - (1 if two else 0) for v in halves(a)]
                        bad += sum(1 for p, q in zip(old_values(kind, x, sh), new) if p != q)
    print("mismatching values:", bad)
    return bad


if __name__ == "__main__":
    sys.exit(1 if main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000) else 0)
