"""core/frames.py: simplejpeg where it can, Pillow otherwise, identical pixels either way."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from core import frames as jpeg
from core.frames import FRAME_SHAPE, FrameSizeError, decode_rgb

SHAPE = (160, 320, 3)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "udacity"


def test_frame_shape_is_the_simulators_camera():
    assert FRAME_SHAPE == SHAPE


def encode(frame: np.ndarray, fmt: str = "JPEG", **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, fmt, **kwargs)
    return buf.getvalue()


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def noisy_frame(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:160, 0:320]
    base = np.stack([x * 0.7, y * 1.5, (x + y) * 0.4], axis=-1)
    return np.clip(base + rng.normal(0, 25, (160, 320, 3)), 0, 255).astype(np.uint8)


def test_simplejpeg_is_installed():
    # Without it every frame silently takes the slower Pillow path.
    assert jpeg.simplejpeg is not None


@pytest.mark.parametrize(
    "options",
    [dict(quality=75), dict(quality=95, subsampling=0), dict(quality=30, subsampling=1)],
)
def test_same_pixels_as_pillow(options):
    for seed in range(3):
        data = encode(noisy_frame(seed), **options)
        np.testing.assert_array_equal(decode_rgb(data, SHAPE), pillow(data))


def test_same_pixels_as_pillow_on_real_frames():
    files = sorted(SHARED.glob("*/IMG/center_*.jpg"))[::40]
    if not files:
        pytest.skip(f"no recordings in {SHARED}")
    for f in files:
        data = f.read_bytes()
        np.testing.assert_array_equal(decode_rgb(data, SHAPE), pillow(data), err_msg=str(f))


def test_decodes_into_the_given_buffer():
    data = encode(noisy_frame(1))
    batch = np.zeros((2, *SHAPE), np.uint8)
    got = decode_rgb(data, SHAPE, batch[1])
    np.testing.assert_array_equal(batch[1], pillow(data))
    assert np.shares_memory(got, batch) and not batch[0].any()


def test_wrong_size_is_named():
    data = encode(noisy_frame(0)[:80, :200])
    with pytest.raises(FrameSizeError, match="expected 320x160 pixels, got 200x80") as info:
        decode_rgb(data, SHAPE)
    assert info.value.got == (80, 200)


def test_grey_and_cmyk_jpegs_become_rgb_like_pillow():
    grey = encode(noisy_frame(2)[..., 0], quality=80)  # mode L
    np.testing.assert_array_equal(decode_rgb(grey, SHAPE), pillow(grey))
    cmyk = io.BytesIO()
    Image.fromarray(noisy_frame(3)).convert("CMYK").save(cmyk, "JPEG")  # Pillow decodes it
    np.testing.assert_array_equal(decode_rgb(cmyk.getvalue(), SHAPE), pillow(cmyk.getvalue()))


def test_png_goes_to_pillow():
    frame = noisy_frame(4)
    np.testing.assert_array_equal(decode_rgb(encode(frame, "PNG"), SHAPE), frame)


def test_broken_data_raises_pillow_errors():
    data = encode(noisy_frame(5))
    with pytest.raises(OSError, match="truncated|broken|image file"):
        decode_rgb(data[: len(data) // 2], SHAPE)
    with pytest.raises(OSError, match="[Tt]runcated"):
        decode_rgb(b"\xff\xd8\xff\xe0 not really", SHAPE)
    with pytest.raises(UnidentifiedImageError):
        decode_rgb(b"plain text", SHAPE)
