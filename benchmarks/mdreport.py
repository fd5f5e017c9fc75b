"""Benchmark reports kept newest first: one ``## date`` section per run under a title."""

from __future__ import annotations

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
