import zlib

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed(request):
    # A different, reproducible seed per test: fresh random data everywhere.
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))


def pytest_collection_modifyitems(config, items):
    # BITMM_SHARD=i/n keeps every n-th test starting at i (0-based), so slow runs (the
    # compute-sanitizer runs of bench/device_run.sh) can split the suite over processes.
    import os
    shard = os.environ.get("BITMM_SHARD")
    if not shard:
        return
    i, n = (int(v) for v in shard.split("/"))
    if not 0 <= i < n:
        raise pytest.UsageError(f"BITMM_SHARD={shard!r}: expected i/n with 0 <= i < n")
    keep = [it for j, it in enumerate(items) if j % n == i]
    config.hook.pytest_deselected(items=[it for j, it in enumerate(items) if j % n != i])
    items[:] = keep
