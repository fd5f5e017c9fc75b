"""Benchmark reports kept newest first: one ``## date`` section per run under a title."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def prepend_section(path: Path, section: str, title: str) -> None:
    """Insert ``section`` (starting with ``## ``) above the earlier ones in ``path``.

    A missing or empty file is started with ``title`` (its ``#`` heading and intro).
    Earlier sections are kept as they are.
    """
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    head, sep, rest = (previous or title).partition("\n## ")
    path.write_text(
        head.rstrip() + "\n\n" + section.rstrip("\n") + "\n" + (sep + rest if sep else ""),
        encoding="utf-8",
    )


def machine() -> str:
    """Date, processor, CPU count, Python and the 1-minute load average, for a section."""
    return (
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average (1 min) {os.getloadavg()[0]:.1f}"
    )


class Echo:
    """``print`` that also keeps each line, so the printed report is the one written."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "", **print_kwargs) -> None:
        print(text, **print_kwargs)
        self.lines.append(text)

    def write(self, path: Path, title: str) -> None:
        """Prepend the lines, as a fenced block under a dated heading, to ``path``."""
        when, _, rest = machine().partition("; ")
        body = "\n".join(self.lines).strip("\n")
        prepend_section(path, f"## {when}\n\n{rest}\n\n```\n{body}\n```\n", title)
        print(f"wrote {path}")
