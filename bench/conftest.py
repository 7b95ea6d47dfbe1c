"""pytest-benchmark JSON: record what was measured (device, torch, commit), as every bitmm results file does."""
import torch

from bitmm.benchmark_timing import git_commit


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["bitmm"] = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "commit": git_commit(),
        "timing": "CUDA: CUDA-graph replays, one round = extra_info.calls_per_round calls; CPU: per call",
    }
