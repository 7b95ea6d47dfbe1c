"""Builds bitmm._C: CPU kernels always, CUDA kernels when torch has CUDA and nvcc exists.

Environment:
  BITMM_FORCE_CPU=1     build without CUDA even if it is available
  TORCH_CUDA_ARCH_LIST  CUDA architectures (default here: 8.0;8.6;8.9;9.0)
  BITMM_PTXAS_VERBOSE=1 print the compiler's register / spill report (-Xptxas -v)
  BITMM_SANITIZE=1      CPU build with AddressSanitizer + UBSan (see README, "Sanitizers")
Sources are every .cpp / .cu under csrc/ (CMakeLists.txt globs the same folders).
"""
import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


# -Bno-symbolic cancels the -Bsymbolic-functions some Pythons (Ubuntu's) put in
# LDSHARED: with it, weak copies of libstdc++ templates that nvcc's host pass
# left in our objects bound to themselves instead of libstdc++'s, and printing
# an integer in an error message crashed (seen on the GPU machine).
LINK_ARGS = ["-fopenmp", "-Wl,-Bno-symbolic"]


def site_dirs():
    import site
    import sysconfig
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    try:
        dirs += site.getsitepackages()
    except AttributeError:
        pass
    return list(dict.fromkeys(dirs))


def find_cuda_home():
    """torch guesses CUDA_HOME from `which nvcc`; a wrapper script on PATH (as on
    our dev machines: /usr/local/bin/nvcc) makes that /usr/local, without the
    toolkit headers.  Prefer an explicit CUDA_HOME / CUDA_PATH, then a toolkit
    directory that has its headers."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return
    for d in ("/usr/local/cuda", "/opt/cuda"):
        if os.path.isfile(os.path.join(d, "include", "cuda_runtime.h")) and os.path.isfile(
                os.path.join(d, "bin", "nvcc")):
            os.environ["CUDA_HOME"] = d
            return


def extensions():
    import torch
    find_cuda_home()  # before torch.utils.cpp_extension reads it
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    # -fopenmp: at::parallel_for in extension code is serial without it.  No
    # -fvisibility=hidden: it made local copies of libstdc++'s ostream code that
    # crashed against an older runtime libstdc++ (torch 2.11 venv on the GPU machine).
    cxx = ["-O3", "-std=c++20", "-fopenmp"]
    if os.environ.get("BITMM_SANITIZE", "0") not in ("", "0"):
        cxx = ["-O1", "-g", "-std=c++20", "-fopenmp", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
               "-fno-sanitize-recover=undefined"]
        LINK_ARGS.append("-fsanitize=address,undefined")
    cpu_src = sources("csrc/*.cpp") + sources("csrc/cpu/*.cpp")
    want_cuda = os.environ.get("BITMM_FORCE_CPU", "0") in ("", "0") and torch.version.cuda is not None
    if want_cuda and CUDA_HOME is not None:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;8.6;8.9;9.0")
        # pip's CUDA torch wheels ship the CUDA library headers (cuBLAS, cuSPARSE, ...)
        # that ATen's CUDA headers include; a toolkit with runtime headers only lacks them.
        # -idirafter: searched after the toolkit's own include dir, whose runtime
        # headers must win (the wheel's cuda_runtime_api.h lacks crt/).  Only the
        # torch glue (.cpp) needs them; the .cu files include no torch headers.
        wheel_includes = [d for d in (os.path.join(p, "nvidia", "cu13", "include") for p in site_dirs())
                          if os.path.isdir(d)]
        cxx = cxx + [f"-idirafter{d}" for d in wheel_includes]
        nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]
        if os.environ.get("BITMM_PTXAS_VERBOSE"):
            nvcc.append("-Xptxas=-v")
        return [CUDAExtension(
            "bitmm._C",
            cpu_src + sources("csrc/cuda/*.cpp") + sources("csrc/cuda/*.cu"),
            extra_compile_args={"cxx": cxx + ["-DBITMM_WITH_CUDA"], "nvcc": nvcc},
            extra_link_args=LINK_ARGS,
        )]
    return [CppExtension("bitmm._C", cpu_src, extra_compile_args={"cxx": cxx}, extra_link_args=LINK_ARGS)]


def build_ext_cls():
    from torch.utils.cpp_extension import BuildExtension
    return BuildExtension.with_options(use_ninja=True)


setup(
    name="bitmm",
    version="0.1.0",
    description="Multiplication-free low-bit (1, 1.58, 2-bit) linear layers for PyTorch",
    packages=["bitmm"],
    ext_modules=extensions(),
    cmdclass={"build_ext": build_ext_cls()},
    python_requires=">=3.10",
    install_requires=["torch>=2.4", "numpy"],
    extras_require={
        "test": ["pytest", "pytest-benchmark", "hypothesis", "safetensors"],
        "checkpoint": ["safetensors"],
        "examples": ["matplotlib", "scikit-learn"],
    },
    entry_points={"console_scripts": ["bitmm=bitmm.__main__:main"]},
)
