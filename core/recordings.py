"""Recordings, read and written: the simulator's ``driving_log.csv`` and its frames.

The simulator's recordings are ``driving_log.csv`` plus the ``IMG/`` folder beside it.

The simulator writes one csv row per sample, in time order, with no header::

    center,left,right,steering,throttle,brake,speed

Image paths are absolute paths of the machine that recorded (Windows, macOS or Linux,
sometimes with spaces, sometimes ``IMG\\IMG\\`` doubled) or, in Udacity's sample data,
relative ``IMG/...`` names under a header row. Whatever the form, an image is found by
its basename in the ``IMG/`` folder beside the csv; the directory part is ignored.

Rows are kept in file order (that is time order) and never sorted. A row that cannot be
used is skipped and recorded in ``Recording.skipped`` with its line number and one of
these reasons (``SKIP_REASONS``):

- ``unparsable_line``: the csv module cannot split the line (broken quoting).
- ``column_count``: not 7 columns.
- ``not_a_number``: steering, throttle, brake or speed is not a number.
- ``not_finite``: one of them is NaN or infinite.
- ``steering_out_of_range``: steering outside -1..1.
- ``no_centre_path``: the centre column is empty.
- ``centre_image_missing``: no file with the centre basename in ``IMG/``.

Side cameras: an empty left/right column (Udacity's sample data has them) gives ``None``
for that camera. A side column that names a file absent from ``IMG/`` also gives
``None`` but keeps the row, because the centre frame and its label are still good; the
line numbers are kept in ``Recording.missing_side_lines`` and reported by ``summary()``.

A folder recorded by ``drive.py MODEL FOLDER`` reads the same way: its
``drive_log.csv`` (header ``image,time,steering,throttle,speed``, frames beside it
rather than in ``IMG/``) gives centre-only rows with brake 0, so a drive can be
trained on (``train.py --data FOLDER``) or replayed (``evaluate.py replay``).

Every ``driving_log.csv`` the project writes (the demo recordings of
``sim/demo_recording.py``, the packs of ``training/pack.py``) goes through
:func:`driving_log_row` and :func:`write_driving_log`: the simulator's layout, and its
number format (:func:`csv_number`) unless the caller keeps values exactly. Reading and
writing ``drive.py``'s own log, row by row, is :mod:`core.drive_log`'s.

Failures of the recording as a whole (path missing, no csv, no ``IMG/``, an unknown
header, no usable row) raise ``RecordingError``; an unreadable or wrongly sized image
raises ``ImageError`` from :func:`load_image` and :func:`decode_images`, while
:func:`decode_images_skipping` (training) carries on and reports it. Both are
``ValueError`` subclasses whose message names the path, what was expected and what
was found.

Why one file of this length: the reader (with every variant listed above), the
:class:`Recording` it returns and the writer are one format, and share its columns, the
``IMG/`` lookup by basename and ``RecordingError``; split apart, each part would import
the others' helpers. The frame decoding (:func:`load_image`, :func:`decode_images`,
:func:`decode_images_skipping`, ``ImageError``: about 100 lines) decodes the paths the
reader resolves, as training does, and stays beside it. ``drive.py``'s own log, which no
simulator recording uses, is the part that stood apart: :mod:`core.drive_log`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError
from tqdm import tqdm

from core.frames import FRAME_HEIGHT, FRAME_SHAPE, FRAME_WIDTH, FrameSizeError, decode_rgb
from core.outputs import write_atomic

logger = logging.getLogger(__name__)

CSV_NAME = "driving_log.csv"
IMG_DIR_NAME = "IMG"
COLUMNS = ("center", "left", "right", "steering", "throttle", "brake", "speed")
NUMERIC_COLUMNS = COLUMNS[3:]

# drive.py's recording (core/drive_log.py, drive/recorder.py): frames beside the csv.
DRIVE_CSV_NAME = "drive_log.csv"
DRIVE_COLUMNS = ("image", "time", "steering", "throttle", "speed")

SKIP_REASONS = (
    "unparsable_line",
    "column_count",
    "not_a_number",
    "not_finite",
    "steering_out_of_range",
    "no_centre_path",
    "centre_image_missing",
)

# center_2024_10_06_09_29_56_427.jpg (the simulator) or 2024_10_06_09_29_56_427[_1].jpg
# (drive.py's recorder): local wall-clock time of the recording machine.
_STAMP_RE = re.compile(
    r"^(?:(?:center|left|right)_)?(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{3})"
    r"(?:_\d+)?\.(?:jpe?g|webp)$",
    re.IGNORECASE,
)
_SEPARATORS_RE = re.compile(r"[\\/]")
_EXAMPLE_TEXT_CHARS = 120  # enough to show the numbers after a long absolute path's start
_SUMMARY_EXAMPLES = 3


class RecordingError(ValueError):
    """A recording folder or csv that cannot be read as a whole."""


class ImageError(ValueError):
    """An image file that is missing, not an image, or not 320x160."""


@dataclass(frozen=True, slots=True)
class Row:
    """One usable csv row. ``left``/``right`` are None when that camera is unavailable."""

    line: int
    centre: Path
    left: Path | None
    right: Path | None
    steering: float
    throttle: float
    brake: float
    speed: float  # mph
    timestamp: float | None  # seconds, from the centre file name; None if not parseable


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A csv row that was not used: 1-based line number, reason, detail and raw text."""

    line: int
    reason: str
    detail: str
    text: str


