"""core.allocator: freed large blocks are reused without faulting pages in again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from core import allocator

REPO = Path(__file__).resolve().parents[2]
BLOCK = 40 * 1024 * 1024  # above glibc's largest mmap threshold (32 MB)
ROUNDS = 10

# Allocate, touch every byte of and free a 40 MB block ROUNDS times after one warm-up
# round; report the minor page faults of those rounds and what retain_freed_memory said.
CYCLE = f"""
import ctypes, json, resource
from core.allocator import retain_freed_memory
applied = retain_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def cycle():
    p = libc.malloc({BLOCK})
    ctypes.memset(p, 1, {BLOCK})
    libc.free(p)
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    cycle()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"applied": applied, "faults": faults}}))
"""

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the allocator knobs are glibc's"
)


def run_cycle(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != allocator.ENV and "MALLOC" not in k}
    out = subprocess.run(
        [sys.executable, "-c", CYCLE],
        env={**clean, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_block_is_reused_without_page_faults():
    pages = ROUNDS * BLOCK // os.sysconf("SC_PAGE_SIZE")
    kept = run_cycle()
    system = run_cycle(**{allocator.ENV: "system"})
    assert kept["applied"] is True and system["applied"] is False
    # glibc's default maps and unmaps the block each round: every page faults again
    # (a 2 MB huge page where the kernel gives them: still one fault per 2 MB).
    assert system["faults"] >= ROUNDS * BLOCK // (2 * 1024 * 1024)
    # Kept: the block comes back from the heap already mapped.
    assert kept["faults"] < pages // 100
    assert kept["faults"] * 20 < system["faults"]


@pytest.mark.parametrize(
    "name, value",
    [
        (allocator.ENV, "system"),
        (allocator.ENV, " System "),
        ("MALLOC_TOP_PAD_", "0"),
        ("MALLOC_MMAP_MAX_", "65536"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"),
    ],
)
def test_user_choice_is_left_alone(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert allocator.retain_freed_memory() is False


def test_other_c_libraries_are_left_alone(monkeypatch):
    for name in (allocator.ENV, *allocator.GLIBC_ENV, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.retain_freed_memory() is False


def test_an_unknown_choice_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(allocator.ENV, "sytem")
    with pytest.raises(
        ValueError, match=r"EFFNET_STEERING_MALLOC must be one of kept, system .*'sytem'"
    ):
        allocator.retain_freed_memory()


def test_train_py_exits_with_the_error_before_any_work(monkeypatch, caplog, tmp_path):
    import train

    monkeypatch.setenv(allocator.ENV, "fast")
    assert train.main(["--arch", "eff", "--out", str(tmp_path)]) == 2
    assert (
        "EFFNET_STEERING_MALLOC must be one of kept, system (or unset); got 'fast'" in caplog.text
    )
    assert list(tmp_path.iterdir()) == []  # nothing rendered, nothing trained
