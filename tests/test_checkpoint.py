"""Safe checkpoints: round trip, and clear errors for bad files."""
import os

import pytest
import torch
from torch import nn

pytest.importorskip("safetensors")
import bitmm.checkpoint as ckpt  # noqa: E402
import bitmm.nn as bnn  # noqa: E402


def model(bits=1.58):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(96, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10))
    return bnn.convert(m, mode="packed", weight_bits=bits, group_size=32 if bits == 2 else None)


@pytest.mark.parametrize("bits", [1.58, 2, 1])
def test_round_trip(tmp_path, bits):
    m = model(bits)
    path = str(tmp_path / "m.safetensors")
    ckpt.save(m, path)
    skeleton = bnn.convert(nn.Sequential(nn.Linear(96, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(),
                                         nn.Linear(64, 10)), mode="packed", weight_bits=bits,
                           group_size=32 if bits == 2 else None)
    x = torch.randn(5, 96)
    assert not torch.equal(skeleton(x), m(x))
    ckpt.load(skeleton, path)
    assert torch.equal(skeleton(x), m(x))


def test_truncated_file(tmp_path):
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(), path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="safetensors|could not load"):
        ckpt.load(model(), path)


def test_garbage_and_pickle_files_are_rejected(tmp_path):
    path = str(tmp_path / "evil.safetensors")
    torch.save({"x": torch.zeros(3)}, path)  # a pickle, not safetensors: never unpickled
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)
    open(path, "wb").write(os.urandom(100))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)


def test_mismatched_model_is_rejected(tmp_path):
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(1.58), path)
    with pytest.raises(ValueError, match="was saved as"):
        ckpt.load(model(2), path)


def test_non_bitmm_safetensors_is_rejected(tmp_path):
    import safetensors.torch as st
    path = str(tmp_path / "plain.safetensors")
    st.save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a bitmm checkpoint"):
        ckpt.load(model(), path)
