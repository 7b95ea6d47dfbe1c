#!/usr/bin/env bash
# Builds libbitmm.so and the C++ example with CMake (CPU only), runs the example
# through CTest, then loads the library into Python with torch.ops.load_library
# and checks one op there.  This is what CI runs (.ci/); from the repo root:
#   bash examples/cpp/build_and_test.sh [extra cmake -D arguments]
# Environment: PYTHON (default python3: the one with torch), BUILD_DIR (default
# build/cmake), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build/cmake}
JOBS=${JOBS:-2}
t0=$(date +%s)

# Everything CMake needs from Python: where torch's CMake package is, and the
# interpreter (csrc/ops.cpp includes <Python.h>; see CMakeLists.txt).  No CUDA
# cache variables: with BITMM_CUDA=OFF, CMakeLists.txt skips torch's CUDA
# discovery (BITMM_TORCH_SKIP_CUDA), so no toolkit is needed even for a CUDA torch.
TORCH_CMAKE_PREFIX=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
PYTHON_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)')

generator=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && ninja --version >/dev/null 2>&1; then
  generator=(-G Ninja)  # only for a fresh build dir: CMake refuses to switch generators
fi

echo "== configure ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX" \
  -DPython3_EXECUTABLE="$PYTHON_EXE" \
  -DBITMM_CUDA=OFF \
  "$@"
t1=$(date +%s)

echo "== build (-j$JOBS): libbitmm + bitmm_example"
cmake --build "$BUILD_DIR" -j "$JOBS"
t2=$(date +%s)

echo "== ctest"
(cd "$BUILD_DIR" && ctest --output-on-failure)

echo "== torch.ops.load_library"
# Its own interpreter, which never imports the bitmm package (it would register the ops twice).
"$PYTHON" examples/cpp/load_library_check.py "$BUILD_DIR/libbitmm.so"
t3=$(date +%s)
echo "== build_and_test.sh passed: configure $((t1 - t0))s, build $((t2 - t1))s, tests $((t3 - t2))s, total $((t3 - t0))s"
