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


def _collected(env_shard, files):
    """Test ids pytest collects from `files` with BITMM_SHARD=env_shard (None: unset), in a child process."""
    env = {k: v for k, v in os.environ.items() if k not in ("BITMM_SHARD", "BITMM_TEST_PROFILE")}
    if env_shard is not None:
        env["BITMM_SHARD"] = env_shard
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files]
    out = subprocess.run(cmd, cwd=os.path.dirname(os.path.abspath(__file__)), env=env, capture_output=True,
                         text=True, timeout=300).stdout
    return {line for line in out.splitlines() if "::" in line}


def test_shards_partition_the_suite_and_keep_their_tests_when_it_changes():
    # BITMM_SHARD=i/n (tests/conftest.py): the n shards are disjoint and together every test; each test's shard
    # depends on its id alone, so a smaller collection (a test removed, a file not collected on one machine) keeps
    # every remaining test in its shard (sanitizer units run in different sessions then cover the suite together).
    files = ["test_formats.py", "test_quant.py"]
    whole = _collected(None, files)
    shards = [_collected(f"{i}/3", files) for i in range(3)]
    assert len(whole) > 30 and all(shards)
    assert set().union(*shards) == whole and sum(len(s) for s in shards) == len(whole)
    fewer = _collected("1/3", files[1:])  # the first file's tests gone: the second's move up in the collection
    assert fewer and fewer == {t for t in shards[1] if t.split("::")[0].endswith(files[1])}
