#!/usr/bin/env bash
# (kept as run; session 13 device calls, paths relative to the repository root)
# session 13, second device call: the BD warps-along-N rule (tests with WN forced, the probe per kind /
# shape / WN), then racecheck of wgmma ws-64 without a kernel filter (NOTES plan item 3).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; start=$(date +%s)
export MAX_JOBS=16 TORCH_CUDA_ARCH_LIST="9.0a" PYTHONUNBUFFERED=1
python3 setup.py build_ext --inplace > /tmp/build.log 2>&1 || { tail -30 /tmp/build.log; exit 1; }
echo "build t=$(( $(date +%s) - start ))"
for wn in 4 2; do
  BITMM_TC_WN=$wn timeout 100 python3 -m pytest tests/test_tensorcore.py tests/test_kernel_coverage.py -q -x -rf -p no:cacheprovider \
    -k "grouped_decode or (grouped and many_row) or (lora and grouped)" > /tmp/pt_wn$wn.txt 2>&1
  echo "pytest WN=$wn rc=$?: $(tail -1 /tmp/pt_wn$wn.txt)" | tee -a $OUT/log.txt; grep -E "^FAILED" /tmp/pt_wn$wn.txt | head -5
done
echo "t=$(( $(date +%s) - start ))"
A="--kinds int2,ternary,binary --shapes 8192x28672,8192x8192,4096x4096,28672x8192 --groups 64,128 --ms 1,2"
timeout 90 python3 bench/decode_probe.py $A --out $OUT/probe_rule.json > /tmp/probe_rule.txt 2>&1; echo "rule rc=$?"
for wn in 1 2 4; do BITMM_TC_WN=$wn timeout 60 python3 bench/decode_probe.py $A --backends tensorcore --out /tmp/p$wn.json > /tmp/probe_wn$wn.txt 2>&1; echo "wn=$wn rc=$?"; done
python3 - <<'PY' | tee $OUT/probe_wn_table.txt
import json
recs = json.load(open(__import__("os").environ.get("OUT", "/tmp/out") + "/probe_rule.json"))["records"]
by = {}
for wn, f in [("rule", None), ("1", "/tmp/p1.json"), ("2", "/tmp/p2.json"), ("4", "/tmp/p4.json")]:
    rs = recs if f is None else json.load(open(f))["records"]
    for r in rs:
        key = (r["op"], r["K"], r["N"], r["group_size"], r["M"])
        by.setdefault(key, {})[wn if r["backend"] == "tensorcore" else "addsub"] = r["us"]
print("kind K N G M | rule wn1 wn2 wn4 addsub")
for k, v in by.items(): print(*k, "|", *(v.get(c, "-") for c in ("rule", "1", "2", "4", "addsub")))
PY
echo "t=$(( $(date +%s) - start ))"
left=$(( 560 - ($(date +%s) - start) ))
BITMM_UNDER_SANITIZER=1 BITMM_SKIP_HUGE=1 timeout $left compute-sanitizer --tool racecheck --print-limit 50 \
  python3 -m pytest tests/test_wgmma.py -q -p no:cacheprovider -k "pipeline_variants and ws-64" > /tmp/rc_ws.txt 2>&1
echo "== racecheck ws-64 unfiltered (cap ${left}s) rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/rc_ws.txt | tail -2 | tr '\n' ' ') | $(grep -E 'passed|failed' /tmp/rc_ws.txt | tail -1)" | tee -a $OUT/log.txt
grep -E "^========= (Error|Race|Invalid|Program)" /tmp/rc_ws.txt | cut -c1-140 | sort | uniq -c | head -5 | tee -a $OUT/log.txt
echo "t=$(( $(date +%s) - start ))"