@dataclass(frozen=True)
class Recording:
    """The usable rows of one recording, in file (time) order, plus what was skipped."""

    name: str
    csv_path: Path
    img_dir: Path
    rows: tuple[Row, ...]
    skipped: tuple[SkippedRow, ...] = ()
    missing_side_lines: tuple[int, ...] = ()
    has_header: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    # numpy views of the columns, built once and read-only so the cache cannot be corrupted
    @cached_property
    def steering(self) -> np.ndarray:
        return _frozen(np.array([r.steering for r in self.rows], dtype=np.float32))

    @cached_property
    def throttle(self) -> np.ndarray:
        return _frozen(np.array([r.throttle for r in self.rows], dtype=np.float32))

    @cached_property
    def brake(self) -> np.ndarray:
        return _frozen(np.array([r.brake for r in self.rows], dtype=np.float32))

    @cached_property
    def speed(self) -> np.ndarray:
        """Speed in mph, float32."""
        return _frozen(np.array([r.speed for r in self.rows], dtype=np.float32))

    @cached_property
    def timestamps(self) -> np.ndarray:
        """Seconds (float64) from the centre file names; NaN where the name has no stamp.

        The stamp is the recording machine's local wall-clock time with no zone, read as
        if UTC: differences are meaningful, the absolute value is not.
        """
        values = [math.nan if r.timestamp is None else r.timestamp for r in self.rows]
        return _frozen(np.array(values, dtype=np.float64))

    @cached_property
    def lines(self) -> np.ndarray:
        """1-based csv line number of each row (int64)."""
        return _frozen(np.array([r.line for r in self.rows], dtype=np.int64))

    @cached_property
    def centre_paths(self) -> np.ndarray:
        """Object array of Path."""
        return _object_array([r.centre for r in self.rows])

    @cached_property
    def left_paths(self) -> np.ndarray:
        """Object array of Path or None."""
        return _object_array([r.left for r in self.rows])

    @cached_property
    def right_paths(self) -> np.ndarray:
        """Object array of Path or None."""
        return _object_array([r.right for r in self.rows])

    @cached_property
    def has_sides(self) -> np.ndarray:
        """Bool mask: rows whose left and right images are both available."""
        return _frozen(
            np.array([r.left is not None and r.right is not None for r in self.rows], dtype=bool)
        )

    @cached_property
    def centre_only(self) -> bool:
        """No row has a side image: a centre-camera recording (as the simulator's own
        recordings cut to the centre camera are), which is not a damaged one."""
        return not any(r.left is not None or r.right is not None for r in self.rows)

    def skip_counts(self) -> dict[str, int]:
        """Skipped rows per reason, in ``SKIP_REASONS`` order, only reasons that occurred."""
        counts = Counter(s.reason for s in self.skipped)
        return {reason: counts[reason] for reason in SKIP_REASONS if counts[reason]}

    def summary(self, examples: int = _SUMMARY_EXAMPLES) -> str:
        """A few lines for a log or a run's data summary: counts per reason and examples."""
        head = f"recording {self.name!r} ({self.csv_path}): {len(self.rows)} rows kept"
        if self.skipped:
            counts = ", ".join(f"{k}: {v}" for k, v in self.skip_counts().items())
            head += f", {len(self.skipped)} skipped ({counts})"
        else:
            head += ", 0 skipped"
        out = [head]
        no_sides = int(len(self.rows) - self.has_sides.sum())
        if self.centre_only:
            named = f" ({len(self.missing_side_lines)} rows name side images that are not there)"
            out.append("  centre camera only" + (named if self.missing_side_lines else ""))
        elif no_sides:
            out.append(f"  side cameras unavailable on {no_sides} rows")
        if self.missing_side_lines and not self.centre_only:
            shown = ", ".join(str(n) for n in self.missing_side_lines[:examples])
            more = "..." if len(self.missing_side_lines) > examples else ""
            out.append(
                f"  side image named but missing in {self.img_dir} on "
                f"{len(self.missing_side_lines)} rows (lines {shown}{more})"
            )
        for s in self.skipped[:examples]:
            out.append(f"  line {s.line}: {s.reason} ({s.detail}): {truncate(s.text)!r}")
        if len(self.skipped) > examples:
            out.append(f"  ... and {len(self.skipped) - examples} more skipped rows")
        return "\n".join(out)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _object_array(items: list) -> np.ndarray:
    a = np.empty(len(items), dtype=object)
    a[:] = items
    return _frozen(a)


