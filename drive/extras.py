"""Extended telemetry: the fields the research forks of the simulator add, read tolerantly.

The stock simulator sends ``steering_angle``, ``throttle``, ``speed`` and ``image``
(drive.protocol). Builds used in software-testing research add more, every one
optional here: a field may be missing, a string (``"0.1234"``, ``"0,1234"`` on a
comma locale) or a JSON number. What each build sends, read from their own code:

- SelfOracle (testingautomated-usi/selforacle, ``code-sdc/drive.py`` and its build's
  ``CommandServer.cs``): ``brake``, ``currentWayPoint``, ``lapNumber``, ``crash``
  (``"1"`` when an out-of-bound episode or a crash happened in the last second),
  ``tot_obes``, ``tot_crashes``; later versions also ``cte``.
- The TUM build (ThirdEye / misbehaviour-prediction code, a SelfOracle descendant):
  the same plus ``cte``, ``distance``, ``sim_time``, ``ang_diff``.
- udacity-gym / PerturbationDrive builds: ``cte``, ``next_cte``, ``pos_x``,
  ``pos_y``, ``pos_z``, ``hit`` (the object the car touches, ``"none"`` when none),
  ``lap``, ``sector``, ``track``.

:class:`ExtrasReader` returns the known fields it could parse; a malformed value is
logged once per field (later ones are only counted, in :attr:`ExtrasReader.malformed`)
and left out, and never costs the frame its reply. Unknown fields are named once in
the log and ignored.

The SelfOracle build and its TUM descendant also parse extra keys of every ``steer``
they receive: their ``OnSteer`` does ``int.Parse(GetField("confidence").str)``,
``float.Parse(GetField("loss").str)`` and ``int.Parse(GetField("max_laps").str)``,
so a stock two-key ``steer`` throws inside the handler and the car stalls.
:func:`research_steer` adds those keys; the server sends them only to a client whose
telemetry carried that lineage's fields (:data:`SELFORACLE_MARKERS`): the stock
simulator keeps getting exactly the two keys it expects.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from drive.protocol import NUMERIC_FIELDS, TelemetryError, parse_number

log = logging.getLogger(__name__)

SELFORACLE, TUM, GYM = "SelfOracle", "TUM", "udacity-gym / PerturbationDrive"
#: Longest text value kept (PerturbationDrive's ``track`` can be a road definition).
MAX_TEXT = 16 * 1024
#: Unknown field names remembered (each named once in the log); a bound, not a guess.
MAX_UNKNOWN_NAMES = 256
#: Laps the SelfOracle/TUM build drives before it returns to its menu (it reads
#: ``max_laps`` from every steer). SelfOracle's own drive.py defaults to 2.
DEFAULT_MAX_LAPS = 2


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "number", "count" (a whole number), "flag" (0/1) or "text"
    builds: tuple[str, ...]
    meaning: str


FIELDS = (
    Field("brake", "number", (SELFORACLE, TUM), "brake input, 0..1"),
    Field("currentWayPoint", "count", (SELFORACLE, TUM), "waypoint the car is at (its sector)"),
    Field("lapNumber", "count", (SELFORACLE, TUM), "lap, from 1"),
    Field("crash", "flag", (SELFORACLE, TUM), "1: an OBE or crash in the last second"),
    Field("tot_obes", "count", (SELFORACLE, TUM), "out-of-bound episodes so far"),
    Field("tot_crashes", "count", (SELFORACLE, TUM), "crashes so far"),
    Field("cte", "number", (SELFORACLE, TUM, GYM), "cross-track error from the lane centre"),
    Field("distance", "number", (TUM,), "distance driven"),
    Field("sim_time", "number", (TUM,), "time driven"),
    Field("ang_diff", "number", (TUM,), "angle between the car's heading and the road's"),
    Field("next_cte", "number", (GYM,), "cross-track error a little ahead"),
    Field("pos_x", "number", (GYM,), "car position x"),
    Field("pos_y", "number", (GYM,), "car position y"),
    Field("pos_z", "number", (GYM,), "car position z"),
    Field("hit", "text", (GYM,), 'object the car touches, "none" when none'),
    Field("lap", "count", (GYM,), "lap"),
    Field("sector", "count", (GYM,), "sector of the track"),
    Field("track", "text", (GYM,), "track name or road definition"),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
_BY_NAME = {f.name: f for f in FIELDS}
_STOCK = frozenset((*NUMERIC_FIELDS, "image"))
#: Fields only the SelfOracle lineage sends: a client sending any of them gets
#: :func:`research_steer` replies.
SELFORACLE_MARKERS = frozenset(("lapNumber", "currentWayPoint", "tot_obes", "tot_crashes"))


def parse_field(field: Field, value: object) -> float | int | str:
    """One extended field's value; :class:`TelemetryError` says why it cannot be used."""
    if field.kind == "text":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TelemetryError(f"{field.name}: expected text, got {type(value).__name__}")
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise TelemetryError(f"{field.name}: {len(text):,} characters exceed {MAX_TEXT:,}")
        return text
    if field.kind == "flag" and isinstance(value, bool):
        return int(value)
    if field.kind == "flag" and isinstance(value, str) and value.strip().lower() in _WORDS:
        return _WORDS[value.strip().lower()]
    number = parse_number(value, field.name)
    if field.kind == "number":
        return number
    if number != int(number) or abs(number) > 1e9:
        raise TelemetryError(f"{field.name}: expected a whole number, got {value!r}")
    if field.kind == "flag" and number not in (0, 1):
        raise TelemetryError(f"{field.name}: expected 0 or 1, got {value!r}")
    return int(number)


