"""The simulator's frames: their shape, written once, and decoding its JPEGs.

:data:`FRAME_SHAPE` is the centre camera's frame as every model takes it, the
telemetry sends it and the recordings hold it: 160 rows, 320 columns, RGB.

Decoding is fast and identical to Pillow. The simulator sends (and records) 320x160
baseline JPEGs. Pillow decodes one in about 0.38 ms on the 2-core development machine;
``simplejpeg`` (libjpeg-turbo's TurboJPEG API, straight into a numpy buffer) in 0.23 ms,
measured over 300 real frames of ../shared/data/udacity. Both use libjpeg-turbo's
accurate integer DCT and fancy upsampling, so the pixels are identical (max difference 0
over those 300 frames; tested): training (Pillow or this) and serving see the same
image.

Anything else (CMYK, whose conversion to RGB differs by one level between the two;
corrupt or truncated data; another size) goes to Pillow, which either decodes it or
raises with its own explanation, so callers keep one error path.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

try:
    import simplejpeg
except ImportError:  # pragma: no cover - pinned in requirements.txt
    simplejpeg = None

#: Height, width and channels of a simulator frame (RGB, uint8 0..255).
FRAME_HEIGHT, FRAME_WIDTH = 160, 320
FRAME_SHAPE = (FRAME_HEIGHT, FRAME_WIDTH, 3)


class FrameSizeError(ValueError):
    """The image decodes but is not the size the caller asked for."""

    def __init__(self, expected: tuple[int, int], got: tuple[int, int]):
        self.expected, self.got = expected, got
        super().__init__(f"expected {expected[1]}x{expected[0]} pixels, got {got[1]}x{got[0]}")


def decode_rgb(
    data: bytes, shape: tuple[int, int, int] = FRAME_SHAPE, out: np.ndarray | None = None
) -> np.ndarray:
    """Decode JPEG (or any Pillow-readable image) ``data`` to an RGB ``uint8`` array.

    ``shape`` is ``(height, width, 3)``; a different size raises :class:`FrameSizeError`
    before any pixel is decoded. ``out`` (C-contiguous, ``shape``, uint8) receives the
    pixels when given. Pillow's exceptions (``UnidentifiedImageError``, ``OSError``)
    propagate for data that is not a decodable image.
    """
    if simplejpeg is not None and data[:2] == b"\xff\xd8":
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            height = width = colorspace = None  # Pillow gives the reason
        # CMYK/YCCK: Pillow's conversion to RGB differs by 1 level from libjpeg-turbo's.
        if (height, width) == tuple(shape[:2]) and colorspace in ("YCbCr", "RGB", "Gray"):
            try:
                return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
            except ValueError:
                pass  # CMYK, corrupt or truncated: Pillow decodes or explains
    with Image.open(io.BytesIO(data)) as img:
        if img.size != (shape[1], shape[0]):  # the header is read lazily: no pixels yet
            raise FrameSizeError(tuple(shape[:2]), (img.size[1], img.size[0]))
        pixels = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    if out is None:
        return pixels
    out[...] = pixels
    return out
