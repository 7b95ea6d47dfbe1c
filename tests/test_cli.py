"""The command line: python -m bitmm info / bench."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "bitmm", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)


def test_info():
    r = run("info")
    assert r.returncode == 0, r.stderr
    assert "bitmm" in r.stdout and "torch" in r.stdout and "backends" in r.stdout
    if os.path.exists(os.path.join(ROOT, "bitmm", "_build_info.py")):  # setup.py builds record what they contain
        assert "built against torch" in r.stdout


def test_bench_small(tmp_path):
    out = tmp_path / "b.json"
    r = run("bench", "--device", "cpu", "--shapes", "256x384", "--M", "1,3", "--kinds", "ternary,int2",
            "--reps", "1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "speedup" in r.stdout
    data = json.loads(out.read_text())
    assert len(data["records"]) == 4 and all(rec["us"] > 0 for rec in data["records"])
