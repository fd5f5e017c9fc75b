"""Decoding a recording's frames (core.recordings): RGB, every failure named, order kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from recordings_testkit import JPEG, all_images, jpeg, make_recording, row

from core.recordings import ImageError, decode_images, load_image, read_recording


def test_load_image_is_rgb(tmp_path):
    img = np.zeros((160, 320, 3), np.uint8)
    img[:, :160] = (255, 0, 0)  # red left half, blue right half
    img[:, 160:] = (0, 0, 255)
    path = tmp_path / "f.jpg"
    Image.fromarray(img).save(path, quality=95)
    out = load_image(path)
    assert out.shape == (160, 320, 3) and out.dtype == np.uint8
    assert out[80, 40, 0] > 200 and out[80, 40, 2] < 50  # red stays in channel 0 (not BGR)
    assert out[80, 280, 2] > 200 and out[80, 280, 0] < 50


def test_load_image_converts_grey_and_png(tmp_path):
    (tmp_path / "g.jpg").write_bytes(jpeg(colour=128, mode="L"))
    Image.new("RGBA", (320, 160), (10, 20, 30, 0)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "g.jpg").shape == (160, 320, 3)
    assert load_image(tmp_path / "a.png")[0, 0].tolist() == [10, 20, 30]


def test_load_image_wrong_size(tmp_path):
    path = tmp_path / "small.jpg"
    path.write_bytes(jpeg(size=(64, 32)))
    with pytest.raises(ImageError, match=r"small.jpg: expected a 320x160 image, found 64x32"):
        load_image(path)


def test_load_image_not_an_image(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("not a jpeg")
    with pytest.raises(ImageError, match=r"fake.jpg: not an image file"):
        load_image(path)


def test_load_image_truncated_and_missing(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(JPEG[: len(JPEG) // 2])
    with pytest.raises(ImageError, match=r"cut.jpg: cannot decode image"):
        load_image(path)
    with pytest.raises(ImageError, match=r"gone.jpg: image file does not exist"):
        load_image(tmp_path / "gone.jpg")


def test_decode_images_keeps_order(tmp_path, capsys):
    paths = []
    for i in range(12):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(jpeg(colour=(20 * i, 0, 255 - 20 * i)))
        paths.append(p)
    out = decode_images(paths, progress=False)
    assert out.shape == (12, 160, 320, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out[:, 80, 160, 0], [20 * i for i in range(12)], atol=4)
    np.testing.assert_array_equal(out, decode_images(paths, progress=False, workers=1))
    assert capsys.readouterr().out == ""  # no print
    assert decode_images([], progress=False).shape == (0, 160, 320, 3)


def test_decode_images_fails_naming_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(JPEG)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(jpeg(size=(320, 240)))
    with pytest.raises(ImageError, match=r"bad.jpg: expected a 320x160 image, found 320x240"):
        decode_images([good] * 5 + [bad] + [good] * 5, progress=False)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        decode_images([good], progress=False, workers=0)


def test_decode_a_recording(tmp_path):
    rec = read_recording(make_recording(tmp_path, [row(i) for i in range(4)], all_images(4)))
    frames = decode_images(rec.centre_paths, progress=True, desc="test")
    assert frames.shape == (4, 160, 320, 3)
