#!/usr/bin/env bash
# Prepared in session 58: the sanitizer units left after next_s59_call1.sh, on a warm machine (chain it at once: the
# machine goes back after ~30 s idle).  Before it, extract call 1's san_resume.txt (rest.tgz) into
# bench/results/san_resume_race_init_s59.txt (untracked files travel) so that its capped units resume.
#   SAN_PAR=3 S59_UNITS="<units left, as call 1's log names them>" S59_END=<s> BITMM_COMMIT=<full sha> \
#     bash bench/device_calls/next_s59_call2.sh
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
san_tail "${S59_UNITS:?the units left}" ${S59_END:-560}
pack_out
cat "$OUT/log.txt"