_WORDS = {"true": 1, "false": 0}


class ExtrasReader:
    """Reads the extended fields of telemetry messages; thread-safe, never raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Malformed values ignored, per field.
        self.malformed: Counter[str] = Counter()
        #: The first malformed value of each field, as received (shortened).
        self.first_malformed: dict[str, str] = {}
        self._unknown: set[str] = set()

    def read(self, data: dict) -> dict[str, float | int | str]:
        """The known extended fields of ``data`` that parse; empty for stock telemetry."""
        extras: dict[str, float | int | str] = {}
        unknown = []
        for name, value in data.items():
            field = _BY_NAME.get(name)
            if field is None:
                if name not in _STOCK and isinstance(name, str):
                    unknown.append(name)
                continue
            if value is None or value == "":
                continue  # absent, as far as the reader is concerned
            try:
                extras[name] = parse_field(field, value)
            except TelemetryError as exc:
                self._malformed(name, value, exc)
        if unknown:
            self._note_unknown(unknown)
        return extras

    def _malformed(self, name: str, value: object, exc: TelemetryError) -> None:
        with self._lock:
            self.malformed[name] += 1
            first = name not in self.first_malformed
            if first:
                self.first_malformed[name] = repr(value)[:60]
        if first:
            log.warning(
                "telemetry field %s: %s; ignored (later malformed %s values are counted, "
                "not logged; the frame is served as usual)",
                name,
                str(exc).removeprefix(f"{name}: "),
                name,
            )

    def _note_unknown(self, names: list[str]) -> None:
        with self._lock:
            new = sorted(n for n in names if n not in self._unknown)
            room = MAX_UNKNOWN_NAMES - len(self._unknown)
            self._unknown.update(new[: max(room, 0)])
        if new and room > 0:
            log.info(
                "telemetry carries fields this server does not read: %s (ignored)",
                ", ".join(n[:40] for n in new[:20]) + (" ..." if len(new) > 20 else ""),
            )

    def malformed_summary(self) -> str:
        """``cte 3 (first 'abc'), lap 1 (first '1.5')``, or an empty string."""
        with self._lock:
            return ", ".join(
                f"{name} {count} (first {self.first_malformed[name]})"
                for name, count in sorted(self.malformed.items())
            )


def is_selforacle_lineage(extras: dict) -> bool:
    """Whether telemetry came from the SelfOracle build or its TUM descendant."""
    return not SELFORACLE_MARKERS.isdisjoint(extras)


def research_steer(payload: dict[str, str], max_laps: int) -> dict[str, str]:
    """A ``steer`` payload with the keys the SelfOracle/TUM build parses on every steer.

    ``confidence`` (``int.Parse``; 1 = nominal, the value SelfOracle sends when no
    misbehaviour is predicted), ``loss`` (``float.Parse``; 0, no anomaly detector
    here), ``max_laps`` (``int.Parse``: the build returns to its menu after that lap),
    ``brake`` (SelfOracle's drive.py sends it; braking here is negative throttle) and
    ``uncertainty`` (the TUM drive code sends it). ``"0"`` parses as both an int and
    a float, whichever the build uses.
    """
    return {
        **payload,
        "brake": "0",
        "confidence": "1",
        "loss": "0",
        "max_laps": str(int(max_laps)),
        "uncertainty": "0",
    }
