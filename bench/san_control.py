"""Positive control for compute-sanitizer's kernel-name filter (bench/sanitize.sh).

memcheck / racecheck units instrument only kernels whose name contains "bitmm".  A filter that
matched nothing would pass every test with zero reports, so this launches one kernel whose name
contains "bitmm" (torch's jiterator compiles it with NVRTC) and that reads an unmapped address: under
`compute-sanitizer --tool memcheck --kernel-name kns=bitmm` the run must report an invalid global
read in it.  Outside a sanitizer the read faults and this script says so (exit 0 either way: the
verdict is the sanitizer's report, checked by sanitize.sh).
"""
import torch

code = """
template <typename T> T bitmm_sanitizer_control(T x) {
    // address 256: never mapped, so memcheck must report this read
    return x + *reinterpret_cast<volatile const T*>(static_cast<unsigned long long>(256));
}
"""
fn = torch.cuda.jiterator._create_jit_fn(code)
try:
    fn(torch.ones(4, device="cuda"))
    torch.cuda.synchronize()
    print("control kernel returned (no fault raised)")
except RuntimeError as e:
    print("control kernel faulted as expected:", str(e).splitlines()[0])