def truncate(text: str, limit: int = _EXAMPLE_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(folder: Path, limit: int = 8) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if not names:
        return "nothing (empty folder)"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} entries)" if len(names) > limit else "")


def _locate_csv(path: Path) -> Path:
    """The csv of a recording given its folder or the csv itself."""
    if not path.exists():
        raise RecordingError(
            f"recording path {path} does not exist: expected a recording folder holding "
            f"{CSV_NAME} and {IMG_DIR_NAME}/, or the path of a {CSV_NAME}"
        )
    if path.is_file():
        return path
    if not path.is_dir():
        raise RecordingError(f"recording path {path} is neither a folder nor a file")
    for name in (CSV_NAME, DRIVE_CSV_NAME):
        if (path / name).is_file():
            return path / name
    hint = ""
    nested = sorted(path.glob(f"*/{CSV_NAME}"))
    if nested:
        hint = f"; did you mean {nested[0].parent}?"
    raise RecordingError(
        f"recording folder {path} has no {CSV_NAME}: expected {CSV_NAME} and {IMG_DIR_NAME}/ "
        f"(or drive.py's {DRIVE_CSV_NAME} beside its frames), found {_listing(path)}{hint}"
    )


def _locate_img_dir(csv_path: Path) -> Path:
    if csv_path.name == DRIVE_CSV_NAME:  # drive.py writes its frames beside the csv
        return csv_path.parent
    img_dir = csv_path.parent / IMG_DIR_NAME
    if img_dir.is_dir():
        return img_dir
    # A recording copied through a case-insensitive file system may end up as img/ or Img/.
    for p in csv_path.parent.iterdir():
        if p.is_dir() and p.name.lower() == IMG_DIR_NAME.lower():
            return p
    raise RecordingError(
        f"recording {csv_path.parent} has no {IMG_DIR_NAME}/ folder beside {csv_path.name}: "
        f"expected the images there, found {_listing(csv_path.parent)}"
    )


def read_csv_text(csv_path: Path) -> str:
    try:
        data = csv_path.read_bytes()
    except OSError as e:
        raise RecordingError(f"cannot read {csv_path}: {e.strerror or e}") from e
    try:
        return data.decode("utf-8-sig")  # -sig drops a BOM left by Windows editors
    except UnicodeDecodeError:
        # A non-UTF-8 path (e.g. cp1252 accents) only affects the directory part we ignore.
        logger.warning("%s is not UTF-8; reading it as Latin-1", csv_path)
        return data.decode("latin-1")


