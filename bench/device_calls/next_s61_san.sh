#!/usr/bin/env bash
# Prepared in session 58 as next_s59_call2.sh (not run in sessions 59-60: one call each): the sanitizer units left
# after a call, on a warm machine (chain it at once: the machine goes back after ~30 s idle).  Before it, extract the
# call's san_resume.txt (rest.tgz), if any, into bench/results/san_resume_race_init_s61.txt (untracked files travel;
# session 60's san_resume_race_init_s60.txt is committed and read too) so that its capped units resume.
#   SAN_PAR=3 S61_UNITS="<units left, as the call's log names them>" S61_END=<s> BITMM_COMMIT=<full sha> \
#     bash bench/device_calls/next_s61_san.sh
cd "$(dirname "$0")/../.."
source bench/device_calls/prelude.sh
export PYTHONPATH=$PWD
san_tail "${S61_UNITS:?the units left}" ${S61_END:-560}
pack_out
cat "$OUT/log.txt"
