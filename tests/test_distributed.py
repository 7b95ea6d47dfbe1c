"""BitLinear under DistributedDataParallel (2 processes, gloo, CPU) and under
gradient checkpointing: gradients equal to the single-process ones."""
import datetime
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.checkpoint import checkpoint

import bitmm.nn as bnn


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(bnn.BitLinear(32, 48), nn.GELU(), bnn.BitLinear(48, 8, weight_bits=2, group_size=16))


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 32, generator=g), torch.randn(8, 8, generator=g)


def _worker(rank, world, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    # A bounded timeout: a rank that dies must not leave the other in a collective for gloo's 30 min.
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    torch.set_num_threads(1)
    model = nn.parallel.DistributedDataParallel(make_model())
    x, y = data()
    shard = slice(rank * 4, rank * 4 + 4)  # each rank half the batch
    # DDP averages gradients over ranks: /4 per rank of 4 samples == /8 over the batch
    loss = ((model(x[shard]) - y[shard]) ** 2).sum() / 4
    loss.backward()
    if rank == 0:
        out.put({k: p.grad.numpy().copy() for k, p in model.module.named_parameters()})  # by value
        out.close()
        out.join_thread()  # the gradients are in the pipe before this process leaves
    # Teardown without a race: both ranks past their collectives, the DDP reducer gone, then the
    # group.  Then leave without the interpreter's finalization: gloo's worker threads can still be
    # joinable in static destructors there, which aborted a rank with "terminate called without an
    # active exception" (SIGABRT, exit code -6) once in CI after the gradients had arrived (session 13).
    dist.barrier()
    del model
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_single_process():
    model = make_model()
    x, y = data()
    (((model(x) - y) ** 2).sum() / 8).backward()
    expected = {k: p.grad for k, p in model.named_parameters()}
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, 2, PORT, q)) for r in range(2)]
    try:
        for p in procs:
            p.start()
        got = q.get(timeout=120)
        for p in procs:
            p.join(timeout=90)
            assert p.exitcode == 0
    finally:  # never leave a worker behind (pytest would wait for it at exit)
        for p in procs:
            if p.is_alive():
                p.kill()
    for k in expected:
        torch.testing.assert_close(torch.from_numpy(got[k]), expected[k], rtol=1e-5, atol=1e-6)


PORT = free_port()


def test_gradient_checkpointing_matches():
    model = make_model()
    x, y = data()
    x1 = x.clone().requires_grad_(True)
    ((model(x1) - y) ** 2).sum().backward()
    ref = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    x2 = x.clone().requires_grad_(True)
    out = checkpoint(lambda t: model(t), x2, use_reentrant=False)
    ((out - y) ** 2).sum().backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref[k])
    torch.testing.assert_close(x2.grad, x1.grad)
