"""Packed formats: Python and C++ packers agree byte for byte, round trips, errors."""
import pytest
import torch

import bitmm
from bitmm import formats

from conftest import DEVICES
from helpers import KINDS, PACKERS, UNPACKERS, random_values

# (+ K = 48 and 80: a multiple of 16 but not of 32, a last half block; N = 65537: rows past CUDA's grid.y limit)
SHAPES = [(1, 1), (3, 31), (5, 32), (2, 33), (3, 48), (2, 80), (7, 100), (4, 127), (3, 128), (2, 129), (9, 300),
          (1, 4097), (65537, 32)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,K", SHAPES)
def test_cpp_and_python_packers_agree_both_ways(kind, N, K, device):
    v = random_values(kind, N, K, device)
    codes = v.to(torch.int64) + (1 if kind == "ternary" else 0)
    packed_cpp = PACKERS[kind](v)
    packed_py = formats.pack_codes(codes, kind)
    assert packed_cpp.dtype == torch.int32 and packed_cpp.device.type == device
    assert packed_cpp.shape == formats.packed_shape(kind, N, K)
    assert torch.equal(packed_cpp, packed_py)
    # each side unpacks what the other packed
    assert torch.equal(formats.unpack_codes(packed_cpp, kind, K).to(torch.int64), codes)
    assert torch.equal(UNPACKERS[kind](packed_py, K).to(torch.int64), v.to(torch.int64))


def test_documented_bit_order():
    # weight 2i -> bit i, weight 2i+1 -> bit 16+i; lo plane then hi plane per block.
    K = 32
    for j in range(K):
        t = torch.zeros(1, K, dtype=torch.int64)
        t[0, j] = 1  # binary weight j set
        word = bitmm.pack_binary(t)[0, 0].item() & 0xFFFFFFFF
        expect = 1 << (j // 2 if j % 2 == 0 else 16 + j // 2)
        assert word == expect, (j, hex(word))
    q = torch.full((1, K), 1, dtype=torch.int64)
    q[0, 3] = 2  # int2 code 2: lo 0, hi 1 at bit 17
    p = bitmm.pack_int2(q)
    lo, hi = p[0, 0].item() & 0xFFFFFFFF, p[0, 1].item() & 0xFFFFFFFF
    assert hi == 1 << 17 and lo == 0xFFFFFFFF & ~(1 << 17)


def test_padding_holds_zero_code():
    p = bitmm.pack_ternary(torch.ones(1, 5, dtype=torch.int64))
    codes = formats.unpack_codes(p, "ternary", formats.padded_k(5))
    assert codes[0, :5].tolist() == [2] * 5 and (codes[0, 5:] == 1).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_packed_on_cpu_moves_to_cuda(kind):
    v = random_values(kind, 37, 200)
    p_cpu = PACKERS[kind](v)
    p_gpu = PACKERS[kind](v.cuda())
    assert torch.equal(p_cpu.cuda(), p_gpu)
    assert torch.equal(UNPACKERS[kind](p_cpu.cuda(), 200).cpu(), v)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind,bad", [("ternary", 2), ("ternary", -2), ("binary", 2), ("binary", -1),
                                      ("int2", 4), ("int2", -1)])
def test_out_of_range_values_raise(kind, bad, device):
    v = random_values(kind, 3, 40, device)
    v[1, 7] = bad
    with pytest.raises(ValueError, match=f"pack_{kind}"):
        PACKERS[kind](v)
    with pytest.raises(ValueError, match="out-of-range"):
        torch.ops.bitmm.pack(v.to(torch.int64) + (1 if kind == "ternary" else 0), formats.KINDS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_pack_rejects_bad_shapes_and_dtypes(kind):
    with pytest.raises(ValueError, match="2-D"):
        PACKERS[kind](torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="2-D"):
        PACKERS[kind](torch.zeros(0, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="integers"):
        PACKERS[kind](torch.full((2, 3), 0.5))
    with pytest.raises(TypeError):
        PACKERS[kind]([[0, 1]])


@pytest.mark.parametrize("kind", KINDS)
def test_unpack_rejects_mismatched_K(kind):
    p = PACKERS[kind](random_values(kind, 2, 100))
    with pytest.raises(ValueError, match="does not hold K=300"):
        UNPACKERS[kind](p, 300)
    with pytest.raises(TypeError, match="int32"):
        UNPACKERS[kind](p.to(torch.int64), 100)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16,
                                   torch.uint32, torch.uint64, torch.float16, torch.bfloat16, torch.float32])
def test_pack_accepts_every_integer_valued_dtype(dtype, device):
    # the packers' range check runs on the values as given (no int64 copy), for every dtype that holds the codes
    codes = torch.randint(0, 4, (5, 100), device=device)
    want = bitmm.pack_int2(codes)
    assert torch.equal(bitmm.pack_int2(codes.to(dtype)), want)
    assert torch.equal(torch.ops.bitmm.pack(codes.to(dtype), 3), want) if not dtype.is_floating_point else True
    bad = codes.clone()
    bad[2, 7] = 4
    with pytest.raises(ValueError, match="found 1 out-of-range values"):
        bitmm.pack_int2(bad.to(dtype))
