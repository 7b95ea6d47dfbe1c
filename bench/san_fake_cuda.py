"""pytest plugin for `BITMM_SAN_COLLECT=1 bash bench/sanitize.sh` (session 52): reports a CUDA device, for collection
only, on a machine without one.

tests/conftest.py parametrizes over DEVICES = ["cpu"] + ["cuda" if torch.cuda.is_available()]: without "cuda" in
DEVICES the collected list, and so every sanitizer unit's share of it (BITMM_SHARD=i/n: by position until session 56,
by a hash of the test id since), differs from the device's.  Loaded with `-p san_fake_cuda` before the test modules import; never run tests
under it (no kernel can launch)."""
import torch

torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
