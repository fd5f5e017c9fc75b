"""The simulator's telemetry and command messages, parsed and formatted defensively.

Facts from ../shared/docs/simulator-protocol.md: every telemetry value is a string
formatted with 4 decimals in the simulator machine's locale (so ``"0,1234"``
happens); ``image`` is base64 of a 320x160 RGB JPEG; ``null`` telemetry means the
user is driving. The simulator parses our ``steer`` values with ``float.Parse`` on
strings only: a JSON number or an unparsable string stalls it silently, so values
always go out as strings with ``.`` decimals and no exponent.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import numpy as np

from core.frames import FRAME_SHAPE, FrameSizeError, decode_rgb

#: Largest accepted base64 ``image`` field. A real frame is 12-20 KB; anything
#: near this bound is not a simulator frame, and decoding it would stall the loop.
MAX_IMAGE_BASE64 = 512 * 1024

#: Telemetry fields the simulator always sends besides ``image``.
NUMERIC_FIELDS = ("steering_angle", "throttle", "speed")

#: Decimals in the values we send: 1e-6 of a command is far below what the
#: simulator resolves (it multiplies steering by 25 degrees).
REPLY_DECIMALS = 6


class TelemetryError(ValueError):
    """A telemetry message that cannot be used; the text says why."""


@dataclass(frozen=True)
class Telemetry:
    """One usable telemetry message."""

    steering_deg: float  # current wheel angle in degrees (command x 25)
    throttle: float
    speed: float  # mph
    image: np.ndarray  # (160, 320, 3) uint8 RGB
    jpeg: bytes  # the frame as received, for recording


def parse_number(value: object, field: str = "value") -> float:
    """Parse a simulator number: a string with ``.`` or ``,`` decimals (or a JSON number).

    ``"N4"`` formatting may also insert a thousands separator (``"1,234.5000"`` or
    ``"1.234,5000"``); the last separator is taken as the decimal point.
    """
    if isinstance(value, bool):
        raise TelemetryError(f"{field}: expected a number string, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if "," in text:
            if "." in text and text.rfind(".") > text.rfind(","):
                text = text.replace(",", "")  # 1,234.5 -> 1234.5
            else:
                text = text.replace(".", "").replace(",", ".")  # 1.234,5 -> 1234.5
        try:
            number = float(text)
        except ValueError:
            raise TelemetryError(f"{field}: expected a number, got {value[:40]!r}") from None
    else:
        raise TelemetryError(f"{field}: expected a number string, got {type(value).__name__}")
    if not math.isfinite(number):
        raise TelemetryError(f"{field}: expected a finite number, got {value!r}")
    return number


def decode_image(
    b64: object, shape: tuple[int, int, int] = FRAME_SHAPE
) -> tuple[np.ndarray, bytes]:
    """Decode the base64 JPEG of a frame to an RGB ``uint8`` array of ``shape``."""
    if not isinstance(b64, str | bytes):
        raise TelemetryError(f"image: expected a base64 string, got {type(b64).__name__}")
    if len(b64) > MAX_IMAGE_BASE64:
        raise TelemetryError(
            f"image: payload of {len(b64):,} characters exceeds {MAX_IMAGE_BASE64:,}"
        )
    try:
        jpeg = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TelemetryError(f"image: not valid base64 ({exc})") from None
    if not jpeg.startswith(b"\xff\xd8"):
        raise TelemetryError(f"image: not a JPEG (starts with {jpeg[:4]!r})")
    try:
        frame = decode_rgb(jpeg, shape)
    except FrameSizeError as exc:
        raise TelemetryError(f"image: {exc}") from None
    except Exception as exc:  # PIL raises several types for broken files
        raise TelemetryError(f"image: cannot decode JPEG ({type(exc).__name__}: {exc})") from None
    return frame, jpeg


def parse_telemetry(data: object) -> Telemetry:
    """Validate a non-null telemetry payload; raise :class:`TelemetryError` with the reason."""
    if not isinstance(data, dict):
        raise TelemetryError(f"telemetry: expected an object, got {type(data).__name__}")
    missing = [k for k in (*NUMERIC_FIELDS, "image") if k not in data]
    if missing:
        raise TelemetryError(f"telemetry: missing field(s) {', '.join(missing)}")
    steering, throttle, speed = (parse_number(data[k], k) for k in NUMERIC_FIELDS)
    image, jpeg = decode_image(data["image"])
    return Telemetry(steering, throttle, speed, image, jpeg)


def format_value(value: float) -> str:
    """A command value as the simulator's ``float.Parse`` reads it: ``.`` decimals, no exponent."""
    text = f"{value:.{REPLY_DECIMALS}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text  # no "-0.0"


def steer_payload(steering: float, throttle: float) -> dict[str, str]:
    """The one dict a ``steer`` event carries."""
    return {"steering_angle": format_value(steering), "throttle": format_value(throttle)}
