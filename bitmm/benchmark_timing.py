"""Timing helpers shared by the benchmarks: CUDA-graph replays with weights
rotated past the L2 cache, CUDA events, warm-up, median."""
from __future__ import annotations

import os
import statistics
import subprocess
import time
from typing import Callable, Sequence

import torch

L2_ROTATE_BYTES = 200 * 2**20  # 4x the H100's 50 MB L2


def copies_for(nbytes: int, max_copies: int = 64) -> int:
    """How many weight copies make one rotation read more than L2_ROTATE_BYTES."""
    return max(2, min(max_copies, -(-L2_ROTATE_BYTES // max(nbytes, 1))))


def capture_cuda_graph(calls: Sequence[Callable[[], object]], warmup: int = 1) -> "torch.cuda.CUDAGraph":
    """One CUDA graph that runs `calls` once each, in order, after `warmup` eager rounds on a
    side stream (allocator, one-time attributes: what torch requires before a capture)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            for c in calls:
                c()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for c in calls:
            c()
    return graph


WARMUP_MS = 25.0  # replays before timing, at least this long (and at least `warmup` replays)


def warm_graph(graph: "torch.cuda.CUDAGraph", replays: int, ms: float = WARMUP_MS) -> int:
    """Replays `graph` at least `replays` times and until `ms` milliseconds have passed (see cuda_time_us);
    returns how many replays that took."""
    t0 = time.perf_counter()
    done = 0
    while done < replays or (time.perf_counter() - t0) * 1e3 < ms:
        graph.replay()
        torch.cuda.synchronize()
        done += 1
    return done


def cuda_time_us(calls: Sequence[Callable[[], object]], replays: int = 20, warmup: int = 3,
                 warmup_ms: float = WARMUP_MS) -> float:
    """Median time of one call, in microseconds.

    `calls` are closures over different weight copies; one CUDA graph runs each
    once, in order, so every call reads its weights from HBM, not L2.  The
    graph is replayed `replays` times; each replay is timed with events.
    Warm-up: `warmup` replays and then more until `warmup_ms` have passed.  Session 34 (H100): with 3 replays
    (~0.5 ms at M = 1) the first case timed after a weight set was packed read 7-15% high, and a later timing of
    the same kernel did not (bench/NOTES.md; decode_probe.py --rounds); a GPU whose clocks dropped while the host
    packed and captured is the guess, not verified, and the time-based warm-up costs ~25 ms per measurement.
    """
    graph = capture_cuda_graph(calls, warmup=warmup)
    warm_graph(graph, warmup, warmup_ms)
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / len(calls))
    return statistics.median(times)


def cpu_time_us(calls: Sequence[Callable[[], object]], repeats: int = 15, warmup: int = 2) -> float:
    """Median wall time of one call on the CPU, rotating through `calls`."""
    for _ in range(warmup):
        for c in calls:
            c()
    times = []
    for i in range(repeats * len(calls)):
        c = calls[i % len(calls)]
        t0 = time.perf_counter()
        c()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def git_commit() -> str:
    """The commit being measured: $BITMM_COMMIT, else git's HEAD, marked "+dirty" when tracked files
    differ from it.  (The GPU machine's copy of the tree can carry a stale .git: in session 13 its HEAD
    said 2ec1103 for trees two commits later, so pass BITMM_COMMIT there; the mark catches the rest.)"""
    env = os.environ.get("BITMM_COMMIT")
    if env:
        return env
    run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    head = run("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("+dirty" if run("status", "--porcelain", "--untracked-files=no") else "")


def write_results(path: str, device: str, records: list, **extra) -> None:
    """The results-file format of every bitmm benchmark: device, torch, commit, date, records."""
    import datetime
    import json

    import torch
    out = {"device": device, "torch": torch.__version__, "commit": git_commit(),
           "date": datetime.date.today().isoformat(), **extra, "records": records}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)
