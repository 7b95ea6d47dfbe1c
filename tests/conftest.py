import os
import zlib

import pytest
import torch

# Every CUDA output a bitmm kernel must write whole starts as NaN (int8: -128, int32: 0x5A5A5A5A) in the tests
# (csrc/cuda/linear_cuda.cpp poison_output, read once per process; child processes inherit it), so an element a kernel
# skips fails the test instead of reading a recycled block's old, often correct, value.  BITMM_POISON_OUTPUTS=0 opts
# out.
os.environ.setdefault("BITMM_POISON_OUTPUTS", "1")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed(request):
    # A different, reproducible seed per test: fresh random data everywhere.
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))


def _t_wise_cover(items, t):
    """A subset of one test function's parametrizations in which every combination of t
    parameter values that occurs together in `items` occurs at least once (greedy: each
    step keeps the item that covers most combinations not yet covered; ties by collection
    order)."""
    from itertools import combinations

    def combos(it):
        kv = sorted((k, str(v)) for k, v in it.callspec.params.items())
        return set(combinations(kv, min(t, len(kv))))
    covers = [combos(it) for it in items]
    uncovered = set().union(*covers)
    keep = set()
    while uncovered:
        best = max(range(len(items)), key=lambda j: (len(covers[j] & uncovered), -j))
        keep.add(best)
        uncovered -= covers[best]
    return [it for j, it in enumerate(items) if j in keep]


def pytest_collection_modifyitems(config, items):
    import os
    # BITMM_TEST_PROFILE=cover2 / cover3 keeps, per parametrized test function, a subset in
    # which every pair (cover2) or triple (cover3) of parameter values still occurs together
    # (kind x dtype x scale mode, scale mode x M x backend, ...): the suite's kernel
    # configurations in a fraction of its tests, for the compute-sanitizer runs
    # (bench/device_run.sh), which cannot afford the full product.
    profile = os.environ.get("BITMM_TEST_PROFILE", "")
    if profile:
        if profile not in ("cover2", "cover3"):
            raise pytest.UsageError(f"BITMM_TEST_PROFILE={profile!r}: expected cover2 or cover3")
        strength = int(profile[-1])
        groups, order = {}, []
        for it in items:
            key = (it.nodeid.split("[")[0]) if hasattr(it, "callspec") else it.nodeid
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(it)
        kept = []
        for key in order:
            g = groups[key]
            kept.extend(_t_wise_cover(g, strength) if hasattr(g[0], "callspec") else g)
        kept_ids = {id(it) for it in kept}
        config.hook.pytest_deselected(items=[it for it in items if id(it) not in kept_ids])
        items[:] = kept
    # BITMM_SHARD=i/n keeps the tests whose id hashes to i mod n (0-based), so slow runs (the
    # compute-sanitizer runs of bench/device_run.sh, bench/sanitize.sh) can split the suite over processes.  By the
    # id's hash, not by its place in the collection (every n-th test until session 56): a test added or removed, or
    # collected on one machine and not another, moves no other test to another shard, so units run in different
    # sessions still cover the suite between them.
    shard = os.environ.get("BITMM_SHARD")
    if not shard:
        return
    i, n = (int(v) for v in shard.split("/"))
    if not 0 <= i < n:
        raise pytest.UsageError(f"BITMM_SHARD={shard!r}: expected i/n with 0 <= i < n")
    mine = [zlib.crc32(it.nodeid.encode()) % n == i for it in items]
    config.hook.pytest_deselected(items=[it for it, m in zip(items, mine) if not m])
    items[:] = [it for it, m in zip(items, mine) if m]
