#!/usr/bin/env bash
# Prepared in session 58 as next_s59_call2.sh (not run: session 59 had one call): the sanitizer units left after a
# call, on a warm machine (chain it at once: the machine goes back after ~30 s idle).  Before it, extract the call's
# san_resume.txt (rest.tgz), if any, into bench/results/san_resume_race_init_s60.txt (untracked files travel) so
# that its capped units resume.
#   SAN_PAR=3 S60_UNITS="<units left, as the call's log names them>" S60_END=<s> BITMM_COMMIT=<full sha> \
#     bash bench/device_calls/next_s60_san.sh
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
san_tail "${S60_UNITS:?the units left}" ${S60_END:-560}
pack_out
cat "$OUT/log.txt"