def _basename(raw: str) -> str:
    """The file name of a Windows, macOS, Linux or relative path."""
    return _SEPARATORS_RE.split(raw.strip())[-1].strip()


def parse_timestamp(name: str) -> float | None:
    """Seconds encoded in ``center_YYYY_MM_DD_HH_MM_SS_mmm.jpg`` (read as UTC), or None."""
    m = _STAMP_RE.match(name)
    if m is None:
        return None
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp() + ms / 1000.0
    except ValueError:  # month 13, second 61, ...
        return None


def _is_header(fields: list[str]) -> bool:
    return any(f.strip().lower() == "steering" for f in fields)


def check_header(fields: list[str], csv_path: Path, line: int, columns: tuple) -> None:
    found = tuple(f.strip().lower() for f in fields)
    if found != columns:
        raise RecordingError(
            f"{csv_path} line {line}: unexpected header; expected {','.join(columns)}, "
            f"found {','.join(f.strip() for f in fields)}"
        )


def read_recording(path: str | os.PathLike) -> Recording:
    """Read one recording from its folder or its ``driving_log.csv``.

    Raises RecordingError when the path, the csv or ``IMG/`` is missing, the header is
    not the Udacity one, or no row is usable.
    """
    csv_path = _locate_csv(Path(path))
    img_dir = _locate_img_dir(csv_path)
    drive = csv_path.name == DRIVE_CSV_NAME
    columns = DRIVE_COLUMNS if drive else COLUMNS
    resolve = _image_lookup(img_dir)
    text = read_csv_text(csv_path)
    if not text.strip():
        raise RecordingError(
            f"{csv_path} is empty: expected rows of {','.join(columns)}, found "
            f"{len(text.encode())} bytes of whitespace"
        )
    parsed = _parse_lines(text, csv_path, img_dir, drive, resolve)
    rec = Recording(
        name=csv_path.parent.name,
        csv_path=csv_path,
        img_dir=img_dir,
        rows=tuple(parsed.rows),
        skipped=tuple(parsed.skipped),
        missing_side_lines=tuple(parsed.missing_side),
        has_header=parsed.has_header,
    )
    if not rec.rows:
        if not parsed.seen_data and not rec.skipped:
            raise RecordingError(
                f"{csv_path} has a header but no data rows: expected rows of "
                f"{','.join(columns)} after it"
            )
        raise RecordingError(f"{csv_path} has no usable rows:\n{rec.summary()}")
    if rec.skipped or (rec.missing_side_lines and not rec.centre_only):
        logger.warning("%s", rec.summary())
    else:
        logger.info("%s", rec.summary())
    return rec


def _image_lookup(img_dir: Path) -> Callable[[str], Path | None]:
    """A csv path column -> the image of that basename in ``img_dir`` (any case), or None."""
    try:
        on_disk = {p.name for p in os.scandir(img_dir) if p.is_file()}
    except OSError as e:
        raise RecordingError(f"cannot list {img_dir}: {e.strerror or e}") from e
    by_lower = {n.lower(): n for n in on_disk}

    def resolve(raw: str) -> Path | None:
        name = _basename(raw)
        if not name:
            return None
        if name not in on_disk:
            name = by_lower.get(name.lower())
            if name is None:
                return None
        return img_dir / name

    return resolve


@dataclass
class _Parsed:
    """What the lines of one csv gave: rows kept and skipped, and what was seen."""

    rows: list[Row] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    missing_side: list[int] = field(default_factory=list)
    has_header: bool = False
    seen_data: bool = False


