"""The simulator's side of the wire: the messages it sends and how it reads ours.

Split out of tools.simclient (which re-exports every name here, so
``from tools.simclient import check_steer`` keeps working): the telemetry it
writes (:func:`telemetry_payload`, :func:`event_message`, :func:`format_number`)
and the strictness of its ``steer`` parsing (:func:`check_steer`,
:data:`STEER_DIALECTS`), from ../shared/docs/simulator-protocol.md and, for the
research builds, their ``CommandServer.cs`` (drive.extras).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re

import numpy as np
from PIL import Image

#: What C#'s ``float.Parse`` accepts with its default style and a ``.`` culture
#: (the simulator's own machine may use ``,`` and then rejects ``.``: nothing a
#: server can fix, the reason values go out with ``.``).
_FLOAT_PARSE = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
#: What C#'s ``int.Parse`` accepts (the SelfOracle build's confidence and max_laps).
_INT_PARSE = re.compile(r"^\s*[+-]?\d+\s*$")
#: The simulator listens to these server events only (plus ``open``).
LISTENED_EVENTS = ("steer", "manual")
#: steer keys each build parses, and how: "stock" is Udacity's simulator; "selforacle"
#: is the SelfOracle build and its TUM descendant (``CommandServer.cs``, ``OnSteer``).
STEER_DIALECTS = {
    "stock": {"steering_angle": _FLOAT_PARSE, "throttle": _FLOAT_PARSE},
    "selforacle": {
        "steering_angle": _FLOAT_PARSE,
        "throttle": _FLOAT_PARSE,
        "confidence": _INT_PARSE,
        "loss": _FLOAT_PARSE,
        "max_laps": _INT_PARSE,
    },
}


class SimulatorProtocolError(RuntimeError):
    """The server said something that stalls or disconnects the real simulator."""


class SimulatorStall(SimulatorProtocolError):
    """No answer to a telemetry within the timeout: the simulator's loop stops."""


def encode_jpeg(image: bytes | np.ndarray, quality: int = 75) -> bytes:
    """JPEG bytes as given, or an RGB array encoded like Unity's (quality about 75)."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def format_number(value: float, decimal: str = ".") -> str:
    """The simulator's ``ToString("N4")``: 4 decimals in its machine's locale."""
    text = f"{value:.4f}"
    return text.replace(".", decimal) if decimal != "." else text


def event_message(event: str, payload: object) -> str:
    """The Socket.IO EVENT packet ``42["event",payload]``, exactly as ``json.dumps`` writes it.

    ``json.dumps`` scans every character of the ~16 KB base64 image for escapes
    (0.1 ms per frame, measured with cProfile). A string that is printable ASCII
    without quotes or backslashes needs none, so such an image is spliced in
    verbatim; anything else (the tests' broken payloads) goes through json. With
    only string keys and values, ``"image":""`` can occur once only: as that key.
    """
    image = payload.get("image") if isinstance(payload, dict) else None
    if (
        isinstance(image, str)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in payload.items())
        and len(image) > 256
        and image.isascii()
        and image.isprintable()
        and '"' not in image
        and "\\" not in image
    ):
        head = json.dumps(
            [event, {**payload, "image": ""}], separators=(",", ":")
        )  # ends with ...,"image":""}]
        marker = '"image":""'
        at = head.index(marker) + len(marker) - 1
        return "42" + head[:at] + image + head[at:]
    return "42" + json.dumps([event, payload], separators=(",", ":"))


def telemetry_payload(
    image: bytes | np.ndarray | str,
    steering_deg: float,
    throttle: float,
    speed: float,
    *,
    decimal: str = ".",
    extras: dict | None = None,
) -> dict:
    """The dict the simulator sends; ``image`` may already be base64 text.

    ``extras``: a research build's extra fields, sent exactly as given.
    """
    b64 = image if isinstance(image, str) else base64.b64encode(encode_jpeg(image)).decode()
    payload = {
        "steering_angle": format_number(steering_deg, decimal),
        "throttle": format_number(throttle, decimal),
        "speed": format_number(speed, decimal),
    }
    return {**payload, **(extras or {}), "image": b64}


def check_steer(data: object, dialect: str = "stock") -> tuple[float, float]:
    """Validate a ``steer`` payload as the simulator's ``OnSteer`` would read it.

    ``dialect="stock"``: exactly steering_angle and throttle. ``"selforacle"``: those
    plus confidence, loss and max_laps, each parsed as that build does; other keys
    are ignored by its JSON reader, but must still be strings.
    """
    if not isinstance(data, dict):
        raise SimulatorProtocolError(f"steer: expected one object, got {type(data).__name__}")
    parsers = STEER_DIALECTS[dialect]
    if dialect == "stock" and set(data) != set(parsers):
        raise SimulatorProtocolError(
            f"steer: expected exactly keys steering_angle and throttle, got {sorted(data)}"
        )
    missing = sorted(set(parsers) - set(data))
    if missing:
        raise SimulatorProtocolError(
            f"steer: the {dialect} build parses {', '.join(missing)} too (a missing key "
            f"throws in its OnSteer and the car stalls); got {sorted(data)}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise SimulatorProtocolError(
                f"steer: {key} must be a string (the simulator reads .str), got "
                f"{type(value).__name__} {value!r}"
            )
        if key in parsers and not parsers[key].match(value):
            kind = "a whole" if parsers[key] is _INT_PARSE else "a '.'-decimal"
            raise SimulatorProtocolError(f"steer: {key}={value!r} is not {kind} number")
    values = []
    for key in ("steering_angle", "throttle"):
        number = float(data[key])
        if not math.isfinite(number) or abs(number) > 1.0:
            raise SimulatorProtocolError(f"steer: {key}={data[key]!r} is outside -1..1")
        values.append(number)
    return values[0], values[1]
