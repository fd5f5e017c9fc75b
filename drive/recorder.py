"""Recording what the server received and sent: one JPEG per frame plus a csv.

Frames are written as received (no re-encoding) by a background thread, so disk
latency never delays a reply. Unlike Udacity's ``drive.py``, which ``rmtree``s an
existing folder, a non-empty folder is refused unless ``overwrite`` is given, and
even then nothing is deleted: the old folder is renamed to
``FOLDER.previous-YYYYmmdd-HHMMSS`` (everything in it kept) and a new one is made.

Extended telemetry from the research builds (drive.extras) goes to a second csv,
``drive_extras.csv`` (``image`` then one column per known field, empty where a
frame lacked it), written only once a frame carries such fields. ``drive_log.csv``
keeps its five columns: the project's recording reader (core/recordings.py, which
also holds both files' formats and their readers) accepts exactly that header and row
length, so extra columns there would make it refuse the recording; the ``image``
column joins the two files.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
from datetime import datetime
from pathlib import Path

from core.drive_log import DRIVE_EXTRAS_CSV_NAME, drive_log_row, extras_row, frame_name
from core.outputs import check_new_folder
from core.recordings import DRIVE_COLUMNS, DRIVE_CSV_NAME
from drive.extras import FIELD_NAMES

log = logging.getLogger(__name__)

EXTRAS_COLUMNS = ("image", *FIELD_NAMES)


class RecordingFolderError(ValueError):
    """The recording folder cannot be used (exists with content, or is not a folder)."""


def check_folder(folder: str | Path, *, overwrite: bool = False) -> bool:
    """Raise unless ``folder`` can take a new recording; touches nothing.

    Returns whether a previous recording is there (to be moved aside by
    :func:`prepare_folder`), so a caller can check before the slow or failing steps
    (loading the model, binding the port) and change the folder only after them.
    """
    folder = Path(folder)
    return check_new_folder(
        folder,
        overwrite=overwrite,
        what="recording folder",
        remedy="choose a new folder, or pass --overwrite to move the previous recording "
        f"aside to {folder.name}.previous-<time>/ and record into a new {folder.name}/",
        error=RecordingFolderError,
    )


def prepare_folder(folder: str | Path, *, overwrite: bool = False) -> Path:
    """Create ``folder`` for a recording; a previous one is moved aside, never deleted."""
    folder = Path(folder)
    if check_folder(folder, overwrite=overwrite):
        aside = folder.with_name(f"{folder.name}.previous-{datetime.now():%Y%m%d-%H%M%S}")
        n = 1
        while aside.exists():  # two overwrites within a second
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
            n += 1
        files = sum(1 for _ in folder.iterdir())
        folder.rename(aside)
        log.warning(
            "--overwrite: moved the previous recording (%d entries) from %s to %s",
            files,
            folder,
            aside,
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Recorder:
    """Saves frames and the commands sent for them, off the request thread."""

    def __init__(self, folder: str | Path, *, overwrite: bool = False):
        self.folder = prepare_folder(folder, overwrite=overwrite)
        self._queue: queue.Queue = queue.Queue(maxsize=2048)
        self._csv_file = open(self.folder / DRIVE_CSV_NAME, "w", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(DRIVE_COLUMNS)
        self._extras_file = None  # drive_extras.csv, opened at the first frame with extras
        self._extras_csv = None
        self._last_name = ""
        self._repeat = 0
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="drive-recorder", daemon=True)
        self._thread.start()

    def record(
        self, jpeg: bytes, steering: float, throttle: float, speed: float, extras=None
    ) -> None:
        """Queue one frame; ``extras``: its extended telemetry (drive.extras), if any."""
        now = datetime.now()
        try:
            self._queue.put_nowait((now, jpeg, steering, throttle, speed, extras))
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("recorder: disk too slow, %d frames not saved", self.dropped)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            now, jpeg, steering, throttle, speed, extras = item
            name = frame_name(now)
            if name == self._last_name:
                # Two frames in the same millisecond (two clients): keep both.
                self._repeat += 1
                stored = f"{name[:-4]}_{self._repeat}.jpg"
            else:
                self._last_name, self._repeat, stored = name, 0, name
            try:
                (self.folder / stored).write_bytes(jpeg)
                self._csv.writerow(drive_log_row(stored, now, steering, throttle, speed))
                if extras:
                    self._write_extras(stored, extras)
                self.written += 1
                if self._queue.empty():  # idle: make the csv readable while driving
                    self._flush()
            except OSError as exc:
                log.warning("recorder: cannot write %s: %s", stored, exc)
        self._flush()

    def _write_extras(self, stored: str, extras: dict) -> None:
        if self._extras_csv is None:
            self._extras_file = open(  # noqa: SIM115 - closed in close()
                self.folder / DRIVE_EXTRAS_CSV_NAME, "w", newline=""
            )
            self._extras_csv = csv.writer(self._extras_file)
            self._extras_csv.writerow(EXTRAS_COLUMNS)
        self._extras_csv.writerow(extras_row(stored, extras, FIELD_NAMES))

    def _flush(self) -> None:
        self._csv_file.flush()
        if self._extras_file is not None:
            self._extras_file.flush()

    def close(self) -> None:
        """Write what is queued, then close the csv."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
        self._csv_file.close()
        if self._extras_file is not None:
            self._extras_file.close()
