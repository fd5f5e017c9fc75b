"""Recordings written for the tests of core/recordings.py: JPEG frames and csv lines."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def jpeg(colour=(200, 30, 30), size=(320, 160), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


JPEG = jpeg()


def stamp(i: int) -> str:
    """File-name stamp of frame i: 2024-10-06 09:29:56.400 plus 70 ms per frame."""
    ms = 56_400 + 70 * i
    return f"2024_10_06_09_29_{ms // 1000:02d}_{ms % 1000:03d}"


def names(i: int) -> tuple[str, str, str]:
    return tuple(f"{cam}_{stamp(i)}.jpg" for cam in ("center", "left", "right"))


def make_recording(
    root: Path,
    lines: list[str],
    images=(),
    *,
    newline="\n",
    bom=False,
    folder="rec",
    trailing="\n",
) -> Path:
    """Write folder/driving_log.csv with `lines` and a JPEG for each name in `images`."""
    rec = root / folder
    (rec / "IMG").mkdir(parents=True)
    for name in images:
        (rec / "IMG" / name).write_bytes(JPEG)
    text = newline.join(lines) + (trailing.replace("\n", newline) if lines else "")
    (rec / "driving_log.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return rec


def row(i: int, prefix: str = "", steering="0", throttle="0", brake="0", speed="1.5", sep=","):
    paths = [prefix + n for n in names(i)]
    return sep.join([*paths, steering, throttle, brake, speed])


def all_images(n: int) -> list[str]:
    return [name for i in range(n) for name in names(i)]
