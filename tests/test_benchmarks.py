"""benchmarks/ is a package: every script runs as ``python -m benchmarks.NAME`` from the
repository root, has a results file option, and is listed in benchmarks/README.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HELPERS = {"__init__", "mdreport"}
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in HELPERS)


def test_the_walk_finds_the_benchmarks():
    assert {"drive_latency", "sim_speed", "soak", "train_throughput"} <= set(SCRIPTS)
    assert (BENCHMARKS / "__init__.py").is_file()


def test_every_benchmark_runs_as_a_module_and_shows_help():
    """All at once (two import Keras, ~20 s each on a busy 2-core machine)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{name}", "--help"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SCRIPTS
    }
    for name, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, (name, err[-2000:])
        assert out.startswith(f"usage: python -m benchmarks.{name}"), (name, out[:200])
        assert "--output" in out, f"{name} has no results file option"


def test_the_index_lists_every_script_and_its_results_exist():
    index = (BENCHMARKS / "README.md").read_text(encoding="utf-8")
    for name in SCRIPTS:
        row = f"| `{name}.py` | `python -m benchmarks.{name}` |"
        assert row in index, f"benchmarks/README.md has no row {row!r}"
    rows = re.findall(r"^\| `(\w+)\.py` \|", index, flags=re.MULTILINE)
    assert sorted(rows) == SCRIPTS, "the index lists a script that is not there"
    for link in re.findall(r"\]\(([\w.-]+\.md)\)", index):
        assert (BENCHMARKS / link).is_file(), link


def test_the_reference_server_of_drive_latency_starts_as_the_benchmark_launches_it(tmp_path):
    """The benchmark starts Udacity's model.predict server as a child process; run as a
    file it could not import the project (2026-12-03), so it is started here for real."""
    import models
    from benchmarks.drive_latency import reference_command
    from tools.process import ServerProcess, free_port

    path = tmp_path / "pilotnet.keras"
    models.build_model("pilotnet").save(path)
    server = ServerProcess(reference_command(path, free_port(), log_every=10))
    try:
        assert server.wait_listening(300), server.log()[-2000:]
    finally:
        server.stop()
