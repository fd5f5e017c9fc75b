"""CI runs what the README tells a new user to run, in the same clean way."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_first_commands() -> list[str]:
    """The lines of the README's first code block (setup, first training, tests)."""
    block = re.search(r"^```\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert block, "README.md has no code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def ci_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]


def test_ci_runs_the_readme_setup_and_test_command_verbatim():
    setup, *_, tests = readme_first_commands()
    assert setup.startswith("python -m venv ") and "pip install -r requirements.txt" in setup
    assert tests == "python -m pytest"
    lines = ci_lines()
    assert setup in lines and tests in lines
    assert lines.index(setup) < lines.index(tests)


def test_ci_builds_the_environment_from_scratch_and_checks_it():
    lines = ci_lines()
    venv = re.search(r"python -m venv (\S+)", readme_first_commands()[0]).group(1)
    setup = next(i for i, line in enumerate(lines) if line.startswith("python -m venv"))
    assert f"rm -rf {venv}" in lines[:setup], "an old environment would be reused"
    after = lines[setup:]
    for command in ("pip check", "ruff check .", "python -m pytest -m slow"):
        assert command in after, command
    assert 'export CI="${CI:-true}"' in lines


def test_a_skip_fails_under_ci_and_stays_a_skip_locally(tmp_path):
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n\n"
        "def test_data():\n    pytest.skip('../shared/data is absent')\n\n"
        "@pytest.mark.skipif(True, reason='no node client')\ndef test_node():\n    pass\n"
    )

    def run(ci: str):
        # The copied conftest imports the project (core.allocator) from the repository.
        env = {k: v for k, v in os.environ.items() if k != "CI"} | {
            "CI": ci,
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    local, ci = run(""), run("true")
    assert local.returncode == 0 and "2 skipped" in local.stdout, local.stdout
    assert ci.returncode == 1, ci.stdout
    assert "skipped under CI=true, which must check it: Skipped: ../shared/data is absent" in (
        ci.stdout
    )
    assert "no node client" in ci.stdout and "skipped" not in ci.stdout.splitlines()[-1]
