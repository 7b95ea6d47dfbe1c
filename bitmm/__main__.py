"""Command line: ``python -m bitmm {info,demo,bench}``."""
from __future__ import annotations

import argparse
import sys


def info() -> None:
    import platform

    import torch

    import bitmm
    from bitmm import _C  # noqa: F401

    print(f"bitmm {bitmm.__version__}  ({bitmm.__file__})")
    print(f"python {platform.python_version()}  torch {torch.__version__}  (CUDA {torch.version.cuda})")
    print(f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}")
    cuda_impl = torch._C._dispatch_has_kernel_for_dispatch_key("bitmm::ternary_linear", "CUDA")
    try:
        from bitmm._build_info import BUILD_INFO
    except ImportError:  # built by CMake or an older setup.py
        BUILD_INFO = {}
    archs = BUILD_INFO.get("cuda_archs")
    cpu_kernel = (f"forward: {torch.ops.bitmm._cpu_forward_kernel()} kernel, linear_a8: "
                  f"{torch.ops.bitmm._cpu_a8_kernel()} kernel")
    print(f"bitmm backends: CPU ({cpu_kernel}, chosen at run time; BITMM_CPU_ISA limits them)"
          f"{', CUDA (compiled for ' + archs + ')' if cuda_impl and archs else ', CUDA' if cuda_impl else ''}"
          f"{'; built with ASan/UBSan' if BUILD_INFO.get('sanitize') else ''}"
          f"{'; built against torch ' + BUILD_INFO['torch'] if BUILD_INFO.get('torch') else ''}")
    print(f"backend choice on CUDA: {bitmm.get_backend()} (bitmm.set_backend)")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f"cuda:{i} {p.name}, sm_{p.major}{p.minor}, {p.multi_processor_count} SMs, "
                  f"{p.total_memory / 2**30:.0f} GiB; arch list in this build: {torch.cuda.get_arch_list()}")
    else:
        print("no CUDA device")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bitmm", description="bitmm command line")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="version, built backends, device")
    d = sub.add_parser("demo", help="quantize a trained model, compare error and speed")
    d.add_argument("--quick", action="store_true", help="fewer training steps and timing repeats")
    sub.add_parser("bench", help="bitmm vs dense F.linear on this device (python -m bitmm bench --help)",
                   add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from bitmm import bench_cli
        bench_cli.main(argv[1:])
        return
    args = ap.parse_args(argv)
    if args.cmd == "info":
        info()
    elif args.cmd == "demo":
        from bitmm import demo
        demo.main(quick=args.quick)


if __name__ == "__main__":
    main(sys.argv[1:])