def _parse_lines(
    text: str, csv_path: Path, img_dir: Path, drive: bool, resolve: Callable[[str], Path | None]
) -> _Parsed:
    """Every line of ``text`` as a kept row, a skipped row, the header or a blank line."""
    columns = DRIVE_COLUMNS if drive else COLUMNS
    out = _Parsed()
    # Split on \n ourselves so line numbers are physical lines (CRLF and lone CR included).
    for line_no, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not raw.strip():
            continue
        try:
            fields = next(csv.reader([raw], skipinitialspace=True, strict=True))
        except csv.Error as e:
            out.seen_data = True
            out.skipped.append(SkippedRow(line_no, "unparsable_line", str(e), raw))
            continue
        if not out.seen_data and not out.has_header and _is_header(fields):
            check_header(fields, csv_path, line_no, columns)
            out.has_header = True
            continue
        out.seen_data = True
        if len(fields) != len(columns):
            detail = f"expected {len(columns)}, found {len(fields)}"
            out.skipped.append(SkippedRow(line_no, "column_count", detail, raw))
            continue
        if drive:  # image,time,steering,throttle,speed: a centre camera only, no brake
            image, _time, steering_text, throttle_text, speed_text = fields
            fields = [image, "", "", steering_text, throttle_text, "0", speed_text]
        row = _parse_row(line_no, raw, fields, img_dir, resolve)
        if isinstance(row, SkippedRow):
            out.skipped.append(row)
            continue
        if (row.left is None and _basename(fields[1])) or (
            row.right is None and _basename(fields[2])
        ):
            out.missing_side.append(line_no)
        out.rows.append(row)
    return out


def _parse_row(
    line_no: int,
    raw: str,
    fields: list[str],
    img_dir: Path,
    resolve: Callable[[str], Path | None],
) -> Row | SkippedRow:
    """The seven ``COLUMNS`` of one line as a :class:`Row`, or why it is skipped."""
    values, problem = _parse_numbers(fields[3:])
    if problem:
        return SkippedRow(line_no, *problem, raw)
    steering, throttle, brake, speed = values
    if not -1.0 <= steering <= 1.0:
        detail = f"steering={steering} not in -1..1"
        return SkippedRow(line_no, "steering_out_of_range", detail, raw)
    if not _basename(fields[0]):
        return SkippedRow(line_no, "no_centre_path", "centre column is empty", raw)
    centre = resolve(fields[0])
    if centre is None:
        detail = f"{_basename(fields[0])} not in {img_dir}"
        return SkippedRow(line_no, "centre_image_missing", detail, raw)
    return Row(
        line=line_no,
        centre=centre,
        left=resolve(fields[1]),
        right=resolve(fields[2]),
        steering=steering,
        throttle=throttle,
        brake=brake,
        speed=speed,
        timestamp=parse_timestamp(centre.name),
    )


def _parse_numbers(fields: list[str]) -> tuple[list[float], tuple[str, str] | None]:
    """The four numbers of a row, or (reason, detail) naming the first bad column."""
    values = []
    for name, text in zip(NUMERIC_COLUMNS, fields, strict=True):
        try:
            value = float(text)
        except ValueError:
            return [], ("not_a_number", f"{name}={text.strip()!r}")
        if not math.isfinite(value):
            return [], ("not_finite", f"{name}={text.strip()!r}")
        values.append(value)
    return values, None


def read_recordings(paths: Iterable[str | os.PathLike]) -> list[Recording]:
    """Read several recordings (folders or csvs), in the order given.

    Raises RecordingError when no path is given or two paths name the same csv.
    """
    paths = list(paths)
    if not paths:
        raise RecordingError("no recording paths given: expected at least one folder or csv")
    seen: dict[Path, str] = {}
    for p in paths:
        csv_path = _locate_csv(Path(p)).resolve()
        if csv_path in seen:
            raise RecordingError(
                f"recording {csv_path} given twice (as {seen[csv_path]!r} and {str(p)!r}): "
                "each recording may appear once"
            )
        seen[csv_path] = str(p)
    recordings = [read_recording(p) for p in paths]
    names = Counter(r.name for r in recordings)
    for name, n in names.items():
        if n > 1:
            logger.warning("%d recordings share the folder name %r", n, name)
    return recordings


def csv_number(value: float) -> str:
    """A number as the simulator (C# ``float.ToString``) writes it in ``driving_log.csv``:
    7 significant digits, ``E-06`` exponents below 1e-4, no trailing zeros: ``0``,
    ``-0.05``, ``12.91324``, ``6.457884E-06``."""
    text = f"{float(np.float32(value)):.7G}"
    return "0" if text in ("0", "-0") else text


