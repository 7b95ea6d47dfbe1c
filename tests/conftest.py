import zlib

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed(request):
    # A different, reproducible seed per test: fresh random data everywhere.
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
