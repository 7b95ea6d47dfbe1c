"""Random problems and tolerance rules shared by the tests."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import torch

import bitmm
from bitmm import reference

KINDS = ["ternary", "binary", "int2"]
VALUE_RANGE = {"ternary": (-1, 2), "binary": (0, 2), "int2": (0, 4)}
PACKERS = {"ternary": bitmm.pack_ternary, "binary": bitmm.pack_binary, "int2": bitmm.pack_int2}
UNPACKERS = {"ternary": bitmm.unpack_ternary, "binary": bitmm.unpack_binary, "int2": bitmm.unpack_int2}
# Floor on the relative error bound, for shapes so small that the baseline error is ~0 (where a result is exact in
# the dtype: dtype_bound's third term; the second, twice the error of rounding the exact result, is what binds
# otherwise -- the old floor of 1e-3 / 8e-3 was 3-5x fp16's and bf16's baselines, so an fp16-accumulation bug passed
# below K ~ 1000).  float32 keeps 2e-6: the kernels' row-sum / offset terms cancel by a few of its ulps at small K.
TOL_FLOOR = {torch.float32: 2e-6, torch.float16: 1e-4, torch.bfloat16: 8e-4, torch.float64: 1e-12}


def dtype_bound(ref: torch.Tensor, dtype: torch.dtype, base: float) -> float:
    """The error a kernel's output in `dtype` may have against the float64 reference `ref`: 2x that of a plain
    PyTorch computation in the dtype (`base`), and never below 2x that of rounding the exact result to the dtype."""
    return max(2 * base, 2 * rel_err(ref.to(dtype), ref), TOL_FLOOR[dtype])


def baseline_device(t: torch.Tensor) -> torch.device:
    """Where the tests' own plain-dtype baselines (F.linear / matmul in x's dtype) run: x's device,
    or the CPU under BITMM_SAN_NO_CUBLAS=1 (bench/sanitize.sh's racecheck and initcheck units):
    under racecheck cuBLAS's sm_90 GEMMs die with a hardware exception, and initcheck flags reads of
    what they wrote (bench/results/h200_sanitizers_e848b4d.txt), so those runs keep cuBLAS out of
    everything but the ops under test."""
    return torch.device("cpu") if os.environ.get("BITMM_SAN_NO_CUBLAS") == "1" else t.device


def random_values(kind: str, N: int, K: int, device="cpu") -> torch.Tensor:
    lo, hi = VALUE_RANGE[kind]
    return torch.randint(lo, hi, (N, K), device=device, dtype=torch.int8)


def random_scales(mode: str, N: int, K: int, G: int | None, dtype=torch.float32, device="cpu", offset=True):
    """mode: 'tensor' (0-d), 'channel' (N,), 'group' (N, K/G)."""
    shape = {"tensor": (), "channel": (N,), "group": (N, K // G if G else 1)}[mode]
    s = (torch.rand(shape, device=device) * 0.9 + 0.1).to(dtype)  # positive, away from 0
    u = (torch.randn(shape, device=device) * 0.5).to(dtype) if offset else None
    return s, u


def make_problem(kind, M, K, N, mode="channel", G=None, dtype=torch.float32, device="cpu", offset=True, bias=True,
                 lead=None):
    v = random_values(kind, N, K, device)
    packed = PACKERS[kind](v)
    s, u = random_scales(mode, N, K, G, dtype=dtype if dtype != torch.float64 else torch.float64, device=device,
                         offset=offset)
    shape = (M, K) if lead is None else (*lead, M, K)
    x = torch.randn(shape, device=device, dtype=dtype)
    b = torch.randn(N, device=device, dtype=dtype) if bias else None
    return x, packed, s, u, b


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.double().cpu(), ref.double().cpu()
    den = ref.norm().item()
    return (a - ref).norm().item() / (den if den > 0 else 1.0)


def reference_and_baseline_err(kind, x, packed, s, u, b) -> tuple[torch.Tensor, float]:
    """The float64 reference of bitmm.linear (bitmm.reference's definition) and the error of a plain PyTorch
    computation in x's dtype (the dense weight rounded to that dtype, F.linear), both on baseline_device(x): the
    GPU for CUDA tensors (PyTorch's own float64 kernels, not bitmm's), so the largest problems' references no longer
    take the CPU most of a test's time; the CPU under BITMM_SAN_NO_CUBLAS=1.  The dense weight is built once."""
    dev = baseline_device(x)
    w = reference.dense_weight(kind, packed.to(dev), s.to(dev), None if u is None else u.to(dev), x.shape[-1])
    ref = x.to(dev, torch.float64) @ w.T
    if b is not None:
        ref = ref + b.to(dev, torch.float64)
    y = torch.nn.functional.linear(x.to(dev), w.to(x.dtype), None if b is None else b.to(dev, x.dtype))
    return ref, rel_err(y, ref)


def baseline_err(kind, x, packed, s, u, b) -> float:
    """Error of a plain PyTorch computation in x's dtype (dense weight in that dtype)."""
    return reference_and_baseline_err(kind, x, packed, s, u, b)[1]


def assert_close_to_reference(kind, y, x, packed, s, u, b):
    """y must match the float64 reference within 2x the plain-dtype baseline error."""
    ref, base = reference_and_baseline_err(kind, x, packed, s, u, b)
    assert y.shape == ref.shape, (y.shape, ref.shape)
    assert y.dtype == x.dtype
    assert torch.isfinite(y).all(), "non-finite output (unwritten / poisoned element?)"
    if y.numel() == 0:
        return
    err = rel_err(y, ref)
    bound = dtype_bound(ref, x.dtype, base)
    if err > bound:  # (only then: a second float64 product) where the sums cancel, the floor scales with them
        bound = max(bound, TOL_FLOOR[x.dtype] * cancellation(kind, x, packed, s, u, b, ref))
    assert err <= bound, f"relative error {err:.3e} > bound {bound:.3e}"
    assert_no_bad_slice(y, ref, bound)


def assert_close_to_reference_by_rows(kind, y, x, packed, s, u, b, rows_per_check: int = 4096):
    """assert_close_to_reference on slices of rows_per_check weight rows (output columns) at a time, for layers whose
    whole float64 dense weight would take gigabytes; scalar (per tensor) s / u pass whole."""
    N = packed.shape[0]
    for n0 in range(0, N, rows_per_check):
        rows = slice(n0, min(n0 + rows_per_check, N))
        pick = lambda t: t if t is None or t.dim() == 0 else t[rows]  # noqa: E731
        assert_close_to_reference(kind, y[..., rows], x, packed[rows], pick(s), pick(u), pick(b))


def cancellation(kind, x, packed, s, u, b, ref, grad_x: bool = False) -> float:
    """||(|x| |W|^T + |b|)|| / (sqrt(K) ||ref||), at least 1: how far the output's sums cancel (grad_x=True: x is
    grad_y, the sums run over N, ||(|grad_y| |W|)|| / (sqrt(N) ||ref||), b unused).  For random signs
    ||ref|| is about the magnitudes' norm over sqrt(K) (this is ~1); where the terms of every output cancel (a
    hypothesis draw of one output, M = N = 1, summing to 0.03 from terms of 9.5) a kernel's legitimate rounding of
    its partial sums, a few units in the last place of the terms, is many times that of ||ref||, and a plain
    dtype computation can land closer by luck, so the floor TOL_FLOOR follows the terms' scale there."""
    dev = baseline_device(x)
    K = ref.shape[-1] if grad_x else x.shape[-1]
    w = reference.dense_weight(kind, packed.to(dev), s.to(dev), None if u is None else u.to(dev), K)
    mag = x.to(dev, torch.float64).abs() @ (w.abs() if grad_x else w.abs().T)
    if b is not None and not grad_x:
        mag = mag + b.to(dev, torch.float64).abs()
    den = ref.double().to(dev).norm().item() * max(x.shape[-1], 1) ** 0.5
    return max(1.0, mag.norm().item() / den) if den > 0 else 1.0


# A whole-tensor relative error hides one wrong output column (row) where N (M) is large: one wrong element in N
# columns adds ~1/sqrt(N) to it, below bf16's bound of ~6e-3 past N ~ 28000.  So each column's (row's) error is also
# bounded, against the larger of its own norm and the average column's (row's) norm (a column whose values cancel to
# ~0 still carries the rounding error of its terms).  A correct kernel's worst column, even one element (M = 1), sits
# ~4-5 standard deviations out, 2-2.5x the average column's error, times up to 1.7 where the column's scale is
# largest: SLICE_FACTOR = 8 times the whole tensor's bound leaves a margin, and still flags a column wrong by more
# than ~5% of a typical column's norm.
SLICE_FACTOR = 8


def assert_no_bad_slice(y: torch.Tensor, ref: torch.Tensor, bound: float) -> None:
    y2 = y.detach().double().cpu().reshape(-1, y.shape[-1])
    r2 = ref.detach().double().cpu().reshape(-1, ref.shape[-1])
    for dim, what in ((0, "column"), (1, "row")):
        e = (y2 - r2).norm(dim=dim)
        n = r2.norm(dim=dim)
        den = n.clamp(min=max(r2.norm().item() / n.numel() ** 0.5, 1e-300))
        worst = (e / den).max(dim=0)
        assert worst.values.item() <= SLICE_FACTOR * bound, (
            f"{what} {worst.indices.item()}: relative error {worst.values.item():.3e} > {SLICE_FACTOR} x bound "
            f"{bound:.3e}")


def forced_kernel(backend: str, dtype: torch.dtype, K: int, G: int | None = None, grad_x: bool = False) -> str | None:
    """The kernel family a forced CUDA backend must run (csrc/cuda/linear_cuda.cpp): fp64 x or groups
    not a multiple of 32 take the generic kernels; the tensor-core kernels take fp16 / bf16 x.  None
    for a backend with no fixed answer here (auto, digits).  Assumes a 16-byte aligned x, no LoRA
    term, and (grad_x) no deterministic mode and a dequantized weight of at most 1 GiB under "dense"."""
    groups = 1 if G is None else K // G
    if dtype == torch.float64 or (groups > 1 and G % 32):
        return "generic" if backend in ("addsub", "tensorcore", "dense", "wgmma") else None
    if grad_x and backend == "wgmma":
        backend = "tensorcore"  # (grad_x has no wgmma kernel)
    if backend in ("tensorcore", "wgmma"):
        if dtype not in (torch.float16, torch.bfloat16):
            return "addsub"
        # (the wgmma kernel: x's rows through the TMA unit need K % 8 == 0; x is assumed 16-byte aligned)
        return "wgmma" if backend == "wgmma" and wgmma_active() and K % 8 == 0 else "tensorcore"
    return backend if backend in ("addsub", "dense") else None


def wgmma_active() -> bool:
    """This build has the sm_90a wgmma kernel and the device runs it (compute capability 9.0)."""
    try:
        from bitmm._build_info import BUILD_INFO
    except ImportError:
        return False
    return bool(BUILD_INFO.get("wgmma")) and torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)


def assert_kernel_ran(expected: str | None, what: str = "") -> None:
    """This thread's last CUDA op ran `expected` (bitmm.backend.last_kernel; None: not checked).  A forced
    backend whose kernel declines a shape falls back silently, so a test of that kernel checks it ran."""
    if expected is not None:
        ran = bitmm.backend.last_kernel()
        assert ran == expected, f"{what}: the {ran!r} kernels ran, not {expected!r}"


def check_scale_dtypes_and_optional_terms(kind, dtype, sdtype, backend, M, modes):
    """A CUDA backend on scales, offsets and bias in x's dtype ("x") or another one, with the
    offset and bias each present or absent (group-wise binary / int2 need an offset), per mode."""
    sd = dtype if sdtype == "x" else sdtype
    for mode, G in modes:
        x, packed, s, u, b = make_problem(kind, M, 640, 45, mode, G, dtype=dtype, device="cuda")
        s, u, b = s.to(sd), u.to(sd), b.to(sd)
        with bitmm.use_backend(backend):
            for uu, bb in ((u, b), (None, None), (u, None), (None, b)):
                if kind != "ternary" and uu is None and mode == "group":
                    continue
                y = bitmm.linear(kind, x, packed, s, uu, bb)
                assert_kernel_ran(forced_kernel(backend, dtype, 640, G), f"{mode} {G}")
                assert_close_to_reference(kind, y, x, packed, s, uu, bb)


def check_exact_on_integers(kind, dtype, M, N, backend, x_scale=1.0, K=1984, device="cuda"):
    """Small integer activations (times x_scale, a power of two) and unit scales (per tensor, per
    group of 64, per channel): every product and partial sum is exact, so `backend` must match the
    float64 product bit for bit after rounding to dtype."""
    v = random_values(kind, N, K, device)
    packed = PACKERS[kind](v)
    x = (torch.randint(-3, 4, (M, K), device=device) * x_scale).to(dtype)
    w = {"ternary": v.float(), "binary": v.float(), "int2": v.float() - 1}[kind]
    want = x.double() @ w.double().T
    for s in (torch.tensor(1.0, device=device), torch.ones(N, K // 64, device=device, dtype=dtype),
              torch.ones(N, device=device)):
        with bitmm.use_backend(backend):
            y = bitmm.linear(kind, x, packed, s)
        assert_kernel_ran(forced_kernel(backend, dtype, K), f"scale {tuple(s.shape)}")
        assert torch.equal(y.double(), want.to(dtype).double()), (y.double() - want).abs().max()


def check_3d_noncontiguous_misaligned(kind, backend, M, K, N, rows, device="cuda"):
    """`backend` on a 3-D x (2, M, K), a transposed (non-contiguous) x of `rows` rows and a
    2-byte-aligned one, group-wise (32) fp16 scales; returns the 3-D problem (x, packed, s, u, b)."""
    x, packed, s, u, b = make_problem(kind, M, K, N, "group", 32, dtype=torch.float16, device=device, lead=(2,))
    with bitmm.use_backend(backend):
        y = bitmm.linear(kind, x, packed, s, u, b)
        assert_kernel_ran(forced_kernel(backend, torch.float16, K, 32), "3-D x")
        assert_close_to_reference(kind, y, x, packed, s, u, b)
        xt = torch.randn(K, rows, device=device, dtype=torch.float16).T
        assert_close_to_reference(kind, bitmm.linear(kind, xt, packed, s, u, b), xt, packed, s, u, b)
        xo = torch.randn(rows * K + 1, device=device, dtype=torch.float16)[1:].view(rows, K)  # 2-byte aligned
        assert_close_to_reference(kind, bitmm.linear(kind, xo, packed, s, u, b), xo, packed, s, u, b)
    return x, packed, s, u, b


def cuda_graphs_capturable() -> bool:
    """False where torch's caching allocator is off (PYTORCH_NO_CUDA_MEMORY_CACHING=1: bench/sanitize.sh's initcheck
    units, so that initcheck sees a fresh cudaMalloc per tensor): every allocation is then a cudaMalloc, which a stream
    capture may not call, and the failed capture leaves the CUDA generator in its capture state, so every later test
    drawing random numbers on the GPU fails too (session 44, cover3 initcheck 0/8: 1 capture, then 68 such failures).
    The graph tests run in the plain runs."""
    return os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") != "1"


def check_deterministic_and_graph(kind, backend, x, packed, s, u, b):
    """`backend` gives bitwise the same y on repeated calls and from a CUDA-graph replay (where graphs can be captured:
    cuda_graphs_capturable)."""
    with bitmm.use_backend(backend):
        y0 = bitmm.linear(kind, x, packed, s, u, b)
        for _ in range(3):
            assert torch.equal(bitmm.linear(kind, x, packed, s, u, b), y0)
        if not cuda_graphs_capturable():
            return
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            yg = bitmm.linear(kind, x, packed, s, u, b)
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(yg, y0)


def check_config_sweep(backend, modes, shapes, repeat=False, device="cuda"):
    """Every kind x fp16 / bf16 x (mode, G, fp32 scales[, offset]) x (M, K, N) through `backend` against the
    float64 reference (shapes whose K the group does not divide are skipped; offset, default True: whether
    the problem has an offset u); repeat: a second call must give the same bits.  Run in a child process by
    the tests that force a kernel configuration through an environment variable read once per process
    (tests/test_wgmma.py)."""
    for kind in ("binary", "ternary", "int2"):
        for dtype in (torch.float16, torch.bfloat16):
            for mode, G, f32, *rest in modes:
                off = rest[0] if rest else True
                for M, K, N in shapes:
                    if G and K % G:
                        continue
                    x, p, s, u, b = make_problem(kind, M, K, N, mode, G, dtype=dtype, device=device, offset=off)
                    if f32:
                        s, u, b = s.float(), None if u is None else u.float(), b.float()
                    poison_cuda_allocator()
                    with bitmm.use_backend(backend):
                        y = bitmm.linear(kind, x, p, s, u, b)
                        assert_kernel_ran(forced_kernel(backend, dtype, K, G), f"{kind} {dtype} {mode} {M}x{K}x{N}")
                        if repeat:
                            assert torch.equal(y, bitmm.linear(kind, x, p, s, u, b))
                    assert_close_to_reference(kind, y, x, p, s, u, b)


def poison_cuda_allocator(nbytes: int = 1 << 24):
    """Fills recently freed CUDA memory with NaN so an unwritten output shows up: a block of the
    caching allocator's large pool and, since allocations up to 1 MiB come from its separate small
    pool, 64 blocks of 512 KiB there."""
    if torch.cuda.is_available():
        t = torch.full((nbytes // 4,), float("nan"), device="cuda")
        small = [torch.full(((1 << 19) // 4,), float("nan"), device="cuda") for _ in range(64)]
        del t, small


def assert_error_table(cases) -> None:
    """Each (description, call, exception type, message fragment) raises that exception with that fragment."""
    import pytest
    for desc, call, exc, frag in cases:
        with pytest.raises(exc, match=frag):
            call()
            pytest.fail(f"{desc}: no error")


class UnmappedNeighbours:
    """Copies of CPU tensors placed flush against PROT_NONE pages (Linux): ``place(t, at_end)`` returns a copy
    starting right after one (at_end False) or ending right before one, so a kernel reading before or past it
    faults (ASan does not check AVX-512 masked loads).  A context manager: the mappings go on exit."""

    def __enter__(self):
        import ctypes
        import mmap
        self._ctypes, self._mmap = ctypes, mmap
        self._libc = libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self._maps = []
        return self

    def place(self, t: torch.Tensor, at_end: bool) -> torch.Tensor:
        ctypes, mmap, libc = self._ctypes, self._mmap, self._libc
        page, guard = mmap.PAGESIZE, 1 << 20
        nbytes = t.numel() * t.element_size()
        body = -(-nbytes // page) * page
        size = 2 * guard + body
        base = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        assert base not in (None, ctypes.c_void_p(-1).value)
        self._maps.append((base, size))
        assert libc.mprotect(base, guard, 0) == 0 and libc.mprotect(base + guard + body, guard, 0) == 0
        buf = (ctypes.c_char * nbytes).from_address(base + guard + (body - nbytes if at_end else 0))
        g = torch.frombuffer(buf, dtype=t.dtype, count=t.numel()).view(t.shape)
        g.copy_(t)
        return g

    def __exit__(self, *exc):
        for base, size in self._maps:
            self._libc.munmap(base, size)
        return False


def run_in_child(code: str, timeout: int = 900, **env_vars) -> None:
    """Runs `code` in a fresh Python process with the tests folder importable and `env_vars` set (the
    kernels' launch knobs and benchmark overrides are read once per process); fails unless it exits
    cleanly after printing 'ok' (appended here).  A variable given as None is removed from the child's environment."""
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, **env_vars,
               PYTHONPATH=os.pathsep.join([here, os.path.dirname(here), os.environ.get("PYTHONPATH", "")]))
    env = {k: v for k, v in env.items() if v is not None}
    r = subprocess.run([sys.executable, "-c", code + "print('ok')\n"], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stdout[-1000:], r.stderr[-3000:])


# The system C++ compiler, for host-only headers (csrc/cuda/wg_plan.h, tc_launch_rules.h) that tests
# compile into small programs, so their rules are checked on every machine, GPU or not.
HOST_CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def compile_host_program(directory, source: str):
    """Compiles `source` (C++17, the repository root on the include path) in `directory`; returns the
    executable's path."""
    root = Path(__file__).resolve().parent.parent
    d = Path(directory)
    (d / "main.cpp").write_text(source)
    exe = d / "main"
    subprocess.run([HOST_CXX, "-std=c++17", "-O1", f"-I{root}", str(d / "main.cpp"), "-o", str(exe)], check=True)
    return exe


# ---- rows of x for the digits backend's tests (tests/test_digits.py, tests/test_a8_emulation.py) ------------------
def digits_hard_rows(M: int, K: int, dtype, seed: int = 0) -> torch.Tensor:
    """Random rows, plus the cases the digits exist for: row 1 an outlier (the rest of the row 2^11-2^13 below it),
    row 2 tiny values (fp16 subnormals among them), row 3 zero (e = 0, every digit 0), row 4 two magnitudes 2^12
    apart."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, K, generator=g)
    if M > 1:
        x[1, K // 3] = 3000.0
    if M > 2:
        x[2] *= 1e-4
    if M > 3:
        x[3] = 0.0
    if M > 4:
        x[4, ::2] *= 2.0 ** -12
    return x.to(dtype)


def digits_tie_row(dtype, K: int) -> torch.Tensor:
    """A float32 row whose digits meet round-half-to-even ties: with max 2^6 (fp16, e = -23) the subnormals 3, 5 x
    2^-24 are 1.5, 2.5 x 2^e; with max 2^40 (bf16, e = 11) 3072, 5120 are (both round to 2)."""
    unit = 2.0 ** -24 if dtype == torch.float16 else 2.0 ** 10
    tie = torch.tensor([3.0, 5.0, -3.0, -5.0, 7.0]).repeat(K // 5 + 1)[:K] * unit
    tie[0] = 2.0 ** 6 if dtype == torch.float16 else 2.0 ** 40
    return tie


# Which CPU forward kernel runs (tests/test_cpu_kernels.py, and the prepacked fuzz in test_reliability.py).
def _has_avx512f() -> bool:
    """What the kernel asks (__builtin_cpu_supports("avx512f")), not torch's capability, which needs more
    extensions and follows ATEN_CPU_CAPABILITY."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f " in line + " " for line in f)
    except OSError:
        return torch.backends.cpu.get_cpu_capability() == "AVX512"


AVX512 = _has_avx512f()
AVX2 = AVX512 or torch.backends.cpu.get_cpu_capability() != "DEFAULT"


def kernels_run(fn) -> set[str]:
    """The bitmm CPU forward kernels' profiler scopes that ran in fn()."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if e.name.startswith("bitmm::cpu_forward")}


def expected_cpu_kernel(M, prepacked, G, x_dtype, isa_env):
    """The profiler scope of the CPU forward kernel bitmm picks for M rows, the prepacked entry or not, group size
    G (None: per tensor / channel), x's dtype and BITMM_CPU_ISA's value (the dispatch in csrc/cpu/linear_cpu.cpp)."""
    if x_dtype == torch.float64 or (G is not None and G % 32) or isa_env == "generic":
        return "bitmm::cpu_forward_generic"
    if AVX512 and isa_env != "avx2":
        return "bitmm::cpu_forward_avx512_prepacked" if prepacked else "bitmm::cpu_forward_avx512"
    if not AVX2:
        return "bitmm::cpu_forward_generic"
    return "bitmm::cpu_forward_avx2_prepacked" if prepacked else "bitmm::cpu_forward_avx2"
