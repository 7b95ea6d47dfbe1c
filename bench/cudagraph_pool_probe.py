"""Session 54: tests/test_nn.py::test_converted_model_replays_in_cuda_graph_and_reduce_overhead failed under
compute-sanitizer memcheck (cover3 units 2/16 and 3/16): torch.compile(mode="reduce-overhead")'s warm-up found
192 (1.58-bit) / 230 (2-bit) live blocks in the cudagraph-trees pool that no output owns.  This probe repeats the
test's steps for one bit width with the allocation histories on (cudagraph_trees_history_recording), so a failure
names the Python / C++ frames that allocated each leaked block.  Run it plain and under memcheck:

    python3 bench/cudagraph_pool_probe.py 1.58 > out.txt 2>&1
    compute-sanitizer --tool memcheck --kernel-name kns=bitmm python3 bench/cudagraph_pool_probe.py 1.58

bits 0 (session 56): the control, the same net unconverted (no bitmm op).  It prints 'ok' after three compiled calls
that match eager, or the error with the histories (first 60 lines of each).

Session 57 (H100, b961122; bench/results/h100_s57_pool_probe_memcheck_{0,2}_b961122.txt.gz): under memcheck the control
fails the same way as bits 2 (130 and 132 blocks): by their histories 120 / 122 come from inductor's runtime
benchmarking inside cudagraph trees' warm-up (run_eager; 106 argument clones, clone_preserve_strides, and 14 / 16 of
benchmarking.py's 50 MB L2-flush buffers), the other 10 are partition_0's intermediates (in bits 2, 6 bitmm outputs).
So it is an interaction of torch's reduce-overhead path with compute-sanitizer, not a bitmm op; under the sanitizer
the test stops after its eager CUDA graph part.
"""
import gc
import os
import sys
import traceback
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def _describe(obj) -> str:
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} at {obj.f_code.co_filename}:{obj.f_lineno}"
    if isinstance(obj, types.TracebackType):
        return f"traceback of frame {obj.tb_frame.f_code.co_name} ({obj.tb_frame.f_code.co_filename}:{obj.tb_lineno})"
    if isinstance(obj, (list, tuple, dict)):
        return f"{type(obj).__name__} of {len(obj)}"
    return type(obj).__qualname__


def _data_ptr(t: torch.Tensor):
    """The storage's device pointer of a real CUDA tensor, else None (session 57: the fake / functional tensors that
    torch.compile leaves in gc.get_objects() raise on data_ptr())."""
    try:
        return t.untyped_storage().data_ptr() if t.is_cuda else None
    except RuntimeError:
        return None


def _print_holders(leaked: set, depth: int = 4) -> None:
    """Session 57: which Python objects keep a leaked block alive.  Every live tensor whose storage starts at a leaked
    pointer, then its referrers up to `depth` levels (frames and tracebacks by code name and line; containers by type):
    a frame of the warm-up run held by a caught exception's traceback would show up here as 'traceback of frame ...'."""
    gc.collect()
    found = [o for o in gc.get_objects() if isinstance(o, torch.Tensor) and _data_ptr(o) in leaked]
    print(f"{len(found)} live tensors own a leaked block (after gc.collect)")
    for t in found[:4]:
        print(f"tensor {tuple(t.shape)} {t.dtype} at {_data_ptr(t)}")
        level, seen = [t], {id(found), id(t)}
        for d in range(depth):
            nxt = []
            for o in level:
                for r in gc.get_referrers(o):
                    ours = isinstance(r, types.FrameType) and r.f_code.co_name == "_print_holders"
                    if id(r) in seen or r is level or r is nxt or ours:
                        continue
                    seen.add(id(r))
                    nxt.append(r)
            print(f"  referrers at depth {d + 1}: " + "; ".join(_describe(r) for r in nxt[:8]))
            level = nxt[:8]


def main(bits: float, history: bool) -> int:
    import torch._inductor.config as inductor_config
    from test_nn import _capture_and_replay, _converted_half_net

    inductor_config.triton.cudagraph_trees_history_recording = history
    model, ids = _converted_half_net(bits)  # (bits 0, session 56's control: unconverted, fp16 nn.Linear, no bitmm op)
    with torch.no_grad():
        y_eager = model(ids)
        if os.environ.get("EAGER_GRAPH", "1") == "1":  # the test's eager capture first (EAGER_GRAPH=0 leaves it out)
            graph, y_graph = _capture_and_replay(model, ids)
            print(f"eager graph replays the eager result bitwise: {torch.equal(y_graph, y_eager)}", flush=True)
        compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
        try:
            for i in range(3):
                y_c = compiled(ids)
                print(f"compiled call {i}: ok", flush=True)
        except RuntimeError as e:
            msg = str(e)
            print(f"FAILED at a compiled call: {msg.splitlines()[0]}")
            # the histories: one block per leaked pointer; print the first few in full
            blocks = msg.split("Data Pointer:")
            print(f"{len(blocks) - 1} leaked blocks listed")
            for b in blocks[1:4]:
                print("Data Pointer:" + "\n".join(b.splitlines()[:60]))
            # each leaked block's size, state and pool from the allocator's snapshot (the error names only pointers
            # and histories: session 56's 8 blocks were partition_0's intermediates, the embedding's output and
            # bitmm.int2_linear outputs)
            leaked = {int(b.split(",")[0].strip()) for b in blocks[1:] if b.split(",")[0].strip().isdigit()}
            for seg in torch.cuda.memory_snapshot():
                addr = seg["address"]
                for blk in seg["blocks"]:
                    if addr in leaked:
                        frames = [f"{f.get('filename', '?')}:{f.get('line', '?')} {f.get('name', '?')}"
                                  for f in blk.get("frames", [])][:12]
                        print(f"leaked block {addr}: {blk['size']} bytes, {blk['state']}, "
                              f"pool {seg.get('segment_pool_id')}, frames: {frames}")
                    addr += blk["size"]
            _print_holders(leaked)
            traceback.print_exc(limit=3)
            return 1
        err = (y_c.float() - y_eager.float()).abs().max().item()
        print(f"max |compiled - eager| = {err:.3g}")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.58, history=os.environ.get("HISTORY", "1") == "1"))
