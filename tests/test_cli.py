"""The command line: python -m bitmm info / bench."""
import json
import os
import subprocess
import sys
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child_env(**extra):
    """This process's environment for a child that imports this checkout's bitmm (PYTHONPATH), plus `extra`."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def run(*args):
    return subprocess.run([sys.executable, "-m", "bitmm", *args], capture_output=True, text=True, env=_child_env(),
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
    """Test ids pytest collects from `files` with BITMM_SHARD=env_shard (None: unset), in a child process that imports
    this checkout's bitmm (as run() above); the child must succeed."""
    env = _child_env(BITMM_SHARD=env_shard or "")
    env.pop("BITMM_TEST_PROFILE", None)
    if env_shard is None:
        del env["BITMM_SHARD"]
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                       cwd=os.path.join(ROOT, "tests"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return {line for line in r.stdout.splitlines() if "::" in line}


@pytest.mark.skipif(os.environ.get("BITMM_UNDER_SANITIZER") == "1",
                    reason="collection only, no kernel runs (and the children would run under the sanitizer)")
def test_shards_partition_the_suite_and_keep_their_tests_when_it_changes():
    # BITMM_SHARD=i/n (tests/conftest.py) keeps the tests whose id hashes (crc32) to i mod n: a test's unit depends on
    # its id alone, so the n units are disjoint and cover the suite, and a smaller collection (the first file's tests
    # gone, so the second file's move up in the list: the old split by position moved them to other units) keeps every
    # remaining test in its unit; sanitizer units run in different sessions then add up.
    files = ["test_formats.py", "test_quant.py"]
    whole = _collected(None, files)
    by_file = {f: {t for t in whole if t.split("::")[0].endswith(f)} for f in files}
    assert all(len(v) > 20 for v in by_file.values())
    unit = _collected("1/3", files)
    assert unit == {t for t in whole if zlib.crc32(t.encode()) % 3 == 1}
    assert 0 < len(unit) < len(whole)
    assert _collected("1/3", files[1:]) == unit & by_file[files[1]]
