"""Lambda layers of Keras 1/2 files (models.legacy.codeobject, models.legacy.affine): the
course's normalisations become Rescaling; bytecode of other Pythons read, never run."""

from __future__ import annotations

import marshal

import numpy as np
import pytest
from keras import layers
from legacy_testkit import (
    FRAMES,
    lambda_from,
    resized,
    small_net,
)

from models.legacy import Preprocess, import_model
from models.legacy.affine import affine_map
from models.legacy.codeobject import BytecodeError, read_code

IDIOMS = [
    ("x / 255 - 0.5", lambda x: x / 255.0 - 0.5, 1 / 255, -0.5),
    ("x / 127.5 - 1", lambda x: x / 127.5 - 1.0, 1 / 127.5, -1.0),
    ("x / 255", lambda x: x / 255.0, 1 / 255, 0.0),
    ("(x - 128) / 128", lambda x: (x - 128.0) / 128.0, 1 / 128, -1.0),
]


@pytest.mark.parametrize("version", ["1.2.1", "2.2.4"])
@pytest.mark.parametrize(("text", "idiom", "scale", "offset"), IDIOMS, ids=[i[0] for i in IDIOMS])
def test_each_normalisation_idiom_becomes_rescaling(tmp_path, version, text, idiom, scale, offset):
    path, kernel, bias = small_net(idiom, version, tmp_path)
    model = import_model(path, Preprocess(resize=(8, 16)))
    rescale = model.get_layer("lambda_1")
    assert isinstance(rescale, layers.Rescaling)
    assert rescale.scale == pytest.approx(scale, rel=1e-12)
    assert rescale.offset == pytest.approx(offset, abs=1e-12)
    # By hand: the idiom applied in numpy to the resized frames, then the Dense layer.
    x = resized(FRAMES)
    expected = idiom(x.astype("float64")).reshape(len(x), -1) @ kernel + bias
    np.testing.assert_allclose(model.predict(FRAMES, verbose=0), expected, rtol=1e-5, atol=1e-5)


# Marshalled `lambda x: x/255.0 - 0.5` from other interpreters (pyenv's, compiled with
# filename "m.py"): Python 2.7, 3.6, 3.8, 3.10, 3.12 and 3.13 lay out code objects and
# bytecode differently, and this interpreter's marshal.loads cannot read most of them.
OTHER_PYTHONS = {
    "2.7": "6301000000010000000200000043000000730c0000007c000064010015640200185328030000004e67"
    "0000000000e06f4067000000000000e03f280000000028010000007401000000782800000000280000000073"
    "040000006d2e707974080000003c6c616d6264613e010000007400000000",
    "3.6": "e30100000000000000010000000200000043000000730c0000007c0064011b0064021800530029034e"
    "670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e7079da083c"
    "6c616d6264613e010000007300000000",
    "3.8": "e3010000000000000000000000010000000200000043000000730c0000007c0064011b006402180053"
    "0029034e670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e70"
    "79da083c6c616d6264613e01000000f300000000",
    "3.10": "e3010000000000000000000000010000000200000043000000730c0000007c0064011b00640218005"
    "30029034e670000000000e06f4067000000000000e03fa9002901da017872010000007201000000fa046d2e7"
    "079da083c6c616d6264613e0100000073020000000c00",
    "3.12": "e30100000000000000000000000200000003000000f31200000097007c0064017a0b000064027a0a00"
    "00530029034e670000000000e06f4067000000000000e03fa9002901da0178730100000020fa046d2e7079fa"
    "083c6c616d6264613e720500000001000000730e00000080008821884589279043892d8000f300000000",
    "3.13": "e30100000000000000000000000200000003000000f3120000009500550053012d0b000053022d0a00"
    "00240029034e670000000000e06f4067000000000000e03fa9002901da0178730100000020da046d2e7079da"
    "083c6c616d6264613e720500000001000000730c000000800088218845892790438a2df300000000",
}
# Python 3.5 (the course's, e.g. Keras 1.2.1 files) keeps 3.6's code-object layout but
# encodes instructions in 1 or 3 bytes: the same six instructions, hand-assembled.
OTHER_PYTHONS["3.5"] = (
    bytes.fromhex(OTHER_PYTHONS["3.6"])
    .replace(bytes.fromhex("7c0064011b00640218005300"), bytes.fromhex("7c00006401001b6402001853"))
    .hex()
)
# `lambda x: K.tf.image.resize_images(x, (66, 200))` from Python 3.6: not a scaling.
RESIZE_36 = (
    "e30100000000000000010000000400000043000000731000000074006a016a026a037c006403830253002904"
    "4ee942000000e9c80000002902720100000072020000002904da014b5a0274665a05696d6167655a0d726573"
    "697a655f696d616765732901da0178a9007205000000fa046d2e7079da083c6c616d6264613e010000007300"
    "000000"
)


@pytest.mark.parametrize("python", sorted(OTHER_PYTHONS))
def test_bytecode_of_other_pythons_is_read_without_marshal(python, monkeypatch):
    monkeypatch.setattr(marshal, "loads", None)  # any use would fail the test
    found = affine_map(read_code(bytes.fromhex(OTHER_PYTHONS[python])))
    assert (found.scale, found.offset) == (pytest.approx(1 / 255), pytest.approx(-0.5))
    assert "255.0" in found.listing and "0.5" in found.listing


def test_reader_agrees_with_this_interpreter():
    for func in (lambda x: x / 127.5 - 1.0, lambda x: 2 - x * 3.0, lambda x: (x + 1) * 0.5):
        info = read_code(marshal.dumps(func.__code__))
        assert info.consts == func.__code__.co_consts
        assert info.code == func.__code__.co_code
        assert info.names == func.__code__.co_names
    assert affine_map(read_code(marshal.dumps((lambda x: 2 - x * 3.0).__code__))).scale == -3.0


def test_code_that_is_not_a_scaling_is_refused_with_its_constants():
    info = read_code(bytes.fromhex(RESIZE_36))
    assert info.names == ("K", "tf", "image", "resize_images")
    with pytest.raises(BytecodeError, match=r"other than \+ - \* /"):
        affine_map(info)
    for source in ("lambda x: x * x", "lambda x: 1.0 / x", "lambda x, y: x / y", "lambda x: 0.5"):
        with pytest.raises(BytecodeError):
            affine_map(read_code(marshal.dumps(lambda_from(source).__code__)))
    with pytest.raises(BytecodeError, match="code object"):
        read_code(b"\xe3\x01\x00")  # truncated