def driving_log_row(
    centre: str,
    left: str,
    right: str,
    steering: float,
    throttle: float,
    brake: float,
    speed: float,
    *,
    number: Callable[[float], str] = csv_number,
) -> str:
    """One ``driving_log.csv`` line (``COLUMNS``, no newline) as the simulator writes it.

    The image paths go in as given (``""`` for a camera left out), unquoted, as the
    simulator writes them; the numbers through ``number``: the simulator's own format
    by default, ``repr`` to keep values read from another csv exactly.
    """
    numbers = (number(v) for v in (steering, throttle, brake, speed))
    return ",".join([centre, left, right, *numbers])


def write_driving_log(folder: str | os.PathLike, rows: Iterable[str]) -> Path:
    """Write ``rows`` (:func:`driving_log_row`) to ``folder/driving_log.csv``; its path.

    No header, one row a line ending in ``\\n``, UTF-8, written atomically
    (:func:`core.outputs.write_atomic`). :func:`read_recording` reads it back.
    """
    return write_atomic(Path(folder) / CSV_NAME, "".join(f"{row}\n" for row in rows))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one frame to a uint8 (160, 320, 3) RGB array, never BGR.

    simplejpeg decodes JPEGs, Pillow everything else; both give identical pixels.

    Raises ImageError naming the file when it is missing, not an image, or not 320x160.
    """
    out = np.empty(FRAME_SHAPE, dtype=np.uint8)
    _decode_into(Path(path), out)
    return out


def _decode_into(path: Path, out: np.ndarray) -> None:
    try:
        decode_rgb(path.read_bytes(), FRAME_SHAPE, out)
    except FrameSizeError as e:
        raise ImageError(
            f"{path}: expected a {FRAME_WIDTH}x{FRAME_HEIGHT} image, found {e.got[1]}x{e.got[0]}"
        ) from None
    except FileNotFoundError as e:
        raise ImageError(f"{path}: image file does not exist") from e
    except IsADirectoryError as e:
        raise ImageError(f"{path}: is a folder, not an image file") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image file PIL can read") from e
    except OSError as e:  # truncated or corrupt data
        raise ImageError(f"{path}: cannot decode image ({e})") from e


def decode_images(
    paths: Sequence[str | os.PathLike],
    progress: bool = True,
    desc: str = "decoding frames",
    workers: int | None = None,
) -> np.ndarray:
    """Decode many frames into one preallocated uint8 array of shape (N, 160, 320, 3), RGB.

    Raises ImageError for the first file (in order) that cannot be decoded; see
    :func:`decode_images_skipping` to carry on past such files.
    """
    frames, unreadable = decode_images_skipping(paths, progress, desc, workers)
    if unreadable:
        raise unreadable[min(unreadable)]
    return frames


def decode_images_skipping(
    paths: Sequence[str | os.PathLike],
    progress: bool = True,
    desc: str = "decoding frames",
    workers: int | None = None,
) -> tuple[np.ndarray, dict[int, ImageError]]:
    """Decode many frames into one preallocated uint8 array of shape (N, 160, 320, 3), RGB.

    A file that cannot be decoded (corrupt, truncated, wrong size, gone) does not stop
    the others: its slot stays zeros and ``unreadable`` maps its index to the
    ImageError naming it.

    A thread pool does the work: PIL releases the GIL while it decodes a JPEG. Measured on
    the lake recording (akbari_lake, 5,193 frames, all three cameras, files in page cache)
    on the 2-core development machine: about 2,000 frames/s (1,850-2,230 over runs) with
    the default workers against 1,000-1,450 frames/s on one thread, i.e. ~2.6 s for the
    whole recording; when other jobs shared the CPUs it fell to ~1,000 frames/s.

    """
    paths = [Path(p) for p in paths]
    out = np.empty((len(paths), *FRAME_SHAPE), dtype=np.uint8)
    unreadable: dict[int, ImageError] = {}
    if not paths:
        return out, unreadable
    if workers is None:
        workers = min(32, (os.cpu_count() or 1) + 2)
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")

    def work(i: int) -> None:
        try:
            _decode_into(paths[i], out[i])
        except ImageError as e:
            out[i] = 0
            unreadable[i] = e

    with (
        tqdm(total=len(paths), desc=desc, unit="frame", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        for _ in pool.map(work, range(len(paths))):
            bar.update(1)
    return out, unreadable
