// Benchmark / probe overrides read from the environment (host code only).  Each caller reads its
// knob once per process (a function-local static), so the first call is as fast as the thousandth.
#pragma once
#include <cstdlib>

namespace bitmm {
namespace cuda {

// An integer knob: 0 when unset or not a number.
inline int env_int(const char* name) {
  const char* e = std::getenv(name);
  return e ? std::atoi(e) : 0;
}

}  // namespace cuda
}  // namespace bitmm
