"""Parsing telemetry and formatting commands: tolerant in, strict out."""

import base64

import numpy as np
import pytest
from drive_testkit import make_jpeg

from drive.control import PIController
from drive.protocol import (
    MAX_IMAGE_BASE64,
    TelemetryError,
    decode_image,
    format_value,
    parse_number,
    parse_telemetry,
    steer_payload,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.1234", 0.1234),
        ("0,1234", 0.1234),  # comma-decimal locale
        ("-3,1250", -3.125),
        ("1,234.5000", 1234.5),  # "N4" with a thousands separator
        ("1.234,5000", 1234.5),
        (" 9.0312 ", 9.0312),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_parse_number_is_tolerant(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf", None, True, [], {}])
def test_parse_number_rejects(bad):
    with pytest.raises(TelemetryError):
        parse_number(bad, "speed")


def test_decode_image_returns_rgb_frame():
    frame, raw = decode_image(base64.b64encode(make_jpeg()).decode())
    assert frame.shape == (160, 320, 3) and frame.dtype == np.uint8
    assert raw.startswith(b"\xff\xd8")


@pytest.mark.parametrize(
    ("b64", "reason"),
    [
        ("not base64 at all!", "base64"),
        (base64.b64encode(b"\x89PNG\r\n\x1a\n....").decode(), "not a JPEG"),
        (base64.b64encode(b"\xff\xd8\xff\xe0 truncated").decode(), "cannot decode"),
        (base64.b64encode(make_jpeg(64, 32)).decode(), "expected 320x160"),
        ("A" * (MAX_IMAGE_BASE64 + 4), "exceeds"),
        (12345, "base64 string"),
    ],
)
def test_decode_image_rejects_with_reason(b64, reason):
    with pytest.raises(TelemetryError, match=reason):
        decode_image(b64)


def test_parse_telemetry_needs_every_field():
    good = {
        "steering_angle": "0,0000",
        "throttle": "0.2",
        "speed": "9.1",
        "image": base64.b64encode(make_jpeg()).decode(),
    }
    t = parse_telemetry(good)
    assert (t.steering_deg, t.throttle, t.speed) == (0.0, 0.2, 9.1)
    for key in good:
        with pytest.raises(TelemetryError, match=f"missing field.*{key}"):
            parse_telemetry({k: v for k, v in good.items() if k != key})
    with pytest.raises(TelemetryError, match="expected an object"):
        parse_telemetry(["telemetry"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.100000"),
        (-1.0, "-1.000000"),
        (-0.0, "0.000000"),
        (-1e-9, "0.000000"),
        (1e-7, "0.000000"),
        (0.123456789, "0.123457"),
    ],
)
def test_format_value_is_dot_decimal_without_exponent(value, text):
    assert format_value(value) == text


def test_steer_payload_is_two_strings():
    payload = steer_payload(-0.25, 0.3)
    assert payload == {"steering_angle": "-0.250000", "throttle": "0.300000"}


# ---------------------------------------------------------------------- PI controller


def test_pi_controller_udacity_gains_and_clamp():
    pi = PIController()
    assert (pi.kp, pi.ki, pi.set_point) == (0.1, 0.002, 9.0)
    assert pi.update(0.0) == pi.out_max  # 0.9 + 0.018 unclamped
    assert pi.update(30.0) == pi.out_min


def test_pi_controller_anti_windup_recovers_at_once():
    pi = PIController()
    for _ in range(1000):  # stuck at standstill (e.g. against a wall)
        pi.update(0.0)
    assert pi.integral == 0.0  # saturated high: never integrated
    # Once at the set point the output is back to the integral's share (0), not 18.
    assert pi.update(9.0) == pytest.approx(0.0)


def test_pi_controller_settles_on_a_toy_car():
    pi, speed = PIController(set_point=9.0), 0.0
    for _ in range(3000):
        speed += 2.0 * pi.update(speed) - 0.05 * speed * 0.1 - 0.03  # drive force, drag, slope
    assert speed == pytest.approx(9.0, abs=0.2)


def test_pi_controller_validates():
    with pytest.raises(ValueError, match="out_min must be < out_max"):
        PIController(out_min=0.5, out_max=0.5)
    with pytest.raises(ValueError, match="gains"):
        PIController(kp=-1)
