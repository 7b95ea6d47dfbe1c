"""Emulates, lane by lane, how csrc/cuda/wg_grad_x.cuh builds its wgmma A fragments from the packed words (PRMT of two
rows, E / O merge, unpack_pair shift) and checks every A entry against the codes that were packed; session 48 ran it
before the kernel had run on a GPU (0 mismatches for all three kinds; a wrong half-word or shift gives thousands).
It mirrors the kernel's formulas by hand: re-run it after changing them.  python bench/emulate_wg_grad_x_fragments.py"""
import numpy as np, torch, bitmm
from bitmm import formats
rng = np.random.default_rng(0)
M32 = 0xFFFFFFFF
def prmt(x, y, sel):
    b = [(x >> (8*i)) & 0xFF for i in range(4)] + [(y >> (8*i)) & 0xFF for i in range(4)]
    return sum(b[(sel >> (4*i)) & 0xF] << (8*i) for i in range(4))
def bit_select(a, b, m): return ((a & m) | (b & ~m)) & M32
def merge_even(lo, hi): return bit_select(lo, (hi << 1) & M32, 0x55555555)
def merge_odd(lo, hi): return bit_select(lo >> 1, hi, 0x55555555)
def codes_two(e, sh):  # unpack_pair two-plane: field moved to bits 14,15 of each half by e << sh
    v = (e << sh) & M32
    return ((v >> 14) & 3, (v >> 30) & 3)
def codes_bin(e, sh):
    v = ((e << sh) if sh >= 0 else (e >> 1)) & M32
    return ((v >> 14) & 1, (v >> 30) & 1)
for kind in ["binary", "ternary", "int2"]:
    two = kind != "binary"
    N, K = 200, 300
    maxc = 1 if kind == "binary" else (2 if kind == "ternary" else 3)
    codes = torch.tensor(rng.integers(0, maxc + 1, size=(N, K)), dtype=torch.int8)
    packed = formats.pack_codes(codes, kind)
    words = packed.numpy().view(np.uint32).reshape(N, -1)
    Kp = (K + 127) // 128 * 128
    bad = 0
    for kt0 in range(0, Kp, 128):
        for n_st in range(0, N, 64):
            for wg in range(2):
                for warp in range(4):
                    blk, hh = 2 * wg + (warp >> 1), warp & 1
                    sel = 0x7632 if hh else 0x5410
                    for lane in range(32):
                        g, t = lane >> 2, lane & 3
                        sh_a = 14 - (g & ~1) if two else 14 - g
                        for ks in range(4):
                            for q in range(2):
                                r1 = 16 * ks + 2 * t + 8 * q
                                n1, n2 = n_st + r1, n_st + r1 + 1
                                def wrd(n, p):
                                    if n >= N: return 0
                                    return int(words[n, (kt0 // 32 + blk) * (2 if two else 1) + p])
                                if two:
                                    lo = prmt(wrd(n1, 0), wrd(n2, 0), sel); hi = prmt(wrd(n1, 1), wrd(n2, 1), sel)
                                    e = merge_odd(lo, hi) if g & 1 else merge_even(lo, hi)
                                    A = [codes_two(e, sh_a), codes_two(e, sh_a - 8)]
                                else:
                                    lo = prmt(wrd(n1, 0), wrd(n2, 0), sel)
                                    A = [codes_bin(lo, sh_a), codes_bin(lo, sh_a - 8)]
                                for rr, (c1, c2) in zip((g, g + 8), A):
                                    k = kt0 + 32 * blk + 2 * rr + hh
                                    if k >= K: continue
                                    for n, c in ((n1, c1), (n2, c2)):
                                        if n < N and int(codes[n, k]) != c: bad += 1
    print(kind, "mismatches:", bad)
    if bad:
        raise SystemExit(1)
